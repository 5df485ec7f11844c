/**
 * Store mode's copy of a big key in pieces, so no server is blocked for long: the key is
 * locked on its old owner (the request script then holds every request for it: the proxy
 * retries shortly, the client only waits), copied piece by piece into a scratch key on the
 * new owner, renamed into place there with its TTL, and only then deleted (with its lock) on
 * the old owner. Streams are not copied this way (their consumer groups would be lost).
 */
import type { Server } from "../proxy/server.ts";
import { ask } from "./copy.ts";
import { bulkArrayAt, bulkOf, command, errorOf, integerOf, scanReply } from "./resp.ts";
import { MOVER_CLIENT } from "./store.ts";

/** The lock a request script checks before it touches `key` (pool-wide prefix + the key). */
export function lockKey(pool: string, key: Uint8Array): Uint8Array {
  const prefix = new TextEncoder().encode(`twemproxy-ts:migration:${pool}:lock:`);
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix);
  out.set(key, prefix.length);
  return out;
}

/** Elements (or bytes of a string) per piece: each read and write stays well under a millisecond or so. */
const PIECE = 1000;
const STRING_PIECE = 1024 * 1024;
/** The lock outlives a crashed mover by at most this much (the next driver copies the key again). */
const LOCK_MS = 60_000;

/**
 * Copy `key` from `from` to `to` in pieces and move it there; null when done, else why not
 * (the key then stays, whole, on its old owner).
 */
export async function copyInPieces(pool: string, key: Uint8Array, from: Server, to: Server): Promise<string | null> {
  const type = new TextDecoder().decode((await ask(from, MOVER_CLIENT, command("TYPE", key))) ?? new Uint8Array()).trim();
  const copier = PIECES[type.slice(1)];
  if (copier === undefined) return `a ${type.slice(1)} cannot be copied in pieces`;
  const lock = lockKey(pool, key);
  const scratch = `twemproxy-ts:migration:${pool}:scratch`;
  await ask(from, MOVER_CLIENT, command("SET", lock, "1", "PX", String(LOCK_MS)));
  await ask(to, MOVER_CLIENT, command("DEL", scratch));
  const failed = await copier(key, from, (...args) => ask(to, MOVER_CLIENT, command(args[0], scratch, ...args.slice(1))));
  if (failed !== null) {
    await ask(from, MOVER_CLIENT, command("DEL", lock));
    return failed;
  }
  const ttl = integerOf(await ask(from, MOVER_CLIENT, command("PTTL", key))) ?? -1;
  const renamed = await ask(to, MOVER_CLIENT, command("RENAME", scratch, key));
  if (errorOf(renamed) !== null) return `RENAME on the new owner: ${errorOf(renamed)}`;
  if (ttl > 0) await ask(to, MOVER_CLIENT, command("PEXPIRE", key, String(ttl)));
  await ask(from, MOVER_CLIENT, command("DEL", key, lock));
  return null;
}

/** Writes one piece to the scratch key: the command's name, then its arguments after the key. */
type Write = (...args: (string | Uint8Array)[]) => Promise<Uint8Array | null>;
type PieceCopier = (key: Uint8Array, from: Server, write: Write) => Promise<string | null>;

const PIECES: Readonly<Record<string, PieceCopier>> = {
  string: async (key, from, write) => {
    const length = integerOf(await ask(from, MOVER_CLIENT, command("STRLEN", key))) ?? 0;
    for (let at = 0; at < length; at += STRING_PIECE) {
      const piece = bulkOf(await ask(from, MOVER_CLIENT, command("GETRANGE", key, String(at), String(at + STRING_PIECE - 1))));
      if (piece === null) return "GETRANGE failed";
      await write("APPEND", piece.slice());
    }
    return null;
  },
  hash: (key, from, write) => scanInto("HSCAN", key, from, (items) => write("HSET", ...items)),
  set: (key, from, write) => scanInto("SSCAN", key, from, (items) => write("SADD", ...items)),
  // ZSCAN gives member, score pairs; ZADD takes score, member.
  zset: (key, from, write) => scanInto("ZSCAN", key, from, (items) => write("ZADD", ...swapPairs(items))),
  list: async (key, from, write) => {
    for (let at = 0;; at += PIECE) {
      const reply = await ask(from, MOVER_CLIENT, command("LRANGE", key, String(at), String(at + PIECE - 1)));
      const items = reply === null ? null : bulkArrayAt(reply, 0);
      if (items === null) return "LRANGE failed";
      if (items.items.length === 0) return null;
      await write("RPUSH", ...items.items.map((i) => i.slice()));
    }
  },
};

async function scanInto(scan: string, key: Uint8Array, from: Server, write: (items: Uint8Array[]) => Promise<unknown>): Promise<string | null> {
  let cursor = "0";
  do {
    const page = scanReply(await ask(from, MOVER_CLIENT, command(scan, key, cursor, "COUNT", String(PIECE))));
    if (page === null) return `${scan} failed`;
    if (page.keys.length > 0) await write(page.keys.map((i) => i.slice()));
    cursor = page.cursor;
  } while (cursor !== "0");
  return null;
}

function swapPairs(items: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < items.length; i += 2) out.push(items[i + 1], items[i]);
  return out;
}
