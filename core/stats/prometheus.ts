/**
 * Prometheus text exposition (format 0.0.4) of the live counters and the request
 * histograms. Names come from the twemproxy field tables: `nutcracker_<field>`, with
 * `_total` on counters and `_seconds` on timestamps; HELP text is the `-D` description.
 * Each node's role, read eligibility, replication lag and read/write counts follow, then the
 * Sentinel view of pools that follow Sentinel (reachable Sentinels, each shard's master,
 * failovers and last switch).
 */
import type { MigrationStatus } from "../migration/migration.ts";
import type { Pool } from "../proxy/pool.ts";
import { Role, type Server } from "../proxy/server.ts";
import type { ReloadStatus } from "../reload/types.ts";
import type { Histogram } from "./histogram.ts";
import type { CommandSeries, Metrics } from "./metrics.ts";
import { POOL_STAT_FIELDS, SERVER_STAT_FIELDS, type StatField } from "./fields.ts";
import { connectionTotals, serversInStatsOrder } from "./snapshot.ts";
import { eligibility, lagOf, ROLE_NAMES, sentinelView, shardOf } from "./nodes.ts";

/** The Content-Type of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What the exposition is made from. */
export interface PrometheusInput {
  readonly pools: readonly Pool[];
  readonly metrics: Metrics;
  readonly version: string;
  readonly source: string;
  readonly uptimeSeconds: number;
  /** Clock ms now, to tell which servers are ejected. */
  readonly now: number;
  /** The reloader's status; absent = the config the proxy started with (generation 1, never reloaded). */
  readonly reload?: ReloadStatus;
}

type Labels = readonly (readonly [string, string])[];

/** Escape a label value: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** Escape HELP text: backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value as Prometheus writes it (+Inf, -Inf, NaN, else the shortest decimal). */
export function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/** The metric name of a twemproxy stats field. */
export function metricName(field: StatField): string {
  if (field.kind === "counter") return `nutcracker_${field.name}_total`;
  if (field.kind === "timestamp") return `nutcracker_${field.name}_seconds`;
  return `nutcracker_${field.name}`;
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: Labels, value: number): void {
    const set = labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",");
    this.lines.push(`${name}${set === "" ? "" : `{${set}}`} ${formatValue(value)}`);
  }

  histogram(name: string, labels: Labels, h: Histogram): void {
    const cumulative = h.cumulative();
    for (let i = 0; i < h.bounds.length; i++) {
      this.sample(`${name}_bucket`, [...labels, ["le", formatValue(h.bounds[i])]], cumulative[i]);
    }
    this.sample(`${name}_bucket`, [...labels, ["le", "+Inf"]], h.count);
    this.sample(`${name}_sum`, labels, h.sum);
    this.sample(`${name}_count`, labels, h.count);
  }

  text(): string {
    return this.lines.join("\n") + "\n";
  }
}

const HISTOGRAMS: readonly { name: string; help: string; pick: (s: CommandSeries) => Histogram }[] = [
  {
    name: "nutcracker_request_duration_seconds",
    help: "time from queueing a request to a server until its reply is parsed, per command",
    pick: (s) => s.latency,
  },
  { name: "nutcracker_request_size_bytes", help: "bytes of each request sent to a server, per command", pick: (s) => s.requestSize },
  { name: "nutcracker_response_size_bytes", help: "bytes of each reply from a server, per command", pick: (s) => s.responseSize },
];

/** The whole exposition, from live counters (not the stats-interval snapshot). */
export function renderPrometheus(input: PrometheusInput): string {
  const out = new Exposition();
  const { pools } = input;
  const totals = connectionTotals(pools);
  out.family("nutcracker_info", "gauge", "constant 1, labelled with the compatible version and the host name");
  out.sample("nutcracker_info", [["version", input.version], ["source", input.source]], 1);
  out.family("nutcracker_uptime_seconds", "gauge", "seconds since the proxy started");
  out.sample("nutcracker_uptime_seconds", [], input.uptimeSeconds);
  out.family("nutcracker_connections_total", "counter", "connections opened since start: listeners, clients and servers");
  out.sample("nutcracker_connections_total", [], totals.total);
  out.family("nutcracker_curr_connections", "gauge", "connections open now: listeners, clients and servers");
  out.sample("nutcracker_curr_connections", [], totals.curr);
  writeConfigFamilies(out, input.reload);
  writePoolFamilies(out, pools);
  const ordered = pools.map((pool) => ({ pool, servers: serversInStatsOrder(pool) }));
  writeServerFamilies(out, ordered, input.now);
  writeNodeFamilies(out, ordered, input.now);
  writeSentinelFamilies(out, pools);
  writeClusterFamilies(out, pools);
  writeMigrationFamilies(out, pools);
  writeHistograms(out, ordered, input.metrics);
  return out.text();
}

/** The config generation and the reload counters (both result labels always present). */
function writeConfigFamilies(out: Exposition, status: ReloadStatus | undefined): void {
  const reloads = status?.reloads ?? { ok: 0, error: 0 };
  const at = status?.lastReloadAt ?? null;
  out.family("nutcracker_config_generation", "gauge", "configuration generation in force: 1 at start, +1 per applied reload");
  out.sample("nutcracker_config_generation", [], status?.generation ?? 1);
  out.family("nutcracker_config_reloads_total", "counter", "reload attempts (dry runs excluded) by result");
  out.sample("nutcracker_config_reloads_total", [["result", "ok"]], reloads.ok);
  out.sample("nutcracker_config_reloads_total", [["result", "error"]], reloads.error);
  out.family("nutcracker_config_last_reload_timestamp_seconds", "gauge",
    "seconds since the epoch of the last reload attempt (dry runs excluded), 0 when none");
  out.sample("nutcracker_config_last_reload_timestamp_seconds", [], at === null ? 0 : at / 1000);
}

function writePoolFamilies(out: Exposition, pools: readonly Pool[]): void {
  for (const field of POOL_STAT_FIELDS) {
    const name = metricName(field);
    out.family(name, field.kind === "counter" ? "counter" : "gauge", helpOf(field));
    for (const pool of pools) out.sample(name, [["pool", pool.conf.name]], valueOf(pool.stats, field));
  }
  out.family("nutcracker_client_connections_opened_total", "counter", "client connections accepted since start");
  for (const pool of pools) {
    out.sample("nutcracker_client_connections_opened_total", [["pool", pool.conf.name]], pool.stats.client_connections_opened);
  }
  out.family("nutcracker_client_requests_total", "counter", "requests read from clients, each once however many fragments it became");
  for (const pool of pools) out.sample("nutcracker_client_requests_total", [["pool", pool.conf.name]], pool.stats.client_requests);
}

/** A pool with its servers in stats order, computed once per render. */
interface OrderedPool {
  readonly pool: Pool;
  readonly servers: readonly Server[];
}

function writeServerFamilies(out: Exposition, pools: readonly OrderedPool[], now: number): void {
  const each = (fn: (labels: Labels, server: Server) => void) => {
    for (const { pool, servers } of pools) {
      for (const server of servers) fn([["pool", pool.conf.name], ["server", server.conf.id]], server);
    }
  };
  for (const field of SERVER_STAT_FIELDS) {
    const name = metricName(field);
    out.family(name, field.kind === "counter" ? "counter" : "gauge", helpOf(field));
    each((labels, server) => out.sample(name, labels, valueOf(server.stats, field)));
  }
  out.family("nutcracker_server_connections_opened_total", "counter", "connections opened to the server since start");
  each((labels, server) => out.sample("nutcracker_server_connections_opened_total", labels, server.stats.server_connections_opened));
  out.family("nutcracker_server_ejected", "gauge", "1 while the server is ejected from its pool, else 0");
  each((labels, server) => out.sample("nutcracker_server_ejected", labels, server.ejectedUntil > now ? 1 : 0));
}

/** Role, shard and read health of every node; lag and its limit where there are replicas. */
function writeNodeFamilies(out: Exposition, pools: readonly OrderedPool[], now: number): void {
  const each = (fn: (labels: Labels, server: Server) => void) => {
    for (const { pool, servers } of pools) {
      for (const server of servers) fn([["pool", pool.conf.name], ["shard", shardOf(server)], ["server", server.conf.id]], server);
    }
  };
  out.family("nutcracker_node_role", "gauge", "constant 1, labelled with the node's shard and its role in it (master or replica)");
  each((labels, server) => out.sample("nutcracker_node_role", [...labels, ["role", ROLE_NAMES[server.role]]], 1));
  out.family("nutcracker_node_eligible", "gauge",
    "1 while the node may serve reads (a replica: up, not ejected, loaded, linked and within replica_max_lag; a master: not ejected nor down), else 0");
  each((labels, server) => out.sample("nutcracker_node_eligible", labels, eligibility(server, now).eligible ? 1 : 0));
  out.family("nutcracker_replica_lag_bytes", "gauge", "bytes of replication offset the replica trailed its master by at the last check");
  each((labels, server) => {
    const lag = lagOf(server);
    if (lag !== null) out.sample("nutcracker_replica_lag_bytes", labels, lag);
  });
  out.family("nutcracker_replica_max_lag_bytes", "gauge", "replica_max_lag: the lag in bytes above which a replica serves no reads");
  for (const { pool, servers } of pools) {
    if (servers.some((server) => server.role === Role.Replica)) {
      out.sample("nutcracker_replica_max_lag_bytes", [["pool", pool.conf.name]], pool.conf.replicaMaxLag);
    }
  }
  out.family("nutcracker_node_requests_total", "counter", "client requests sent to the node, by kind: read (a readonly command) or write");
  for (const { pool, servers } of pools) {
    for (const server of servers) {
      const labels: Labels = [["pool", pool.conf.name], ["server", server.conf.id]];
      out.sample("nutcracker_node_requests_total", [...labels, ["kind", "read"]], server.reads);
      out.sample("nutcracker_node_requests_total", [...labels, ["kind", "write"]], server.writes);
    }
  }
}

/** Pools with `sentinels:` only: Sentinels subscribed to, and per shard its master, failovers and last switch. */
function writeSentinelFamilies(out: Exposition, pools: readonly Pool[]): void {
  const views = pools.flatMap((pool) => {
    const view = sentinelView(pool);
    return view === null ? [] : [{ pool: pool.conf.name, view }];
  });
  const shards = views.flatMap(({ pool, view }) => view.shards.map((s) => ({ labels: [["pool", pool], ["shard", s.shard]] as Labels, s })));
  out.family("nutcracker_sentinel_reachable", "gauge", "Sentinels of the pool the proxy holds a live event subscription to now");
  for (const { pool, view } of views) out.sample("nutcracker_sentinel_reachable", [["pool", pool]], view.reachable);
  out.family("nutcracker_failovers_total", "counter", "master switches of the shard the proxy applied, from Sentinel, since start");
  for (const { labels, s } of shards) out.sample("nutcracker_failovers_total", labels, s.failovers);
  out.family("nutcracker_shard_master_info", "gauge",
    "constant 1, labelled with the address of the shard's master as Sentinel names it (absent until a Sentinel answered)");
  for (const { labels, s } of shards) if (s.master !== null) out.sample("nutcracker_shard_master_info", [...labels, ["addr", s.master]], 1);
  out.family("nutcracker_shard_last_switch_timestamp_seconds", "gauge", "seconds since the epoch of the shard's last master switch, 0 when none");
  for (const { labels, s } of shards) out.sample("nutcracker_shard_last_switch_timestamp_seconds", labels, (s.lastSwitchAt ?? 0) / 1000);
}

/** Redis Cluster pools only: redirections followed and slot map refreshes. */
function writeClusterFamilies(out: Exposition, pools: readonly Pool[]): void {
  const clusters = pools.flatMap((pool) => (pool.cluster === null ? [] : [{ pool: pool.conf.name, cluster: pool.cluster }]));
  out.family("nutcracker_cluster_redirects_total", "counter", "MOVED and ASK redirections the proxy followed for clients");
  for (const { pool, cluster } of clusters) {
    out.sample("nutcracker_cluster_redirects_total", [["pool", pool], ["type", "moved"]], cluster.redirects.moved);
    out.sample("nutcracker_cluster_redirects_total", [["pool", pool], ["type", "ask"]], cluster.redirects.ask);
  }
  out.family("nutcracker_cluster_refreshes_total", "counter", "slot map refreshes (CLUSTER SLOTS answers applied)");
  for (const { pool, cluster } of clusters) out.sample("nutcracker_cluster_refreshes_total", [["pool", pool]], cluster.refreshes);
  out.family("nutcracker_cluster_refresh_errors_total", "counter", "slot map refreshes no cluster node answered (the map was kept)");
  for (const { pool, cluster } of clusters) out.sample("nutcracker_cluster_refresh_errors_total", [["pool", pool]], cluster.refreshErrors);
  out.family("nutcracker_cluster_last_refresh_timestamp_seconds", "gauge", "seconds since the epoch of the last applied slot map, 0 before the first");
  for (const { pool, cluster } of clusters) {
    out.sample("nutcracker_cluster_last_refresh_timestamp_seconds", [["pool", pool]], (cluster.lastRefreshAt ?? 0) / 1000);
  }
}

/** Each pool's running (or last) migration: progress per old server, fallbacks, errors, ETA. */
function writeMigrationFamilies(out: Exposition, pools: readonly Pool[]): void {
  const all = pools.flatMap((pool) => {
    const status = pool.migrationStatus();
    return status === null ? [] : [{ pool: pool.conf.name, running: pool.migration !== null, status }];
  });
  const gauge = (name: string, help: string, value: (m: (typeof all)[number]) => number) => {
    out.family(name, "gauge", help);
    for (const m of all) out.sample(name, [["pool", m.pool]], value(m));
  };
  out.family("nutcracker_migration_phase", "gauge", "1 for the phase the pool's migration is in (waiting_for_proxies, moving, paused, big_keys_left, warmup, following, done)");
  for (const m of all) out.sample("nutcracker_migration_phase", [["pool", m.pool], ["phase", m.status.phase]], 1);
  gauge("nutcracker_migration_running", "1 while a migration moves the pool's keys to a new ring, else 0", (m) => (m.running ? 1 : 0));
  gauge("nutcracker_migration_eta_seconds", "estimated seconds left (store: the background mover; cache: the warmup)", (m) => m.status.eta_seconds);
  gauge("nutcracker_migration_big_keys", "keys over the big-key size left on their old servers, waiting for finish", (m) => m.status.big_keys_left);
  out.family("nutcracker_migration_errors_total", "counter", "failed migration steps (a script, a SCAN, a MIGRATE)");
  for (const m of all) out.sample("nutcracker_migration_errors_total", [["pool", m.pool]], m.status.errors);
  out.family("nutcracker_migration_fallbacks_total", "counter", "cache mode: reads that missed on the new owner and asked the old one, by result");
  for (const m of all) {
    out.sample("nutcracker_migration_fallbacks_total", [["pool", m.pool], ["result", "hit"]], m.status.fallback_hits);
    out.sample("nutcracker_migration_fallbacks_total", [["pool", m.pool], ["result", "miss"]], m.status.fallback_misses);
  }
  const perSource = (name: string, type: "counter" | "gauge", help: string, pick: (s: MigrationStatus["sources"][number]) => number) => {
    out.family(name, type, help);
    for (const m of all) for (const s of m.status.sources) out.sample(name, [["pool", m.pool], ["server", s.server]], pick(s));
  };
  perSource("nutcracker_migration_keys_scanned_total", "counter", "store mode: keys the background mover scanned on an old server", (s) => s.keys_scanned);
  perSource("nutcracker_migration_keys_moved_total", "counter", "store mode: keys the background mover moved off an old server", (s) => s.keys_moved);
  perSource("nutcracker_migration_bytes_moved_total", "counter", "store mode: bytes of the keys moved off an old server (MEMORY USAGE)", (s) => s.bytes_moved);
  perSource("nutcracker_migration_keys_remaining", "gauge", "store mode: keys of an old server not scanned yet (estimate)", (s) => s.keys_remaining_estimate);
}

function writeHistograms(out: Exposition, pools: readonly OrderedPool[], metrics: Metrics): void {
  const series: CommandSeries[] = [];
  const live = new Set<Server>();
  for (const { servers } of pools) {
    for (const server of servers) {
      live.add(server);
      series.push(...metrics.seriesOf(server));
    }
  }
  metrics.retain(live);
  for (const histogram of HISTOGRAMS) {
    out.family(histogram.name, "histogram", histogram.help);
    for (const s of series) {
      out.histogram(histogram.name, [["pool", s.pool], ["server", s.server], ["command", s.command]], histogram.pick(s));
    }
  }
}

/** The -D description, in the metric's unit: timestamps are exported in seconds, not usec. */
function helpOf(field: StatField): string {
  return field.kind === "timestamp" ? field.description.replace("usec since the epoch", "seconds since the epoch") : field.description;
}

/** A field's value; timestamps (usec) become seconds. */
function valueOf(stats: object, field: StatField): number {
  const value = (stats as Record<string, number>)[field.name];
  return field.kind === "timestamp" ? value / 1e6 : value;
}
