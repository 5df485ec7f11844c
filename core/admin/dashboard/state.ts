/**
 * GET /api/dashboard: everything the dashboard page shows, in one JSON document read at
 * request time: the header (host, version, uptime, config generation, last reload), every
 * pool (listen address, clients, client requests/s, errors/s, p50/p99, the Sentinel,
 * Redis Cluster and migration views) with its shards and nodes (role, state and why, rates, latency, lag,
 * outstanding), and the chart history: every sample newer than `?since=` (clock ms), or all
 * 15 minutes when `since` is absent, older than the oldest sample or newer than the newest
 * (`full: true`). Built from PoolParts (parts.ts) and a History, so one process and the
 * `--workers` supervisor (over its workers' merged parts) serve the same document.
 */
import { formatAddr } from "../../net.ts";
import type { Proxy } from "../../proxy/mod.ts";
import type { ReloadStatus } from "../../reload/types.ts";
import { type History, HISTORY_POINTS, HISTORY_STEP_MS, type HistoryPool, type LiveRates } from "../../stats/history.ts";
import type { ClusterState, SentinelState } from "../pools.ts";
import type { MigrationView } from "../migration.ts";
import { reloadFields } from "../reload.ts";
import { type NodePart, type NodeStateWord, poolPart, type PoolPart } from "./parts.ts";

export type { NodeStateWord };

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
  /** null unless `distribution: redis_cluster`. */
  readonly cluster: ClusterView | null;
  /** The running (or last finished) migration (GET /pools/<pool>/migration's status and `running`); null when none. */
  readonly migration: MigrationView | null;
  readonly shards: readonly { readonly id: string; readonly nodes: readonly NodeView[] }[];
}

/** A Redis Cluster pool's slot map and redirections, as the cluster panel shows them. */
export interface ClusterView {
  /** "fresh": the last refresh succeeded; "stale": refreshes fail since (the map is kept); "none": no map yet (seeds only). */
  readonly map: "fresh" | "stale" | "none";
  /** Each master with its slot ranges ("0-5460,10923") and how many slots that is. */
  readonly masters: readonly { readonly address: string; readonly slots: string; readonly count: number }[];
  readonly refreshes: number;
  /** Clock ms of the last applied CLUSTER SLOTS answer, else null. */
  readonly last_refresh_at: number | null;
  readonly refresh_interval_ms: number;
  readonly refresh_errors: number;
  readonly last_error_at: number | null;
  readonly last_error: string | null;
  readonly moved: number;
  readonly ask: number;
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

/** The document's header: who answers and how its config stands. */
export interface DashboardHeader {
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
  /** Worker processes summed into this view (`--workers N`); absent for one process. */
  readonly workers?: number;
}

/** The document. */
export interface DashboardState extends DashboardHeader {
  readonly pools: readonly PoolView[];
  readonly history: HistoryView;
}

/** Build the document of one process. */
export function dashboardState(input: DashboardInput): DashboardState {
  const { proxy, history, now } = input;
  history.tick(now);
  const pools = proxy.listeners.map((listening) => {
    const pool = listening.pool;
    const part = poolPart(pool, formatAddr(listening.address), now, null);
    return poolView(part, history.livePool(pool, now), pool.servers.map((server) => history.liveNode(pool, server, now)));
  });
  return { ...dashboardHeader(input), pools, history: historyView(proxy.pools, history, input.since) };
}

/** The header fields, from what any process knows. */
export function dashboardHeader(input: Omit<DashboardInput, "proxy" | "history" | "since">): DashboardHeader {
  return {
    now: Math.round(input.now),
    source: input.source,
    version: input.version,
    uptime: Math.floor((input.now - input.startedAt) / 1000),
    reload: { ...reloadFields(input.reload), reloads: input.reload.reloads, available: input.reloadAvailable },
  };
}

/**
 * A pool's view: its part with the live rates of the pool and of each node (aligned with
 * `part.nodes`), the nodes grouped by shard in first-seen order.
 */
export function poolView(part: PoolPart, live: LiveRates, nodeRates: readonly LiveRates[]): PoolView {
  const shards: { id: string; nodes: NodeView[] }[] = [];
  const byId = new Map<string, NodeView[]>();
  part.nodes.forEach((node, i) => {
    let nodes = byId.get(node.shard);
    if (nodes === undefined) {
      nodes = [];
      byId.set(node.shard, nodes);
      shards.push({ id: node.shard, nodes });
    }
    nodes.push(nodeView(node, nodeRates[i]));
  });
  return {
    name: part.name,
    listen: part.listen,
    bound: part.bound,
    protocol: part.protocol,
    clients: part.clients,
    rate: rounded(live.rate, 10),
    errors: rounded(live.errors, 10),
    p50_ms: rounded(live.p50, 1000),
    p99_ms: rounded(live.p99, 1000),
    outstanding: part.outstanding,
    auto_eject_hosts: part.auto_eject_hosts,
    sentinel: part.sentinel,
    cluster: part.cluster === null ? null : clusterView(part.cluster),
    migration: part.migration,
    shards,
  };
}

function nodeView(node: NodePart, live: LiveRates): NodeView {
  return {
    name: node.name,
    address: node.address,
    role: node.role,
    state: node.state,
    reason: node.reason,
    retry_at: node.retry_at,
    stale: node.stale,
    rate: rounded(live.rate, 10),
    p50_ms: rounded(live.p50, 1000),
    p99_ms: rounded(live.p99, 1000),
    lag_bytes: node.lag_bytes,
    outstanding: node.outstanding,
    connections: node.connections,
  };
}

const msOrNull = (iso: string | null) => (iso === null ? null : Date.parse(iso));

function clusterView(c: ClusterState): ClusterView {
  const lastRefresh = msOrNull(c.last_refresh_at);
  const lastError = msOrNull(c.last_error_at);
  const map = lastRefresh === null ? "none" : lastError !== null && lastError >= lastRefresh ? "stale" : "fresh";
  return {
    map,
    masters: Object.entries(c.slots).map(([address, slots]) => ({ address, slots, count: slotCount(slots) })),
    refreshes: c.refreshes,
    last_refresh_at: lastRefresh,
    refresh_interval_ms: c.refresh_interval_ms,
    refresh_errors: c.refresh_errors,
    last_error_at: lastError,
    last_error: c.last_error,
    moved: c.redirects.moved,
    ask: c.redirects.ask,
  };
}

/** Slots in "0-5460,10923": 5462. */
function slotCount(ranges: string): number {
  let count = 0;
  for (const range of ranges.split(",")) {
    if (range === "") continue;
    const [from, to = from] = range.split("-").map(Number);
    count += to - from + 1;
  }
  return count;
}

/**
 * The chart points of `pools` (any HistoryPool: a process's Pools or the supervisor's sums).
 * @example historyView(proxy.pools, history, since)
 */
export function historyView(pools: readonly HistoryPool[], history: History, since: number | null): HistoryView {
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
