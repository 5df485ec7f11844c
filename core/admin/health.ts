/**
 * Readiness for /health. A server is reachable when the pool has not ejected it and
 * a TCP connect to it succeeded recently; a pool is healthy when one of its servers
 * is reachable. The engine's own connections are lazy (nothing is open before the
 * first request), so a probe connect is the only answer that does not depend on
 * traffic. Results are cached briefly so frequent checks do not flood the servers.
 */
import type { Addr, Clock, Conn, Net } from "../net.ts";
import type { Pool } from "../proxy/pool.ts";
import type { Server } from "../proxy/server.ts";

/** How probing behaves. */
export interface HealthOptions {
  /** Give up on a probe connect after this many ms (default 1000). */
  readonly probeTimeoutMs?: number;
  /** Reuse a probe result for this many ms (default 1000; 0 = probe on every check). */
  readonly cacheMs?: number;
}

/** One pool's part of the answer. */
export interface PoolHealth {
  readonly pool: string;
  readonly servers: number;
  readonly ejected: number;
  readonly reachable: number;
}

/** The whole answer: ok when every pool has a reachable server. */
export interface HealthReport {
  readonly ok: boolean;
  readonly pools: readonly PoolHealth[];
}

interface ProbeEntry {
  ok: boolean;
  at: number;
  pending: Promise<boolean> | null;
}

export class HealthChecker {
  private readonly net: Net;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private readonly probes = new Map<Server, ProbeEntry>();

  constructor(net: Net, clock: Clock, opts: HealthOptions = {}) {
    this.net = net;
    this.clock = clock;
    this.timeoutMs = opts.probeTimeoutMs ?? 1000;
    this.cacheMs = opts.cacheMs ?? 1000;
  }

  /** Check every pool; servers of all pools are probed in parallel. */
  async check(pools: readonly Pool[]): Promise<HealthReport> {
    const now = this.clock.now();
    const results = await Promise.all(pools.map((pool) => this.checkPool(pool, now)));
    this.forgetOthers(pools);
    return { ok: results.every((p) => p.reachable > 0), pools: results };
  }

  /** The last probe result for a server, or null when it was never probed. */
  lastProbe(server: Server): boolean | null {
    const entry = this.probes.get(server);
    return entry === undefined || entry.at === 0 ? null : entry.ok;
  }

  private async checkPool(pool: Pool, now: number): Promise<PoolHealth> {
    const live = pool.servers.filter((s) => s.ejectedUntil <= now);
    const ok = await Promise.all(live.map((s) => this.probe(s)));
    return {
      pool: pool.conf.name,
      servers: pool.servers.length,
      ejected: pool.servers.length - live.length,
      reachable: ok.filter(Boolean).length,
    };
  }

  private probe(server: Server): Promise<boolean> {
    const entry = this.probes.get(server);
    if (entry?.pending) return entry.pending;
    if (entry !== undefined && this.clock.now() - entry.at < this.cacheMs) return Promise.resolve(entry.ok);
    const pending = connectOnce(this.net, this.clock, server.conf.addr, this.timeoutMs).then((ok) => {
      this.probes.set(server, { ok, at: this.clock.now(), pending: null });
      return ok;
    });
    this.probes.set(server, { ok: entry?.ok ?? false, at: entry?.at ?? 0, pending });
    return pending;
  }

  private forgetOthers(pools: readonly Pool[]): void {
    const live = new Set(pools.flatMap((p) => p.servers));
    for (const server of this.probes.keys()) {
      if (!live.has(server)) this.probes.delete(server);
    }
  }
}

/** Resolves true once a connection to `addr` opens (then closes it), false on failure or timeout. */
export function connectOnce(net: Net, clock: Clock, addr: Addr, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    let conn: Conn;
    try {
      conn = net.connect(addr, { connectTimeoutMs: timeoutMs });
    } catch {
      return resolve(false);
    }
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clock.clearTimer(timer);
      resolve(ok);
    };
    const timer = clock.setTimer(() => {
      settle(false);
      conn.destroy(new Error("probe timed out"));
    }, timeoutMs);
    conn.onConnect = () => {
      connected = true;
      conn.destroy();
    };
    conn.onData = () => {};
    conn.onEnd = () => {};
    conn.onDrain = () => {};
    conn.onClose = () => settle(connected);
  });
}
