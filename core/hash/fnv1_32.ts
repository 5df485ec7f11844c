/** FNV-1 32-bit (twemproxy's fnv1_32). */

const OFFSET = 0x811c9dc5;
const PRIME = 0x01000193;

/**
 * fnv1_32 of `key[start..end)`, unsigned 32-bit (bytes read as signed chars).
 * @example fnv1_32(new TextEncoder().encode("b"), 0, 1) // 84696445
 */
export function fnv1_32(key: Uint8Array, start: number, end: number): number {
  if (end <= start) return 0; // twemproxy never hashes an empty key: it routes it as 0
  let h = OFFSET;
  for (let i = start; i < end; i++) {
    h = Math.imul(h, PRIME) ^ ((key[i] << 24) >> 24);
  }
  return h >>> 0;
}
