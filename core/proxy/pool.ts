/**
 * A server pool: its servers, the distribution over the live ones, and twemproxy's
 * failure policy (count consecutive failures, eject at the limit until the retry
 * time, a reply resets the count). The distribution is rebuilt only when the set of
 * live servers changes, so routing a key is a hash and a lookup.
 */
import type { PoolConf, ShardConf } from "../conf/types.ts";
import { HASHES, type HashFn, hashTagSpan, type Span } from "../hash/mod.ts";
import { buildDistribution, type Dispatcher } from "../dist/mod.ts";
import { PoolCounters } from "../stats/counters.ts";
import { Server, type ServerEnv } from "./server.ts";

/** The parts of ServerEnv that the pool supplies itself. */
export type PoolServerEnv = Omit<ServerEnv, "onFailure" | "onSuccess" | "timeout" | "keepAlive" | "preamble" | "poolStats">;

export class Pool {
  /** The pool's config; its `shards` follow setShards(). */
  conf: PoolConf;
  readonly stats = new PoolCounters();
  servers: Server[] = [];
  private readonly hash: HashFn;
  private readonly tag: Uint8Array | null;
  private readonly span: Span = { start: 0, end: 0 };
  private dispatcher: Dispatcher | null = null;
  /** live[i] = index in `servers` of the dispatcher's server i. */
  private live: number[] = [];
  /** Clock ms when an ejected server is due back (0 = none ejected). */
  private nextRebuild = 0;
  private readonly env: ServerEnv;

  constructor(conf: PoolConf, env: PoolServerEnv, preamble: Uint8Array[]) {
    this.conf = conf;
    this.hash = HASHES[conf.hash as keyof typeof HASHES];
    this.tag = conf.hashTag === null ? null : new TextEncoder().encode(conf.hashTag);
    this.env = {
      ...env,
      timeout: conf.timeout,
      keepAlive: conf.tcpkeepalive,
      preamble,
      poolStats: this.stats,
      onFailure: (server) => this.recordFailure(server),
      onSuccess: (server) => {
        server.failures = 0;
      },
    };
    this.servers = this.makeServers(conf.shards);
    this.rebuild();
  }

  /**
   * Swap in a new list of shards at runtime (the step a config reload takes): new servers
   * and a distribution over them take every request from now on, while each old server
   * connection closes once the replies it owes have arrived, so nothing in flight is lost.
   * @example pool.setShards(newConf.pools[0].shards)
   */
  setShards(shards: readonly ShardConf[]): void {
    const old = this.servers;
    this.conf = { ...this.conf, shards };
    this.servers = this.makeServers(shards);
    this.rebuild();
    for (const server of old) server.retire();
  }

  private makeServers(shards: readonly ShardConf[]): Server[] {
    return shards.map((shard, i) => new Server(shard.primary, i, this.conf.serverConnections, this.env));
  }

  /** Index (config order) of the server owning key buf[start, end), or -1 when every server is ejected. */
  serverIndexFor(buf: Uint8Array, start: number, end: number): number {
    if (this.nextRebuild !== 0 && this.env.clock.now() >= this.nextRebuild) this.rebuild();
    const dispatcher = this.dispatcher;
    if (dispatcher === null) return -1;
    const span = hashTagSpan(buf, start, end, this.tag, this.span);
    return this.live[dispatcher.pick(this.hash(buf, span.start, span.end))];
  }

  preconnect(): void {
    for (const server of this.servers) server.connectAll();
  }

  close(): void {
    for (const server of this.servers) server.close();
  }

  private recordFailure(server: Server): void {
    const conf = this.conf;
    if (!conf.autoEjectHosts) return;
    server.failures++;
    if (server.failures < conf.serverFailureLimit) return;
    server.failures = 0;
    const now = this.env.clock.now();
    server.ejectedUntil = now + conf.serverRetryTimeout;
    server.stats.server_ejected_at = Math.floor(now * 1000);
    this.stats.server_ejects++;
    this.env.log.log(4, `pool '${conf.name}': ejecting server ${server.conf.id} for ${conf.serverRetryTimeout} ms`);
    this.rebuild();
  }

  /** Rebuild the distribution over servers whose ejection has expired. */
  private rebuild(): void {
    const now = this.env.clock.now();
    const live: number[] = [];
    let next = 0;
    for (const server of this.servers) {
      if (server.ejectedUntil <= now) {
        server.ejectedUntil = 0;
        live.push(server.index);
      } else if (next === 0 || server.ejectedUntil < next) {
        next = server.ejectedUntil;
      }
    }
    this.live = live;
    this.nextRebuild = next;
    const ids = live.map((i) => ({ id: this.servers[i].conf.id, weight: this.servers[i].conf.weight }));
    this.dispatcher = live.length === 0 ? null : buildDistribution(this.conf.distribution, ids);
  }
}

