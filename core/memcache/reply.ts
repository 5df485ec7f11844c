/**
 * memcached server replies: a scanner that finds where each reply ends, resumable
 * across chunks and skipping data blocks by their length (O(1) per chunk however big
 * the value), plus helpers the engine uses to merge multi-get fragments and to apply
 * noreply / quiet mode (error lines, VALUE items, meta return codes).
 */
import { McCmd, NEED_MORE, PARSE_ERROR } from "./request.ts";

export { encodeFragment, encodeRetrieval, stripSpan } from "./encode.ts";

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
/** A reply line longer than this is not memcached talking. */
const MAX_REPLY_LINE = 64 * 1024;

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** "END\r\n", the end of a retrieval reply. */
export const END: Uint8Array = ascii("END\r\n");

/** True when reply is exactly "END\r\n" (a retrieval that found nothing). */
export function isEnd(reply: Uint8Array): boolean {
  return reply.length === 5 && startsWith(reply, 0, reply.length, END);
}

/** "<text>\r\n" as bytes (latin1), e.g. errorLine("SERVER_ERROR busy"). */
export function errorLine(text: string): Uint8Array {
  const out = new Uint8Array(text.length + 2);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  out[text.length] = CR;
  out[text.length + 1] = LF;
  return out;
}

function startsWith(buf: Uint8Array, start: number, end: number, prefix: Uint8Array): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}

const ERROR = ascii("ERROR");
const CLIENT_ERROR = ascii("CLIENT_ERROR");
const SERVER_ERROR = ascii("SERVER_ERROR");

function isErrorLine(buf: Uint8Array, start: number, end: number): boolean {
  return startsWith(buf, start, end, ERROR) || startsWith(buf, start, end, CLIENT_ERROR) ||
    startsWith(buf, start, end, SERVER_ERROR);
}

/** True for ERROR / CLIENT_ERROR ... / SERVER_ERROR ... replies. */
export function isErrorReply(reply: Uint8Array): boolean {
  return isErrorLine(reply, 0, reply.length);
}

/** The meta return codes (plus OK, which `-o meta_response_old` servers send for HD). */
const META_CODES = ["VA", "HD", "EN", "NF", "NS", "EX", "MN", "ME", "OK"] as const;
const CODE_BY_PAIR = new Map<number, string>(META_CODES.map((c) => [c.charCodeAt(0) * 256 + c.charCodeAt(1), c]));

function metaCodeAt(buf: Uint8Array, start: number, end: number): string {
  if (end - start < 3) return "";
  const after = buf[start + 2];
  if (after !== SPACE && after !== CR) return "";
  return CODE_BY_PAIR.get(buf[start] * 256 + buf[start + 1]) ?? "";
}

/**
 * The two-letter code of a meta reply ("VA", "HD", "EN", "NF", "NS", "EX", "MN", "ME",
 * or "OK"), or "" for anything else (error lines included).
 */
export function classifyMetaReply(reply: Uint8Array): string {
  return metaCodeAt(reply, 0, reply.length);
}

/**
 * Codes memcached 1.6.18 leaves out when a meta request carries `q` (recorded against
 * the real server): mg hides only EN (a hit's HD or VA still comes); ms and md hide only
 * HD (NS, EX, NF still come); ma hides HD and VA. Error lines are never hidden. One
 * quirk is not representable: ma with N (autovivify) still answers HD/VA when it creates the item.
 */
export const QUIET_SUPPRESSED: Readonly<Record<number, readonly string[]>> = {
  [McCmd.Mg]: ["EN"],
  [McCmd.Ms]: ["HD", "OK"],
  [McCmd.Md]: ["HD", "OK"],
  [McCmd.Ma]: ["HD", "VA", "OK"],
};

/** True when memcached would not have sent this reply to a quiet (`q`) request of that command. */
export function quietSuppresses(cmd: number, reply: Uint8Array): boolean {
  const hidden = QUIET_SUPPRESSED[cmd];
  return hidden !== undefined && hidden.includes(classifyMetaReply(reply));
}

/** Reply lines each request kind may get besides error lines; tested as prefixes. */
const STORAGE = ["STORED\r", "NOT_STORED\r", "EXISTS\r", "NOT_FOUND\r"].map(ascii);
const LINES: Record<number, Uint8Array[]> = {
  [McCmd.Set]: STORAGE, [McCmd.Add]: STORAGE, [McCmd.Replace]: STORAGE, [McCmd.Append]: STORAGE,
  [McCmd.Prepend]: STORAGE, [McCmd.Cas]: STORAGE,
  [McCmd.Delete]: ["DELETED\r", "NOT_FOUND\r"].map(ascii),
  [McCmd.Touch]: ["TOUCHED\r", "NOT_FOUND\r"].map(ascii),
  [McCmd.Incr]: ["NOT_FOUND\r"].map(ascii),
  [McCmd.Decr]: ["NOT_FOUND\r"].map(ascii),
  [McCmd.Version]: ["VERSION "].map(ascii),
  [McCmd.FlushAll]: ["OK\r"].map(ascii),
};
const META_LINES: Record<number, readonly string[]> = {
  [McCmd.Mg]: ["HD", "EN", "OK"],
  [McCmd.Ms]: ["HD", "NS", "EX", "NF", "OK"],
  [McCmd.Md]: ["HD", "NF", "EX", "OK"],
  [McCmd.Ma]: ["HD", "NF", "NS", "EX", "OK"],
  [McCmd.Mn]: ["MN"],
  [McCmd.Me]: ["ME", "EN"],
};
const RETRIEVAL = new Set<number>([McCmd.Get, McCmd.Gets, McCmd.Gat, McCmd.Gats]);
const WITH_VA = new Set<number>([McCmd.Mg, McCmd.Ma]);
const VALUE = ascii("VALUE ");
const VA = ascii("VA ");
const END_LINE = ascii("END\r\n");

/** A line ending in CRLF whose body is decimal digits, maybe padded with spaces (incr/decr). */
function isNumberLine(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end - 2 && buf[i] >= 0x30 && buf[i] <= 0x39) i++;
  if (i === start) return false;
  while (i < end - 2 && buf[i] === SPACE) i++;
  return i === end - 2;
}

/** Start of token number `index` (0-based, split on spaces) of the line buf[start, end) without its CRLF, or -1. */
function tokenAt(buf: Uint8Array, start: number, end: number, index: number): number {
  const body = end - 2;
  let i = start;
  for (let t = 0; i < body; t++) {
    if (t === index) return buf[i] === SPACE ? -1 : i;
    while (i < body && buf[i] !== SPACE) i++;
    i++;
  }
  return -1;
}

/** End of the token starting at s in the line buf[?, end) (before the next space or the CRLF). */
function tokenEnd(buf: Uint8Array, s: number, end: number): number {
  let i = s;
  while (i < end - 2 && buf[i] !== SPACE) i++;
  return i;
}

/** Token number `index` of the line as a decimal number, or -1 when absent or not all digits. */
function numberToken(buf: Uint8Array, start: number, end: number, index: number): number {
  const s = tokenAt(buf, start, end, index);
  if (s < 0) return -1;
  const e = tokenEnd(buf, s, end);
  if (e - s > 15) return -1;
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** What a complete reply line means for the scanner. */
const Line = { Done: 0, Data: 1, Bad: 2 } as const;

/** Scanner phases. */
const Phase = { Line: 0, Data: 1, Cr: 2, Lf: 3 } as const;

/**
 * Finds the end of each server reply. Give it the bytes as they arrive with the kind
 * (McCmd) of the request being answered; after NEED_MORE call again with the next
 * chunk at pos 0 (the state is kept). A reply shaped wrongly for its request is a
 * PARSE_ERROR (the server connection is out of step and must be closed).
 */
export class McReplyScanner {
  /** Why the last scan returned PARSE_ERROR. */
  error = "";
  private active = false;
  private kind = 0;
  private phase: number = Phase.Line;
  /** Data bytes still to skip. */
  private remaining = 0;
  /** After the data block: true = more VALUE lines follow (retrievals), false = reply done. */
  private moreLines = false;
  /** A line split across chunks, joined here. */
  private partial = new Uint8Array(256);
  private partialLen = 0;

  /** Forgets any reply in progress. */
  reset(): void {
    this.active = false;
    this.phase = Phase.Line;
    this.remaining = 0;
    this.moreLines = false;
    this.partialLen = 0;
    this.error = "";
  }

  /** Offset past the end of the reply, NEED_MORE (-1) or PARSE_ERROR (-2). */
  scan(buf: Uint8Array, pos: number, kind: number): number {
    if (!this.active) {
      this.active = true;
      this.kind = kind;
    }
    let i = pos;
    const len = buf.length;
    for (;;) {
      if (this.phase === Phase.Data) {
        const n = Math.min(this.remaining, len - i);
        i += n;
        this.remaining -= n;
        if (this.remaining > 0) return NEED_MORE;
        this.phase = Phase.Cr;
      }
      if (this.phase === Phase.Cr) {
        if (i >= len) return NEED_MORE;
        if (buf[i++] !== CR) return this.fail("data block not followed by CRLF");
        this.phase = Phase.Lf;
      }
      if (this.phase === Phase.Lf) {
        if (i >= len) return NEED_MORE;
        if (buf[i++] !== LF) return this.fail("data block not followed by CRLF");
        this.phase = Phase.Line;
        if (!this.moreLines) return this.done(i);
      }
      const lf = buf.indexOf(LF, i);
      if (lf < 0) return this.keepPartial(buf, i, len);
      const verdict = this.partialLen > 0 ? this.joinedLine(buf, i, lf + 1) : this.line(buf, i, lf + 1);
      i = lf + 1;
      if (verdict === Line.Bad) return PARSE_ERROR;
      if (verdict === Line.Done) return this.done(i);
    }
  }

  private done(end: number): number {
    this.active = false;
    return end;
  }

  private fail(why: string): number {
    this.error = why;
    this.active = false;
    return PARSE_ERROR;
  }

  private keepPartial(buf: Uint8Array, start: number, end: number): number {
    const n = end - start;
    if (this.partialLen + n > MAX_REPLY_LINE) return this.fail("reply line too long");
    if (this.partialLen + n > this.partial.length) {
      const bigger = new Uint8Array(Math.max(this.partial.length * 2, this.partialLen + n));
      bigger.set(this.partial.subarray(0, this.partialLen));
      this.partial = bigger;
    }
    this.partial.set(buf.subarray(start, end), this.partialLen);
    this.partialLen += n;
    return NEED_MORE;
  }

  private joinedLine(buf: Uint8Array, start: number, end: number): number {
    if (this.keepPartial(buf, start, end) === PARSE_ERROR) return Line.Bad;
    const n = this.partialLen;
    this.partialLen = 0;
    return this.line(this.partial, 0, n);
  }

  /** Judges one whole line buf[start, end) (end is past its LF). */
  private line(buf: Uint8Array, start: number, end: number): number {
    if (end - start < 2 || buf[end - 2] !== CR) return this.bad("reply line not ended by CRLF");
    const kind = this.kind;
    if (isErrorLine(buf, start, end)) return Line.Done;
    if (RETRIEVAL.has(kind)) return this.retrievalLine(buf, start, end);
    if (WITH_VA.has(kind) && startsWith(buf, start, end, VA)) {
      return this.dataFollows(numberToken(buf, start, end, 1), false);
    }
    const meta = META_LINES[kind];
    if (meta !== undefined) return meta.includes(metaCodeAt(buf, start, end)) ? Line.Done : this.unexpected();
    if ((kind === McCmd.Incr || kind === McCmd.Decr) && isNumberLine(buf, start, end)) return Line.Done;
    const lines = LINES[kind];
    if (lines === undefined) return Line.Done;
    for (const ok of lines) if (startsWith(buf, start, end, ok)) return Line.Done;
    return this.unexpected();
  }

  private retrievalLine(buf: Uint8Array, start: number, end: number): number {
    if (end - start === END_LINE.length && startsWith(buf, start, end, END_LINE)) return Line.Done;
    if (!startsWith(buf, start, end, VALUE)) return this.unexpected();
    return this.dataFollows(numberToken(buf, start, end, 3), true);
  }

  private dataFollows(size: number, moreLines: boolean): number {
    if (size < 0) return this.bad("bad data length in reply");
    this.phase = Phase.Data;
    this.remaining = size;
    this.moreLines = moreLines;
    return Line.Data;
  }

  private unexpected(): number {
    return this.bad(`unexpected reply to request kind ${this.kind}`);
  }

  private bad(why: string): number {
    this.fail(why);
    return Line.Bad;
  }
}

/** One VALUE item of a retrieval reply: its key and its full encoding. */
export interface McValue {
  /** The key as the server sent it (a view into the reply). */
  key: Uint8Array;
  /** "VALUE k f n [cas]\r\n<data>\r\n" (a view into the reply). */
  bytes: Uint8Array;
}

/**
 * The VALUE items of a complete get/gets/gat/gats reply, in order (views, no copies).
 * Stops at END, at an error line, or at anything malformed.
 * @example splitValues(bytes("VALUE a 0 1\r\nx\r\nEND\r\n")) // [{ key: "a", bytes: "VALUE a 0 1\r\nx\r\n" }]
 */
export function splitValues(reply: Uint8Array): McValue[] {
  const items: McValue[] = [];
  let i = 0;
  while (i < reply.length && startsWith(reply, i, reply.length, VALUE)) {
    const lf = reply.indexOf(LF, i);
    if (lf < 0) break;
    const keyStart = tokenAt(reply, i, lf + 1, 1);
    const size = numberToken(reply, i, lf + 1, 3);
    const end = lf + 1 + size + 2;
    if (keyStart < 0 || size < 0 || end > reply.length) break;
    const key = reply.subarray(keyStart, tokenEnd(reply, keyStart, lf + 1));
    items.push({ key, bytes: reply.subarray(i, end) });
    i = end;
  }
  return items;
}
