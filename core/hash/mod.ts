/**
 * The key hash functions, by their twemproxy config names, in twemproxy's order.
 * Config validation and the pool both read this table, so a new hash is one entry.
 */
import { oneAtATime } from "./one_at_a_time.ts";
import { md5 } from "./md5.ts";
import { crc16 } from "./crc16.ts";
import { crc32 } from "./crc32.ts";
import { crc32a } from "./crc32a.ts";
import { fnv1_64 } from "./fnv1_64.ts";
import { fnv1a_64 } from "./fnv1a_64.ts";
import { fnv1_32 } from "./fnv1_32.ts";
import { fnv1a_32 } from "./fnv1a_32.ts";
import { hsieh } from "./hsieh.ts";
import { murmur } from "./murmur.ts";
import { jenkins } from "./jenkins.ts";

/** Hashes `key[start..end)` to an unsigned 32-bit integer. An empty span hashes to 0. */
export type HashFn = (key: Uint8Array, start: number, end: number) => number;

/**
 * name -> hash function, in twemproxy's order (its default is fnv1a_64).
 * @example HASHES.fnv1a_64(new TextEncoder().encode("b"), 0, 1) // 2248274341
 */
export const HASHES = Object.freeze({
  one_at_a_time: oneAtATime,
  md5,
  crc16,
  crc32,
  crc32a,
  fnv1_64,
  fnv1a_64,
  fnv1_32,
  fnv1a_32,
  hsieh,
  murmur,
  jenkins,
} as const satisfies Record<string, HashFn>);

/** A config `hash:` value twemproxy accepts. */
export type HashName = keyof typeof HASHES;

/** Whether `name` is one of the HASHES (own keys only, so "toString" is not a hash). */
export function isHashName(name: string): name is HashName {
  return Object.prototype.hasOwnProperty.call(HASHES, name);
}

export { md5Digest } from "./md5.ts";
export { hashTagSpan, hashWithTag } from "./tag.ts";
export type { Span } from "./tag.ts";
