/**
 * Cache mode's copy and delete of one key between two servers, per protocol: read the
 * value with its remaining TTL from the old owner, store it on the new owner only if the
 * new owner has none (a newer write wins), delete it on the old owner after a write.
 */
import { concatBytes } from "../bytes.ts";
import { McCmd } from "../memcache/request.ts";
import type { Req } from "../proxy/req.ts";
import type { Server } from "../proxy/server.ts";
import { bulkOf, command, integerOf } from "./resp.ts";

/** Send the proxy's own request on `server`'s connection for `clientId`; resolves with the reply. */
export function ask(server: Server, clientId: number, bytes: Uint8Array, kind = 0): Promise<Uint8Array | null> {
  return new Promise((resolve) => server.connFor(clientId).probe(bytes, { reqDone: (req: Req) => resolve(req.reply) }, kind));
}

/** What cache mode needs of a protocol. */
export interface CacheCopier {
  /** Copy `key` from `from` to `to` unless `to` has it; true when a value was found on `from`. */
  copy(key: Uint8Array, from: Server, to: Server, clientId: number): Promise<boolean>;
  /** Delete `key` on `server`; resolves once it is answered (whatever the answer). */
  remove(key: Uint8Array, server: Server, clientId: number): Promise<unknown>;
}

/** Redis: DUMP and PTTL on the old owner, RESTORE without REPLACE on the new one (BUSYKEY: a newer value stays). */
export const redisCopier: CacheCopier = {
  async copy(key, from, to, clientId) {
    const [dump, pttl] = await Promise.all([ask(from, clientId, command("DUMP", key)), ask(from, clientId, command("PTTL", key))]);
    const payload = bulkOf(dump);
    const ttl = integerOf(pttl);
    // -2: gone between the two; a value with a TTL about to end is not worth copying.
    if (payload === null || ttl === null || ttl === -2 || ttl === 0) return false;
    await ask(to, clientId, command("RESTORE", key, String(Math.max(ttl, 0)), payload.slice()));
    return true;
  },
  remove(key, server, clientId) {
    return ask(server, clientId, command("DEL", key));
  },
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** memcached: meta get with value, TTL and flags; meta set in mode E (add), so a newer value stays. */
export const memcacheCopier: CacheCopier = {
  async copy(key, from, to, clientId) {
    const got = parseMetaValue(await ask(from, clientId, concatBytes([encoder.encode("mg "), key, MG_FLAGS]), McCmd.Mg));
    if (got === null) return false;
    // t-1: no expiry; memcached's T0 means the same.
    const ttl = got.ttl < 0 ? 0 : got.ttl;
    const head = encoder.encode(` ${got.data.length} T${ttl} F${got.flags} ME\r\n`);
    await ask(to, clientId, concatBytes([encoder.encode("ms "), key, head, got.data, CRLF]), McCmd.Ms);
    return true;
  },
  remove(key, server, clientId) {
    return ask(server, clientId, concatBytes([encoder.encode("delete "), key, CRLF]), McCmd.Delete);
  },
};

const MG_FLAGS = encoder.encode(" v t f\r\n");
const CRLF = encoder.encode("\r\n");

/** `VA <len> t<ttl> f<flags>\r\n<data>\r\n` -> its parts; a miss (EN) or anything else -> null. */
export function parseMetaValue(reply: Uint8Array | null): { data: Uint8Array; ttl: number; flags: string } | null {
  if (reply === null || reply[0] !== 0x56 || reply[1] !== 0x41) return null; // "VA"
  let eol = 0;
  while (eol < reply.length && reply[eol] !== 13) eol++;
  const words = decoder.decode(reply.subarray(0, eol)).split(" ");
  const len = Number(words[1]);
  const ttl = Number(words.find((w) => w.startsWith("t"))?.slice(1) ?? "-1");
  const flags = words.find((w) => w.startsWith("f"))?.slice(1) ?? "0";
  if (!(len >= 0) || eol + 2 + len > reply.length) return null;
  return { data: reply.subarray(eol + 2, eol + 2 + len), ttl, flags };
}
