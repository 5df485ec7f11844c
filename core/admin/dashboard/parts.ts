/**
 * What one proxy process knows of its pools for the dashboard, rates aside: a PoolPart per
 * pool (listen address, clients, outstanding, the Sentinel, cluster and migration views, every node's
 * role and state) with the cumulative counters the rates come from. In one process the page
 * is built from these parts and the process's own History. Under `--workers N` each worker
 * answers its parts and the supervisor merges them (mergeParts) and keeps a History over
 * the sums (countedPool), so its page shows the whole proxy.
 */
import { formatAddr } from "../../net.ts";
import type { Pool } from "../../proxy/pool.ts";
import type { Server } from "../../proxy/server.ts";
import type { HistoryNode, HistoryPool, LatencyReader } from "../../stats/history.ts";
import { LATENCY_BUCKETS_SECONDS } from "../../stats/histogram.ts";
import { eligibility, lagOf, ROLE_NAMES, shardOf } from "../../stats/nodes.ts";
import { type ClusterState, clusterState, type SentinelState, sentinelState } from "../pools.ts";
import { mergeMigrations, type MigrationView, migrationView } from "../migration.ts";

/** A node's state word: up, ejected (by auto_eject_hosts), down (a master found unreachable) or ineligible (a replica that serves no reads). */
export type NodeStateWord = "up" | "ejected" | "down" | "ineligible";

/** One node (server) as one process sees it. */
export interface NodePart {
  readonly name: string;
  readonly address: string;
  readonly shard: string;
  readonly role: "master" | "replica";
  readonly state: NodeStateWord;
  /** Why not eligible for reads (ejected, down, lagging, ...); null when up. */
  readonly reason: string | null;
  /** Clock ms the ejected node is retried at, else null. */
  readonly retry_at: number | null;
  /** A replica serving reads while its master is down. */
  readonly stale: boolean;
  readonly lag_bytes: number | null;
  readonly outstanding: number;
  readonly connections: number;
  /** Cumulative: requests sent to the node. */
  readonly requests: number;
  /** Cumulative latency bucket counts (LATENCY_BUCKETS_SECONDS, +Inf last); empty when not collected. */
  readonly latency: readonly number[];
}

/** One pool as one process sees it. */
export interface PoolPart {
  readonly name: string;
  readonly listen: string;
  readonly bound: string;
  readonly protocol: "redis" | "memcached";
  readonly clients: number;
  readonly outstanding: number;
  readonly auto_eject_hosts: boolean;
  readonly sentinel: SentinelState | null;
  readonly cluster: ClusterState | null;
  /** The running (or last) migration after a reload changed the servers; null when none. */
  readonly migration: MigrationView | null;
  /** Cumulative: requests read from clients, and forward errors. */
  readonly client_requests: number;
  readonly forward_error: number;
  /** In the pool's server order; `shard` groups them. */
  readonly nodes: readonly NodePart[];
}

/**
 * A pool's part at clock `now`; with `latency`, each node's latency buckets are read too
 * (a worker's answer needs them; in one process the History reads them itself).
 * @example poolPart(listening.pool, formatAddr(listening.address), clock.now(), null)
 */
export function poolPart(pool: Pool, bound: string, now: number, latency: LatencyReader | null): PoolPart {
  const conf = pool.conf;
  const nodes = pool.servers.map((server) => nodePart(server, now, latency));
  return {
    name: conf.name,
    listen: conf.listenText,
    bound,
    protocol: conf.redis ? "redis" : "memcached",
    clients: pool.stats.client_connections,
    outstanding: nodes.reduce((sum, n) => sum + n.outstanding, 0),
    auto_eject_hosts: conf.autoEjectHosts,
    sentinel: conf.redis ? sentinelState(pool) : null,
    cluster: conf.redis ? clusterState(pool) : null,
    migration: migrationView(pool),
    client_requests: pool.stats.client_requests,
    forward_error: pool.stats.forward_error,
    nodes,
  };
}

/** Buckets read per node: one per LATENCY_BUCKETS_SECONDS bound and +Inf. */
const LATENCY_SLOTS = LATENCY_BUCKETS_SECONDS.length + 1;

function nodePart(server: Server, now: number, latency: LatencyReader | null): NodePart {
  const { eligible, reason } = eligibility(server, now);
  const ejected = server.ejectedUntil > now;
  const role = ROLE_NAMES[server.role];
  let state: NodeStateWord = "up";
  if (ejected) state = "ejected";
  else if (!eligible) state = reason === "down" && role === "master" ? "down" : "ineligible";
  let buckets: number[] = [];
  if (latency !== null) {
    const out = new Float64Array(LATENCY_SLOTS);
    latency(server, out);
    buckets = Array.from(out);
    while (buckets.length > 0 && buckets[buckets.length - 1] === 0) buckets.pop();
  }
  return {
    name: server.conf.id,
    address: formatAddr(server.conf.addr),
    shard: shardOf(server),
    role,
    state,
    reason: eligible ? null : reason,
    retry_at: ejected ? server.ejectedUntil : null,
    stale: server.stale,
    lag_bytes: lagOf(server),
    outstanding: server.outstanding,
    connections: server.stats.server_connections,
    requests: server.stats.requests,
    latency: buckets,
  };
}

/** How bad a state is, for merging: the worst any process sees is shown. */
const SEVERITY: Readonly<Record<NodeStateWord, number>> = { up: 0, ineligible: 1, down: 2, ejected: 3 };

/**
 * Several processes' parts as one: pools and nodes by name in first-seen order; counts,
 * counters and latency buckets summed; a node's state the worst any process sees (ejection
 * is per process), its lag the largest; the Sentinel view the first process's, the cluster
 * view's counters summed, the migration merged by mergeMigrations (the driver's progress).
 * @example mergeParts([worker1Parts, worker2Parts])
 */
export function mergeParts(processes: readonly (readonly PoolPart[])[]): PoolPart[] {
  const pools = new Map<string, PoolPart>();
  for (const parts of processes) {
    for (const part of parts) {
      const seen = pools.get(part.name);
      pools.set(part.name, seen === undefined ? part : mergePool(seen, part));
    }
  }
  return [...pools.values()];
}

function mergePool(a: PoolPart, b: PoolPart): PoolPart {
  const nodes = new Map<string, NodePart>(a.nodes.map((n) => [n.name, n]));
  for (const node of b.nodes) {
    const seen = nodes.get(node.name);
    nodes.set(node.name, seen === undefined ? node : mergeNode(seen, node));
  }
  return {
    ...a,
    clients: a.clients + b.clients,
    outstanding: a.outstanding + b.outstanding,
    sentinel: a.sentinel ?? b.sentinel,
    cluster: a.cluster === null || b.cluster === null ? a.cluster ?? b.cluster : mergeCluster(a.cluster, b.cluster),
    migration: mergeMigrations([a.migration, b.migration]),
    client_requests: a.client_requests + b.client_requests,
    forward_error: a.forward_error + b.forward_error,
    nodes: [...nodes.values()],
  };
}

function mergeNode(a: NodePart, b: NodePart): NodePart {
  const worst = SEVERITY[b.state] > SEVERITY[a.state] ? b : a;
  const lags = [a.lag_bytes, b.lag_bytes].filter((l): l is number => l !== null);
  const latency = a.latency.length >= b.latency.length ? [...a.latency] : [...b.latency];
  const other = latency.length === a.latency.length ? b.latency : a.latency;
  other.forEach((count, i) => (latency[i] += count));
  return {
    ...worst,
    retry_at: a.retry_at === null || b.retry_at === null ? a.retry_at ?? b.retry_at : Math.max(a.retry_at, b.retry_at),
    stale: a.stale || b.stale,
    lag_bytes: lags.length === 0 ? null : Math.max(...lags),
    outstanding: a.outstanding + b.outstanding,
    connections: a.connections + b.connections,
    requests: a.requests + b.requests,
    latency,
  };
}

/** Each process follows the cluster itself: the newest map and error win, counters add up. */
function mergeCluster(a: ClusterState, b: ClusterState): ClusterState {
  const newer = (b.last_refresh_at ?? "") > (a.last_refresh_at ?? "") ? b : a;
  const lastError = (b.last_error_at ?? "") > (a.last_error_at ?? "") ? b : a;
  return {
    ...newer,
    refreshes: a.refreshes + b.refreshes,
    refresh_errors: a.refresh_errors + b.refresh_errors,
    last_error_at: lastError.last_error_at,
    last_error: lastError.last_error,
    redirects: { moved: a.redirects.moved + b.redirects.moved, ask: a.redirects.ask + b.redirects.ask },
  };
}

/** A node of a merged part, as History reads it. */
interface CountedNode extends HistoryNode {
  readonly latency: readonly number[];
}

/**
 * A merged part as History reads a pool, nodes in the part's order.
 * @example history.sample(now) over () => merged.map(countedPool), with countedLatency
 */
export function countedPool(part: PoolPart): HistoryPool {
  return {
    conf: { name: part.name },
    stats: { forward_error: part.forward_error, client_requests: part.client_requests },
    servers: part.nodes.map((n): CountedNode => ({ conf: { id: n.name }, stats: { requests: n.requests }, latency: n.latency })),
  };
}

/** History's latency reader for countedPool's nodes. */
export const countedLatency: LatencyReader = (node, out) => {
  const latency = (node as CountedNode).latency;
  for (let i = 0; i < latency.length && i < out.length; i++) out[i] += latency[i];
};
