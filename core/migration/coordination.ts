/**
 * Store mode with several proxies (or workers) serving one pool, coordinated through what
 * they all share: the backends. Keys the proxy keeps for itself start with "twemproxy-ts:".
 *
 * - Each proxy names its connections to a store-mode pool's servers (CLIENT SETNAME):
 *   `tpts.<pool>.r.<ring>` on a stable ring, `tpts.<pool>.m.<from>.<to>` while migrating.
 * - A migrating proxy sends each request of a moving key through a script on the old owner
 *   that runs the request right there until the *go marker* `twemproxy-ts:migration:<pool>:
 *   from:<from>` says `<to>`; from then on the script moves the key to its new owner first.
 *   So before the marker every proxy, migrating or not, uses the old owner; after it, none does.
 * - One proxy drives (a lease key on the old ring's first server): it waits until no
 *   connection named for the old ring is left on any old server (every proxy has reloaded),
 *   sets the go marker on every old server, runs the mover, checkpoints each server's SCAN
 *   cursor in `twemproxy-ts:migration:<pool>` there, and marks it done; the others poll that.
 * - A proxy still on the old ring cannot open a connection to a server holding the go marker
 *   for its ring: its connection setup script fails, so it refuses requests instead of
 *   writing where a key no longer is.
 */
import type { PoolConf } from "../conf/types.ts";
import { fnv1a_32 } from "../hash/fnv1a_32.ts";
import { command } from "./resp.ts";

/** A short identity of a ring (its distribution, hash and servers with weights). */
export function ringId(conf: PoolConf): string {
  const shards = conf.shards.map((s) => `${s.primary.id}:${s.primary.weight}`);
  const text = new TextEncoder().encode(JSON.stringify([conf.distribution, conf.hash, conf.hashTag, shards]));
  return fnv1a_32(text, 0, text.length).toString(16).padStart(8, "0");
}

/** A new identity for this proxy process among the proxies of a pool (the mover's lease holder). */
export function newProxyId(now: number): string {
  return `${now.toString(36)}-${Math.floor(Math.random() * 2 ** 48).toString(36)}`;
}

/** The pool name as CLIENT SETNAME accepts it (no spaces or newlines). */
function safeName(pool: string): string {
  return pool.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** What every connection name of this pool's proxies starts with. */
export function namePrefix(pool: string): string {
  return `tpts.${safeName(pool)}.`;
}

/** The connection name of a proxy on a stable ring. */
export function stableName(pool: string, ring: string): string {
  return `${namePrefix(pool)}r.${ring}`;
}

/** The connection name of a proxy migrating between two rings. */
export function migratingName(pool: string, from: string, to: string): string {
  return `${namePrefix(pool)}m.${from}.${to}`;
}

/** The go marker: set on the old servers once every proxy routes moving keys through the script. */
export function goMarker(pool: string, from: string): string {
  return `twemproxy-ts:migration:${pool}:from:${from}`;
}

/** The record's `phase` field as written on the servers (shared with every proxy, so text). */
export const RecordPhase = { Waiting: "waiting", Moving: "moving", Done: "done" } as const;

/** The record's `cursor` field once an old server was scanned through. */
export const SCANNED = "done";

/** The per-server record: phase, rings, the mover's cursor and counts. */
export function recordKey(pool: string): string {
  return `twemproxy-ts:migration:${pool}`;
}

/** The driver's lease, on the old ring's first server. */
export function leaseKey(pool: string): string {
  return `twemproxy-ts:migration:${pool}:driver`;
}

/** Refuses a connection when the go marker for `ring` exists: that ring's keys are moving away. */
const GUARD_SCRIPT =
  "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('MIGRATING this proxy routes by a ring whose keys " +
  "are being moved to other servers; reload it with the new configuration') end return 'OK'";

/**
 * The connection setup a store-mode pool adds: name the connection, and on a stable ring
 * (`ring` not null) refuse it if the servers say that ring's keys are moving away.
 */
export function storePreamble(pool: string, name: string, ring: string | null): Uint8Array[] {
  const setName = command("CLIENT", "SETNAME", name);
  return ring === null ? [setName] : [setName, command("EVAL", GUARD_SCRIPT, "1", goMarker(pool, ring))];
}

/** Renews the lease when this proxy still holds it (1), else 0. */
export const RENEW_SCRIPT =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

/** Names in a CLIENT LIST text equal to `name`, with the client addresses holding them. */
export function clientsNamed(list: string, name: string): string[] {
  const out: string[] = [];
  for (const line of list.split("\n")) {
    const fields = new Map(line.trim().split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    if (fields.get("name") === name) out.push(fields.get("addr") ?? "?");
  }
  return out;
}

/** A migration found in a server's record: the rings, its phase, and the old ring's server lines. */
export interface RecordedMigration {
  readonly from: string;
  readonly to: string;
  readonly phase: string;
  readonly fromServers: readonly string[];
}

/** The HMGET reply of from, to, phase, from_servers -> the migration, or null when there is none. */
export function recordedMigration(reply: Uint8Array | null): RecordedMigration | null {
  if (reply === null || reply[0] !== 0x2a) return null;
  const text = new TextDecoder().decode(reply);
  const values = [...text.matchAll(/\$(-?\d+)\r\n/g)].map((m) => {
    const len = Number(m[1]);
    return len < 0 ? null : text.slice(m.index! + m[0].length, m.index! + m[0].length + len);
  });
  const [from, to, phase, servers] = values;
  if (from === null || to === null || phase === null || servers === null || from === undefined) return null;
  try {
    const fromServers = JSON.parse(servers ?? "[]");
    return Array.isArray(fromServers) ? { from, to: to!, phase: phase!, fromServers: fromServers.map(String) } : null;
  } catch {
    return null;
  }
}
