/**
 * Redis Cluster's redirections, as the proxy reads them from a reply: `-MOVED <slot> <host:port>`
 * (the slot lives there now), `-ASK <slot> <host:port>` (this once, during a slot's migration),
 * and `-TRYAGAIN` / `-CLUSTERDOWN` (wait a little, then send again).
 */
import type { Addr } from "../net.ts";
import { latin1String } from "../bytes.ts";

export const Redirect = { Moved: 1, Ask: 2, TryAgain: 3 } as const;
export type Redirect = typeof Redirect[keyof typeof Redirect];

export interface RedirectReply {
  readonly kind: Redirect;
  readonly slot: number;
  readonly addr: Addr | null;
}

/** The redirection a reply asks for, or null for any other reply. */
export function redirectOf(reply: Uint8Array | null): RedirectReply | null {
  if (reply === null || reply[0] !== 0x2d || reply.length > 200) return null;
  const words = latin1String(reply, 1, reply.length - 2).split(" ");
  if (words[0] === "TRYAGAIN" || words[0] === "CLUSTERDOWN") return { kind: Redirect.TryAgain, slot: -1, addr: null };
  if (words[0] !== "MOVED" && words[0] !== "ASK") return null;
  const colon = words[2]?.lastIndexOf(":") ?? -1;
  if (colon < 0) return null;
  const addr: Addr = { kind: "tcp", host: words[2].slice(0, colon), port: Number(words[2].slice(colon + 1)) };
  return { kind: words[0] === "MOVED" ? Redirect.Moved : Redirect.Ask, slot: Number(words[1]), addr };
}
