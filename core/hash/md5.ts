/**
 * MD5 (RFC 1321) over a byte span, allocation-free for hashing. twemproxy's md5 key
 * hash is the digest's first four bytes read little-endian; ketama reads all four words.
 */

/** Per-step additive constants: floor(abs(sin(i + 1)) * 2^32). */
const K = new Int32Array([
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
]);

/** Left-rotation amounts, four per round. */
const SHIFTS = new Uint8Array([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);

/** Which message word step i reads. */
const WORD_INDEX = new Uint8Array(64).map((_, i) =>
  i < 16 ? i : i < 32 ? (5 * i + 1) & 15 : i < 48 ? (3 * i + 5) & 15 : (7 * i) & 15
);

/** Running digest words A, B, C, D (module scratch: hashing is synchronous). */
const state = new Int32Array(4);
/** The current 64-byte block as 16 little-endian words. */
const X = new Int32Array(16);
/** The padded final one or two blocks. */
const tailBlock = new Uint8Array(128);

function loadWords(src: Uint8Array, off: number): void {
  for (let j = 0; j < 16; j++, off += 4) {
    X[j] = src[off] | (src[off + 1] << 8) | (src[off + 2] << 16) | (src[off + 3] << 24);
  }
}

/** Left rotation. */
function rotl(x: number, s: number): number {
  return (x << s) | (x >>> (32 - s));
}

/**
 * One 64-step compression of X into state: four loops, one per round function
 * (F, G, H, I), so no step branches on its round.
 */
function compress(): void {
  let a = state[0], b = state[1], c = state[2], d = state[3];
  let i = 0;
  for (; i < 16; i++) {
    const f = (((b & c) | (~b & d)) + a + K[i] + X[WORD_INDEX[i]]) | 0;
    a = d; d = c; c = b;
    b = (b + rotl(f, SHIFTS[i & 3])) | 0;
  }
  for (; i < 32; i++) {
    const f = (((d & b) | (~d & c)) + a + K[i] + X[WORD_INDEX[i]]) | 0;
    a = d; d = c; c = b;
    b = (b + rotl(f, SHIFTS[4 | (i & 3)])) | 0;
  }
  for (; i < 48; i++) {
    const f = ((b ^ c ^ d) + a + K[i] + X[WORD_INDEX[i]]) | 0;
    a = d; d = c; c = b;
    b = (b + rotl(f, SHIFTS[8 | (i & 3)])) | 0;
  }
  for (; i < 64; i++) {
    const f = ((c ^ (b | ~d)) + a + K[i] + X[WORD_INDEX[i]]) | 0;
    a = d; d = c; c = b;
    b = (b + rotl(f, SHIFTS[12 | (i & 3)])) | 0;
  }
  state[0] += a; state[1] += b; state[2] += c; state[3] += d;
}

/** Runs MD5 over `key[start..end)`, leaving the digest words in `state`. */
function digestIntoState(key: Uint8Array, start: number, end: number): void {
  const len = end - start;
  state[0] = 0x67452301; state[1] = 0xefcdab89; state[2] = 0x98badcfe; state[3] = 0x10325476;
  let i = start;
  for (; end - i >= 64; i += 64) {
    loadWords(key, i);
    compress();
  }
  const rest = end - i;
  const blocks = rest < 56 ? 1 : 2;
  tailBlock.fill(0, 0, blocks * 64);
  for (let j = 0; j < rest; j++) tailBlock[j] = key[i + j];
  tailBlock[rest] = 0x80;
  const lenAt = blocks * 64 - 8;
  writeLe32(tailBlock, lenAt, len << 3);
  writeLe32(tailBlock, lenAt + 4, Math.floor(len / 0x20000000));
  for (let b = 0; b < blocks; b++) {
    loadWords(tailBlock, b * 64);
    compress();
  }
}

function writeLe32(dst: Uint8Array, off: number, v: number): void {
  dst[off] = v; dst[off + 1] = v >>> 8; dst[off + 2] = v >>> 16; dst[off + 3] = v >>> 24;
}

/**
 * The 16-byte MD5 digest of `key[start..end)` (a new array; for ketama's ring).
 * @example md5Digest(new Uint8Array(0), 0, 0) // d41d8cd98f00b204e9800998ecf8427e
 */
export function md5Digest(key: Uint8Array, start: number, end: number): Uint8Array {
  digestIntoState(key, start, end);
  const out = new Uint8Array(16);
  for (let w = 0; w < 4; w++) writeLe32(out, w * 4, state[w]);
  return out;
}

/**
 * twemproxy's md5 key hash: the digest's bytes 0..3 as a little-endian unsigned 32-bit.
 * @example md5(new TextEncoder().encode("b"), 0, 1) // 4267699090
 */
export function md5(key: Uint8Array, start: number, end: number): number {
  if (end <= start) return 0; // twemproxy never hashes an empty key: it routes it as 0
  digestIntoState(key, start, end);
  return state[0] >>> 0;
}
