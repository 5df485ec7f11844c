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

/** The node for a read of `shard` under `policy` at clock `now`; null when none may serve it. */
export function chooseReadNode(shard: Shard, policy: ReadPolicy, now: number, random: () => number): Server | null {
  const master = shard.master;
  if (policy === ReadPolicy.Master || shard.replicas.length === 0) return master;
  const masterUp = isUp(master, now);
  if (policy === ReadPolicy.PreferMaster && masterUp) return master;
  const replicas = shard.replicas.filter((node) => mayRead(node, now));
  if (policy === ReadPolicy.Any && masterUp) replicas.push(master);
  if (replicas.length > 0) return leastLoaded(replicas, random);
  if (policy === ReadPolicy.Replica) return null;
  return master;
}

/** Reachable and not ejected. */
function isUp(node: Server, now: number): boolean {
  return node.ejectedUntil <= now && node.readState !== ReadState.Down;
}

function mayRead(node: Server, now: number): boolean {
  return node.readState === ReadState.Eligible && node.ejectedUntil <= now;
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
