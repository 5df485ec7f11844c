/**
 * A server pool: its counters and its current Topology. A reload hands the pool a new
 * config: it builds a new Topology (servers present in both keep their connections,
 * counters and health) and swaps one reference; requests already sent finish where they
 * went, and servers no longer listed close once they owe no replies.
 */
import type { PoolConf, ServerConf } from "../conf/types.ts";
import { formatAddr } from "../net.ts";
import { PoolCounters } from "../stats/counters.ts";
import { Server, type ServerEnv } from "./server.ts";
import { type Shard, Topology } from "./topology.ts";
import type { ClientLimits } from "./limits.ts";
import { limitsFor } from "./limits.ts";
import type { Req } from "./req.ts";
import type { Protocol } from "./protocol.ts";

/** What every pool shares: I/O, clock, log, flusher, protocol, and the metrics observer. */
export interface PoolBase extends Pick<ServerEnv, "net" | "clock" | "log" | "flusher" | "protocol"> {
  /** Test and embedding overrides of the limits the pool's config sets. */
  readonly limitOverrides: Partial<ClientLimits>;
  readonly observe: ((pool: Pool, server: Server, req: Req, reply: Uint8Array, now: number) => void) | null;
}

export class Pool {
  readonly stats = new PoolCounters();
  private topology: Topology;
  private env: ServerEnv;
  private clientLimits: ClientLimits;
  private readonly base: PoolBase;

  constructor(conf: PoolConf, base: PoolBase) {
    this.base = base;
    this.clientLimits = limitsFor(conf, base.limitOverrides);
    this.env = this.makeEnv(conf);
    const servers = conf.shards.map((shard) => new Server(shard.primary, this.env));
    this.topology = new Topology(conf, servers, base.clock);
  }

  /** The pool's config as last loaded. */
  get conf(): PoolConf {
    return this.topology.conf;
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

  /** The shard owning key buf[start, end) now; null when every server is ejected. */
  route(buf: Uint8Array, start: number, end: number): Shard | null {
    return this.topology.route(buf, start, end);
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
    const old = this.topology;
    this.clientLimits = limitsFor(conf, this.base.limitOverrides);
    this.env = this.makeEnv(conf);
    const kept = new Map(old.servers.map((server) => [serverKey(server.conf), server]));
    const servers = conf.shards.map((shard) => {
      const server = kept.get(serverKey(shard.primary));
      kept.delete(serverKey(shard.primary));
      if (server === undefined) return new Server(shard.primary, this.env);
      server.adopt(shard.primary, this.env);
      return server;
    });
    this.topology = new Topology(conf, servers, this.base.clock);
    for (const gone of kept.values()) gone.retire();
    if (conf.preconnect) this.preconnect();
  }

  preconnect(): void {
    for (const server of this.servers) server.connectAll();
  }

  /** Close every server connection now (shutdown). */
  close(): void {
    for (const server of this.servers) server.close();
  }

  /** Removed by a reload: close each server connection once it owes no replies. */
  retire(): void {
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
      preamble: base.protocol.preamble(conf),
      poolStats: this.stats,
      queueMark: this.clientLimits.maxServerQueueBytes,
      policy: conf,
      onEjected: (server) => this.ejected(server),
      observe: observe === null ? null : (server, req, reply, now) => observe(this, server, req, reply, now),
    };
  }

  private ejected(server: Server): void {
    const conf = this.conf;
    server.stats.server_ejected_at = Math.floor(this.base.clock.now() * 1000);
    this.stats.server_ejects++;
    this.base.log.log(4, `pool '${conf.name}': ejecting server ${server.conf.id} for ${conf.serverRetryTimeout} ms`);
    this.topology.rebuild();
  }
}

/** A server keeps its connections across a reload when its name and address stay the same. */
function serverKey(conf: ServerConf): string {
  return `${conf.id}\u0000${formatAddr(conf.addr)}`;
}
