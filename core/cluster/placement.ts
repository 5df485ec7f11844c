/**
 * The config a Redis Cluster pool runs with: the cluster's masters (with their replicas) as
 * its shards, in the order of the last layout; before the first answer, the seeds, with
 * every slot on the first one (MOVED then teaches the rest).
 */
import type { PoolConf, ServerConf, ShardConf } from "../conf/types.ts";
import { type Addr, formatAddr } from "../net.ts";
import { SlotMap, SLOTS } from "./slots.ts";
import type { ClusterLayout } from "./watcher.ts";

export function clusterConf(conf: PoolConf, layout: ClusterLayout | null): { conf: PoolConf; slots: SlotMap } {
  if (layout === null) {
    const slots = new SlotMap();
    slots.assign(0, SLOTS - 1, 0);
    return { conf: { ...conf, shards: conf.shards.map((s) => ({ primary: s.primary, replicas: [] })) }, slots };
  }
  const shards: ShardConf[] = layout.shards.map((s) => ({ primary: node(s.master), replicas: s.replicas.map(node) }));
  return { conf: { ...conf, shards }, slots: layout.slots };
}

function node(addr: Addr): ServerConf {
  const text = formatAddr(addr);
  return { addr, weight: 1, name: null, id: text, text };
}
