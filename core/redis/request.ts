/**
 * Client request parser for Redis: multibulk ("*<n>\r\n$<len>\r\n<bytes>\r\n"...) and
 * inline commands ("get foo\r\n"). Stateless per call: parseRequest(buf, pos) looks at
 * the bytes from pos and either reports one complete request as spans of buf, or says
 * how many bytes it needs, or reports a protocol error in Redis's own wording.
 * The caller keeps unconsumed bytes and calls again with more (joining chunks once it
 * has `need` bytes), so a request split across reads is parsed without per-byte state.
 */

import { CR, LF, readInt } from "../bytes.ts";

/** parseRequest result: the request is incomplete; see RequestSlots.need. */
export const NEED_MORE = -1;
/** parseRequest result: protocol error; see RequestSlots.error and RequestSlots.resync. */
export const PARSE_ERROR = -2;

/** Redis's proto-max-bulk-len default (512 MB). */
export const DEFAULT_MAX_BULK = 512 * 1024 * 1024;
/** Longest inline line or length line Redis accepts (PROTO_INLINE_MAX_SIZE, 64 KiB). */
export const MAX_INLINE = 64 * 1024;
/** Largest multibulk count Redis accepts (INT_MAX). */
export const MAX_MULTIBULK = 2147483647;

/** Error texts, exactly as redis-server replies them (without the leading "-"). */
export const ProtocolError = {
  multibulkLength: "ERR Protocol error: invalid multibulk length",
  bulkLength: "ERR Protocol error: invalid bulk length",
  bigMultibulk: "ERR Protocol error: too big mbulk count string",
  bigBulk: "ERR Protocol error: too big bulk count string",
  bigInline: "ERR Protocol error: too big inline request",
  unbalancedQuotes: "ERR Protocol error: unbalanced quotes in request",
} as const;

/**
 * The parsed request, reused per client so the common case allocates nothing.
 * Arguments are spans [argStart[i], argEnd[i]) of `argBuf`, which is the buffer
 * passed to parseRequest except for inline commands with quotes (then `quoted` is true
 * and argBuf is a fresh buffer holding the unquoted arguments).
 */
export class RequestSlots {
  /** Number of arguments, command name included. 0 for an empty line, "*0" or "*-1": nothing to do. */
  argc = 0;
  argStart: number[] = [];
  argEnd: number[] = [];
  /** The buffer the spans point into. */
  argBuf: Uint8Array = EMPTY;
  /** The request was an inline command. */
  inline = false;
  /** Inline command whose arguments were unquoted into a fresh argBuf. */
  quoted = false;
  /**
   * On NEED_MORE: a lower bound on the bytes from pos the whole request takes (each
   * argument not yet seen counts as 6, "$0\r\n\r\n"), or 0 when no bound beyond what is
   * already there is known. Calling again before that many bytes are there is wasted work.
   */
  need = 0;
  /** On PARSE_ERROR: Redis's wording without the leading "-". */
  error = "";
  /** On PARSE_ERROR: offset where parsing can continue, or -1 (reply, then close; Redis always closes). */
  resync = -1;
}

const EMPTY = new Uint8Array(0);

// Result of the last readCount call: the CR's index, or a status below 0.
let countEnd = 0;
const COUNT_NEED = -1;
const COUNT_TOO_LONG = -2;

/**
 * Reads the integer after the type byte at buf[pos] up to the first CR, as Redis does
 * (string2ll on the text before CR; the byte after CR is assumed to be LF and skipped).
 * Sets countEnd to the CR index, COUNT_NEED if CR+1 is not in buf yet, or
 * COUNT_TOO_LONG if the line exceeds 64 KiB. Returns the value or NaN.
 */
function readCount(buf: Uint8Array, pos: number, len: number): number {
  // Fast path: "digits\r" right after the type byte, the common case.
  let i = pos + 1;
  let n = 0, b = 0;
  while (i < len && (b = buf[i]) >= 0x30 && b <= 0x39) {
    n = n * 10 + (b - 0x30);
    i++;
  }
  const digits = i - pos - 1;
  if (b === CR && i + 1 < len && digits > 0 && digits < 16 && (buf[pos + 1] !== 0x30 || digits === 1)) {
    countEnd = i;
    return n;
  }
  const limit = Math.min(len, pos + MAX_INLINE + 1);
  const cr = buf.indexOf(CR, pos + 1);
  if (cr < 0 || cr >= limit) {
    countEnd = len - pos > MAX_INLINE ? COUNT_TOO_LONG : COUNT_NEED;
    return NaN;
  }
  if (cr + 1 >= len) {
    countEnd = COUNT_NEED;
    return NaN;
  }
  countEnd = cr;
  return readInt(buf, pos + 1, cr);
}

function fail(out: RequestSlots, error: string, resync = -1): number {
  out.error = error;
  out.resync = resync;
  return PARSE_ERROR;
}

// Shortest encoding of one argument: "$0\r\n\r\n".
const MIN_ARG = 6;

function needMore(out: RequestSlots, need: number, have = 0): number {
  out.need = need > have ? need : 0;
  return NEED_MORE;
}

/**
 * Parses one request from buf[pos]. Returns the offset just past it (> pos), or
 * NEED_MORE, or PARSE_ERROR. On success `out` holds the argument spans; argc may be 0
 * (an empty line or "*0\r\n"), which the caller skips.
 * @example
 * const out = new RequestSlots();
 * parseRequest(bytes("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), 0, out); // 20, out.argc === 2
 */
export function parseRequest(buf: Uint8Array, pos: number, out: RequestSlots, maxBulk: number = DEFAULT_MAX_BULK): number {
  out.argc = 0;
  out.need = 0;
  out.inline = false;
  out.quoted = false;
  out.argBuf = buf;
  out.error = "";
  out.resync = -1;
  const len = buf.length;
  if (pos >= len) return needMore(out, 0);
  if (buf[pos] !== 0x2a) return parseInline(buf, pos, out);

  const count = readCount(buf, pos, len);
  if (countEnd < 0) return countEnd === COUNT_NEED ? needMore(out, 0) : fail(out, ProtocolError.bigMultibulk);
  if (count !== count || count > MAX_MULTIBULK) return fail(out, ProtocolError.multibulkLength);
  let p = countEnd + 2;
  if (count <= 0) return p;

  const starts = out.argStart;
  const ends = out.argEnd;
  for (let i = 0; i < count; i++) {
    if (p >= len) return needMore(out, p - pos + (count - i) * MIN_ARG, len - pos);
    if (buf[p] !== 0x24) return fail(out, expectedDollar(buf[p]));
    const blen = readCount(buf, p, len);
    if (countEnd < 0) {
      if (countEnd === COUNT_TOO_LONG) return fail(out, ProtocolError.bigBulk);
      return needMore(out, p - pos + (count - i) * MIN_ARG, len - pos);
    }
    if (blen !== blen || blen < 0 || blen > maxBulk) return fail(out, ProtocolError.bulkLength);
    const start = countEnd + 2;
    const next = start + blen + 2;
    if (next > len) return needMore(out, next - pos + (count - i - 1) * MIN_ARG);
    starts[i] = start;
    ends[i] = start + blen;
    p = next;
  }
  out.argc = count;
  return p;
}

function expectedDollar(b: number): string {
  // Redis maps CR and LF in error text to spaces so the reply stays one line.
  const c = b === CR || b === LF ? " " : String.fromCharCode(b);
  return "ERR Protocol error: expected '$', got '" + c + "'";
}

// Byte classes for inline splitting, after Redis's sdssplitargs: SPACE is skipped
// between arguments (isspace), STOP ends an unquoted argument, QUOTE needs the slow path.
const SPACE = 1, STOP = 2, QUOTE = 4, NUL = 8;
const INLINE_CLASS = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) INLINE_CLASS[b] |= SPACE;
for (const b of [0x20, 0x09, 0x0a, 0x0d]) INLINE_CLASS[b] |= STOP;
INLINE_CLASS[0] = STOP | NUL;
INLINE_CLASS[0x22] = QUOTE;
INLINE_CLASS[0x27] = QUOTE;

function parseInline(buf: Uint8Array, pos: number, out: RequestSlots): number {
  out.inline = true;
  const len = buf.length;
  const limit = Math.min(len, pos + MAX_INLINE + 1);
  let lf = pos;
  while (lf < limit && buf[lf] !== LF) lf++;
  if (lf === limit) return len - pos > MAX_INLINE ? fail(out, ProtocolError.bigInline) : needMore(out, 0);
  const end = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
  const starts = out.argStart;
  const ends = out.argEnd;
  let argc = 0;
  let p = pos;
  for (;;) {
    while (p < end && INLINE_CLASS[buf[p]] & SPACE) p++;
    if (p >= end || buf[p] === 0) break;
    const start = p;
    while (p < end && !(INLINE_CLASS[buf[p]] & (STOP | QUOTE))) p++;
    if (p < end && INLINE_CLASS[buf[p]] & QUOTE) return parseQuoted(buf, pos, end, lf + 1, out);
    starts[argc] = start;
    ends[argc++] = p;
    if (p < end && buf[p] === 0) break;
    p++;
  }
  out.argc = argc;
  return lf + 1;
}

function parseQuoted(buf: Uint8Array, start: number, end: number, next: number, out: RequestSlots): number {
  const args = inlineArgs(buf, start, end);
  if (args === null) return fail(out, ProtocolError.unbalancedQuotes, next);
  let total = 0;
  for (const a of args) total += a.length;
  const joined = new Uint8Array(total);
  let p = 0;
  for (let i = 0; i < args.length; i++) {
    joined.set(args[i], p);
    out.argStart[i] = p;
    p += args[i].length;
    out.argEnd[i] = p;
  }
  out.argc = args.length;
  out.argBuf = joined;
  out.quoted = true;
  return next;
}

const ESCAPES: Record<number, number> = { 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x62: 0x08, 0x61: 0x07 };

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/**
 * Splits one inline line buf[start, end) (without its line ending) into arguments the
 * way Redis's sdssplitargs does: whitespace separates; "double quotes" take \n \r \t \b
 * \a \xHH and \<any> escapes; 'single quotes' take \' only; a closing quote must be
 * followed by whitespace or the end. Returns fresh byte arrays, or null for unbalanced quotes.
 * @example inlineArgs(bytes(`set k "a b"`), 0, 11) // [set, k, a b]
 */
export function inlineArgs(buf: Uint8Array, start: number, end: number): Uint8Array[] | null {
  const args: Uint8Array[] = [];
  const at = (i: number): number => (i < end ? buf[i] : 0);
  let p = start;
  for (;;) {
    while (p < end && INLINE_CLASS[buf[p]] & SPACE) p++;
    if (at(p) === 0) return args;
    const cur: number[] = [];
    let mode = 0; // 0 plain, 1 double quotes, 2 single quotes
    for (;;) {
      const c = at(p);
      if (mode === 1) {
        if (c === 0x5c && at(p + 1) === 0x78 && hexValue(at(p + 2)) >= 0 && hexValue(at(p + 3)) >= 0) {
          cur.push(hexValue(at(p + 2)) * 16 + hexValue(at(p + 3)));
          p += 3;
        } else if (c === 0x5c && at(p + 1) !== 0) {
          p++;
          cur.push(ESCAPES[at(p)] ?? at(p));
        } else if (c === 0x22) {
          if (at(p + 1) !== 0 && !(INLINE_CLASS[at(p + 1)] & SPACE)) return null;
          p++;
          break;
        } else if (c === 0) return null;
        else cur.push(c);
      } else if (mode === 2) {
        if (c === 0x5c && at(p + 1) === 0x27) {
          p++;
          cur.push(0x27);
        } else if (c === 0x27) {
          if (at(p + 1) !== 0 && !(INLINE_CLASS[at(p + 1)] & SPACE)) return null;
          p++;
          break;
        } else if (c === 0) return null;
        else cur.push(c);
      } else if (INLINE_CLASS[c] & STOP) {
        if (c !== 0) p++;
        break;
      } else if (c === 0x22) mode = 1;
      else if (c === 0x27) mode = 2;
      else cur.push(c);
      p++;
    }
    args.push(Uint8Array.from(cur));
  }
}
