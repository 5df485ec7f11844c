/**
 * INFO, answered by the proxy in Redis's INFO format ("# Section" lines, then "field:value"
 * lines, sections apart by a blank line), so monitoring agents and clients that read INFO
 * (ioredis' ready check) work through it:
 *   # Server    redis_version (the protocol level the proxy speaks, as HELLO says), proxy
 *               version, runtime, process_id (when known), port, uptime, the client's pool
 *   # Clients   connected_clients of the pool
 *   # Stats     the pool's totals: twemproxy's counters, summed over its servers
 *   # Keyspace  db0 (what clients see) summed over the pool's servers, asked live of each
 *               master with INFO keyspace
 *   # Pools     every pool of the proxy: its settings, and each server's address and state
 * `INFO <section> [section ...]` returns those sections; `all`, `everything` and `default`
 * return them all; an unknown section, nothing (as Redis).
 */
import { formatAddr } from "../net.ts";
import { argBytes } from "./redis_args.ts";
import { bulkReply, encodeCommand, isError } from "../redis/mod.ts";
import { latin1Bytes, latin1String } from "../bytes.ts";
import type { Pool } from "./pool.ts";
import type { ProxyAbout, SessionHost } from "./protocol.ts";
import type { RedisSession } from "./redis.ts";
import type { Req } from "./req.ts";
import { toShards } from "./redis_fanout.ts";
import { ROLE_NAMES } from "../stats/nodes.ts";

/** Each section's title and how its lines are made. */
const SECTIONS: Readonly<Record<string, { title: string; lines: (view: View) => string[] }>> = {
  server: { title: "Server", lines: serverLines },
  clients: { title: "Clients", lines: clientLines },
  stats: { title: "Stats", lines: statsLines },
  keyspace: { title: "Keyspace", lines: keyspaceLines },
  pools: { title: "Pools", lines: poolsLines },
};
const ALL = Object.keys(SECTIONS);

/** What the sections are made from: the proxy, the client's pool, and the keyspace counts. */
interface View {
  readonly about: ProxyAbout;
  readonly host: SessionHost;
  /** The client's pool (null when a reload removed it while the client stays). */
  readonly pool: Pool | null;
  readonly keyspace: Keyspace;
}

interface Keyspace {
  keys: number;
  expires: number;
  /** Sum of avg_ttl x expires, for the weighted average. */
  ttlWeight: number;
}

/** INFO [section ...]: from the proxy's own state; with # Keyspace, once every master answered. */
export function infoCommand(session: RedisSession, buf: Uint8Array, host: SessionHost): void {
  const wanted = sectionsWanted(session, buf);
  if (!wanted.includes("keyspace")) return void host.replyLocal(render(wanted, host, emptyKeyspace()));
  toShards(host, host.shards(), "info", INFO_KEYSPACE, (parent) => render(wanted, host, keyspaceOf(parent, host.pool.redisDb)), 0);
}

function sectionsWanted(session: RedisSession, buf: Uint8Array): string[] {
  const slots = session.slots;
  if (slots.argc === 1) return ALL;
  const wanted = new Set<string>();
  for (let i = 1; i < slots.argc; i++) {
    const name = latin1String(argBytes(buf, slots, i)).toLowerCase();
    if (name === "all" || name === "everything" || name === "default") return ALL;
    if (Object.hasOwn(SECTIONS, name)) wanted.add(name);
  }
  return ALL.filter((name) => wanted.has(name));
}

function render(wanted: readonly string[], host: SessionHost, keyspace: Keyspace): Uint8Array {
  const about = host.about;
  const view: View = { about, host, pool: about.pools.find((p) => p.conf === host.pool) ?? null, keyspace };
  const text = wanted.map((name) => {
    const section = SECTIONS[name];
    return [`# ${section.title}`, ...section.lines(view)].map((line) => line + "\r\n").join("");
  }).join("\r\n");
  return bulkReply(encoder.encode(text));
}

function serverLines({ about, host }: View): string[] {
  const uptime = Math.max(0, Math.floor((about.now() - about.startedAt) / 1000));
  const listen = host.pool.listen;
  return [
    "redis_version:7.0.0",
    "redis_mode:standalone",
    "proxy:twemproxy-ts",
    ...(about.version === "" ? [] : [`proxy_version:${about.version}`]),
    `runtime:${about.runtime}`,
    ...(about.pid === null ? [] : [`process_id:${about.pid}`]),
    ...(listen.kind === "tcp" ? [`tcp_port:${listen.port}`] : []),
    `uptime_in_seconds:${uptime}`,
    `uptime_in_days:${Math.floor(uptime / 86400)}`,
    `pool:${safe(host.pool.name)}`,
  ];
}

function clientLines({ pool, host }: View): string[] {
  const max = host.pool.clientConnections;
  return [`connected_clients:${pool?.stats.client_connections ?? 0}`, ...(max > 0 ? [`maxclients:${max}`] : [])];
}

/** The pool's counters and its servers' counters summed, under twemproxy's names (plus Redis's two totals). */
function statsLines({ pool }: View): string[] {
  if (pool === null) return [];
  const s = pool.stats;
  const sum = (field: "requests" | "request_bytes" | "responses" | "response_bytes" | "server_eof" | "server_err" | "server_timedout") =>
    pool.servers.reduce((total, server) => total + server.stats[field], 0);
  return [
    `total_connections_received:${s.client_connections_opened}`,
    `total_commands_processed:${sum("requests")}`,
    `client_eof:${s.client_eof}`,
    `client_err:${s.client_err}`,
    `server_ejects:${s.server_ejects}`,
    `forward_error:${s.forward_error}`,
    `fragments:${s.fragments}`,
    `requests:${sum("requests")}`,
    `request_bytes:${sum("request_bytes")}`,
    `responses:${sum("responses")}`,
    `response_bytes:${sum("response_bytes")}`,
    `server_eof:${sum("server_eof")}`,
    `server_err:${sum("server_err")}`,
    `server_timedout:${sum("server_timedout")}`,
  ];
}

/** db0, as Redis prints it: absent when the pool holds no key. */
function keyspaceLines({ keyspace: k }: View): string[] {
  if (k.keys === 0) return [];
  const avgTtl = k.expires === 0 ? 0 : Math.round(k.ttlWeight / k.expires);
  return [`db0:keys=${k.keys},expires=${k.expires},avg_ttl=${avgTtl}`];
}

function poolsLines({ about }: View): string[] {
  const now = about.now();
  const lines = [`pools:${about.pools.length}`];
  about.pools.forEach((pool, i) => {
    const c = pool.conf;
    lines.push(`pool${i}:` + [
      `name=${safe(c.name)}`, `listen=${safe(formatAddr(c.listen))}`, `protocol=${c.redis ? "redis" : "memcache"}`,
      `hash=${c.hash}`, `distribution=${c.distribution}`, `shards=${pool.shards.length}`, `servers=${pool.servers.length}`,
      `client_connections=${pool.stats.client_connections}`,
    ].join(","));
    pool.servers.forEach((server, j) => {
      lines.push(`pool${i}_server${j}:` + [
        `name=${safe(server.conf.id)}`, `addr=${safe(formatAddr(server.conf.addr))}`, `role=${ROLE_NAMES[server.role]}`,
        `shard=${safe(server.shardId)}`, `state=${server.ejectedUntil > now ? "ejected" : "up"}`,
        `connections=${server.stats.server_connections}`, `failures=${server.failures}`,
        `requests=${server.stats.requests}`, `responses=${server.stats.responses}`,
      ].join(","));
    });
  });
  return lines;
}

/** db<redis_db> of every master's INFO keyspace, summed; a server that failed counts for nothing. */
function keyspaceOf(parent: Req, db: number): Keyspace {
  const total = emptyKeyspace();
  const prefix = `db${db}:`;
  for (const frag of parent.frags!) {
    if (frag.reply === null || isError(frag.reply)) continue;
    const line = latin1String(frag.reply).split("\r\n").find((l) => l.startsWith(prefix));
    if (line === undefined) continue;
    const fields = Object.fromEntries(line.slice(prefix.length).split(",").map((kv) => kv.split("=")));
    const expires = Number(fields.expires) || 0;
    total.keys += Number(fields.keys) || 0;
    total.expires += expires;
    total.ttlWeight += (Number(fields.avg_ttl) || 0) * expires;
  }
  return total;
}

function emptyKeyspace(): Keyspace {
  return { keys: 0, expires: 0, ttlWeight: 0 };
}

/** A name inside a "field:a=b,c=d" line, without the separators INFO readers split on. */
function safe(text: string): string {
  return text.replace(/[\s,=]/g, "_");
}

const encoder = new TextEncoder();
const INFO_KEYSPACE = encodeCommand([latin1Bytes("INFO"), latin1Bytes("keyspace")]);
