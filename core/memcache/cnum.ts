/**
 * Numeric tokens judged exactly as memcached 1.6 (64-bit build) judges them with
 * safe_strtol / safe_strtoul / safe_strtoull, so the proxy accepts and rejects the same
 * command lines the server does. Those wrap the C library: leading whitespace and a
 * sign are allowed, the number must fit a 64-bit long, and whatever follows the digits
 * must start with whitespace. The unsigned forms reject a '-' only when the negated
 * value would look negative as a signed 64-bit number (so "-0" passes).
 */

const TWO_32 = 4294967296;
const LONG_MAX = "9223372036854775807";
const LONG_MIN_ABS = "9223372036854775808";
const ULONG_MAX = "18446744073709551615";

/** Signed (strtol) or unsigned (strtoul / strtoull) reading. */
export const CNum = { Signed: 0, Unsigned: 1 } as const;

function isCSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/** True when the digits buf[start, end) (no leading zeros) are <= the decimal limit. */
function digitsAtMost(buf: Uint8Array, start: number, end: number, limit: string): boolean {
  const n = end - start;
  if (n !== limit.length) return n < limit.length;
  for (let i = 0; i < n; i++) {
    const d = buf[start + i];
    const l = limit.charCodeAt(i);
    if (d !== l) return d < l;
  }
  return true;
}

/**
 * Reads a numeric token the way memcached does. Returns the value's low 32 bits as a
 * signed int32 (what memcached keeps for lengths and exptimes), or NaN when memcached
 * would reject the token.
 * @example readCNumber(bytes("12"), 0, 2, CNum.Signed) // 12
 */
export function readCNumber(buf: Uint8Array, start: number, end: number, mode: number): number {
  let i = start;
  while (i < end && isCSpace(buf[i])) i++;
  let neg = false;
  if (i < end && (buf[i] === 0x2b || buf[i] === 0x2d)) {
    neg = buf[i] === 0x2d;
    i++;
  }
  while (i < end && buf[i] === 0x30 && i + 1 < end && buf[i + 1] >= 0x30 && buf[i + 1] <= 0x39) i++;
  const first = i;
  let low = 0;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) break;
    low = (low * 10 + d) % TWO_32;
  }
  if (i === first) return NaN;
  if (i < end && !isCSpace(buf[i])) return NaN;
  const zero = i - first === 1 && buf[first] === 0x30;
  if (mode === CNum.Signed) {
    if (!digitsAtMost(buf, first, i, neg ? LONG_MIN_ABS : LONG_MAX)) return NaN;
  } else {
    if (!digitsAtMost(buf, first, i, ULONG_MAX)) return NaN;
    // strtoul negates: -v reads as 2^64 - v, refused only while that is >= 2^63.
    if (neg && !zero && digitsAtMost(buf, first, i, LONG_MIN_ABS)) return NaN;
  }
  if (neg) low = (TWO_32 - low) % TWO_32;
  return low >= 2147483648 ? low - TWO_32 : low;
}
