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

/**
 * The node for a read of `shard` under `policy` at clock `now`; `fence` is the replica-check
 * round a replica must have reached for this client (read_your_writes; 0 = any). Null when
 * no node may serve it. Allocates nothing: it runs for every read.
 */
export function chooseReadNode(shard: Shard, policy: ReadPolicy, now: number, fence: number, random: () => number): Server | null {
  const master = shard.master;
  if (policy === ReadPolicy.Master || shard.replicas.length === 0) return master;
  const masterUp = isUp(master, now);
  if (policy === ReadPolicy.PreferMaster && masterUp) return master;
  const withMaster = policy === ReadPolicy.Any && masterUp;
  const count = countCandidates(shard, now, fence) + (withMaster ? 1 : 0);
  // A client that wrote here reads from the master until a replica has caught up with it.
  if (fence > 0 && masterUp && count === (withMaster ? 1 : 0)) return master;
  if (count === 0) {
    if (policy === ReadPolicy.Replica) return null;
    // The master is down too (a failover): a replica whose connection was merely dropped (a
    // Sentinel reconfiguring it kills its clients) is a better bet than a dead master.
    return masterUp ? master : (lastResort(shard, now) ?? master);
  }
  if (count === 1) return candidate(shard, 0, withMaster, now, fence);
  const i = Math.floor(random() * count);
  const j = Math.floor(random() * (count - 1));
  const a = candidate(shard, i, withMaster, now, fence);
  const b = candidate(shard, j >= i ? j + 1 : j, withMaster, now, fence);
  return cost(a) <= cost(b) ? a : b;
}

/** Reachable and not ejected. */
function isUp(node: Server, now: number): boolean {
  return node.ejectedUntil <= now && node.readState !== ReadState.Down;
}

function mayRead(node: Server, now: number, fence: number): boolean {
  return node.readState === ReadState.Eligible && node.ejectedUntil <= now && node.syncedRound >= fence;
}

function countCandidates(shard: Shard, now: number, fence: number): number {
  let n = 0;
  for (const node of shard.replicas) if (mayRead(node, now, fence)) n++;
  return n;
}

/** The k-th node that may serve the read: eligible replicas in order, then the master when it counts. */
function candidate(shard: Shard, k: number, withMaster: boolean, now: number, fence: number): Server {
  for (const node of shard.replicas) {
    if (!mayRead(node, now, fence)) continue;
    if (k === 0) return node;
    k--;
  }
  if (withMaster) return shard.master;
  throw new Error("chooseReadNode: candidate out of range");
}

/** A replica that is not ejected and whose trouble may be over (its connection, its link). */
function lastResort(shard: Shard, now: number): Server | null {
  for (const node of shard.replicas) {
    if (node.ejectedUntil > now) continue;
    if (node.readState === ReadState.Down || node.readState === ReadState.LinkDown) return node;
  }
  return null;
}

/** Expected wait per unit of read share: an unmeasured node counts as 1 ms. */
function cost(node: Server): number {
  return ((node.latencyMs || 1) * (node.outstanding + 1)) / node.conf.weight;
}
