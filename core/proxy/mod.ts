/**
 * Starts the proxy: one Pool per configured pool and one Listening per listen address,
 * all sharing one write flusher; and applies reloads (see core/reload/diff.ts for how
 * pools are matched). The Proxy handle is what the CLI, stats and admin API see.
 */
import { type Clock, formatAddr, type Net } from "../net.ts";
import type { Conf, PoolConf } from "../conf/types.ts";
import type { Logger } from "../log.ts";
import { Flusher } from "./flusher.ts";
import { Pool, type PoolBase } from "./pool.ts";
import { Listening } from "./listening.ts";
import type { ClientLimits } from "./limits.ts";
import type { Protocol, ProxyAbout } from "./protocol.ts";
import type { Req } from "./req.ts";
import type { Server } from "./server.ts";
import { redisProtocol } from "./redis.ts";
import { memcacheProtocol } from "./memcache.ts";
import { listenKey, planReload } from "../reload/diff.ts";
import { PoolAction, type PoolChange, ReloadConflictError } from "../reload/types.ts";

/** Called once per answered request (latency and size metrics). */
export type Observer = (pool: Pool, server: Server, req: Req, reply: Uint8Array, now: number) => void;

export interface ProxyDeps {
  net: Net;
  clock: Clock;
  log: Logger;
  /** Overrides of the limits the config sets (tests, embedding). */
  limits?: Partial<ClientLimits>;
  observe?: Observer;
  /** What INFO reports as the proxy's version and process id (the core cannot read either). */
  identity?: { readonly version: string; readonly pid: number | null };
}

/** A running proxy. */
export interface Proxy {
  /** The pools of the config in force, in its order. */
  readonly pools: readonly Pool[];
  /** Each pool's listen address, in the same order. */
  readonly listeners: readonly Listening[];
  /**
   * Move to `conf` without dropping a client (see README "Reload"). Binds new addresses
   * first; a bind failure rejects and changes nothing. With `dryRun`, only plans.
   */
  apply(conf: Conf, dryRun?: boolean): Promise<readonly PoolChange[]>;
  /** Stop accepting, let in-flight requests finish for up to `graceMs`, then close everything. */
  close(graceMs?: number): Promise<void>;
}

/** Listen on every pool's address; rejects (after closing what opened) if any listen fails. */
export async function startProxy(conf: Conf, deps: ProxyDeps): Promise<Proxy> {
  const proxy = new RunningProxy(deps);
  await proxy.start(conf);
  return proxy;
}

class RunningProxy implements Proxy, ProxyAbout {
  pools: Pool[] = [];
  listeners: Listening[] = [];
  private readonly deps: ProxyDeps;
  private readonly flusher: Flusher;
  /** Listeners and pools a reload took out that may still finish in-flight work. */
  private readonly retiredListeners = new Set<Listening>();
  private readonly retiredPools = new Set<Pool>();

  readonly version: string;
  readonly pid: number | null;
  readonly runtime: string;
  readonly startedAt: number;

  constructor(deps: ProxyDeps) {
    this.deps = deps;
    this.flusher = new Flusher((fn) => deps.net.defer(fn));
    this.version = deps.identity?.version ?? "";
    this.pid = deps.identity?.pid ?? null;
    this.runtime = deps.net.runtime;
    this.startedAt = deps.clock.now();
  }

  now(): number {
    return this.deps.clock.now();
  }

  async start(conf: Conf): Promise<void> {
    this.pools = conf.pools.map((poolConf) => this.makePool(poolConf));
    // With Sentinels, serve from where they say the masters are (bounded; else the file's addresses).
    await Promise.all(this.pools.map((pool) => pool.settled()));
    const log = this.deps.log;
    const listeners = this.pools.map((pool) => new Listening(pool, pool.conf.listen, pool.conf.backlog, this.flusher, log, this));
    try {
      for (const listening of listeners) await listening.start(this.deps.net);
    } catch (err) {
      await closeAll(listeners, this.pools, 0, this.deps.clock);
      throw err;
    }
    this.listeners = listeners;
    for (const pool of this.pools) if (pool.conf.preconnect) pool.preconnect();
  }

  async apply(conf: Conf, dryRun = false): Promise<readonly PoolChange[]> {
    const plan = planReload(this.pools.map((p) => p.conf), conf.pools);
    const current = new Map(this.pools.map((pool) => [pool.conf, pool]));
    // All or nothing: a pool that must finish its migration first holds back the whole file.
    for (const { conf: poolConf, old } of plan.pools) {
      const conflict = old === null ? null : current.get(old)!.reloadConflict(poolConf);
      if (conflict !== null) throw new ReloadConflictError(conflict);
    }
    if (dryRun) return plan.changes;
    // New Pool objects have no side effects until used, so a failed bind can drop them.
    const pools = plan.pools.map(({ conf: poolConf, old }) => old === null ? this.makePool(poolConf) : current.get(old)!);
    const bound = await this.bindNewAddresses(pools, plan.pools.map((p) => p.conf));
    plan.pools.forEach(({ conf: poolConf, old, change }, i) => {
      if (old === null) return void (poolConf.preconnect && pools[i].preconnect());
      current.delete(old);
      if (change.action !== PoolAction.Unchanged) pools[i].apply(poolConf);
    });
    const listeners = pools.map((pool, i) => this.listenerFor(pool, listenKey(plan.pools[i].conf), bound));
    for (const listening of this.listeners) {
      if (!listeners.includes(listening)) this.retireListener(listening);
    }
    for (const pool of current.values()) this.retirePool(pool);
    this.pools = pools;
    this.listeners = listeners;
    this.forgetFinished();
    await Promise.all(pools.map((pool) => pool.settled()));
    return plan.changes;
  }

  close(graceMs = 5000): Promise<void> {
    const listeners = [...this.listeners, ...this.retiredListeners];
    return closeAll(listeners, [...this.pools, ...this.retiredPools], graceMs, this.deps.clock);
  }

  /** Bind every listen address no current listener has (for its new pool); on a failure close those and throw. */
  private async bindNewAddresses(pools: readonly Pool[], confs: readonly PoolConf[]): Promise<Map<string, Listening>> {
    const have = new Set(this.listeners.map((l) => formatAddr(l.listen)));
    const bound = new Map<string, Listening>();
    try {
      for (let i = 0; i < confs.length; i++) {
        const key = listenKey(confs[i]);
        if (have.has(key) || bound.has(key)) continue;
        const listening = new Listening(pools[i], confs[i].listen, confs[i].backlog, this.flusher, this.deps.log, this);
        bound.set(key, listening);
        await listening.start(this.deps.net);
      }
    } catch (err) {
      await Promise.all([...bound.values()].map((l) => l.stopAccepting()));
      throw err;
    }
    return bound;
  }

  /** The listener of address `key`: a current one (handed over if another pool had it) or a new one. */
  private listenerFor(pool: Pool, key: string, bound: Map<string, Listening>): Listening {
    const listening = this.listeners.find((l) => formatAddr(l.listen) === key) ?? bound.get(key)!;
    listening.handOver(pool);
    return listening;
  }

  private retireListener(listening: Listening): void {
    this.retiredListeners.add(listening);
    void listening.retire();
  }

  private retirePool(pool: Pool): void {
    this.retiredPools.add(pool);
    pool.retire();
  }

  /** Drop retired listeners and pools with nothing left to finish, so reloads do not accumulate them. */
  private forgetFinished(): void {
    for (const listening of this.retiredListeners) {
      if (listening.clientCount === 0) this.retiredListeners.delete(listening);
    }
    for (const pool of this.retiredPools) {
      if (pool.servers.every((s) => s.stats.server_connections === 0)) this.retiredPools.delete(pool);
    }
  }

  private makePool(conf: PoolConf): Pool {
    const protocol: Protocol = conf.redis ? redisProtocol : memcacheProtocol;
    const base: PoolBase = {
      net: this.deps.net,
      clock: this.deps.clock,
      log: this.deps.log,
      flusher: this.flusher,
      protocol,
      limitOverrides: this.deps.limits ?? {},
      observe: this.deps.observe ?? null,
    };
    return new Pool(conf, base);
  }
}

async function closeAll(listeners: Listening[], pools: Pool[], graceMs: number, clock: Clock): Promise<void> {
  await Promise.all(listeners.map((l) => l.stopAccepting()));
  await Promise.all(listeners.map((l) => l.drain(graceMs, clock)));
  for (const pool of pools) pool.close();
}
