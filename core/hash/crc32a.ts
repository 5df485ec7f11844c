/** Standard CRC-32 (IEEE 802.3, as zlib), twemproxy's crc32a. */
import { CRC32_TABLE } from "./crc_tables.ts";

/**
 * CRC-32 of `key[start..end)`, unsigned 32-bit.
 * @example crc32a(new TextEncoder().encode("b"), 0, 1) // 1908338681
 */
export function crc32a(key: Uint8Array, start: number, end: number): number {
  let crc = -1;
  for (let i = start; i < end; i++) {
    crc = (crc >>> 8) ^ CRC32_TABLE[(crc ^ key[i]) & 0xff];
  }
  return ~crc >>> 0;
}
