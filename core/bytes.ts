/**
 * Byte helpers shared by the protocol codecs: CRLF search, ASCII integers read and
 * written without making strings, latin1 text <-> bytes, and a growable byte writer.
 * Pure TypeScript on Uint8Array; no runtime APIs.
 */

/** Carriage return (13). */
export const CR = 0x0d;
/** Line feed (10). */
export const LF = 0x0a;

/**
 * Index of the first "\r\n" in buf[from, to), or -1.
 * @example indexOfCrlf(bytes("ab\r\n"), 0) // 2
 */
export function indexOfCrlf(buf: Uint8Array, from: number, to: number = buf.length): number {
  let i = from;
  while (i < to - 1) {
    const cr = buf.indexOf(CR, i);
    if (cr < 0 || cr >= to - 1) return -1;
    if (buf[cr + 1] === LF) return cr;
    i = cr + 1;
  }
  return -1;
}

/**
 * Parses a signed decimal integer from buf[start, end) with the rules of Redis's
 * string2ll: optional '-', no '+', no leading zeros ("0" alone is fine), no spaces,
 * at most 19 digits. Returns NaN when the text is not such an integer.
 * Values beyond 2^53 lose precision (callers only compare them against limits).
 * @example readInt(bytes("-12"), 0, 3) // -12
 */
export function readInt(buf: Uint8Array, start: number, end: number): number {
  let i = start;
  let neg = false;
  if (i < end && buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  const digits = end - i;
  if (digits <= 0 || digits > 19) return NaN;
  if (buf[i] === 0x30) return digits === 1 && !neg ? 0 : NaN;
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  if (n > 9223372036854775807) return NaN;
  return neg ? -n : n;
}

/** Number of ASCII bytes needed to write the integer n in decimal. */
export function intLength(n: number): number {
  let len = 1;
  if (n < 0) {
    len++;
    n = -n;
  }
  while (n >= 10) {
    n = Math.floor(n / 10);
    len++;
  }
  return len;
}

/**
 * Writes the integer n (a safe integer) as decimal ASCII at dst[pos]; returns the
 * offset just past it. The caller guarantees room for intLength(n) bytes.
 */
export function writeInt(dst: Uint8Array, pos: number, n: number): number {
  if (n < 0) {
    dst[pos++] = 0x2d;
    n = -n;
  }
  const end = pos + intLength(n);
  let i = end;
  do {
    const q = Math.floor(n / 10);
    dst[--i] = 0x30 + (n - q * 10);
    n = q;
  } while (n > 0);
  return end;
}

/**
 * Bytes of a string whose code units are all below 256, one byte each (latin1);
 * a string with wider characters is UTF-8 encoded instead. Used for protocol text
 * that may carry raw bytes copied from a request (error messages).
 */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return utf8.encode(s);
    out[i] = c;
  }
  return out;
}

/** A string with one code unit per byte of buf[start, end) (latin1; lossless round trip with latin1Bytes). */
export function latin1String(buf: Uint8Array, start = 0, end: number = buf.length): string {
  let s = "";
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return s;
}

const utf8 = new TextEncoder();

/** Spans up to this long are copied byte by byte: cheaper than the view set() needs. */
const COPY_LOOP_MAX = 16;

/**
 * Copies src[start, end) into dst at `at`; returns the offset past it. Short spans (keys,
 * small values) go byte by byte, since `dst.set(src.subarray(...))` allocates a view
 * that costs more than the copy (measured on Node, Deno and Bun).
 * @example copyBytes(out, 4, key, 0, key.length)
 */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n > COPY_LOOP_MAX) {
    dst.set(start === 0 && end === src.length ? src : src.subarray(start, end), at);
    return at + n;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[start + i];
  return at + n;
}

/** The parts joined into one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * A growable byte buffer for building protocol messages: append pieces, then take
 * the result once with finish(). Grows by doubling, so appends are amortised O(1).
 * @example
 * const w = new ByteWriter();
 * w.ascii("*1"); w.crlf(); const bytes = w.finish();
 */
export class ByteWriter {
  buf: Uint8Array;
  len = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for n more bytes. */
  ensure(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Appends one byte. */
  byte(b: number): this {
    this.ensure(1);
    this.buf[this.len++] = b;
    return this;
  }

  /** Appends src[start, end). */
  bytes(src: Uint8Array, start = 0, end: number = src.length): this {
    this.ensure(end - start);
    this.len = copyBytes(this.buf, this.len, src, start, end);
    return this;
  }

  /** Appends a string of ASCII (latin1) characters, one byte each. */
  ascii(s: string): this {
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.len++] = s.charCodeAt(i);
    return this;
  }

  /** Appends the decimal digits of a safe integer. */
  int(n: number): this {
    this.ensure(21);
    this.len = writeInt(this.buf, this.len, n);
    return this;
  }

  /** Appends "\r\n". */
  crlf(): this {
    this.ensure(2);
    this.buf[this.len++] = CR;
    this.buf[this.len++] = LF;
    return this;
  }

  /** The bytes written so far, as a view valid until the next write or reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** A copy of the bytes written so far (the caller owns it); the writer is reset. */
  finish(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    this.len = 0;
    return out;
  }

  /** Forgets what was written; keeps the capacity. */
  reset(): void {
    this.len = 0;
  }
}
