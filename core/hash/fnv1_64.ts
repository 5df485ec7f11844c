/**
 * FNV-1 64-bit, truncated to 32 bits (twemproxy's fnv1_64). The low 32 bits of a
 * 64-bit product depend only on the low 32 bits of its factors, so the whole hash
 * runs in 32-bit arithmetic: no BigInt, no limbs.
 */

/** Low 32 bits of the 64-bit FNV offset basis 0xcbf29ce484222325. */
const OFFSET_LO = 0x84222325;
/** Low 32 bits of the 64-bit FNV prime 0x100000001b3. */
const PRIME_LO = 0x1b3;

/**
 * fnv1_64 of `key[start..end)`, unsigned 32-bit. Bytes are signed chars widened to
 * 64 bits, whose low 32 bits are the byte sign-extended.
 * @example fnv1_64(new TextEncoder().encode("b"), 0, 1) // 2248259517
 */
export function fnv1_64(key: Uint8Array, start: number, end: number): number {
  if (end <= start) return 0; // twemproxy never hashes an empty key: it routes it as 0
  let h = OFFSET_LO;
  for (let i = start; i < end; i++) {
    h = Math.imul(h, PRIME_LO) ^ ((key[i] << 24) >> 24);
  }
  return h >>> 0;
}
