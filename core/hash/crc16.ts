/** twemproxy's crc16: CRC-16/XMODEM steps on a 32-bit register that is never masked to 16 bits. */
import { CRC16_TABLE } from "./crc_tables.ts";

/**
 * crc16 of `key[start..end)`, unsigned 32-bit. The register keeps its high bits
 * (twemproxy shifts a uint32 left without masking), so keys longer than two bytes
 * can yield values above 0xffff; that is what routing depends on.
 * @example crc16(new TextEncoder().encode("b"), 0, 1) // 19684
 */
export function crc16(key: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc = (crc << 8) ^ CRC16_TABLE[((crc >>> 8) ^ key[i]) & 0xff];
  }
  return crc >>> 0;
}
