/** Bob Jenkins' one-at-a-time hash, as twemproxy computes it (bytes read as signed chars). */

/**
 * One-at-a-time hash of `key[start..end)`, unsigned 32-bit.
 * @example oneAtATime(new TextEncoder().encode("b"), 0, 1) // 14385563
 */
export function oneAtATime(key: Uint8Array, start: number, end: number): number {
  let h = 0;
  for (let i = start; i < end; i++) {
    // twemproxy widens a signed char: 0x80..0xff become 0xffffff80..0xffffffff.
    h = (h + ((key[i] << 24) >> 24)) | 0;
    h = (h + (h << 10)) | 0;
    h ^= h >>> 6;
  }
  h = (h + (h << 3)) | 0;
  h ^= h >>> 11;
  h = (h + (h << 15)) | 0;
  return h >>> 0;
}
