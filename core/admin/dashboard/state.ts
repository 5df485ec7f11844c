/**
 * GET /api/dashboard: everything the dashboard page shows, in one JSON document read at
 * request time: the header (host, version, uptime, config generation, last reload), every
 * pool (listen address, clients, request and error rate, p50/p99, Sentinel view) with its
 * shards and nodes (role, state and why, rates, latency, lag, outstanding), and the chart
 * history: every sample newer than `?since=` (clock ms), or all 15 minutes when `since` is
 * absent, older than the oldest sample or newer than the newest (`full: true`).
 */
import { formatAddr } from "../../net.ts";
import type { Proxy } from "../../proxy/mod.ts";
import type { Pool } from "../../proxy/pool.ts";
import type { Server } from "../../proxy/server.ts";
import type { ReloadStatus } from "../../reload/types.ts";
import { type History, HISTORY_POINTS, HISTORY_STEP_MS, type LiveRates } from "../../stats/history.ts";
import { eligibility, lagOf, ROLE_NAMES, shardOf } from "../../stats/nodes.ts";
import { type SentinelState, sentinelState } from "../pools.ts";
import { reloadFields } from "../reload.ts";

/** What the state is read from. */
export interface DashboardInput {
  readonly proxy: Proxy;
  readonly history: History;
  /** Clock ms now. */
  readonly now: number;
  readonly startedAt: number;
  readonly version: string;
  readonly source: string;
  readonly reload: ReloadStatus;
  readonly reloadAvailable: boolean;
  /** The `since` query parameter (clock ms), or null for the full history. */
  readonly since: number | null;
}

/** A node's state word: up, ejected (by auto_eject_hosts), down (a master found unreachable) or ineligible (a replica that serves no reads). */
export type NodeStateWord = "up" | "ejected" | "down" | "ineligible";

/** One node (server) of a shard. */
export interface NodeView {
  readonly name: string;
  readonly address: string;
  readonly role: "master" | "replica";
  readonly state: NodeStateWord;
  /** Why not eligible for reads (ejected, down, lagging, ...); null when up. */
  readonly reason: string | null;
  /** Clock ms the ejected node is retried at, else null. */
  readonly retry_at: number | null;
  /** A replica serving reads while its master is down. */
  readonly stale: boolean;
  readonly rate: number | null;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly lag_bytes: number | null;
  readonly outstanding: number;
  readonly connections: number;
}

/** One pool. */
export interface PoolView {
  readonly name: string;
  readonly listen: string;
  readonly bound: string;
  readonly protocol: "redis" | "memcached";
  readonly clients: number;
  readonly rate: number | null;
  readonly errors: number | null;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly outstanding: number;
  readonly auto_eject_hosts: boolean;
  /** null for a pool without sentinels (and every memcached pool). */
  readonly sentinel: SentinelState | null;
  readonly shards: readonly { readonly id: string; readonly nodes: readonly NodeView[] }[];
}

/** The chart points: `times` (clock ms) and, aligned with them, each series' values (null = no data). */
export interface HistoryView {
  readonly step_ms: number;
  readonly span_ms: number;
  /** True when these points replace what the page holds (else they follow its last point). */
  readonly full: boolean;
  readonly times: readonly number[];
  readonly pools: Record<string, SeriesView & { readonly nodes: Record<string, SeriesView> }>;
}

export interface SeriesView {
  readonly rate: readonly (number | null)[];
  readonly p99_ms: readonly (number | null)[];
}

/** The document. */
export interface DashboardState {
  readonly now: number;
  readonly source: string;
  readonly version: string;
  readonly uptime: number;
  readonly reload: {
    readonly generation: number;
    readonly last_reload_at: string | null;
    readonly last_reload_error: string | null;
    readonly reloads: { readonly ok: number; readonly error: number };
    readonly available: boolean;
  };
  readonly pools: readonly PoolView[];
  readonly history: HistoryView;
}

/** Build the document. */
export function dashboardState(input: DashboardInput): DashboardState {
  const { proxy, history, now } = input;
  history.tick(now);
  const pools = proxy.listeners.map((listening) => poolView(listening.pool, formatAddr(listening.address), history, now));
  return {
    now: Math.round(now),
    source: input.source,
    version: input.version,
    uptime: Math.floor((now - input.startedAt) / 1000),
    reload: { ...reloadFields(input.reload), reloads: input.reload.reloads, available: input.reloadAvailable },
    pools,
    history: historyView(proxy.pools, history, input.since),
  };
}

function poolView(pool: Pool, bound: string, history: History, now: number): PoolView {
  const live = history.livePool(pool, now);
  const shards: { id: string; nodes: NodeView[] }[] = [];
  const byId = new Map<string, NodeView[]>();
  let outstanding = 0;
  for (const server of pool.servers) {
    const id = shardOf(server);
    let nodes = byId.get(id);
    if (nodes === undefined) {
      nodes = [];
      byId.set(id, nodes);
      shards.push({ id, nodes });
    }
    nodes.push(nodeView(server, history.liveNode(pool, server, now), now));
    outstanding += server.outstanding;
  }
  const conf = pool.conf;
  return {
    name: conf.name,
    listen: conf.listenText,
    bound,
    protocol: conf.redis ? "redis" : "memcached",
    clients: pool.stats.client_connections,
    rate: rounded(live.rate, 10),
    errors: rounded(live.errors, 10),
    p50_ms: rounded(live.p50, 1000),
    p99_ms: rounded(live.p99, 1000),
    outstanding,
    auto_eject_hosts: conf.autoEjectHosts,
    sentinel: conf.redis ? sentinelState(pool) : null,
    shards,
  };
}

function nodeView(server: Server, live: LiveRates, now: number): NodeView {
  const { eligible, reason } = eligibility(server, now);
  const ejected = server.ejectedUntil > now;
  const role = ROLE_NAMES[server.role];
  let state: NodeStateWord = "up";
  if (ejected) state = "ejected";
  else if (!eligible) state = reason === "down" && role === "master" ? "down" : "ineligible";
  return {
    name: server.conf.id,
    address: formatAddr(server.conf.addr),
    role,
    state,
    reason: eligible ? null : reason,
    retry_at: ejected ? server.ejectedUntil : null,
    stale: server.stale,
    rate: rounded(live.rate, 10),
    p50_ms: rounded(live.p50, 1000),
    p99_ms: rounded(live.p99, 1000),
    lag_bytes: lagOf(server),
    outstanding: server.outstanding,
    connections: server.stats.server_connections,
  };
}

function historyView(pools: readonly Pool[], history: History, since: number | null): HistoryView {
  // Times travel rounded to whole ms, and `since` is one of them.
  const newest = history.newest === null ? null : Math.round(history.newest);
  const oldestKept = newest === null ? 0 : newest - HISTORY_POINTS * HISTORY_STEP_MS;
  const full = since === null || newest === null || since > newest || since < oldestKept;
  const indexes = history.indexesSince(full ? -Infinity : since);
  const out: HistoryView["pools"] = {};
  for (const pool of pools) {
    const name = pool.conf.name;
    const nodes: Record<string, SeriesView> = {};
    for (const server of pool.servers) {
      nodes[server.conf.id] = seriesView(history.nodePoints(name, server.conf.id, indexes), indexes.length);
    }
    out[name] = { ...seriesView(history.poolPoints(name, indexes), indexes.length), nodes };
  }
  return {
    step_ms: HISTORY_STEP_MS,
    span_ms: HISTORY_POINTS * HISTORY_STEP_MS,
    full,
    times: indexes.map((i) => Math.round(history.times[i])),
    pools: out,
  };
}

function seriesView(points: { rate: number[]; p99: number[] } | null, length: number): SeriesView {
  if (points === null) {
    const empty = new Array<null>(length).fill(null);
    return { rate: empty, p99_ms: empty };
  }
  return { rate: points.rate.map((v) => rounded(v, 10)), p99_ms: points.p99.map((v) => rounded(v, 1000)) };
}

/** `value` rounded to 1/scale, or null for NaN. */
function rounded(value: number, scale: number): number | null {
  return Number.isFinite(value) ? Math.round(value * scale) / scale : null;
}
