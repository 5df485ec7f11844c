/**
 * Base64 decoding of meta-protocol keys (the `b` flag), with memcached 1.6's exact
 * leniency so the proxy hashes the same bytes memcached stores: bytes outside the
 * alphabet are skipped, '=' counts as a zero digit, decoding stops after the first
 * padded quad, and a quad with more than two '=' (or a digit count that is not a
 * multiple of four, or nothing at all) is an error.
 */

const INVALID = 0xff;
const PAD = 0x3d; // '='

/** Alphabet value of each byte; INVALID for bytes memcached skips. '=' decodes as 0. */
const DIGIT: Uint8Array = (() => {
  const table = new Uint8Array(256).fill(INVALID);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  table[PAD] = 0;
  return table;
})();

/**
 * Decodes buf[start, end) into out (when given) and returns the decoded length, or -1
 * when memcached would answer "CLIENT_ERROR error decoding key". With out = null it
 * only validates. out needs room for (end - start) bytes.
 */
export function decodeBase64Into(buf: Uint8Array, start: number, end: number, out: Uint8Array | null): number {
  let digits = 0;
  for (let i = start; i < end; i++) if (DIGIT[buf[i]] !== INVALID) digits++;
  if (digits === 0 || digits % 4 !== 0) return -1;
  let len = 0;
  let quad = 0;
  let have = 0;
  let pads = 0;
  for (let i = start; i < end; i++) {
    const d = DIGIT[buf[i]];
    if (d === INVALID) continue;
    if (buf[i] === PAD) pads++;
    quad = quad * 64 + d;
    if (++have < 4) continue;
    if (pads > 2) return -1;
    const keep = 3 - pads;
    if (out !== null) {
      out[len] = quad >>> 16;
      if (keep > 1) out[len + 1] = (quad >>> 8) & 0xff;
      if (keep > 2) out[len + 2] = quad & 0xff;
    }
    len += keep;
    if (pads > 0) break;
    quad = 0;
    have = 0;
  }
  return len;
}

/**
 * The binary key a base64 (`b` flag) meta key stands for, decoded as memcached does.
 * Returns an empty array when the text does not decode (parseRequest rejects those first).
 * @example decodeBase64Key(bytes("mg YQ== b v"), 3, 7) // Uint8Array [0x61]
 */
export function decodeBase64Key(buf: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  const len = decodeBase64Into(buf, start, end, out);
  return len < 0 ? new Uint8Array(0) : out.subarray(0, len);
}
