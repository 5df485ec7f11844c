/**
 * A node's place and read health as words, for /pools and the Prometheus exposition: its
 * role, its shard, whether it may serve reads now and, when not, why. The codes the proxy
 * keeps (Role, ReadState) are turned into words by the tables here, one entry per code.
 */
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
