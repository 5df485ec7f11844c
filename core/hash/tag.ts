/**
 * hash_tag: hash only part of a key so related keys land together. twemproxy takes
 * the bytes between the first opening tag byte and the first closing byte after it;
 * when there is no closing byte, or nothing between the two, the whole key is hashed.
 */
import type { HashFn } from "./mod.ts";

/** A byte range [start, end) of a key; reused as an out-parameter to avoid allocation. */
export interface Span {
  start: number;
  end: number;
}

/**
 * Writes into `out` the span of `key[start..end)` to hash under `tag` (two bytes,
 * open and close, e.g. "{}"), and returns `out`. A null tag keeps the whole key.
 * @example hashTagSpan(enc("user:{42}:name"), 0, 14, enc("{}"), span) // span = {start: 6, end: 8}
 */
export function hashTagSpan(
  key: Uint8Array,
  start: number,
  end: number,
  tag: Uint8Array | null,
  out: Span,
): Span {
  out.start = start;
  out.end = end;
  if (tag === null || tag.length < 2) return out;
  const open = find(key, tag[0], start, end);
  if (open < 0) return out;
  const close = find(key, tag[1], open + 1, end);
  if (close < 0 || close - open < 2) return out;
  out.start = open + 1;
  out.end = close;
  return out;
}

/** Index of the first `byte` in `key[from..end)`, or -1 (indexOf could scan past `end`). */
function find(key: Uint8Array, byte: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (key[i] === byte) return i;
  return -1;
}

const scratch: Span = { start: 0, end: 0 };

/**
 * Hashes `key[start..end)` with `hash`, honouring `tag` as twemproxy does.
 * @example hashWithTag(HASHES.crc32a, enc("a{b}"), 0, 4, enc("{}")) // crc32a of "b"
 */
export function hashWithTag(
  hash: HashFn,
  key: Uint8Array,
  start: number,
  end: number,
  tag: Uint8Array | null,
): number {
  const span = hashTagSpan(key, start, end, tag, scratch);
  return hash(key, span.start, span.end);
}
