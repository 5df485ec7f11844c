/**
 * The few reply shapes the migration reads, byte-exact (keys and DUMP payloads are binary):
 * an integer, a bulk string, an array of bulk strings, and SCAN's [cursor, [keys]].
 */
import { encodeCommand } from "../redis/encode.ts";

const encoder = new TextEncoder();

/** A command from text and byte arguments. */
export function command(...args: (string | Uint8Array)[]): Uint8Array {
  return encodeCommand(args.map((a) => typeof a === "string" ? encoder.encode(a) : a));
}

function lineEnd(buf: Uint8Array, pos: number): number {
  for (let i = pos; i + 1 < buf.length; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

function numberAt(buf: Uint8Array, pos: number): { value: number; next: number } | null {
  const eol = lineEnd(buf, pos);
  if (eol < 0) return null;
  return { value: Number(new TextDecoder().decode(buf.subarray(pos + 1, eol))), next: eol + 2 };
}

/** `:n` -> n; anything else -> null. */
export function integerOf(reply: Uint8Array | null): number | null {
  if (reply === null || reply[0] !== 0x3a) return null;
  return numberAt(reply, 0)?.value ?? null;
}

/** `$n` -> its bytes (a view); `$-1` or anything else -> null. */
export function bulkOf(reply: Uint8Array | null, pos = 0): Uint8Array | null {
  return reply === null ? null : bulkAt(reply, pos)?.bytes ?? null;
}

function bulkAt(buf: Uint8Array, pos: number): { bytes: Uint8Array | null; next: number } | null {
  if (buf[pos] !== 0x24) return null;
  const n = numberAt(buf, pos);
  if (n === null) return null;
  if (n.value < 0) return { bytes: null, next: n.next };
  return { bytes: buf.subarray(n.next, n.next + n.value), next: n.next + n.value + 2 };
}

/** `*n` of bulk strings from `pos` -> the strings and where the array ends; null when not that shape. */
export function bulkArrayAt(buf: Uint8Array, pos: number): { items: Uint8Array[]; next: number } | null {
  if (buf[pos] !== 0x2a) return null;
  const n = numberAt(buf, pos);
  if (n === null) return null;
  const items: Uint8Array[] = [];
  let at = n.next;
  for (let i = 0; i < n.value; i++) {
    const bulk = bulkAt(buf, at);
    if (bulk === null || bulk.bytes === null) return null;
    items.push(bulk.bytes);
    at = bulk.next;
  }
  return { items, next: at };
}

/** SCAN's reply -> the next cursor and the keys; null when the reply is an error. */
export function scanReply(reply: Uint8Array | null): { cursor: string; keys: Uint8Array[] } | null {
  if (reply === null || reply[0] !== 0x2a) return null;
  const cursor = bulkAt(reply, lineEnd(reply, 0) + 2);
  if (cursor === null || cursor.bytes === null) return null;
  const keys = bulkArrayAt(reply, cursor.next);
  return keys === null ? null : { cursor: new TextDecoder().decode(cursor.bytes), keys: keys.items };
}

/** `-...` -> its text without the dash; null for other replies. */
export function errorOf(reply: Uint8Array | null): string | null {
  if (reply === null) return "no reply (connection failed)";
  if (reply[0] !== 0x2d) return null;
  return new TextDecoder().decode(reply.subarray(1, Math.max(1, lineEnd(reply, 0))));
}
