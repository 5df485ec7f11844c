/**
 * The config a pool runs with once Sentinel has spoken: each named shard's master at the
 * address Sentinel gave, its replicas the static ones plus those Sentinel lists. Names and
 * weights stay as written, so the ring (built from them) is the same: no key moves.
 */
import type { PoolConf, ServerConf, ShardConf } from "../conf/types.ts";
import { type Addr, formatAddr } from "../net.ts";
import type { ShardPlacement } from "./watcher.ts";

/** `conf` with the placements applied (shards without one as configured). */
export function placeShards(conf: PoolConf, placements: ReadonlyMap<string, ShardPlacement>): PoolConf {
  if (placements.size === 0) return conf;
  return { ...conf, shards: conf.shards.map((shard) => placeShard(shard, placements.get(shard.primary.id))) };
}

function placeShard(shard: ShardConf, placement: ShardPlacement | undefined): ShardConf {
  if (placement === undefined) return shard;
  const master = formatAddr(placement.master);
  const primary: ServerConf = { ...shard.primary, addr: placement.master, text: `${master}:${shard.primary.weight} ${shard.primary.id}` };
  const replicas: ServerConf[] = [];
  const seen = new Set([master]);
  for (const replica of [...shard.replicas, ...placement.replicas.map(discovered)]) {
    const key = formatAddr(replica.addr);
    if (seen.has(key)) continue;
    seen.add(key);
    replicas.push(replica);
  }
  return { primary, replicas };
}

function discovered(addr: Addr): ServerConf {
  const text = formatAddr(addr);
  return { addr, weight: 1, name: null, id: text, text };
}
