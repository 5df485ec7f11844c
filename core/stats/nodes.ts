/**
 * A node's place and read health as words, for /pools and the Prometheus exposition: its
 * role, its shard, whether it may serve reads now and, when not, why. The codes the proxy
 * keeps (Role, ReadState) are turned into words by the tables here, one entry per code.
 * Also the Sentinel view of a pool's shards (master address, failovers, last switch).
 */
import { formatAddr } from "../net.ts";
import type { Pool } from "../proxy/pool.ts";
import { ReadState, Role, type Server } from "../proxy/server.ts";

/** The word for each Role code. */
export const ROLE_NAMES: Readonly<Record<Role, "master" | "replica">> = {
  [Role.Master]: "master",
  [Role.Replica]: "replica",
};

/** The reason for each ReadState code (null: eligible, no reason). */
export const READ_STATE_REASONS: Readonly<Record<ReadState, string | null>> = {
  [ReadState.Eligible]: null,
  [ReadState.Unchecked]: "unchecked",
  [ReadState.Down]: "down",
  [ReadState.Loading]: "loading",
  [ReadState.LinkDown]: "link_down",
  [ReadState.Lagging]: "lagging",
  [ReadState.NotReplica]: "not_replica",
};

/** The reason of a node ejected by the failure policy, whatever its last check said. */
export const EJECTED_REASON = "ejected";

/** Whether a node may serve reads at clock `now`, and why not. */
export interface Eligibility {
  readonly eligible: boolean;
  /** null when eligible; else "ejected" or a READ_STATE_REASONS word. */
  readonly reason: string | null;
}

/**
 * The shard a server belongs to (a master is its own shard).
 * @example shardOf(replica) // "shard1" for "shard1/127.0.0.1:7379"
 */
export function shardOf(server: Server): string {
  return server.shardId;
}

/**
 * Whether `server` may serve reads at clock `now`, as routing decides it: not ejected, and
 * for a replica its last check said Eligible; a master is eligible unless ejected or down.
 * @example eligibility(replica, clock.now()) // { eligible: false, reason: "lagging" }
 */
export function eligibility(server: Server, now: number): Eligibility {
  if (server.ejectedUntil > now) return { eligible: false, reason: EJECTED_REASON };
  const state = server.role === Role.Master && server.readState !== ReadState.Down ? ReadState.Eligible : server.readState;
  const reason = READ_STATE_REASONS[state];
  return { eligible: reason === null, reason };
}

/** A replica's lag in bytes, or null for a master and for a lag not known yet. */
export function lagOf(server: Server): number | null {
  return server.role === Role.Replica && server.lagBytes >= 0 ? server.lagBytes : null;
}

/** What Sentinel says of one shard, as /pools and /metrics show it. */
export interface SentinelShard {
  /** The shard's id: its server's name, the Sentinel master name. */
  readonly shard: string;
  /** "host:port" of the master Sentinel names (confirmed by ROLE); null until a Sentinel answered. */
  readonly master: string | null;
  /** Master switches the proxy applied since it started following this shard. */
  readonly failovers: number;
  /** Clock ms of the last switch, or null. */
  readonly lastSwitchAt: number | null;
}

/** A pool's Sentinel view: the Sentinels, how many are subscribed to now, and every shard. */
export interface SentinelView {
  readonly reachable: number;
  readonly sentinels: readonly string[];
  /** In config order; shards a reload removed are left out. */
  readonly shards: readonly SentinelShard[];
}

/**
 * The Sentinel view of `pool`, or null for a pool without `sentinels:`.
 * @example sentinelView(pool)?.shards[0] // { shard: "shard1", master: "127.0.0.1:6380", failovers: 1, lastSwitchAt: 1733416316000 }
 */
export function sentinelView(pool: Pool): SentinelView | null {
  const watcher = pool.sentinel;
  if (watcher === null) return null;
  const shards = pool.conf.shards.map(({ primary }): SentinelShard => {
    const seen = watcher.shards.get(primary.id);
    return { shard: primary.id, master: seen?.master ?? null, failovers: seen?.failovers ?? 0, lastSwitchAt: seen?.lastSwitchAt ?? null };
  });
  return { reachable: watcher.reachable, sentinels: pool.conf.sentinels.map(formatAddr), shards };
}
