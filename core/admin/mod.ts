/**
 * Starts everything that reports on a running proxy: the stats aggregator and the
 * twemproxy stats port, and (when an address is given) the HTTP admin API.
 *
 * Wiring, in the CLI:
 *   const metrics = createMetrics();
 *   const proxy = await startProxy(conf, { net, clock, log, observe: metrics.observe });
 *   const reloader = createReloader(proxy, readConf, { clock, log });
 *   const obs = await startObservability(proxy, metrics, { statsAddr, statsIntervalMs, adminAddr, version, source, adminToken, reloader }, { net, clock, log });
 *   ...on shutdown: await obs.close(); await proxy.close();
 */
import { type Addr, type Clock, formatAddr, type Listener, type Net } from "../net.ts";
import type { Logger } from "../log.ts";
import type { Proxy } from "../proxy/mod.ts";
import type { Metrics } from "../stats/metrics.ts";
import type { Reloader } from "../reload/types.ts";
import { StatsReporter } from "../stats/reporter.ts";
import { startStatsPort } from "../stats/port.ts";
import { HealthChecker } from "./health.ts";
import { createAdminApp, latencyReader } from "./app.ts";
import { isLoopbackHost } from "./guard.ts";
import { History } from "../stats/history.ts";

export { createMetrics, Metrics } from "../stats/metrics.ts";
export { createAdminApp, latencyReader } from "./app.ts";
export { History } from "../stats/history.ts";
export type { AdminSources } from "./app.ts";
export { adminGuard, isLoopbackHost } from "./guard.ts";
export { withTrigger } from "./reload.ts";

/** Where to listen and what to report. */
export interface ObservabilityOptions {
  /** The stats port address (nutcracker -a/-s, default 0.0.0.0:22222). */
  readonly statsAddr: Addr;
  /** Stats aggregation interval in ms (nutcracker -i, default 30000). */
  readonly statsIntervalMs: number;
  /** The HTTP admin address (--admin); null = no admin API (the default). */
  readonly adminAddr: Addr | null;
  /** Reported version ("0.5.0"). */
  readonly version: string;
  /** Host name, reported as `source`. */
  readonly source: string;
  /** Clock ms when the proxy started; default now. */
  readonly startedAt?: number;
  /** /health probe bounds (ms); defaults 1000 and 1000. */
  readonly probeTimeoutMs?: number;
  readonly healthCacheMs?: number;
  /** The token POST routes need (--admin-token); null/absent = loopback-only rules (guard.ts). */
  readonly adminToken?: string | null;
  /** Serves POST /reload and the reload status; null/absent = POST /reload answers 503. */
  readonly reloader?: Reloader | null;
}

export interface ObservabilityDeps {
  readonly net: Net;
  readonly clock: Clock;
  readonly log: Logger;
}

/** The running reporters. */
export interface Observability {
  /** The bound stats port address (the real port when 0 was asked). */
  readonly statsAddr: Addr;
  /** The bound admin address, or null when the admin API is off. */
  readonly adminAddr: Addr | null;
  readonly reporter: StatsReporter;
  /** Stop the timer and both listeners; /health answers 503 from the moment this is called. */
  close(): Promise<void>;
}

/**
 * Start the stats port and, if configured, the admin API. Rejects (after closing what
 * it opened) when an address cannot be bound; the CLI then exits as nutcracker does.
 */
export async function startObservability(
  proxy: Proxy,
  metrics: Metrics,
  opts: ObservabilityOptions,
  deps: ObservabilityDeps,
): Promise<Observability> {
  const { net, clock, log } = deps;
  const startedAt = opts.startedAt ?? clock.now();
  const { source, version } = opts;
  const reporter = new StatsReporter(() => proxy.pools, { source, version, intervalMs: opts.statsIntervalMs, startedAt }, clock);
  const stats = await startStatsPort(opts.statsAddr, reporter, net, log);
  reporter.start();
  let ready = true;
  let admin: Listener | null = null;
  let history: History | null = null;
  if (opts.adminAddr !== null) {
    // The dashboard's charts: sampled from start, so they are full when a page opens.
    history = new History(() => proxy.pools, latencyReader(metrics));
    const health = new HealthChecker(net, clock, { probeTimeoutMs: opts.probeTimeoutMs, cacheMs: opts.healthCacheMs });
    const adminToken = opts.adminToken ?? null;
    const app = createAdminApp({
      proxy, reporter, metrics, health, clock, version, source, startedAt, ready: () => ready,
      reloader: opts.reloader ?? null, adminToken, adminAddr: () => admin?.addr ?? null, history,
    });
    try {
      admin = await net.serveHttp(opts.adminAddr, app.fetch);
    } catch (err) {
      reporter.stop();
      await stats.close();
      throw err;
    }
    history.start(clock);
    log.log(5, `admin listening on 'http://${formatAddr(admin.addr)}'`);
    if (adminToken === null && !(admin.addr.kind === "tcp" && isLoopbackHost(admin.addr.host))) {
      log.warn(`admin API on a non-loopback address without --admin-token: POST routes (/reload) are refused`);
    }
  }
  return {
    statsAddr: stats.addr,
    adminAddr: admin?.addr ?? null,
    reporter,
    async close() {
      ready = false;
      reporter.stop();
      history?.stop();
      await Promise.all([stats.close(), admin?.close()]);
    },
  };
}
