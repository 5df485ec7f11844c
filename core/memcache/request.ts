/**
 * Incremental parser for memcached client requests: the ASCII protocol (get, set, ...)
 * and the meta protocol (mg ms md ma mn me). It finds one whole request (command line
 * plus data block), records where its keys, data and noreply/q tokens lie, and judges
 * it exactly as memcached 1.6.18 does: same accept/reject decisions, same error lines,
 * and the same resynchronisation point (where memcached resumes reading) so a proxy can
 * answer errors itself and never forward a request the server would answer twice.
 * Lines end at "\n" (a "\r" before it is dropped) and are cut at a NUL, as in memcached.
 */
import { CNum, readCNumber } from "./cnum.ts";
import { decodeBase64Into } from "./base64.ts";
import { BAD_FORMAT, checkMetaFlags, MetaFlags } from "./meta.ts";

export { decodeBase64Key } from "./base64.ts";

/** parseRequest: the request is incomplete; `need` says how many bytes from pos it wants if known. */
export const NEED_MORE = -1;
/** parseRequest: the request is refused; `error` is the reply line, `resync` where to go on. */
export const PARSE_ERROR = -2;

/** Request kinds. Also the `kind` the reply scanner takes. */
export const McCmd = {
  Get: 1, Gets: 2, Set: 3, Add: 4, Replace: 5, Append: 6, Prepend: 7, Cas: 8, Delete: 9,
  Incr: 10, Decr: 11, Touch: 12, Gat: 13, Gats: 14, Version: 15, Quit: 16,
  Mg: 17, Ms: 18, Md: 19, Ma: 20, Mn: 21, Me: 22, Unsupported: 23,
  /** Never parsed from a client (flush_all is refused): the proxy's own flush of a memcached copy. */
  FlushAll: 24,
} as const;

/** Longest key memcached accepts. */
export const MC_MAX_KEY = 250;
/** Default largest value (memcached's default item size, -I 1m). */
export const MC_MAX_VALUE = 1024 * 1024;
/** A command line longer than this (without its "\n") is refused, except get/gets. */
export const MC_MAX_LINE = 2048;

/** The error lines parseRequest produces (memcached 1.6.18's text where it has one). */
export const McError = {
  Unknown: "ERROR",
  BadFormat: BAD_FORMAT,
  BadChunk: "CLIENT_ERROR bad data chunk",
  TooLarge: "SERVER_ERROR object too large for cache",
  BadExptime: "CLIENT_ERROR invalid exptime argument",
  BadDelta: "CLIENT_ERROR invalid numeric delta argument",
  DeleteUsage: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
  FlagsTooLongMg: "CLIENT_ERROR options flags are too long",
  FlagsTooLong: "CLIENT_ERROR options flags too long",
  MetaFlag: "CLIENT_ERROR invalid or duplicate flag",
  /** gat/gats with an exptime and no key: memcached answers an empty result. */
  EmptyGat: "END",
  /** Not memcached's (it closes silently): a line over MC_MAX_LINE bytes. */
  LineTooLong: "CLIENT_ERROR line too long",
  /** Not memcached's: the binary protocol is not proxied. */
  Binary: "CLIENT_ERROR binary protocol not supported",
} as const;

/** Optional limits for parseRequest. */
export interface McLimits {
  /** Largest data block accepted (default MC_MAX_VALUE). */
  maxValue?: number;
  /** Longest key accepted (default MC_MAX_KEY). */
  maxKey?: number;
}

/** One parsed request; reuse one per client. Offsets index the buffer given to parseRequest. */
export class McRequest {
  /** A McCmd value (0 before a command is recognised). */
  cmd = 0;
  /** Key spans: many for get/gets/gat/gats, one for keyed commands, none otherwise. */
  keyStart: number[] = [];
  keyEnd: number[] = [];
  keyCount = 0;
  /**
   * Classic `noreply` (the last token). Also set on PARSE_ERROR when memcached had
   * already seen it: memcached then sends no error line either (the proxy should stay silent).
   */
  noreply = false;
  /** Span of the noreply token including one leading space, to strip it. */
  noreplyStart = -1;
  noreplyEnd = -1;
  /** Meta `q` flag present (mg ms md ma). */
  quiet = false;
  /** Span of the q token including one leading space, to strip it. */
  quietStart = -1;
  quietEnd = -1;
  /** Meta `b` flag: the key is base64; hash decodeBase64Key(buf, keyStart[0], keyEnd[0]). */
  base64Key = false;
  /** Offset just past the command line's "\n". */
  lineEnd = 0;
  /** Storage data block span (without its "\r\n"), or -1. */
  dataStart = -1;
  dataEnd = -1;
  /** gat/gats: the exptime token (fragments repeat it). */
  gatExptimeStart = -1;
  gatExptimeEnd = -1;
  /** NEED_MORE: total bytes from pos the request needs, when known (else 0). */
  need = 0;
  /** PARSE_ERROR: the line to answer, without "\r\n". */
  error = "";
  /**
   * PARSE_ERROR: offset where the next request starts (memcached's resync), or -1 when
   * the stream cannot be resynchronised (answer, then close). It may lie beyond the
   * end of the buffer when an oversized data block is swallowed: discard input up to it.
   */
  resync = -1;

  /** Clears every field for the next parse. */
  reset(): void {
    this.cmd = 0;
    this.keyCount = 0;
    this.noreply = false;
    this.noreplyStart = this.noreplyEnd = -1;
    this.quiet = false;
    this.quietStart = this.quietEnd = -1;
    this.base64Key = false;
    this.lineEnd = 0;
    this.dataStart = this.dataEnd = -1;
    this.gatExptimeStart = this.gatExptimeEnd = -1;
    this.need = 0;
    this.error = "";
    this.resync = -1;
  }
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const INT_MAX = 2147483647;

/** Token spans of the current command line (module scratch, reused by every parse). */
const tokS: number[] = [];
const tokE: number[] = [];
const metaFlags = new MetaFlags();

interface Lim {
  maxValue: number;
  maxKey: number;
}
const DEFAULT_LIMITS: Lim = { maxValue: MC_MAX_VALUE, maxKey: MC_MAX_KEY };

/** The limits with defaults filled in; a complete object is used as is (no allocation per request). */
function fullLimits(limits: McLimits): Lim {
  if (limits.maxValue !== undefined && limits.maxKey !== undefined) return limits as Lim;
  return { maxValue: limits.maxValue ?? MC_MAX_VALUE, maxKey: limits.maxKey ?? MC_MAX_KEY };
}

/** Parses the tokens 0..n-1 of a recognised command; returns as parseRequest does. */
type CommandParser = (buf: Uint8Array, pos: number, n: number, out: McRequest, lim: Lim) => number;

interface CommandSpec {
  name: string;
  cmd: number;
  parse: CommandParser;
}

function fail(out: McRequest, error: string, resync: number): number {
  out.error = error;
  out.resync = resync;
  return PARSE_ERROR;
}

function needMore(out: McRequest, need: number): number {
  out.need = need;
  return NEED_MORE;
}

function tokenLength(t: number): number {
  return tokE[t] - tokS[t];
}

function tokenIs(buf: Uint8Array, t: number, text: string): boolean {
  if (tokenLength(t) !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (buf[tokS[t] + i] !== text.charCodeAt(i)) return false;
  return true;
}

function numberAt(buf: Uint8Array, t: number, mode: number): number {
  return readCNumber(buf, tokS[t], tokE[t], mode);
}

function addKey(out: McRequest, t: number): void {
  out.keyStart[out.keyCount] = tokS[t];
  out.keyEnd[out.keyCount] = tokE[t];
  out.keyCount++;
}

/** memcached's set_noreply_maybe: the last token, if it is exactly "noreply". */
function noreplyMaybe(buf: Uint8Array, t: number, out: McRequest): boolean {
  if (!tokenIs(buf, t, "noreply")) return false;
  out.noreply = true;
  out.noreplyStart = tokS[t] - 1;
  out.noreplyEnd = tokE[t];
  return true;
}

/** Splits buf[start, end) on spaces (memcached splits on ' ' only); stops at a NUL. */
function tokenize(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  let i = start;
  while (i < end) {
    const b = buf[i];
    if (b === 0) break;
    if (b === SPACE) {
      i++;
      continue;
    }
    tokS[n] = i;
    while (i < end && buf[i] !== SPACE && buf[i] !== 0) i++;
    tokE[n++] = i;
  }
  return n;
}

/** Reads the data block after the line: "<vlen bytes>\r\n". */
function readData(buf: Uint8Array, pos: number, out: McRequest, vlen: number, lim: Lim): number {
  const total = out.lineEnd + vlen + 2;
  if (vlen > lim.maxValue) return fail(out, McError.TooLarge, total);
  if (total > buf.length) return needMore(out, total - pos);
  if (buf[total - 2] !== CR || buf[total - 1] !== LF) return fail(out, McError.BadChunk, total);
  out.dataStart = out.lineEnd;
  out.dataEnd = out.lineEnd + vlen;
  return total;
}

// ---- classic commands ----

function parseGet(buf: Uint8Array, _pos: number, n: number, out: McRequest, lim: Lim): number {
  if (n < 2) return fail(out, McError.Unknown, out.lineEnd);
  return parseKeys(buf, 1, n, out, lim);
}

function parseGat(buf: Uint8Array, _pos: number, n: number, out: McRequest, lim: Lim): number {
  if (n < 2) return fail(out, McError.Unknown, out.lineEnd);
  if (Number.isNaN(numberAt(buf, 1, CNum.Signed))) return fail(out, McError.BadExptime, out.lineEnd);
  out.gatExptimeStart = tokS[1];
  out.gatExptimeEnd = tokE[1];
  if (n === 2) return fail(out, McError.EmptyGat, out.lineEnd);
  return parseKeys(buf, 2, n, out, lim);
}

function parseKeys(_buf: Uint8Array, from: number, n: number, out: McRequest, lim: Lim): number {
  for (let t = from; t < n; t++) {
    if (tokenLength(t) > lim.maxKey) {
      out.keyCount = 0;
      return fail(out, McError.BadFormat, out.lineEnd);
    }
    addKey(out, t);
  }
  return out.lineEnd;
}

function storage(withCas: boolean): CommandParser {
  const want = withCas ? 6 : 5;
  return (buf, pos, n, out, lim) => {
    if (n !== want && n !== want + 1) return fail(out, McError.Unknown, out.lineEnd);
    noreplyMaybe(buf, n - 1, out);
    if (tokenLength(1) > lim.maxKey) return fail(out, McError.BadFormat, out.lineEnd);
    const vlen = numberAt(buf, 4, CNum.Signed);
    const bad = Number.isNaN(numberAt(buf, 2, CNum.Unsigned)) || Number.isNaN(numberAt(buf, 3, CNum.Signed)) ||
      Number.isNaN(vlen) || (withCas && Number.isNaN(numberAt(buf, 5, CNum.Unsigned)));
    if (bad || vlen < 0 || vlen > INT_MAX - 2) return fail(out, McError.BadFormat, out.lineEnd);
    addKey(out, 1);
    return readData(buf, pos, out, vlen, lim);
  };
}

function parseArith(buf: Uint8Array, _pos: number, n: number, out: McRequest, lim: Lim): number {
  if (n !== 3 && n !== 4) return fail(out, McError.Unknown, out.lineEnd);
  noreplyMaybe(buf, n - 1, out);
  if (tokenLength(1) > lim.maxKey) return fail(out, McError.BadFormat, out.lineEnd);
  if (Number.isNaN(numberAt(buf, 2, CNum.Unsigned))) return fail(out, McError.BadDelta, out.lineEnd);
  addKey(out, 1);
  return out.lineEnd;
}

function parseTouch(buf: Uint8Array, _pos: number, n: number, out: McRequest, lim: Lim): number {
  if (n !== 3 && n !== 4) return fail(out, McError.Unknown, out.lineEnd);
  noreplyMaybe(buf, n - 1, out);
  if (tokenLength(1) > lim.maxKey) return fail(out, McError.BadFormat, out.lineEnd);
  if (Number.isNaN(numberAt(buf, 2, CNum.Signed))) return fail(out, McError.BadExptime, out.lineEnd);
  addKey(out, 1);
  return out.lineEnd;
}

/** delete <key> [0] [noreply]: the legacy "0" hold time is still accepted. */
function parseDelete(buf: Uint8Array, _pos: number, n: number, out: McRequest, lim: Lim): number {
  if (n < 2 || n > 4) return fail(out, McError.Unknown, out.lineEnd);
  if (n > 2) {
    const holdZero = tokenIs(buf, 2, "0");
    const noreply = noreplyMaybe(buf, n - 1, out);
    const valid = (n === 3 && (holdZero || noreply)) || (n === 4 && holdZero && noreply);
    if (!valid) return fail(out, McError.DeleteUsage, out.lineEnd);
  }
  if (tokenLength(1) > lim.maxKey) return fail(out, McError.BadFormat, out.lineEnd);
  addKey(out, 1);
  return out.lineEnd;
}

/** version, quit, mn: any arguments are ignored. */
function parseBare(_buf: Uint8Array, _pos: number, _n: number, out: McRequest): number {
  return out.lineEnd;
}

/** Commands the proxy answers itself; those that honour noreply record it. */
function unsupported(honoursNoreply: boolean): CommandParser {
  return (buf, _pos, n, out) => {
    if (honoursNoreply && n > 1) noreplyMaybe(buf, n - 1, out);
    return out.lineEnd;
  };
}

// ---- meta commands ----

/** Checks flags tokens from..n-1; on success records key, q and b. Returns the error or "". */
function metaFlagsAndKey(buf: Uint8Array, from: number, n: number, out: McRequest): string {
  checkMetaFlags(buf, tokS, tokE, from, n, tokS[1], tokE[1], metaFlags);
  if (metaFlags.error !== "") return metaFlags.error;
  addKey(out, 1);
  out.base64Key = metaFlags.base64;
  const q = metaFlags.quietToken;
  if (q >= 0) {
    out.quiet = true;
    out.quietStart = tokS[q] - 1;
    out.quietEnd = tokE[q];
  }
  return "";
}

/** mg, md, ma: <cm> <key> <flag>*; md and ma report every flag problem with one text. */
function metaKeyed(isGet: boolean): CommandParser {
  return (buf, _pos, n, out, lim) => {
    if (n < 2) return fail(out, McError.Unknown, out.lineEnd);
    if (tokenLength(1) > lim.maxKey) return fail(out, McError.BadFormat, out.lineEnd);
    if (n >= 20) return fail(out, isGet ? McError.FlagsTooLongMg : McError.FlagsTooLong, out.lineEnd);
    const error = metaFlagsAndKey(buf, 2, n, out);
    if (error !== "") return fail(out, isGet ? error : McError.MetaFlag, out.lineEnd);
    return out.lineEnd;
  };
}

/** ms <key> <datalen> <flag>*: errors found after the length swallow the data block. */
function parseMs(buf: Uint8Array, pos: number, n: number, out: McRequest, lim: Lim): number {
  if (n < 2) return fail(out, McError.Unknown, out.lineEnd);
  if (tokenLength(1) > lim.maxKey || n === 2) return fail(out, McError.BadFormat, out.lineEnd);
  if (n >= 20) return fail(out, McError.FlagsTooLong, out.lineEnd);
  const vlen = numberAt(buf, 2, CNum.Signed);
  if (Number.isNaN(vlen) || vlen < 0 || vlen > INT_MAX - 2) return fail(out, McError.BadFormat, out.lineEnd);
  const error = metaFlagsAndKey(buf, 3, n, out);
  if (error !== "") {
    out.keyCount = 0;
    out.quiet = false;
    out.quietStart = out.quietEnd = -1;
    return fail(out, error, out.lineEnd + vlen + 2);
  }
  return readData(buf, pos, out, vlen, lim);
}

/** me <key> [b]: only an exact "b" right after the key is looked at. */
function parseMe(buf: Uint8Array, _pos: number, n: number, out: McRequest, lim: Lim): number {
  if (n < 2 || tokenLength(1) > lim.maxKey) return fail(out, McError.BadFormat, out.lineEnd);
  if (n >= 3 && tokenIs(buf, 2, "b")) {
    if (decodeBase64Into(buf, tokS[1], tokE[1], null) < 0) return fail(out, McError.BadFormat, out.lineEnd);
    out.base64Key = true;
  }
  addKey(out, 1);
  return out.lineEnd;
}

const SPECS: CommandSpec[] = [
  { name: "get", cmd: McCmd.Get, parse: parseGet },
  { name: "gets", cmd: McCmd.Gets, parse: parseGet },
  { name: "gat", cmd: McCmd.Gat, parse: parseGat },
  { name: "gats", cmd: McCmd.Gats, parse: parseGat },
  { name: "set", cmd: McCmd.Set, parse: storage(false) },
  { name: "add", cmd: McCmd.Add, parse: storage(false) },
  { name: "replace", cmd: McCmd.Replace, parse: storage(false) },
  { name: "append", cmd: McCmd.Append, parse: storage(false) },
  { name: "prepend", cmd: McCmd.Prepend, parse: storage(false) },
  { name: "cas", cmd: McCmd.Cas, parse: storage(true) },
  { name: "delete", cmd: McCmd.Delete, parse: parseDelete },
  { name: "incr", cmd: McCmd.Incr, parse: parseArith },
  { name: "decr", cmd: McCmd.Decr, parse: parseArith },
  { name: "touch", cmd: McCmd.Touch, parse: parseTouch },
  { name: "version", cmd: McCmd.Version, parse: parseBare },
  { name: "quit", cmd: McCmd.Quit, parse: parseBare },
  { name: "mg", cmd: McCmd.Mg, parse: metaKeyed(true) },
  { name: "ms", cmd: McCmd.Ms, parse: parseMs },
  { name: "md", cmd: McCmd.Md, parse: metaKeyed(false) },
  { name: "ma", cmd: McCmd.Ma, parse: metaKeyed(false) },
  { name: "mn", cmd: McCmd.Mn, parse: parseBare },
  { name: "me", cmd: McCmd.Me, parse: parseMe },
  // Server administration: not proxied, answered by the engine.
  { name: "flush_all", cmd: McCmd.Unsupported, parse: unsupported(true) },
  { name: "verbosity", cmd: McCmd.Unsupported, parse: unsupported(true) },
  { name: "cache_memlimit", cmd: McCmd.Unsupported, parse: unsupported(true) },
  { name: "stats", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "shutdown", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "slabs", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "lru", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "lru_crawler", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "watch", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "extstore", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "refresh_certs", cmd: McCmd.Unsupported, parse: unsupported(false) },
  { name: "bget", cmd: McCmd.Unsupported, parse: unsupported(false) },
];

/** Commands bucketed by (length, first byte), compared byte by byte: no strings per request. */
const BY_SHAPE = new Map<number, { name: Uint8Array; spec: CommandSpec }[]>();
for (const spec of SPECS) {
  const name = Uint8Array.from(spec.name, (c) => c.charCodeAt(0));
  const shape = name.length * 256 + name[0];
  const bucket = BY_SHAPE.get(shape) ?? [];
  bucket.push({ name, spec });
  BY_SHAPE.set(shape, bucket);
}

function lookup(buf: Uint8Array, start: number, end: number): CommandSpec | undefined {
  const bucket = BY_SHAPE.get((end - start) * 256 + buf[start]);
  if (bucket === undefined) return undefined;
  outer: for (const entry of bucket) {
    for (let i = 1; i < entry.name.length; i++) if (buf[start + i] !== entry.name[i]) continue outer;
    return entry.spec;
  }
  return undefined;
}

/** Only multi-key retrievals may grow past MC_MAX_LINE: get/gets/gat/gats after at most 100 spaces. */
function isLongGet(buf: Uint8Array, pos: number): boolean {
  let i = pos;
  while (buf[i] === SPACE) i++;
  if (i - pos > 100) return false;
  // get, gets, gat, gats: the multi-key retrievals, whose lines may be long.
  if (buf[i] !== 0x67) return false;
  const isGet = buf[i + 1] === 0x65 && buf[i + 2] === 0x74;
  const isGat = buf[i + 1] === 0x61 && buf[i + 2] === 0x74;
  if (!isGet && !isGat) return false;
  return buf[i + 3] === SPACE || (buf[i + 3] === 0x73 && buf[i + 4] === SPACE);
}

/**
 * Parses one request at buf[pos..]. Returns the offset just past it (command line and
 * data block), NEED_MORE (out.need: bytes wanted from pos, when known), or PARSE_ERROR
 * (out.error: the line memcached would answer; out.resync: where the next request
 * starts, possibly past the buffer's end, or -1 = close after answering).
 * @example
 * const req = new McRequest();
 * parseRequest(bytes("get a b\r\n"), 0, req) // 9; req.cmd === McCmd.Get, req.keyCount === 2
 */
export function parseRequest(buf: Uint8Array, pos: number, out: McRequest, limits?: McLimits): number {
  out.reset();
  const len = buf.length;
  if (pos >= len) return needMore(out, 1);
  const lf = buf.indexOf(LF, pos);
  if (lf < 0) {
    // Like memcached: give up on a line only when this much came without its newline.
    if (len - pos > MC_MAX_LINE && !isLongGet(buf, pos)) return fail(out, McError.LineTooLong, -1);
    return needMore(out, len - pos + 1);
  }
  const lineEnd = lf + 1;
  out.lineEnd = lineEnd;
  const end = lf - pos > 1 && buf[lf - 1] === CR ? lf - 1 : lf;
  const n = tokenize(buf, pos, end);
  if (n === 0 || tokenLength(0) < 2) return fail(out, McError.Unknown, lineEnd);
  const spec = lookup(buf, tokS[0], tokE[0]);
  if (spec === undefined) return fail(out, McError.Unknown, lineEnd);
  out.cmd = spec.cmd;
  const lim = limits === undefined ? DEFAULT_LIMITS : fullLimits(limits);
  return spec.parse(buf, pos, n, out, lim);
}
