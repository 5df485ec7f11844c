/**
 * /pools: each pool's loaded configuration under nutcracker.yml's key names, and each
 * server's state right now (up or ejected, since when, when it is retried, how many
 * connections are open) and its place in its shard (role, whether it may serve reads and
 * why not, lag, latency, load, reads and writes). redis_auth and sentinel_auth are never
 * shown, only whether they are set. A pool following Sentinel also shows the Sentinel view:
 * how many Sentinels it is subscribed to, and each shard's master, failovers and last switch.
 *
 * The reload status (generation, last_reload_at, last_reload_error) is repeated in every
 * pool's entry rather than put under a reserved top-level key: /pools has always been a
 * map of pool name -> entry, consumers iterate its keys as pool names, and any key we could
 * reserve is a legal pool name. GET /reload serves the same status on its own.
 */
import { formatAddr } from "../net.ts";
import type { PoolConf } from "../conf/types.ts";
import { readPolicyName } from "../conf/replicas.ts";
import type { Proxy } from "../proxy/mod.ts";
import type { Pool } from "../proxy/pool.ts";
import type { Server } from "../proxy/server.ts";
import type { ReloadStatus } from "../reload/types.ts";
import { eligibility, lagOf, ROLE_NAMES, sentinelView, shardOf } from "../stats/nodes.ts";
import { reloadFields } from "./reload.ts";

/** One server's entry in /pools. */
export interface ServerState {
  /** The line from the config ("127.0.0.1:6379:1 name"). */
  readonly server: string;
  /** The name in stats and on the hash ring. */
  readonly name: string;
  readonly address: string;
  readonly weight: number;
  readonly state: "up" | "ejected";
  /** ISO time of the last ejection while ejected, else null. */
  readonly ejected_since: string | null;
  /** ISO time the ejected server is tried again, else null. */
  readonly retry_at: string | null;
  readonly connections: number;
  /** Consecutive transport failures counted toward server_failure_limit. */
  readonly failures: number;
  readonly role: "master" | "replica";
  /** The shard's id: its master's name (or host:port). */
  readonly shard: string;
  /** May serve reads now (a master: unless ejected or down). */
  readonly eligible: boolean;
  /** Why not eligible ("ejected", "unchecked", "down", "loading", "link_down", "lagging", "not_replica"); null when eligible. */
  readonly reason: string | null;
  /** A replica serving reads while its master is down: its data may be behind. */
  readonly stale: boolean;
  /** Replication bytes behind the master at the last check; null for a master or when unknown. */
  readonly lag_bytes: number | null;
  /** Moving average of reply latency in ms, to 3 decimals (0 before the first reply). */
  readonly latency_ms: number;
  /** Client requests sent and not yet answered. */
  readonly outstanding: number;
  /** Client reads and writes sent to this server. */
  readonly reads: number;
  readonly writes: number;
}

/** One shard's entry under `sentinel.shards` in /pools. */
export interface SentinelShardState {
  /** "host:port" of the master Sentinel names (confirmed by ROLE); null until a Sentinel answered. */
  readonly master: string | null;
  /** Master switches applied since start. */
  readonly failovers: number;
  /** ISO time of the last switch, else null. */
  readonly last_switch_at: string | null;
}

/** A pool's `sentinel` entry in /pools (null for a redis pool without `sentinels:`). */
export interface SentinelState {
  /** Sentinels with a live event subscription now. */
  readonly reachable: number;
  /** The configured Sentinels, "host:port". */
  readonly sentinels: readonly string[];
  /** Per shard (Sentinel master name), in config order. */
  readonly shards: Record<string, SentinelShardState>;
}

const REDACTED = "<redacted>";

/** Every pool by name, in config order; `now` is clock ms. */
export function describePools(proxy: Proxy, now: number, reload: ReloadStatus): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const status = reloadFields(reload);
  proxy.listeners.forEach((listening) => {
    const conf = listening.pool.conf;
    out[conf.name] = {
      listen: conf.listenText,
      bound: formatAddr(listening.address),
      hash: conf.hash,
      hash_tag: conf.hashTag,
      distribution: conf.distribution,
      timeout: conf.timeout,
      backlog: conf.backlog,
      client_connections: conf.clientConnections,
      redis: conf.redis,
      tcpkeepalive: conf.tcpkeepalive,
      redis_auth: conf.redisAuth === null ? null : REDACTED,
      redis_db: conf.redisDb,
      preconnect: conf.preconnect,
      auto_eject_hosts: conf.autoEjectHosts,
      server_connections: conf.serverConnections,
      server_retry_timeout: conf.serverRetryTimeout,
      server_failure_limit: conf.serverFailureLimit,
      ...replicaKeys(listening.pool.conf),
      ...status,
      ...sentinelKeys(listening.pool),
      servers: listening.pool.servers.map((server) => serverState(server, now)),
    };
  });
  return out;
}

/** The replica keys of a redis pool (memcached pools refuse them, so show none). */
function replicaKeys(conf: PoolConf): Record<string, unknown> {
  if (!conf.redis) return {};
  return {
    read_policy: readPolicyName(conf.readPolicy),
    replica_max_lag: conf.replicaMaxLag,
    read_your_writes: conf.readYourWrites,
    replica_check_interval: conf.replicaCheckInterval,
  };
}

/**
 * sentinel_auth (redacted) and the Sentinel view of a redis pool; memcached pools refuse the
 * keys, so show none.
 */
function sentinelKeys(pool: Pool): Record<string, unknown> {
  if (!pool.conf.redis) return {};
  return { sentinel_auth: pool.conf.sentinelAuth === null ? null : REDACTED, sentinel: sentinelState(pool), cluster: clusterState(pool) };
}

/** A pool's `cluster` entry in /pools (null unless `distribution: redis_cluster`). */
export interface ClusterState {
  /** Each master's slot ranges ("0-5460,10923") by "host:port", as the map says now; empty before the first answer. */
  readonly slots: Record<string, string>;
  /** CLUSTER SLOTS answers applied since start. */
  readonly refreshes: number;
  /** ISO time of the last applied answer, else null. */
  readonly last_refresh_at: string | null;
  /** Refreshes no node answered (the map was kept), the last one's ISO time and why. */
  readonly refresh_errors: number;
  readonly last_error_at: string | null;
  readonly last_error: string | null;
  /** cluster_refresh_interval: ms between periodic refreshes. */
  readonly refresh_interval_ms: number;
  /** Redirections followed for clients since start. */
  readonly redirects: { readonly moved: number; readonly ask: number };
}

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A Redis Cluster pool's slot map summary, its freshness and redirect counts, or null for other pools. */
export function clusterState(pool: Pool): ClusterState | null {
  const cluster = pool.cluster;
  if (cluster === null) return null;
  return {
    // fromEntries: keys are addresses, never "__proto__", but stay own keys regardless.
    slots: Object.fromEntries((pool.clusterSlots() ?? []).map(({ node, slots }) => [node, slots])),
    refreshes: cluster.refreshes,
    last_refresh_at: isoOrNull(cluster.lastRefreshAt),
    refresh_errors: cluster.refreshErrors,
    last_error_at: isoOrNull(cluster.lastErrorAt),
    last_error: cluster.lastError,
    refresh_interval_ms: pool.conf.clusterRefreshInterval,
    redirects: { moved: cluster.redirects.moved, ask: cluster.redirects.ask },
  };
}

/** A pool's Sentinel view as /pools shows it, or null for a pool without Sentinels. */
export function sentinelState(pool: Pool): SentinelState | null {
  const view = sentinelView(pool);
  if (view === null) return null;
  // fromEntries: a shard named "__proto__" is still an own key.
  const shards = Object.fromEntries(view.shards.map(({ shard, master, failovers, lastSwitchAt }) => [
    shard,
    { master, failovers, last_switch_at: lastSwitchAt === null ? null : new Date(lastSwitchAt).toISOString() },
  ]));
  return { reachable: view.reachable, sentinels: view.sentinels, shards };
}

/** A server's state at clock time `now`. */
export function serverState(server: Server, now: number): ServerState {
  const ejected = server.ejectedUntil > now;
  const since = server.stats.server_ejected_at;
  const { eligible, reason } = eligibility(server, now);
  return {
    server: server.conf.text,
    name: server.conf.id,
    address: formatAddr(server.conf.addr),
    weight: server.conf.weight,
    state: ejected ? "ejected" : "up",
    ejected_since: ejected && since > 0 ? new Date(Math.floor(since / 1000)).toISOString() : null,
    retry_at: ejected ? new Date(server.ejectedUntil).toISOString() : null,
    connections: server.stats.server_connections,
    failures: server.failures,
    role: ROLE_NAMES[server.role],
    shard: shardOf(server),
    eligible,
    reason,
    stale: server.stale,
    lag_bytes: lagOf(server),
    latency_ms: Math.round(server.latencyMs * 1000) / 1000,
    outstanding: server.outstanding,
    reads: server.reads,
    writes: server.writes,
  };
}
