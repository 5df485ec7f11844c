/**
 * Request re-encoding for the proxy: the per-server fragments of a multi-key retrieval
 * ("get k1 k3\r\n", "gat 60 k2\r\n") built from key spans of the client's buffer, and
 * the original request with one token (noreply / q) cut out. Everything else is
 * forwarded as the client sent it.
 */
import { copyBytes } from "../bytes.ts";
import type { McRequest } from "./request.ts";
import { McCmd } from "./request.ts";

const VERBS: Record<number, Uint8Array> = {
  [McCmd.Get]: Uint8Array.of(0x67, 0x65, 0x74),
  [McCmd.Gets]: Uint8Array.of(0x67, 0x65, 0x74, 0x73),
  [McCmd.Gat]: Uint8Array.of(0x67, 0x61, 0x74),
  [McCmd.Gats]: Uint8Array.of(0x67, 0x61, 0x74, 0x73),
};

/**
 * "<verb> [<exptime>] <key>...\r\n" for cmd Get/Gets/Gat/Gats with the keys
 * src[keyStart[i], keyEnd[i]) for each i in pick, in pick's order. Gat/Gats need the
 * exptime span. Throws for another cmd (a programmer error).
 * @example encodeRetrieval(McCmd.Get, buf, req.keyStart, req.keyEnd, [0, 2]) // "get k1 k3\r\n"
 */
export function encodeRetrieval(
  cmd: number,
  src: Uint8Array,
  keyStart: ArrayLike<number>,
  keyEnd: ArrayLike<number>,
  pick: ArrayLike<number>,
  exptimeStart = -1,
  exptimeEnd = -1,
): Uint8Array {
  const verb = VERBS[cmd];
  if (verb === undefined) throw new Error(`encodeRetrieval: not a retrieval command: ${cmd}`);
  const touch = cmd === McCmd.Gat || cmd === McCmd.Gats;
  if (touch && exptimeStart < 0) throw new Error("encodeRetrieval: gat/gats need the exptime span");
  let size = verb.length + 2 + (touch ? exptimeEnd - exptimeStart + 1 : 0);
  for (let i = 0; i < pick.length; i++) size += keyEnd[pick[i]] - keyStart[pick[i]] + 1;
  const out = new Uint8Array(size);
  out.set(verb, 0);
  let at = verb.length;
  if (touch) at = put(out, at, src, exptimeStart, exptimeEnd);
  for (let i = 0; i < pick.length; i++) at = put(out, at, src, keyStart[pick[i]], keyEnd[pick[i]]);
  out[at] = 0x0d;
  out[at + 1] = 0x0a;
  return out;
}

/** Writes " " + src[start, end) at out[at]; returns the offset past it. */
function put(out: Uint8Array, at: number, src: Uint8Array, start: number, end: number): number {
  out[at] = 0x20;
  return copyBytes(out, at + 1, src, start, end);
}

/** The fragment of a parsed get/gets/gat/gats holding the keys with the indexes in pick. */
export function encodeFragment(src: Uint8Array, req: McRequest, pick: ArrayLike<number>): Uint8Array {
  return encodeRetrieval(req.cmd, src, req.keyStart, req.keyEnd, pick, req.gatExptimeStart, req.gatExptimeEnd);
}

/**
 * A copy of buf[start, end) without buf[cutStart, cutEnd) (which must lie inside it),
 * e.g. a request without its " noreply" or " q" token.
 * @example stripSpan(bytes("delete k noreply\r\n"), 0, 18, 8, 16) // "delete k\r\n"
 */
export function stripSpan(buf: Uint8Array, start: number, end: number, cutStart: number, cutEnd: number): Uint8Array {
  const out = new Uint8Array(end - start - (cutEnd - cutStart));
  out.set(buf.subarray(start, cutStart), 0);
  out.set(buf.subarray(cutEnd, end), cutStart - start);
  return out;
}
