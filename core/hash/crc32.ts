/** libmemcached's "crc32" hash: a standard CRC-32 reduced to 15 bits, as twemproxy's crc32. */
import { CRC32_TABLE } from "./crc_tables.ts";

/**
 * crc32 (libmemcached variant) of `key[start..end)`: `(crc32 >> 16) & 0x7fff`.
 * @example crc32(new TextEncoder().encode("b"), 0, 1) // 29118
 */
export function crc32(key: Uint8Array, start: number, end: number): number {
  let crc = -1;
  for (let i = start; i < end; i++) {
    crc = (crc >>> 8) ^ CRC32_TABLE[(crc ^ key[i]) & 0xff];
  }
  return (~crc >>> 16) & 0x7fff;
}
