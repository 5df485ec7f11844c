/** Bob Jenkins' lookup3 hashlittle() with twemproxy's initial value 13. */

const INITVAL = 13;

/** Rotate left. */
function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Scratch state (a, b, c) so the mixing helpers allocate nothing. */
const s = new Int32Array(3);

function mix(): void {
  let a = s[0], b = s[1], c = s[2];
  a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
  a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
  s[0] = a; s[1] = b; s[2] = c;
}

function final(): number {
  let a = s[0], b = s[1], c = s[2];
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return c >>> 0;
}

/** Little-endian 32-bit word at `i`. */
function le32(key: Uint8Array, i: number): number {
  return key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24);
}

/** Little-endian word of up to `n` (1..4) bytes at `i`; missing bytes are zero. */
function word(key: Uint8Array, i: number, n: number): number {
  let w = 0;
  for (let j = n - 1; j >= 0; j--) w = (w << 8) | key[i + j];
  return w;
}

/**
 * jenkins of `key[start..end)`, unsigned 32-bit (bytes unsigned, little-endian words).
 * @example jenkins(new TextEncoder().encode("b"), 0, 1) // 4120036887
 */
export function jenkins(key: Uint8Array, start: number, end: number): number {
  let len = end - start;
  if (len <= 0) return 0; // twemproxy never hashes an empty key: it routes it as 0
  s[0] = s[1] = s[2] = (0xdeadbeef + len + INITVAL) | 0;
  let i = start;
  for (; len > 12; len -= 12, i += 12) {
    s[0] += le32(key, i);
    s[1] += le32(key, i + 4);
    s[2] += le32(key, i + 8);
    mix();
  }
  // The last 1..12 bytes: a, b, c take 4 each, zero-padded.
  s[0] += word(key, i, Math.min(len, 4));
  if (len > 4) s[1] += word(key, i + 4, Math.min(len - 4, 4));
  if (len > 8) s[2] += word(key, i + 8, len - 8);
  return final();
}
