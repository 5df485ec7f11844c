/**
 * RESP encoders: replies the proxy answers itself, and multibulk commands built from
 * whole arguments or from spans of a request buffer (fragments of MGET/MSET/DEL...).
 * Constant replies are module constants; treat them as read-only.
 */

import { ByteWriter, copyBytes, CR, intLength, LF, latin1Bytes, writeInt } from "../bytes.ts";

// Encoded size of a bulk string of n bytes.
function bulkSize(n: number): number {
  return intLength(n) + n + 5;
}

/** "+OK\r\n" */
export const OK_REPLY: Uint8Array = latin1Bytes("+OK\r\n");
/** "+PONG\r\n" */
export const PONG_REPLY: Uint8Array = latin1Bytes("+PONG\r\n");
/** ":0\r\n" */
export const ZERO_REPLY: Uint8Array = latin1Bytes(":0\r\n");
/** ":1\r\n" */
export const ONE_REPLY: Uint8Array = latin1Bytes(":1\r\n");
/** "$-1\r\n" (null bulk string) */
export const NULL_BULK_REPLY: Uint8Array = latin1Bytes("$-1\r\n");
/** "*-1\r\n" (null array) */
export const NULL_ARRAY_REPLY: Uint8Array = latin1Bytes("*-1\r\n");
/** "*0\r\n" */
export const EMPTY_ARRAY_REPLY: Uint8Array = latin1Bytes("*0\r\n");

// One-line reply: prefix + text + CRLF, with CR and LF in the text turned into spaces
// (as Redis does) so the reply can never break the stream.
function lineReply(prefix: number, text: string): Uint8Array {
  const body = latin1Bytes(text);
  const out = new Uint8Array(body.length + 3);
  out[0] = prefix;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    out[i + 1] = b === CR || b === LF ? 0x20 : b;
  }
  out[body.length + 1] = CR;
  out[body.length + 2] = LF;
  return out;
}

/**
 * An error reply: "-" + message + CRLF. Characters below 256 become one byte each
 * (so text carrying raw request bytes round-trips); wider text is UTF-8.
 * @example errorReply("ERR unknown command 'x'") // "-ERR unknown command 'x'\r\n"
 */
export function errorReply(message: string): Uint8Array {
  return lineReply(0x2d, message);
}

/** A status reply: "+" + text + CRLF. @example statusReply("OK") */
export function statusReply(text: string): Uint8Array {
  return lineReply(0x2b, text);
}

/** An integer reply ":<n>\r\n" for a safe integer n. */
export function integerReply(n: number): Uint8Array {
  if (n === 0) return ZERO_REPLY;
  if (n === 1) return ONE_REPLY;
  const out = new Uint8Array(intLength(n) + 3);
  out[0] = 0x3a;
  const p = writeInt(out, 1, n);
  out[p] = CR;
  out[p + 1] = LF;
  return out;
}

/** A bulk string reply "$<len>\r\n<bytes>\r\n", or the null bulk "$-1\r\n" for null. */
export function bulkReply(value: Uint8Array | null): Uint8Array {
  if (value === null) return NULL_BULK_REPLY;
  const w = new ByteWriter(bulkSize(value.length));
  writeBulk(w, value, 0, value.length);
  return w.buf;
}

/** An array header "*<n>\r\n" (n = -1 gives the null array). Elements follow it. */
export function arrayHeader(n: number): Uint8Array {
  const out = new Uint8Array(intLength(n) + 3);
  out[0] = 0x2a;
  const p = writeInt(out, 1, n);
  out[p] = CR;
  out[p + 1] = LF;
  return out;
}

/** Appends "*<n>\r\n" to w. */
export function writeArrayHeader(w: ByteWriter, n: number): void {
  w.ensure(intLength(n) + 3);
  const buf = w.buf;
  buf[w.len] = 0x2a;
  const p = writeInt(buf, w.len + 1, n);
  buf[p] = CR;
  buf[p + 1] = LF;
  w.len = p + 2;
}

/** Appends src[start, end) to w as a bulk string "$<len>\r\n<bytes>\r\n". */
export function writeBulk(w: ByteWriter, src: Uint8Array, start: number, end: number): void {
  const n = end - start;
  w.ensure(bulkSize(n));
  const buf = w.buf;
  buf[w.len] = 0x24;
  let p = writeInt(buf, w.len + 1, n);
  buf[p++] = CR;
  buf[p++] = LF;
  p = copyBytes(buf, p, src, start, end);
  buf[p++] = CR;
  buf[p++] = LF;
  w.len = p;
}

/**
 * A multibulk command from whole arguments.
 * @example encodeCommand([bytes("GET"), bytes("k")]) // "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
 */
export function encodeCommand(args: readonly Uint8Array[]): Uint8Array {
  let size = intLength(args.length) + 3;
  for (const a of args) size += bulkSize(a.length);
  const w = new ByteWriter(size);
  writeArrayHeader(w, args.length);
  for (const a of args) writeBulk(w, a, 0, a.length);
  return w.buf;
}

/**
 * A multibulk command from leading whole arguments (e.g. the command name) followed by
 * spans of a source buffer, copying each span once into the result: the arguments are
 * head..., then src[starts[i], ends[i]) for each i in pick, in order.
 * @example
 * // MGET of the 1st and 3rd keys of a parsed "MGET a b c":
 * encodeCommandParts([bytes("mget")], buf, req.argStart, req.argEnd, [1, 3])
 */
export function encodeCommandParts(
  head: readonly Uint8Array[],
  src: Uint8Array,
  starts: ArrayLike<number>,
  ends: ArrayLike<number>,
  pick: ArrayLike<number>,
): Uint8Array {
  const argc = head.length + pick.length;
  let size = intLength(argc) + 3;
  for (const a of head) size += bulkSize(a.length);
  for (let j = 0; j < pick.length; j++) size += bulkSize(ends[pick[j]] - starts[pick[j]]);
  const w = new ByteWriter(size); // exact size: the result is w.buf, no copy
  writeArrayHeader(w, argc);
  for (const a of head) writeBulk(w, a, 0, a.length);
  for (let j = 0; j < pick.length; j++) writeBulk(w, src, starts[pick[j]], ends[pick[j]]);
  return w.buf;
}
