/**
 * Keyspace-wide commands on a sharded pool: sent to every shard's master (one fragment per
 * shard, as redis_frag.ts splits MGET) and merged into the one reply a single Redis would
 * give. DBSIZE sums, KEYS concatenates, RANDOMKEY picks a random non-empty server, SCRIPT
 * LOAD/EXISTS/FLUSH keep every server's script cache alike (so EVALSHA works on any shard),
 * FLUSHDB/FLUSHALL run everywhere when the pool sets allow_flush, and SCAN walks the
 * servers one after the other under one composite cursor (see scan below).
 */
import { latin1Bytes, latin1String } from "../bytes.ts";
import {
  arrayElements,
  bulkReply,
  encodeCommandParts,
  errorReply,
  isError,
  isOk,
  NULL_BULK_REPLY,
  readInteger,
} from "../redis/mod.ts";
import type { Req } from "./req.ts";
import type { Route, SessionHost } from "./protocol.ts";
import type { RedisSession } from "./redis.ts";
import { argBytes, argEquals } from "./redis_args.ts";
import { BAD_FRAGMENT, firstError, joinArray, type Merger, mergeSum } from "./redis_frag.ts";

type FanOutHandler = (session: RedisSession, buf: Uint8Array, pos: number, end: number, host: SessionHost) => void;

/** The fan-out commands of the table (Kind.FanOut), by name. */
export const FAN_OUT_COMMANDS: Record<string, FanOutHandler> = {
  dbsize: (_session, buf, pos, end, host) => everyShard(host, "dbsize", buf.subarray(pos, end), mergeSum),
  keys: (_session, buf, pos, end, host) => everyShard(host, "keys", buf.subarray(pos, end), mergeConcat),
  randomkey: (_session, buf, pos, end, host) => everyShard(host, "randomkey", buf.subarray(pos, end), mergeRandom),
  flushdb: (_session, buf, pos, end, host) => flush("flushdb", buf.subarray(pos, end), host),
  flushall: (_session, buf, pos, end, host) => flush("flushall", buf.subarray(pos, end), host),
  script(session, buf, pos, end, host) {
    const slots = session.slots;
    const merge = argEquals(buf, slots, 1, "load") ? mergeSame : argEquals(buf, slots, 1, "exists")
      ? mergeExists
      : argEquals(buf, slots, 1, "flush") ? mergeAllOk : null;
    if (merge === null) return void host.replyLocal(SCRIPT_ONLY);
    everyShard(host, "script", buf.subarray(pos, end), merge);
  },
  scan,
};

/** The client's command, as it sent it, to the master of every shard. */
function everyShard(host: SessionHost, command: string, bytes: Uint8Array, merge: Merger): void {
  toShards(host, host.shards(), command, bytes, merge, bytes.length);
}

/**
 * Send `bytes` to the master of each of `shards` under one parent in the client's reply
 * order, which `merge` answers once every shard has replied. The master, also for reads:
 * a replica's script cache, SCAN cursor or key count is not its master's.
 */
export function toShards(
  host: SessionHost, shards: readonly Route[], command: string, bytes: Uint8Array, merge: Merger, clientBytes: number,
): void {
  const parent = host.newReq(EMPTY, clientBytes);
  parent.command = command;
  parent.merge = merge;
  parent.frags = [];
  host.enqueue(parent);
  parent.fragsLeft = shards.length;
  for (const shard of shards) {
    const frag = host.newReq(bytes, 0);
    frag.command = command;
    frag.parent = parent;
    parent.frags.push(frag);
    host.send(frag, shard);
  }
}

/** FLUSHDB/FLUSHALL: every server, when the pool allows it. */
function flush(name: string, bytes: Uint8Array, host: SessionHost): void {
  if (!host.pool.allowFlush) return void host.replyLocal(flushRefused(name));
  everyShard(host, name, bytes, mergeAllOk);
}

/** Why FLUSHDB/FLUSHALL was not sent: it empties every server of the pool. */
export function flushRefused(name: string): Uint8Array {
  return errorReply(`ERR '${name}' would empty every server of the pool; it is refused unless the pool sets allow_flush: true`);
}

// ---- merges ----

/** KEYS: every server's array, one after the other. */
const mergeConcat: Merger = (parent) => {
  const error = firstError(parent);
  if (error !== null) return error;
  const parts: Uint8Array[] = [];
  for (const frag of parent.frags!) {
    const elements = arrayElements(frag.reply!);
    if (elements === null) return BAD_FRAGMENT;
    for (const element of elements) parts.push(element);
  }
  return joinArray(parts);
};

/** RANDOMKEY: one of the keys the non-empty servers drew, chosen at random; nil when all are empty. */
const mergeRandom: Merger = (parent) => {
  const found: Uint8Array[] = [];
  let error: Uint8Array | null = null;
  for (const frag of parent.frags!) {
    const reply = frag.reply;
    if (reply === null || isError(reply)) error ??= reply ?? BAD_FRAGMENT;
    else if (reply[0] === 0x24 && reply[1] !== 0x2d) found.push(reply);
  }
  if (found.length > 0) return found[Math.floor(Math.random() * found.length)];
  return error ?? NULL_BULK_REPLY;
};

/** SCRIPT LOAD: every server answers the same SHA1. */
const mergeSame: Merger = (parent) => {
  const error = firstError(parent);
  if (error !== null) return error;
  const first = parent.frags![0].reply!;
  for (const frag of parent.frags!) if (!sameBytes(frag.reply!, first)) return DIFFERENT_REPLIES;
  return first;
};

/** SCRIPT EXISTS: a script exists only where every server has it (so EVALSHA works on any key). */
const mergeExists: Merger = (parent) => {
  const error = firstError(parent);
  if (error !== null) return error;
  let all: boolean[] | null = null;
  for (const frag of parent.frags!) {
    const elements = arrayElements(frag.reply!);
    if (elements === null || (all !== null && elements.length !== all.length)) return BAD_FRAGMENT;
    const here = elements.map((e) => readInteger(e) === 1);
    all = all === null ? here : all.map((yes, i) => yes && here[i]);
  }
  return joinArray(all!.map((yes) => (yes ? ONE : ZERO)));
};

/** SCRIPT FLUSH, FLUSHDB, FLUSHALL: +OK when every server said so, else the first other reply. */
const mergeAllOk: Merger = (parent) => {
  for (const frag of parent.frags!) if (frag.reply === null || !isOk(frag.reply)) return frag.reply ?? BAD_FRAGMENT;
  return parent.frags![0].reply!;
};

// ---- SCAN ----

/**
 * SCAN's composite cursor: the shard's index (config order) in the top 16 bits, that
 * server's own cursor in the low 48 (a Redis cursor never exceeds its hash table's size),
 * written as one unsigned 64-bit decimal, as clients expect. 0 starts at shard 0 and, once
 * the last shard's cursor comes back 0, ends the iteration; a one-server pool's cursors are
 * the server's own.
 */
const SHARD_SHIFT = 48n;
const SERVER_MASK = (1n << SHARD_SHIFT) - 1n;
const MAX_SHARDS = 1 << 16;

/** SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: the options go to the server as given. */
function scan(session: RedisSession, buf: Uint8Array, pos: number, end: number, host: SessionHost): void {
  const slots = session.slots;
  const shards = host.shards();
  const cursor = parseCursor(argBytes(buf, slots, 1));
  if (cursor === null || shards.length > MAX_SHARDS) return void host.replyLocal(INVALID_CURSOR);
  const index = Number(cursor >> SHARD_SHIFT);
  if (index >= shards.length) return void host.replyLocal(INVALID_CURSOR);
  const options: number[] = [];
  for (let i = 2; i < slots.argc; i++) options.push(i);
  const head = [SCAN, latin1Bytes(String(cursor & SERVER_MASK))];
  const bytes = encodeCommandParts(head, buf, slots.argStart, slots.argEnd, options);
  const count = shards.length;
  toShards(host, [shards[index]], "scan", bytes, (parent) => scanReply(parent.frags![0], index, count), end - pos);
}

/** The server's [cursor, keys] with its cursor made composite (the next shard's start once it is 0). */
function scanReply(frag: Req, index: number, count: number): Uint8Array {
  const reply = frag.reply;
  if (reply === null || isError(reply)) return reply ?? BAD_FRAGMENT;
  const elements = arrayElements(reply);
  const next = elements !== null && elements.length === 2 ? parseCursor(bulkValue(elements[0])) : null;
  if (next === null || next > SERVER_MASK) return BAD_FRAGMENT;
  const composite = next !== 0n ? (BigInt(index) << SHARD_SHIFT) | next : index + 1 < count ? BigInt(index + 1) << SHARD_SHIFT : 0n;
  return joinArray([bulkReply(latin1Bytes(String(composite))), elements![1]]);
}

/** An unsigned 64-bit decimal, or null. */
function parseCursor(text: Uint8Array | null): bigint | null {
  if (text === null || text.length === 0 || text.length > 20) return null;
  for (const byte of text) if (byte < 0x30 || byte > 0x39) return null;
  const value = BigInt(latin1String(text));
  return value < 1n << 64n ? value : null;
}

/** The bytes of a bulk string element ("$3\r\nabc\r\n" -> "abc"), or null. */
function bulkValue(element: Uint8Array): Uint8Array | null {
  if (element[0] !== 0x24) return null;
  const cr = element.indexOf(0x0d);
  return cr < 0 ? null : element.subarray(cr + 2, element.length - 2);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const EMPTY = new Uint8Array(0);
const SCAN = latin1Bytes("SCAN");
const ONE = latin1Bytes(":1\r\n");
const ZERO = latin1Bytes(":0\r\n");
const INVALID_CURSOR = errorReply("ERR invalid cursor");
const DIFFERENT_REPLIES = errorReply("ERR the servers of the pool gave different answers");
const SCRIPT_ONLY = errorReply("ERR only SCRIPT LOAD, SCRIPT EXISTS and SCRIPT FLUSH are supported by the proxy");
