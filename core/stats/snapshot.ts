/**
 * twemproxy's stats JSON. Pool and server values come from a snapshot taken every
 * stats interval (twemproxy aggregates its counters on that beat); the header's
 * uptime, timestamp and connection counts are read when the JSON is written, as
 * twemproxy does. The text matches nutcracker 0.5.0 byte for byte: `"key":value, `
 * pairs, `"name": {` nesting, no spaces before closing braces, a final newline.
 */
import type { Pool } from "../proxy/pool.ts";
import type { Server } from "../proxy/server.ts";
import { twemproxyOrder } from "../dist/order.ts";
import { POOL_STAT_FIELDS, SERVER_STAT_FIELDS } from "./fields.ts";

/** One server's values, in SERVER_STAT_FIELDS order. */
export interface ServerSnapshot {
  readonly name: string;
  readonly values: readonly number[];
}

/** One pool's values (POOL_STAT_FIELDS order) and its servers in twemproxy's order. */
export interface PoolSnapshot {
  readonly name: string;
  readonly values: readonly number[];
  readonly servers: readonly ServerSnapshot[];
}

/** What the header says besides the counters. */
export interface StatsHeader {
  /** Host name, twemproxy's `source`. */
  readonly source: string;
  /** Version string; "0.5.0" for nutcracker compatibility. */
  readonly version: string;
  /** Clock ms when the proxy started. */
  readonly startedAt: number;
  /** Clock ms now. */
  readonly now: number;
}

/** twemproxy's connection counts: every listener, client and server connection. */
export interface ConnectionTotals {
  readonly total: number;
  readonly curr: number;
}

/** The servers of a pool in the order twemproxy lists them: sorted by name, length first. */
export function serversInStatsOrder(pool: Pool): Server[] {
  const servers = pool.servers;
  return twemproxyOrder(servers.map((s) => ({ id: s.conf.id, weight: s.conf.weight }))).map((i) => servers[i]);
}

/** Copy every pool's and server's current values. */
export function takeSnapshot(pools: readonly Pool[]): PoolSnapshot[] {
  return pools.map((pool) => {
    const stats = pool.stats as unknown as Record<string, number>;
    return {
      name: pool.conf.name,
      values: POOL_STAT_FIELDS.map((f) => stats[f.name]),
      servers: serversInStatsOrder(pool).map((server) => {
        const sstats = server.stats as unknown as Record<string, number>;
        return { name: server.conf.id, values: SERVER_STAT_FIELDS.map((f) => sstats[f.name]) };
      }),
    };
  });
}

/** Live connection counts, counted as twemproxy counts its conn structs (one listener per pool). */
export function connectionTotals(pools: readonly Pool[]): ConnectionTotals {
  let total = pools.length;
  let curr = pools.length;
  for (const pool of pools) {
    total += pool.stats.client_connections_opened;
    curr += pool.stats.client_connections;
    for (const server of pool.servers) {
      total += server.stats.server_connections_opened;
      curr += server.stats.server_connections;
    }
  }
  return { total, curr };
}

const int = (n: number): string => String(Math.trunc(n));
const key = (name: string): string => JSON.stringify(name);

/**
 * The stats JSON as nutcracker 0.5.0 writes it.
 * @example renderStatsJson(header, totals, takeSnapshot(proxy.pools)) // '{"service":"nutcracker", ...}}}\n'
 */
export function renderStatsJson(header: StatsHeader, totals: ConnectionTotals, pools: readonly PoolSnapshot[]): string {
  const nowSec = Math.floor(header.now / 1000);
  let out = "{";
  out += `"service":"nutcracker", "source":${key(header.source)}, "version":${key(header.version)}, `;
  out += `"uptime":${int(nowSec - Math.floor(header.startedAt / 1000))}, "timestamp":${int(nowSec)}, `;
  out += `"total_connections":${int(totals.total)}, "curr_connections":${int(totals.curr)}, `;
  for (const pool of pools) {
    out += `${key(pool.name)}: {` + pairs(POOL_STAT_FIELDS, pool.values);
    for (const server of pool.servers) {
      out = closeNesting(out + `${key(server.name)}: {` + pairs(SERVER_STAT_FIELDS, server.values));
    }
    out = closeNesting(out);
  }
  // twemproxy overwrites the trailing separator with the closing brace.
  return out.slice(0, -1) + "}\n";
}

function pairs(fields: readonly { name: string }[], values: readonly number[]): string {
  let out = "";
  for (let i = 0; i < fields.length; i++) out += `"${fields[i].name}":${int(values[i])}, `;
  return out;
}

/** End an object: `..., ` becomes `...},` and `...},` becomes `...}},`, as stats_end_nesting does. */
function closeNesting(out: string): string {
  return (out.endsWith(", ") ? out.slice(0, -2) : out.slice(0, -1)) + "},";
}
