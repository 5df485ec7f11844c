/**
 * Hot-reload test rig: a proxy started from YAML text on fixed ports chosen up front (the
 * YAML loader rejects port 0), whose "file" is a variable the reloader's readConf parses;
 * `reload(newYaml)` swaps the text and reloads. Also: pool YAML builders, backend probes
 * that name their own connections (so CLIENT LIST shows which connections are the proxy's),
 * and this process's TCP sockets read from /proc. node:net and node:fs only.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { loadConf } from "../../core/conf/mod.ts";
import type { Conf } from "../../core/conf/mod.ts";
import { createLogger } from "../../core/log.ts";
import { systemClock } from "../../core/net.ts";
import { type Proxy, startProxy } from "../../core/proxy/mod.ts";
import type { Pool } from "../../core/proxy/pool.ts";
import { createReloader } from "../../core/reload/reloader.ts";
import type { ReloadReport, Reloader } from "../../core/reload/types.ts";
import { buildDistribution } from "../../core/dist/mod.ts";
import { HASHES } from "../../core/hash/mod.ts";
import { loadNet } from "../../adapters/mod.ts";
import { freePort } from "./ports.ts";
import { type Arg, encodePipeline, parseReply, type Reply } from "./resp.ts";
import { rawExchange } from "./servers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The file name config errors name. */
export const RELOAD_FILE = "reload.yml";

/** A proxy whose config file is a string the test rewrites. */
export interface ReloadRig {
  readonly proxy: Proxy;
  readonly reloader: Reloader;
  /** The text readConf parses next (the last text given to reload, or the initial one). */
  readonly yaml: string;
  /** Log lines written so far. */
  readonly logs: string[];
  /** Replace the file's text and reload (or validate only, with dryRun). */
  reload(yaml: string, opts?: { dryRun?: boolean }): Promise<ReloadReport>;
  /** The live pool called `name` (throws when there is none). */
  pool(name: string): Pool;
  /** The TCP port the pool called `name` listens on now. */
  port(name: string): number;
  close(): Promise<void>;
}

/**
 * Start a proxy from YAML text (real sockets, this runtime's adapter) with a reloader on it.
 * @example const rig = await startReloadProxy(poolYaml("a", port, [redis.port]));
 */
export async function startReloadProxy(yaml: string): Promise<ReloadRig> {
  let text = yaml;
  const readConf = (): Conf => loadConf(text, RELOAD_FILE);
  const logs: string[] = [];
  const log = createLogger((line) => logs.push(line), 6);
  const net = await loadNet();
  const proxy = await startProxy(readConf(), { net, clock: systemClock, log });
  const reloader = createReloader(proxy, readConf, { clock: systemClock, log });
  const pool = (name: string): Pool => {
    const found = proxy.pools.find((p) => p.conf.name === name);
    if (found === undefined) throw new Error(`no pool '${name}' (pools: ${proxy.pools.map((p) => p.conf.name).join(", ")})`);
    return found;
  };
  return {
    proxy,
    reloader,
    get yaml() {
      return text;
    },
    logs,
    reload(next, opts = {}) {
      text = next;
      return reloader.reload({ dryRun: opts.dryRun ?? false });
    },
    pool,
    port(name) {
      const i = proxy.pools.indexOf(pool(name));
      const addr = proxy.listeners[i].address;
      if (addr.kind !== "tcp") throw new Error(`pool '${name}' is not on TCP`);
      return addr.port;
    },
    close: () => proxy.close(200),
  };
}

/** `n` distinct free loopback ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** Extra pool keys: written as `key: value` lines in order. */
export type PoolKeys = Readonly<Record<string, string | number | boolean>>;

/**
 * One pool's YAML. A number in `servers` is `127.0.0.1:N:1`; a string is written as is
 * (`"127.0.0.1:6379:2 name"`). A redis pool unless `keys.redis` says otherwise.
 * @example poolYaml("a", 22121, [6379, 6380], { hash: "md5", timeout: 400 })
 */
export function poolYaml(name: string, listenPort: number, servers: readonly (number | string)[], keys: PoolKeys = {}): string {
  const settings: PoolKeys = { redis: true, ...keys };
  const lines = [`${name}:`, `  listen: 127.0.0.1:${listenPort}`];
  for (const [k, v] of Object.entries(settings)) lines.push(`  ${k}: ${v}`);
  lines.push("  servers:");
  for (const s of servers) lines.push(`    - ${typeof s === "number" ? `127.0.0.1:${s}:1` : s}`);
  return lines.join("\n") + "\n";
}

/** Replies of a pipeline sent straight to a backend (not through the proxy). */
export interface ProbeOptions {
  /** AUTH with this password first. */
  auth?: string;
  /** SELECT this db first. */
  db?: number;
  timeoutMs?: number;
}

/** The name every probe connection gives itself, so CLIENT LIST can leave it out. */
export const PROBE_NAME = "reload-probe";

/**
 * Runs commands on a redis backend directly, on a connection named PROBE_NAME (after the
 * optional AUTH and SELECT), and returns the commands' replies. Rejects when any is missing.
 * @example const [v] = await redisProbe(port, [["GET", "k"]]);
 */
export async function redisProbe(port: number, cmds: readonly (readonly Arg[])[], opts: ProbeOptions = {}): Promise<Reply[]> {
  const pre: Arg[][] = [];
  if (opts.auth !== undefined) pre.push(["AUTH", opts.auth]);
  pre.push(["CLIENT", "SETNAME", PROBE_NAME]);
  if (opts.db !== undefined) pre.push(["SELECT", String(opts.db)]);
  const want = pre.length + cmds.length;
  const got = await rawExchange(port, encodePipeline([...pre, ...cmds]), {
    until: (d) => countReplies(d) >= want,
    timeoutMs: opts.timeoutMs ?? 3000,
  });
  const replies = parseAll(got.data);
  if (replies.length < want) {
    throw new Error(`redisProbe ${port}: ${replies.length} of ${want} replies: ${decoder.decode(got.data).slice(0, 300)}`);
  }
  for (const r of replies.slice(0, pre.length)) {
    if (r.type === "error") throw new Error(`redisProbe ${port}: setup failed: ${r.text}`);
  }
  return replies.slice(pre.length);
}

/** A key's value on one backend, read directly (null when absent). */
export async function backendGet(port: number, key: string, opts: ProbeOptions = {}): Promise<string | null> {
  const [r] = await redisProbe(port, [["GET", key]], opts);
  if (r.type !== "bulk") throw new Error(`GET ${key} on ${port}: ${JSON.stringify(r)}`);
  return r.value === null ? null : decoder.decode(r.value);
}

/** One connection a redis backend reports in CLIENT LIST. */
export interface BackendConn {
  readonly id: number;
  readonly db: number;
  readonly name: string;
}

/**
 * The connections a redis backend has open other than probes: the proxy's (tests start
 * one backend per role and reach it only through the proxy or probes).
 */
export async function proxyConns(port: number, opts: ProbeOptions = {}): Promise<BackendConn[]> {
  const [r] = await redisProbe(port, [["CLIENT", "LIST"]], opts);
  if (r.type !== "bulk" || r.value === null) throw new Error(`CLIENT LIST on ${port}: ${JSON.stringify(r)}`);
  const conns: BackendConn[] = [];
  for (const line of decoder.decode(r.value).split("\n")) {
    const fields = new Map(line.trim().split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    if (!fields.has("id")) continue;
    const conn = { id: Number(fields.get("id")), db: Number(fields.get("db")), name: fields.get("name") ?? "" };
    if (conn.name !== PROBE_NAME) conns.push(conn);
  }
  return conns.sort((a, b) => a.id - b.id);
}

/** The ids of proxyConns, sorted. */
export async function proxyConnIds(port: number, opts: ProbeOptions = {}): Promise<number[]> {
  return (await proxyConns(port, opts)).map((c) => c.id);
}

/** One field of a redis backend's INFO (e.g. "total_connections_received"), as a number. */
export async function redisInfoNumber(port: number, field: string, opts: ProbeOptions = {}): Promise<number> {
  const [r] = await redisProbe(port, [["INFO", "all"]], opts);
  if (r.type !== "bulk" || r.value === null) throw new Error(`INFO on ${port}: ${JSON.stringify(r)}`);
  const m = new RegExp(`^${field}:(\\d+)`, "m").exec(decoder.decode(r.value));
  if (m === null) throw new Error(`INFO on ${port} has no ${field}`);
  return Number(m[1]);
}

/** A memcached backend's `stats` as a map (one probe connection; it counts in total_connections). */
export async function memcachedStats(port: number): Promise<Map<string, string>> {
  const text = decoder.decode((await rawExchange(port, "stats\r\n", { untilEnds: "END\r\n", timeoutMs: 3000 })).data);
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^STAT (\S+) (\S+)\r$/gm)) out.set(m[1], m[2]);
  return out;
}

/** A key's value on a memcached backend, read directly (null when absent). */
export async function memcachedGet(port: number, key: string): Promise<string | null> {
  const text = decoder.decode((await rawExchange(port, `get ${key}\r\n`, { untilEnds: "END\r\n", timeoutMs: 3000 })).data);
  const m = /^VALUE \S+ \d+ \d+\r\n([\s\S]*?)\r\nEND\r\n$/.exec(text);
  return m === null ? null : m[1];
}

function parseAll(data: Uint8Array): Reply[] {
  const out: Reply[] = [];
  let pos = 0;
  while (pos < data.length) {
    const got = parseReply(data, pos, data.length);
    if (got === null) break;
    out.push(got[0]);
    pos = got[1];
  }
  return out;
}

function countReplies(data: Uint8Array): number {
  try {
    return parseAll(data).length;
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

/** One TCP socket this process holds, from /proc/net/tcp{,6}. */
export interface TcpSocket {
  readonly localPort: number;
  readonly remotePort: number;
  /** "LISTEN", "ESTABLISHED", ... (kernel states by name; others as hex). */
  readonly state: string;
}

const TCP_STATES: Record<string, string> = {
  "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
  "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
};

/**
 * The TCP sockets this process owns: /proc/self/net/tcp rows whose inode is one of the
 * process's open file descriptors (unix sockets, which Deno holds its own of, are left out).
 */
export function ownTcpSockets(): TcpSocket[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m !== null) inodes.add(m[1]);
    } catch {
      // closed while we looked
    }
  }
  const out: TcpSocket[] = [];
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const row of text.split("\n").slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9])) continue;
      const port = (addr: string) => parseInt(addr.slice(addr.indexOf(":") + 1), 16);
      out.push({ localPort: port(f[1]), remotePort: port(f[2]), state: TCP_STATES[f[3]] ?? f[3] });
    }
  }
  return out;
}

/** The ports among `ports` on which this process has a listening TCP socket, sorted. */
export function ownListeningPorts(ports: readonly number[]): number[] {
  const listening = new Set(ownTcpSockets().filter((s) => s.state === "LISTEN").map((s) => s.localPort));
  return ports.filter((p) => listening.has(p)).sort((a, b) => a - b);
}

/** A ring described the way a config file does: hash, distribution, servers as `id` and weight. */
export interface RingSpec {
  readonly hash: keyof typeof HASHES;
  readonly distribution: "ketama" | "modula";
  readonly servers: readonly { readonly id: string; readonly weight: number }[];
}

/**
 * Index of the server owning `key` on a ring built from scratch (not the proxy's), so a
 * test can check where the proxy routes after a reload without asking the proxy.
 */
export function ownerOn(ring: RingSpec, key: string): number {
  const bytes = encoder.encode(key);
  return buildDistribution(ring.distribution, ring.servers).pick(HASHES[ring.hash](bytes, 0, bytes.length));
}

/** `count` keys `prefix:N` that `ring` puts on server `index` (and, if given, `other` on `otherIndex`). */
export function keysOwned(ring: RingSpec, index: number, prefix: string, count = 1, other?: { ring: RingSpec; index: number }): string[] {
  const out: string[] = [];
  for (let n = 0; out.length < count && n < 100000; n++) {
    const key = `${prefix}:${n}`;
    if (ownerOn(ring, key) !== index) continue;
    if (other !== undefined && ownerOn(other.ring, key) !== other.index) continue;
    out.push(key);
  }
  if (out.length < count) throw new Error(`only ${out.length} keys with prefix ${prefix} land on server ${index}`);
  return out;
}

/** Servers `127.0.0.1:port` with weight 1 each (or the weights given), as a RingSpec lists them. */
export function ringServers(ports: readonly number[], weights: readonly number[] = []): RingSpec["servers"] {
  return ports.map((p, i) => ({ id: `127.0.0.1:${p}`, weight: weights[i] ?? 1 }));
}
