/**
 * Server reply framing for Redis: ReplyScanner finds where each top-level reply ends
 * in a stream of chunks, resuming at any byte (inside a length line, a CRLF or a bulk
 * payload) with an explicit stack instead of recursion. Bulk payloads are skipped by
 * length, so a large value costs O(1) per chunk. Also small helpers that read complete
 * replies when merging fragments (not on the hot path), and the encoders (encode.ts).
 */

import { CR, LF, readInt } from "../bytes.ts";

export {
  arrayHeader,
  bulkReply,
  EMPTY_ARRAY_REPLY,
  encodeCommand,
  encodeCommandParts,
  errorReply,
  integerReply,
  NULL_ARRAY_REPLY,
  NULL_BULK_REPLY,
  OK_REPLY,
  ONE_REPLY,
  PONG_REPLY,
  statusReply,
  writeArrayHeader,
  writeBulk,
  ZERO_REPLY,
} from "./encode.ts";

/** scan() result: the buffer ended inside a reply; call again with the next chunk. */
export const NEED_MORE = -1;
/** scan() result: the stream is not RESP; see ReplyScanner.error. */
export const PARSE_ERROR = -2;

/** Reply type bytes (RESP2, then the RESP3 additions). */
export const ReplyType = {
  Status: 0x2b, Error: 0x2d, Integer: 0x3a, Bulk: 0x24, Array: 0x2a,
  Null: 0x5f, Double: 0x2c, Boolean: 0x23, BigNumber: 0x28, BlobError: 0x21,
  Verbatim: 0x3d, Map: 0x25, Set: 0x7e, Push: 0x3e, Attribute: 0x7c,
} as const;

// How each type byte is framed: a line, a length-prefixed payload, or an aggregate of
// n, 2n (map) or 2n+1 (attribute: its pairs, then the value it annotates) children.
const K_LINE = 1, K_BULK = 2, K_AGG = 3, K_MAP = 4, K_ATTR = 5;
const FRAMING = new Uint8Array(256);
for (const t of "+-:_,#(") FRAMING[t.charCodeAt(0)] = K_LINE;
for (const t of "$!=") FRAMING[t.charCodeAt(0)] = K_BULK;
for (const t of "*~>") FRAMING[t.charCodeAt(0)] = K_AGG;
FRAMING[0x25] = K_MAP;
FRAMING[0x7c] = K_ATTR;

// Scanner states.
const S_TYPE = 0, S_LINE = 1, S_NUM = 2, S_NUM_LF = 3, S_BULK = 4, S_BULK_CR = 5, S_BULK_LF = 6;

/**
 * Finds reply boundaries in a byte stream delivered in arbitrary chunks.
 * @example
 * const s = new ReplyScanner();
 * s.scan(bytes("$3\r\nfo"), 0);   // NEED_MORE
 * s.scan(bytes("o\r\n:1\r\n"), 0); // 3 (end of "$3\r\nfoo\r\n"); s.type === 0x24
 */
export class ReplyScanner {
  /** Type byte of the last complete top-level reply. */
  type = 0;
  /** On PARSE_ERROR: what was wrong. */
  error = "";
  private state = S_TYPE;
  private framing = 0; // FRAMING of the value whose header is being read
  private num = 0;
  private neg = false;
  private digits = 0;
  private remaining = 0; // bulk payload bytes still to skip
  private topType = 0;
  private stack: number[] = []; // children still expected, per open aggregate
  private depth = 0;

  /** True while a reply has started but not ended. */
  get pending(): boolean {
    return this.state !== S_TYPE || this.depth > 0;
  }

  /** Forgets any partial reply. */
  reset(): void {
    this.state = S_TYPE;
    this.depth = 0;
    this.error = "";
  }

  /**
   * Scans buf from pos. Returns the offset just past the end of the current top-level
   * reply if it ends inside buf, NEED_MORE if buf ends first (state is kept: pass the
   * next chunk, from its start), or PARSE_ERROR with `error` set.
   */
  scan(buf: Uint8Array, pos: number): number {
    const len = buf.length;
    let p = pos;
    while (p < len) {
      const state = this.state;
      if (state === S_TYPE) {
        const t = buf[p++];
        const framing = FRAMING[t];
        if (framing === 0) return this.fail("Protocol error: unexpected reply type byte 0x" + t.toString(16));
        if (this.depth === 0) this.topType = t;
        if (framing === K_LINE) {
          this.state = S_LINE;
          continue;
        }
        // Fast path: the whole length line (and a bulk's payload) is in buf.
        const n = fastLength(buf, p, len);
        if (fastNext === 0) {
          this.framing = framing;
          this.state = S_NUM;
          this.num = 0;
          this.neg = false;
          this.digits = 0;
          continue;
        }
        p = fastNext;
        if (framing === K_BULK && n >= 0 && p + n + 2 <= len) {
          p += n;
          if (buf[p] !== CR || buf[p + 1] !== LF) return this.fail("Protocol error: bulk payload not followed by CRLF");
          p += 2;
          if (this.valueDone()) return p;
        } else if (this.openValue(framing, n)) {
          return p;
        }
      } else if (state === S_LINE) {
        while (p < len && buf[p] !== LF) p++;
        if (p === len) return NEED_MORE;
        p++;
        this.state = S_TYPE;
        if (this.valueDone()) return p;
      } else if (state === S_NUM) {
        let num = this.num, digits = this.digits, b = 0;
        while (p < len && (b = buf[p]) >= 0x30 && b <= 0x39) {
          num = num * 10 + (b - 0x30);
          digits++;
          p++;
        }
        if (digits > 15) return this.fail("Protocol error: length too long in reply");
        this.num = num;
        this.digits = digits;
        if (p === len) break;
        p++;
        if (b === CR && digits > 0) {
          this.state = S_NUM_LF;
        } else if (b === 0x2d && this.digits === 0 && !this.neg) {
          this.neg = true;
        } else {
          return this.fail("Protocol error: invalid length in reply");
        }
      } else if (state === S_NUM_LF) {
        if (buf[p++] !== LF) return this.fail("Protocol error: expected LF after length in reply");
        this.state = S_TYPE;
        if (this.openValue(this.framing, this.neg ? -this.num : this.num)) return p;
      } else if (state === S_BULK) {
        const skip = Math.min(this.remaining, len - p);
        p += skip;
        this.remaining -= skip;
        if (this.remaining === 0) this.state = S_BULK_CR;
      } else if (state === S_BULK_CR) {
        if (buf[p++] !== CR) return this.fail("Protocol error: bulk payload not followed by CRLF");
        this.state = S_BULK_LF;
      } else {
        if (buf[p++] !== LF) return this.fail("Protocol error: bulk payload not followed by CRLF");
        this.state = S_TYPE;
        if (this.valueDone()) return p;
      }
    }
    return NEED_MORE;
  }

  // A length line ended (state is S_TYPE): open the bulk or aggregate, or finish a
  // null or empty one. Returns true when that completed the top-level reply.
  private openValue(framing: number, n: number): boolean {
    if (n < 0) return this.valueDone(); // null bulk or null aggregate
    if (framing === K_BULK) {
      this.remaining = n;
      this.state = n > 0 ? S_BULK : S_BULK_CR;
      return false;
    }
    const children = framing === K_AGG ? n : framing === K_MAP ? 2 * n : 2 * n + 1;
    if (children === 0) return this.valueDone();
    this.stack[this.depth++] = children;
    return false;
  }

  // One value ended: count it against the open aggregates, closing finished ones.
  private valueDone(): boolean {
    while (this.depth > 0) {
      if (--this.stack[this.depth - 1] > 0) return false;
      this.depth--;
    }
    this.type = this.topType;
    return true;
  }

  private fail(message: string): number {
    this.error = message;
    this.state = S_TYPE;
    this.depth = 0;
    return PARSE_ERROR;
  }
}

// Set by fastLength: the offset just past the length line's LF, or 0 if the line is
// incomplete or unusual (then the byte-wise states take over and report any error).
let fastNext = 0;

// Reads "[-]digits\r\n" at buf[p] when it is all there; see fastNext.
function fastLength(buf: Uint8Array, p: number, len: number): number {
  let i = p;
  const neg = i < len && buf[i] === 0x2d;
  if (neg) i++;
  const first = i;
  let n = 0, b = 0;
  while (i < len && (b = buf[i]) >= 0x30 && b <= 0x39) {
    n = n * 10 + (b - 0x30);
    i++;
  }
  const digits = i - first;
  if (digits === 0 || digits > 15 || i + 1 >= len || b !== CR || buf[i + 1] !== LF) {
    fastNext = 0;
    return 0;
  }
  fastNext = i + 2;
  return neg ? -n : n;
}

const helper = new ReplyScanner();

/**
 * Offset just past the reply that starts at buf[pos], or -1 if buf holds no complete
 * valid reply there.
 */
export function replyEnd(buf: Uint8Array, pos = 0): number {
  helper.reset();
  const end = helper.scan(buf, pos);
  helper.reset();
  return end < 0 ? -1 : end;
}

// Index of the CR ending the header line that starts at buf[0], or -1.
function headerEnd(reply: Uint8Array): number {
  const cr = reply.indexOf(CR, 1);
  return cr > 0 && reply[cr + 1] === LF ? cr : -1;
}

/**
 * The value of an integer reply (":123\r\n" -> 123), or null if reply is not one.
 */
export function readInteger(reply: Uint8Array): number | null {
  if (reply[0] !== ReplyType.Integer) return null;
  const cr = headerEnd(reply);
  if (cr < 0) return null;
  const n = readInt(reply, 1, cr);
  return n === n ? n : null;
}

/**
 * The full encoding of each element of an array reply, as views into reply; null if
 * reply is not an array (or is the null array "*-1") or is malformed.
 * @example arrayElements(bytes("*2\r\n$1\r\na\r\n:1\r\n")) // ["$1\r\na\r\n", ":1\r\n"]
 */
export function arrayElements(reply: Uint8Array): Uint8Array[] | null {
  if (reply[0] !== ReplyType.Array) return null;
  const cr = headerEnd(reply);
  if (cr < 0) return null;
  const n = readInt(reply, 1, cr);
  if (!(n >= 0)) return null;
  const out: Uint8Array[] = [];
  let p = cr + 2;
  for (let i = 0; i < n; i++) {
    const end = replyEnd(reply, p);
    if (end < 0) return null;
    out.push(reply.subarray(p, end));
    p = end;
  }
  return out;
}

/** True if reply is an error reply ("-..."). */
export function isError(reply: Uint8Array): boolean {
  return reply[0] === ReplyType.Error;
}

/** True if reply is exactly "+OK\r\n". */
export function isOk(reply: Uint8Array): boolean {
  return reply.length === 5 && reply[0] === 0x2b && reply[1] === 0x4f && reply[2] === 0x4b &&
    reply[3] === CR && reply[4] === LF;
}
