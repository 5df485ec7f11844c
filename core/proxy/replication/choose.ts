/**
 * Which node of a shard serves a request: writes go to the master; reads follow the
 * pool's read_policy over the nodes that may serve them now, picking by live load with
 * "power of two random choices": of two random candidates, the one with the lower
 * (latency x (outstanding + 1)) / weight. A slow or busy node gets proportionally fewer
 * reads, and no client is pinned to one replica.
 */
import { ReadPolicy } from "../../conf/types.ts";
import { ReadState, type Server } from "../server.ts";
import type { Shard } from "../topology.ts";

/** When a read is chosen: clock ms, and the replica-check round a replica must have caught up to (0 = any). */
export interface ReadMoment {
  readonly now: number;
  readonly fence: number;
}

/** The node for a read of `shard` under `policy`; null when none may serve it. */
export function chooseReadNode(shard: Shard, policy: ReadPolicy, at: ReadMoment, random: () => number): Server | null {
  const master = shard.master;
  if (policy === ReadPolicy.Master || shard.replicas.length === 0) return master;
  const masterUp = isUp(master, at.now);
  if (policy === ReadPolicy.PreferMaster && masterUp) return master;
  // A client that wrote here reads from the master until a replica has caught up with it.
  if (at.fence > 0 && masterUp && !shard.replicas.some((node) => node.syncedRound >= at.fence)) return master;
  const replicas = shard.replicas.filter((node) => mayRead(node, at));
  if (policy === ReadPolicy.Any && masterUp) replicas.push(master);
  if (replicas.length > 0) return leastLoaded(replicas, random);
  if (policy === ReadPolicy.Replica) return null;
  return master;
}

/** Reachable and not ejected. */
function isUp(node: Server, now: number): boolean {
  return node.ejectedUntil <= now && node.readState !== ReadState.Down;
}

function mayRead(node: Server, at: ReadMoment): boolean {
  return node.readState === ReadState.Eligible && node.ejectedUntil <= at.now && node.syncedRound >= at.fence;
}

function leastLoaded(nodes: readonly Server[], random: () => number): Server {
  if (nodes.length === 1) return nodes[0];
  const i = Math.floor(random() * nodes.length);
  const j = Math.floor(random() * (nodes.length - 1));
  const a = nodes[i];
  const b = nodes[j >= i ? j + 1 : j];
  return cost(a) <= cost(b) ? a : b;
}

/** Expected wait per unit of read share: an unmeasured node counts as 1 ms. */
function cost(node: Server): number {
  return ((node.latencyMs || 1) * (node.outstanding + 1)) / node.conf.weight;
}
