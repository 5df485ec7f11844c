/** FNV-1a 32-bit (twemproxy's fnv1a_32). */

const OFFSET = 0x811c9dc5;
const PRIME = 0x01000193;

/**
 * fnv1a_32 of `key[start..end)`, unsigned 32-bit (bytes read as signed chars).
 * @example fnv1a_32(new TextEncoder().encode("b"), 0, 1) // 3876335077
 */
export function fnv1a_32(key: Uint8Array, start: number, end: number): number {
  if (end <= start) return 0; // twemproxy never hashes an empty key: it routes it as 0
  let h = OFFSET;
  for (let i = start; i < end; i++) {
    h = Math.imul(h ^ ((key[i] << 24) >> 24), PRIME);
  }
  return h >>> 0;
}
