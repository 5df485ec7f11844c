/** MurmurHash2 (32-bit) with twemproxy's seed: 0xdeadbeef * length. */

const M = 0x5bd1e995;

/**
 * murmur of `key[start..end)`, unsigned 32-bit. Words are read little-endian, as
 * on the x86-64 build the vectors were recorded from.
 * @example murmur(new TextEncoder().encode("b"), 0, 1) // 1647211699
 */
export function murmur(key: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len <= 0) return 0;
  let h = Math.imul(0xdeadbeef, len) ^ len;
  let i = start;
  for (const stop = start + (len & ~3); i < stop; i += 4) {
    let k = key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rem = len & 3;
  if (rem > 0) {
    if (rem === 3) h ^= key[i + 2] << 16;
    if (rem >= 2) h ^= key[i + 1] << 8;
    h = Math.imul(h ^ key[i], M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h >>> 0;
}
