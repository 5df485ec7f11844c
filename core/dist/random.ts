/**
 * Random distribution as twemproxy builds it: one slot per server (in twemproxy's
 * order), weights ignored; every pick ignores the hash and draws a slot.
 */
import type { Dispatcher, DistServer } from "./types.ts";
import { EMPTY_DISPATCHER } from "./types.ts";
import { twemproxyOrder } from "./order.ts";

/**
 * Builds the random dispatcher; `random` returns a float in [0, 1) like Math.random.
 * @example buildRandom(servers, () => 0).pick(0) // the first server in twemproxy's order
 */
export function buildRandom(servers: readonly DistServer[], random: () => number): Dispatcher {
  const n = servers.length;
  if (n === 0) return EMPTY_DISPATCHER;
  const slots = Uint32Array.from(twemproxyOrder(servers));
  // The clamp keeps a misbehaving random() (returning 1 or more) in range.
  return { pick: (_hash: number) => slots[Math.min(n - 1, Math.floor(random() * n))] };
}
