/**
 * A pool's topology as data: Shards (slices of the keyspace, each a master server today,
 * plus replicas later) and the Ring that maps a key to a live shard. A Ring is immutable:
 * an ejection, its expiry or a reload builds a new one and swaps one reference, so a
 * request routed under the old ring finishes on the server it was sent to.
 */
import type { PoolConf } from "../conf/types.ts";
import type { Clock } from "../net.ts";
import { HASHES, type HashFn, hashTagSpan, type Span } from "../hash/mod.ts";
import { buildDistribution, type Dispatcher } from "../dist/mod.ts";
import type { Server } from "./server.ts";
import { keySlot, type SlotMap } from "../cluster/slots.ts";

/** One slice of the keyspace. Its identity on the ring is its master's name, else host:port. */
export interface Shard {
  readonly id: string;
  /** Position in the pool's `servers:` list (the index routing vectors and stats use). */
  readonly index: number;
  readonly master: Server;
  /** Never on the ring; reads may go to them per read_policy. */
  readonly replicas: readonly Server[];
  /**
   * Set on the routes of a migration's moving keys (migration.ts): the shard that owns them
   * on the old ring and the one that owns them on the new ring; null on a ring's own shards.
   */
  readonly from: Shard | null;
  readonly to: Shard | null;
}

/** Maps a key to the shard that owns it (a hash ring, or Redis Cluster's slots). */
export interface KeyRing {
  /** The shard owning key buf[start, end), or null when none does. */
  pick(buf: Uint8Array, start: number, end: number): Shard | null;
}

/** Immutable key -> shard map over the shards that were live when it was built. */
export class Ring implements KeyRing {
  private readonly shards: readonly Shard[];
  private readonly dispatcher: Dispatcher | null;
  private readonly hash: HashFn;
  private readonly tag: Uint8Array | null;
  /** Scratch for the hash-tag span: routing allocates nothing. */
  private readonly span: Span = { start: 0, end: 0 };

  constructor(conf: PoolConf, live: readonly Shard[]) {
    this.shards = live;
    this.hash = HASHES[conf.hash as keyof typeof HASHES];
    this.tag = conf.hashTag === null ? null : new TextEncoder().encode(conf.hashTag);
    const points = live.map((shard) => ({ id: shard.id, weight: shard.master.conf.weight }));
    this.dispatcher = live.length === 0 ? null : buildDistribution(conf.distribution, points);
  }

  /** The shard owning key buf[start, end), or null when no shard is live. */
  pick(buf: Uint8Array, start: number, end: number): Shard | null {
    if (this.dispatcher === null) return null;
    const span = hashTagSpan(buf, start, end, this.tag, this.span);
    return this.shards[this.dispatcher.pick(this.hash(buf, span.start, span.end))];
  }
}

/**
 * A pool's settings, shards and ring. Ejections rebuild the ring in place of the old one
 * (twemproxy's behaviour: an ejected server's keys move to the others until it is back).
 */
export class Topology {
  readonly conf: PoolConf;
  readonly shards: readonly Shard[];
  /** Every server of the topology, in stats order. */
  readonly servers: readonly Server[];
  private readonly clock: Clock;
  private ring: KeyRing;
  /** Redis Cluster: slot -> index into `shards`, as the cluster said (null: a hash ring). */
  private readonly slots: SlotMap | null;
  /** Clock ms when an ejected server is due back (0 = none ejected). */
  private nextRebuild = 0;

  /** `replicas[i]` are the replicas of `masters[i]`'s shard. */
  constructor(
    conf: PoolConf, masters: readonly Server[], replicas: readonly (readonly Server[])[], clock: Clock, slots: SlotMap | null = null,
  ) {
    this.conf = conf;
    this.clock = clock;
    this.slots = slots;
    this.shards = masters.map((master, index) => ({ id: master.conf.id, index, master, replicas: replicas[index], from: null, to: null }));
    this.servers = [...masters, ...replicas.flat()];
    this.ring = this.buildRing();
  }

  /** The shard owning key buf[start, end) now, or null when every server is ejected. */
  route(buf: Uint8Array, start: number, end: number): Shard | null {
    if (this.nextRebuild !== 0 && this.clock.now() >= this.nextRebuild) this.ring = this.buildRing();
    return this.ring.pick(buf, start, end);
  }

  /** A server was ejected: build a new ring over the live shards. */
  rebuild(): void {
    this.ring = this.buildRing();
  }

  private buildRing(): KeyRing {
    // The cluster moves slots itself (MOVED tells the proxy); ejection never does.
    if (this.slots !== null) return new SlotRing(this.shards, this.slots);
    const now = this.clock.now();
    const live: Shard[] = [];
    let next = 0;
    for (const shard of this.shards) {
      const server = shard.master;
      if (server.ejectedUntil <= now) server.ejectedUntil = 0;
      // A shard with replicas keeps its place whatever its master's state: moving its keys
      // to other shards would split the data; its replicas serve reads meanwhile.
      if (server.ejectedUntil === 0 || shard.replicas.length > 0) live.push(shard);
      else if (next === 0 || server.ejectedUntil < next) next = server.ejectedUntil;
    }
    this.nextRebuild = next;
    return new Ring(this.conf, live);
  }
}

/** Redis Cluster's routing: a key's hash slot, then the shard that owns the slot. */
class SlotRing implements KeyRing {
  private readonly shards: readonly Shard[];
  private readonly slots: SlotMap;

  constructor(shards: readonly Shard[], slots: SlotMap) {
    this.shards = shards;
    this.slots = slots;
  }

  pick(buf: Uint8Array, start: number, end: number): Shard | null {
    return this.shards[this.slots.owners[keySlot(buf, start, end)]] ?? null;
  }
}
