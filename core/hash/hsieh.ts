/** Paul Hsieh's SuperFastHash in twemproxy's variant (initial value 0, little-endian 16-bit reads). */

/** Little-endian unsigned 16-bit read at `i`. */
function get16(key: Uint8Array, i: number): number {
  return key[i] | (key[i + 1] << 8);
}

/**
 * hsieh of `key[start..end)`, unsigned 32-bit.
 * @example hsieh(new TextEncoder().encode("b"), 0, 1) // 291415938
 */
export function hsieh(key: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len <= 0) return 0;
  let h = 0;
  let i = start;
  for (const stop = start + (len & ~3); i < stop; i += 4) {
    h = (h + get16(key, i)) | 0;
    const tmp = (get16(key, i + 2) << 11) ^ h;
    h = (h << 16) ^ tmp;
    h = (h + (h >>> 11)) | 0;
  }
  h = tail(key, i, len & 3, h);
  h ^= h << 3;
  h = (h + (h >>> 5)) | 0;
  h ^= h << 4;
  h = (h + (h >>> 17)) | 0;
  h ^= h << 25;
  h = (h + (h >>> 6)) | 0;
  return h >>> 0;
}

/** Mixes the last 1-3 bytes; the third byte is a signed char, the single byte is not. */
function tail(key: Uint8Array, i: number, rem: number, h: number): number {
  if (rem === 3) {
    h = (h + get16(key, i)) | 0;
    h ^= h << 16;
    h ^= ((key[i + 2] << 24) >> 24) << 18;
    return (h + (h >>> 11)) | 0;
  }
  if (rem === 2) {
    h = (h + get16(key, i)) | 0;
    h ^= h << 11;
    return (h + (h >>> 17)) | 0;
  }
  if (rem === 1) {
    h = (h + key[i]) | 0;
    h ^= h << 10;
    return (h + (h >>> 1)) | 0;
  }
  return h;
}
