/** FNV-1a 64-bit truncated to 32 bits (twemproxy's fnv1a_64), computed in 32-bit arithmetic. */

/** Low 32 bits of the 64-bit FNV offset basis 0xcbf29ce484222325. */
const OFFSET_LO = 0x84222325;
/** Low 32 bits of the 64-bit FNV prime 0x100000001b3. */
const PRIME_LO = 0x1b3;

/**
 * fnv1a_64 of `key[start..end)`, unsigned 32-bit (bytes read as signed chars).
 * @example fnv1a_64(new TextEncoder().encode("b"), 0, 1) // 2248274341
 */
export function fnv1a_64(key: Uint8Array, start: number, end: number): number {
  if (end <= start) return 0; // twemproxy never hashes an empty key: it routes it as 0
  let h = OFFSET_LO;
  for (let i = start; i < end; i++) {
    h = Math.imul(h ^ ((key[i] << 24) >> 24), PRIME_LO);
  }
  return h >>> 0;
}
