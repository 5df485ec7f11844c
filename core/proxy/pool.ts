/**
 * A server pool: its counters and its current Topology. A reload hands the pool a new
 * config: it builds a new Topology (servers present in both keep their connections,
 * counters and health) and swaps one reference; requests already sent finish where they
 * went, and servers no longer listed close once they owe no replies.
 */
import type { PoolConf, ServerConf, ShardConf } from "../conf/types.ts";
import { type Addr, formatAddr } from "../net.ts";
import { PoolCounters } from "../stats/counters.ts";
import { ReadState, Role, Server, type ServerEnv } from "./server.ts";
import { ReplicaMonitor } from "./replication/monitor.ts";
import { chooseReadNode } from "./replication/choose.ts";
import { retryableFailure, setAside } from "./replication/retry.ts";
import { CopyMonitor, copyMissed } from "./replication/copies.ts";
import { ReadPolicy } from "../conf/types.ts";
import { type Shard, Topology } from "./topology.ts";
import type { ClientLimits } from "./limits.ts";
import { limitsFor } from "./limits.ts";
import type { Req } from "./req.ts";
import type { Protocol } from "./protocol.ts";
import { type ShardPlacement, SentinelWatcher } from "../sentinel/watcher.ts";
import { placeShards } from "../sentinel/placement.ts";
import { PushLink } from "./pushlink.ts";
import { REDIS_CLUSTER } from "../conf/directives.ts";
import { ClusterWatcher, type ClusterLayout } from "../cluster/watcher.ts";
import { clusterConf } from "../cluster/placement.ts";
import { Redirect, redirectOf } from "../cluster/redirect.ts";
import type { SlotMap } from "../cluster/slots.ts";
import { Migration, type MigrationStatus } from "../migration/migration.ts";
import { MigrationMode } from "../conf/types.ts";
import {
  migratingName, newProxyId, RecordPhase, recordedMigration, recordKey, ringId, stableName, storePreamble,
} from "../migration/coordination.ts";
import { ask } from "../migration/copy.ts";
import { command } from "../migration/resp.ts";
import { MOVER_CLIENT } from "../migration/store.ts";
import { parseServer } from "../conf/addr.ts";

/** What every pool shares: I/O, clock, log, flusher, protocol, and the metrics observer. */
export interface PoolBase extends Pick<ServerEnv, "net" | "clock" | "log" | "flusher" | "protocol"> {
  /** Test and embedding overrides of the limits the pool's config sets. */
  readonly limitOverrides: Partial<ClientLimits>;
  readonly observe: ((pool: Pool, server: Server, req: Req, reply: Uint8Array, now: number) => void) | null;
}

export class Pool {
  readonly stats = new PoolCounters();
  /** Following Sentinel (a pool with `sentinels:`), else null. */
  sentinel: SentinelWatcher | null = null;
  /** Following a Redis Cluster's slot map (`distribution: redis_cluster`), else null. */
  cluster: ClusterWatcher | null = null;
  /** Moving keys from an old ring to this pool's ring (after a reload changed `servers:`), else null. */
  migration: Migration | null = null;
  /** The last migration that ended (what GET /pools/<pool>/migration shows once it is done). */
  private lastMigration: Migration | null = null;
  /** The cluster's layout as last refreshed (null before the first answer). */
  private layout: ClusterLayout | null = null;
  private fileConf: PoolConf;
  /** Where Sentinel put each shard (by name); applied over fileConf. */
  private readonly placements = new Map<string, ShardPlacement>();
  private firstResolve: Promise<void> = Promise.resolve();
  /** Dedicated connections in use and the cap, shared by every server of the pool. */
  private readonly dedicated = { used: 0, max: 0 };
  private topology: Topology;
  private env: ServerEnv;
  /** Store mode: what this pool's server connections are named (who routes how, for the other proxies). */
  private connName = "";
  private readonly proxyId: string;
  private clientLimits: ClientLimits;
  private readonly base: PoolBase;
  private readonly monitor: ReplicaMonitor | CopyMonitor;

  constructor(conf: PoolConf, base: PoolBase) {
    this.base = base;
    this.proxyId = newProxyId(base.clock.now());
    this.fileConf = conf;
    this.connName = stableName(conf.name, ringId(conf));
    this.clientLimits = limitsFor(conf, base.limitOverrides);
    this.env = this.makeEnv(conf);
    this.topology = this.layoutTopology(new Map());
    const Monitor = conf.redis ? ReplicaMonitor : CopyMonitor;
    this.monitor = new Monitor(() => this.topology.shards, () => this.conf, base.clock);
    this.monitor.start();
    this.followSentinels(conf);
    this.followCluster(conf);
    if (conf.redis && conf.migration === MigrationMode.Store) this.firstResolve = Promise.all([this.firstResolve, this.joinRecordedMigration()]).then(() => {});
  }

  /** The pool's config as last loaded from the file (Sentinel's addresses are in `servers`). */
  get conf(): PoolConf {
    return this.fileConf;
  }

  /** Resolves once Sentinel was first asked about every shard (at once without Sentinels). */
  settled(): Promise<void> {
    return this.firstResolve;
  }

  /** Every shard in config order. */
  get shards(): readonly Shard[] {
    return this.topology.shards;
  }

  /** Every server in stats order (config order). */
  get servers(): readonly Server[] {
    return this.topology.servers;
  }

  get protocol(): Protocol {
    return this.base.protocol;
  }

  /** The limits clients of this pool are held to (config keys, then overrides). */
  get limits(): ClientLimits {
    return this.clientLimits;
  }

  /**
   * The shard owning key buf[start, end) now; null when every server is ejected. During a
   * migration, a key that moves gets the route of its (old owner, new owner) pair.
   */
  route(buf: Uint8Array, start: number, end: number): Shard | null {
    const to = this.topology.route(buf, start, end);
    const migration = this.migration;
    return migration === null || to === null ? to : migration.routeOf(buf, start, end, to);
  }

  /** The node of `shard` that serves `req` now: its master for writes, per read_policy for reads. */
  nodeFor(shard: Shard, req: Req, fence: number): Server | null {
    if (shard.replicas.length === 0) return shard.master;
    // The shard keeps its place when its master is ejected; writes then fail fast.
    if (!req.read) return shard.master.ejectedUntil > this.base.clock.now() ? null : shard.master;
    // Memcached copies have one rule: any copy that is up to date, by load.
    const policy = this.conf.redis ? this.conf.readPolicy : ReadPolicy.Any;
    return chooseReadNode(shard, policy, this.base.clock.now(), fence, Math.random);
  }

  /**
   * Where a read goes a second time, or null when its reply stands: after a node not ready
   * (transport, -LOADING, -MASTERDOWN) another node by policy, the node set aside; after a
   * memcached copy's miss, or a cluster replica's nil (a slot moving away), the master.
   */
  retryTarget(shard: Shard, req: Req, reply: Uint8Array | null, transportFailed: boolean, fence: number): Server | null {
    const node = req.node!;
    const replica = node.role === Role.Replica;
    if (!this.conf.redis) {
      if (!replica || !(transportFailed || copyMissed(req, reply))) return null;
      if (transportFailed) setAside(node, reply, transportFailed);
      return shard.master;
    }
    if (this.cluster !== null && replica && isNilBulk(reply)) return shard.master;
    if (!retryableFailure(reply, transportFailed)) return null;
    setAside(node, reply, transportFailed);
    return this.nodeFor(shard, req, fence);
  }

  /** read_your_writes: a write answered now is on every replica that reports this replica-check round. */
  get nextCheckRound(): number {
    return this.monitor instanceof ReplicaMonitor ? this.monitor.round + 1 : 0;
  }

  /** Index (config order) of the server owning key buf[start, end), or -1 when none is live. */
  serverIndexFor(buf: Uint8Array, start: number, end: number): number {
    return this.route(buf, start, end)?.index ?? -1;
  }

  /**
   * Reload: take `conf` (same pool, maybe renamed) from now on.
   * @example pool.apply(newConf.pools[0])
   */
  apply(conf: PoolConf): void {
    const before = this.topology;
    const migrate = conf.migration !== MigrationMode.None && this.migration === null &&
      ringSignature(conf) !== ringSignature(before.conf);
    this.fileConf = conf;
    this.clientLimits = limitsFor(conf, this.base.limitOverrides);
    if (migrate) this.connName = migratingName(conf.name, ringId(before.conf), ringId(conf));
    else if (this.migration === null) this.connName = stableName(conf.name, ringId(conf));
    this.env = this.makeEnv(conf);
    this.rebuild(migrate ? before.servers : []);
    // The old ring's servers no longer listed keep serving the migration: renamed too.
    if (migrate) for (const server of before.servers) server.adopt(server.conf, this.env);
    if (migrate) this.startMigration(before, this.topology, false);
    if (conf.preconnect) this.preconnect();
    this.monitor.start();
    this.followSentinels(conf);
  }

  /** A subscriber connection to the master of shard `shardId`, wherever it is when (re)connecting. */
  pushLink(shardId: string, onMessage: (reply: Uint8Array) => void, onReconnect: () => void): PushLink {
    const { net, clock, protocol } = this.base;
    const address = () => (this.topology.shards.find((s) => s.id === shardId) ?? this.topology.shards[0]).master.conf.addr;
    return new PushLink({ net, clock, address, preamble: protocol.preamble(this.fileConf), onMessage, onReconnect });
  }

  /** A write was refused with -READONLY: its master was demoted; with Sentinel, ask again now. */
  masterRefused(shard: Shard, reply: Uint8Array | null): void {
    if (this.sentinel !== null && reply !== null && startsWithReadonly(reply)) this.sentinel.demoted(shard.id);
  }

  /**
   * Why a reload to `conf` must wait, or null: a migration is running and `conf` would change
   * the ring it moves keys to (POST /reload answers 409: finish or abort first).
   */
  reloadConflict(conf: PoolConf): string | null {
    const migration = this.migration;
    if (migration === null || ringSignature(conf) === ringSignature(migration.to.conf)) return null;
    return `pool '${this.fileConf.name}' is migrating to its new servers; finish or abort the migration ` +
      `(POST /pools/${this.fileConf.name}/migration/finish or /abort) before changing its servers again`;
  }

  /** The running migration's status, else the last one's, else null. */
  migrationStatus(): MigrationStatus | null {
    return (this.migration ?? this.lastMigration)?.status() ?? null;
  }

  /**
   * Abort the running migration: the old ring is the pool's ring again, and keys that already
   * moved are found (cache) or moved back (store) by the same rules. False when none runs.
   */
  abortMigration(): boolean {
    const running = this.migration;
    if (running === null) return false;
    running.stop();
    this.topology = running.from;
    this.renameConnections(migratingName(this.fileConf.name, running.toId, running.fromId), running.to.servers);
    this.startMigration(running.to, running.from, !running.reverse);
    return true;
  }

  /**
   * Store mode, at start: if the servers record an unfinished migration to this pool's ring
   * (this proxy restarted, or started late, with the new config), join it rather than route
   * by the new ring alone while keys are still on their old servers.
   */
  private async joinRecordedMigration(): Promise<void> {
    const conf = this.fileConf;
    const mine = ringId(conf);
    for (const shard of this.topology.shards) {
      const reply = await ask(shard.master, MOVER_CLIENT, command("HMGET", recordKey(conf.name), "from", "to", "phase", "from_servers"));
      const found = recordedMigration(reply);
      if (found === null || found.to !== mine || found.phase === RecordPhase.Done) continue;
      const servers = found.fromServers.map((line) => parseServer(line));
      if (servers.some((s) => !s.ok)) continue;
      const fromConf = { ...conf, shards: servers.map((s) => ({ primary: (s as { value: ServerConf }).value, replicas: [] })) };
      if (ringId(fromConf) !== found.from) continue;
      this.base.log.notice(`pool '${conf.name}': joining the store migration from ring ${found.from} recorded on ${shard.master.conf.id}`);
      const kept = new Map(this.topology.servers.map((server) => [serverKey(server.conf), server]));
      const from = this.buildTopology(fromConf, kept);
      this.renameConnections(migratingName(conf.name, found.from, mine), from.servers);
      this.startMigration(from, this.topology, false);
      return;
    }
  }

  private startMigration(from: Topology, to: Topology, reverse: boolean): void {
    const migration: Migration = new Migration({
      clock: this.base.clock,
      log: this.base.log,
      conf: { ...this.fileConf, migration: this.migration?.mode ?? this.fileConf.migration },
      from,
      to,
      reverse,
      proxyId: this.proxyId,
      onDone: () => this.migrationDone(migration),
    });
    this.migration = migration;
    migration.start();
  }

  /** One ring again: the old ring's servers the pool no longer has close once they owe no replies. */
  private migrationDone(migration: Migration): void {
    if (this.migration !== migration) return;
    this.migration = null;
    this.lastMigration = migration;
    this.renameConnections(stableName(this.fileConf.name, migration.toId), []);
    const now = new Set(this.topology.servers);
    for (const server of migration.from.servers) if (!now.has(server)) server.retire();
  }

  /** Store mode: connections carry a new name from now on (the old ones close once idle). */
  private renameConnections(name: string, alsoServers: readonly Server[]): void {
    this.connName = name;
    this.env = this.makeEnv(this.fileConf);
    for (const server of new Set([...this.topology.servers, ...alsoServers])) server.adopt(server.conf, this.env);
  }

  /** A new topology from the file config and Sentinel's placements, keeping matching servers. */
  private rebuild(alsoInUse: readonly Server[] = []): void {
    const kept = new Map(this.topology.servers.map((server) => [serverKey(server.conf), server]));
    this.topology = this.layoutTopology(kept);
    // A migration still reads its old ring's servers: they close when it is done.
    const migrating = new Set([...(this.migration?.from.servers ?? []), ...alsoInUse]);
    for (const gone of kept.values()) if (!migrating.has(gone)) gone.retire();
    // Sentinel may have brought the first replicas: their checks start now.
    this.monitor.start();
  }

  /** The topology of the file config as Sentinel or the cluster laid it out now. */
  private layoutTopology(kept: Map<string, Server>): Topology {
    if (this.fileConf.distribution !== REDIS_CLUSTER) return this.buildTopology(placeShards(this.fileConf, this.placements), kept);
    const { conf, slots } = clusterConf(this.fileConf, this.layout);
    return this.buildTopology(conf, kept, slots);
  }

  private followCluster(conf: PoolConf): void {
    if (conf.distribution !== REDIS_CLUSTER) {
      this.cluster?.stop();
      this.cluster = null;
      return;
    }
    if (this.cluster !== null) return void (this.firstResolve = this.cluster.update(conf));
    const { net, clock, log } = this.base;
    const known = () => this.topology.servers.map((s) => s.conf.addr);
    this.cluster = new ClusterWatcher(conf, { net, clock, log, known, place: (layout) => this.placeLayout(layout) });
    this.firstResolve = this.cluster.start();
  }

  private placeLayout(layout: ClusterLayout): void {
    this.layout = layout;
    this.rebuild();
  }

  /**
   * A reply that redirects (Redis Cluster): MOVED updates the slot and names the node to
   * send to; ASK names it for this one request; TRYAGAIN/CLUSTERDOWN sends again shortly.
   * `resend` gets the node (and whether ASKING must go first), possibly after a refresh.
   * False when the reply is no redirection (or the pool is no cluster).
   */
  redirect(
    req: Req, reply: Uint8Array | null, transportFailed: boolean, resend: (node: Server | null, asking: boolean) => void,
  ): boolean {
    const cluster = this.cluster;
    if (cluster === null) return false;
    if (transportFailed) return this.holdAndRetry(cluster, req, true, resend);
    const redirect = redirectOf(reply);
    if (redirect === null) return false;
    if (redirect.kind === Redirect.TryAgain) return this.holdAndRetry(cluster, req, false, resend);
    if (req.redirects >= MAX_REDIRECTS) return false;
    req.redirects++;
    const asking = redirect.kind === Redirect.Ask;
    if (asking) cluster.redirects.ask++;
    else cluster.redirects.moved++;
    const node = this.nodeAt(redirect.addr!);
    if (!asking) this.moveSlot(redirect.slot, node);
    if (node !== null) {
      resend(node, asking);
      if (!asking) cluster.refreshSoon();
      return true;
    }
    // A node the map does not know yet: learn the new map, then send there.
    void cluster.refresh().then(() => resend(this.nodeAt(redirect.addr!), asking));
    return true;
  }

  /**
   * A node down, or the cluster busy (TRYAGAIN, CLUSTERDOWN during a failover): hold the
   * request and send it again, with backoff, to wherever its shard's slots are then, until
   * the pool's timeout. A write the node may have executed is not sent twice.
   */
  private holdAndRetry(
    cluster: ClusterWatcher, req: Req, transportFailed: boolean, resend: (node: Server | null, asking: boolean) => void,
  ): boolean {
    // A write on a connection that broke after connecting may have run: it fails, never runs twice.
    if (transportFailed && !req.read && !req.unsent) return false;
    const now = this.base.clock.now();
    if (req.holdUntil === 0) req.holdUntil = now + (this.conf.timeout ?? DEFAULT_HOLD_MS);
    if (now >= req.holdUntil) return false;
    const delay = Math.min(HOLD_MAX_MS, TRY_AGAIN_MS * 2 ** req.holds++);
    req.unsent = false;
    this.base.clock.setTimer(() => void cluster.refresh().then(() => resend(this.successor(req.shard!), false)), delay);
    return true;
  }

  /** Where a shard's slots are now: its master if it still is one, else the replica promoted in its place. */
  private successor(shard: Shard): Server | null {
    for (const node of [shard.master, ...shard.replicas]) {
      const key = formatAddr(node.conf.addr);
      const now = this.topology.shards.find((s) => formatAddr(s.master.conf.addr) === key);
      if (now !== undefined) return now.master;
    }
    return null;
  }

  /** Redis Cluster: each master's slot ranges ("0-5460,10923"), as the map says now; null for other pools. */
  clusterSlots(): { node: string; slots: string }[] | null {
    const layout = this.layout;
    if (this.cluster === null || layout === null) return null;
    return layout.shards.map((shard, i) => ({ node: formatAddr(shard.master), slots: layout.slots.ranges(i) }));
  }

  /** A request to the cluster failed on its connection: the map may be stale. */
  clusterFailure(): void {
    this.cluster?.refreshSoon();
  }

  private nodeAt(addr: Addr): Server | null {
    const key = formatAddr(addr);
    return this.topology.servers.find((s) => formatAddr(s.conf.addr) === key) ?? null;
  }

  /** MOVED: the slot's owner is `node`'s shard from now on (the ring reads the map live). */
  private moveSlot(slot: number, node: Server | null): void {
    const index = node === null ? -1 : this.topology.shards.findIndex((s) => s.master === node);
    if (index >= 0 && this.layout !== null) this.layout.slots.owners[slot] = index;
  }

  private followSentinels(conf: PoolConf): void {
    if (conf.sentinels.length === 0) {
      this.sentinel?.stop();
      this.sentinel = null;
      if (this.placements.size > 0) {
        this.placements.clear();
        this.rebuild();
      }
      return;
    }
    if (this.sentinel !== null) return void (this.firstResolve = this.sentinel.update(conf));
    const { net, clock, log } = this.base;
    this.sentinel = new SentinelWatcher(conf, { net, clock, log, place: (shard, placement) => this.place(shard, placement) });
    this.firstResolve = this.sentinel.start();
  }

  private place(shard: string, placement: ShardPlacement): void {
    this.placements.set(shard, placement);
    this.rebuild();
  }

  /** Servers from `kept` (taken out of it) where name and address match, new ones otherwise. */
  private buildTopology(conf: PoolConf, kept: Map<string, Server>, slots: SlotMap | null = null): Topology {
    const take = (serverConf: ServerConf, role: Role) => {
      const server = kept.get(serverKey(serverConf));
      kept.delete(serverKey(serverConf));
      if (server !== undefined) {
        server.adopt(serverConf, this.env);
        return server;
      }
      const made = new Server(serverConf, this.env);
      made.role = role;
      if (role === Role.Replica) made.readState = ReadState.Unchecked;
      return made;
    };
    const masters = conf.shards.map((shard) => take(shard.primary, Role.Master));
    const replicas = conf.shards.map((shard) =>
      replicaConfs(shard).map((r) => Object.assign(take(r, Role.Replica), { shardId: shard.primary.id }))
    );
    return new Topology(conf, masters, replicas, this.base.clock, slots);
  }

  preconnect(): void {
    for (const server of this.servers) server.connectAll();
  }

  /** Close every server connection now (shutdown). */
  close(): void {
    this.migration?.stop();
    this.monitor.stop();
    this.sentinel?.stop();
    this.cluster?.stop();
    for (const server of this.servers) server.close();
  }

  /** Removed by a reload: close each server connection once it owes no replies. */
  retire(): void {
    this.migration?.stop();
    this.monitor.stop();
    this.sentinel?.stop();
    this.cluster?.stop();
    for (const server of this.servers) server.retire();
  }

  private makeEnv(conf: PoolConf): ServerEnv {
    const base = this.base;
    const observe = base.observe;
    return {
      net: base.net,
      clock: base.clock,
      log: base.log,
      flusher: base.flusher,
      protocol: base.protocol,
      timeout: conf.timeout,
      keepAlive: conf.tcpkeepalive,
      connections: conf.serverConnections,
      preamble: [...base.protocol.preamble(conf), ...this.storeSetup(conf)],
      awaitPreamble: conf.redis && conf.migration === MigrationMode.Store,
      // A cluster replica serves reads only on a connection that said READONLY.
      replicaPreamble: conf.distribution === REDIS_CLUSTER ? [READONLY_COMMAND] : [],
      poolStats: this.stats,
      queueMark: this.clientLimits.maxServerQueueBytes,
      policy: conf,
      dedicated: Object.assign(this.dedicated, { max: conf.maxDedicatedConnections }),
      loadAware: conf.shards.some((shard) => shard.replicas.length > 0),
      onEjected: (server) => this.ejected(server),
      observe: observe === null ? null : (server, req, reply, now) => observe(this, server, req, reply, now),
    };
  }

  /**
   * Store mode: name each server connection for the other proxies, and (on a stable ring)
   * refuse the connection when the servers say this ring's keys are moving away.
   */
  private storeSetup(conf: PoolConf): Uint8Array[] {
    if (!conf.redis || conf.migration !== MigrationMode.Store) return [];
    const name = this.connName;
    const stable = stableName(conf.name, "");
    return storePreamble(conf.name, name, name.startsWith(stable) ? name.slice(stable.length) : null);
  }

  private ejected(server: Server): void {
    const conf = this.conf;
    server.stats.server_ejected_at = Math.floor(this.base.clock.now() * 1000);
    this.stats.server_ejects++;
    this.base.log.log(4, `pool '${conf.name}': ejecting server ${server.conf.id} for ${conf.serverRetryTimeout} ms`);
    this.topology.rebuild();
  }
}

const READONLY = new TextEncoder().encode("-READONLY");
const NIL_BULK = new TextEncoder().encode("$-1\r\n");

function isNilBulk(reply: Uint8Array | null): boolean {
  return reply !== null && reply.length === NIL_BULK.length && NIL_BULK.every((byte, i) => reply[i] === byte);
}
const READONLY_COMMAND = new TextEncoder().encode("*1\r\n$8\r\nREADONLY\r\n");
/** TRYAGAIN / CLUSTERDOWN / a node down: the first wait before sending again, doubled each time up to HOLD_MAX_MS. */
const TRY_AGAIN_MS = 100;
const HOLD_MAX_MS = 1000;
/** How long a request is held for a cluster failover when the pool sets no timeout. */
const DEFAULT_HOLD_MS = 5000;
/** A request follows at most this many MOVED/ASK redirections (a map in flux settles well within them). */
const MAX_REDIRECTS = 5;

function startsWithReadonly(reply: Uint8Array): boolean {
  return reply.length >= READONLY.length && READONLY.every((byte, i) => reply[i] === byte);
}

/** A replica is named in stats and on its connections as "shard/host:port". */
function replicaConfs(shard: ShardConf): ServerConf[] {
  return shard.replicas.map((replica) => ({ ...replica, id: `${shard.primary.id}/${replica.id}` }));
}

/** What decides where keys live: equal signatures, equal rings (a migration starts when it changes). */
function ringSignature(conf: PoolConf): string {
  const shards = conf.shards.map((s) => `${s.primary.id}:${s.primary.weight}`);
  return JSON.stringify([conf.distribution, conf.hash, conf.hashTag, shards]);
}

/** A server keeps its connections across a reload when its name and address stay the same. */
function serverKey(conf: ServerConf): string {
  return `${conf.id}\u0000${formatAddr(conf.addr)}`;
}
