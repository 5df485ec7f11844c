/**
 * The HTTP admin API as a hono app (runtime-neutral; the adapters serve its fetch):
 * / (the dashboard page, see dashboard/), /api (the list of routes), /api/dashboard (what the
 * page polls), /stats (the stats port's JSON), /metrics (Prometheus text), /health
 * (readiness), /live (liveness), /pools (config and server state), /reload (POST: re-read
 * the config file). State-changing routes pass the guard in guard.ts first.
 */
import { Hono } from "hono";
import type { Clock } from "../net.ts";
import type { Proxy } from "../proxy/mod.ts";
import type { StatsReporter } from "../stats/reporter.ts";
import type { Metrics } from "../stats/metrics.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "../stats/prometheus.ts";
import type { Addr } from "../net.ts";
import type { Reloader } from "../reload/types.ts";
import type { HealthChecker } from "./health.ts";
import { adminGuard } from "./guard.ts";
import { describePools } from "./pools.ts";
import { getReload, NEVER_RELOADED, postReload } from "./reload.ts";
import { installMigrationRoutes } from "./migration.ts";
import { dashboardState, installDashboard } from "./dashboard/mod.ts";
import { History, type HistoryNode, type LatencyReader } from "../stats/history.ts";
import type { Server } from "../proxy/server.ts";

/** What the routes read. */
export interface AdminSources {
  readonly proxy: Proxy;
  readonly reporter: StatsReporter;
  readonly metrics: Metrics;
  readonly health: HealthChecker;
  readonly clock: Clock;
  readonly version: string;
  readonly source: string;
  /** Clock ms when the proxy started. */
  readonly startedAt: number;
  /** False before the pools listen and once shutdown begins. */
  ready(): boolean;
  /** Applies POST /reload and reports the generation; null = reload unavailable (503). */
  readonly reloader: Reloader | null;
  /** The token state-changing routes need (--admin-token), or null; see guard.ts. */
  readonly adminToken: string | null;
  /** The admin API's bound address (the guard checks Host against it); null while unbound. */
  adminAddr(): Addr | null;
  /**
   * The per-second history the dashboard charts (sampled by startObservability's timer);
   * absent = one sampled only when /api/dashboard is asked (charts fill while a page is open).
   */
  readonly history?: History;
}

const JSON_TYPE = "application/json; charset=utf-8";

/** The routes, each listed with its purpose at GET /. */
const ROUTES = {
  "/": "the dashboard (HTML): pools, shards, nodes, charts of the last 15 minutes, reload",
  "/api": "this list",
  "/api/dashboard": "what the dashboard shows, as JSON (?since=MS: only chart points newer than MS)",
  "/stats": "twemproxy stats JSON, as on the stats port",
  "/metrics": "Prometheus text exposition 0.0.4",
  "/health": "200 when every pool has a reachable server, else 503 (readiness)",
  "/live": "200 while the process serves (liveness; unlike /health, not about the backends)",
  "/pools": "loaded pool config, each server's state, the config generation and last reload error",
  "/reload": "POST: re-read the config file and apply it (?dry_run=1: validate and return the diff only); " +
    "needs the admin token, or a loopback admin address and Content-Type: application/json. GET: reload status",
  "/pools/<pool>/migration": "a pool's migration after a reload changed its servers: phase, keys moved, rate, ETA, fallback hits",
  "/pools/<pool>/migration/<action>": "POST pause, resume, abort (back to the old ring) or finish; token-protected as /reload",
} as const;

/**
 * Build the admin app.
 * @example net.serveHttp(addr, createAdminApp(sources).fetch)
 */
export function createAdminApp(src: AdminSources): Hono {
  const app = new Hono();
  app.use("*", adminGuard({ token: src.adminToken, bound: () => src.adminAddr() }));
  app.get("/api", (c) => c.json({ service: "nutcracker", version: src.version, endpoints: ROUTES }));
  app.get("/live", (c) => c.json({ status: "live" }));
  const history = src.history ?? new History(() => src.proxy.pools, latencyReader(src.metrics));
  installDashboard(app, {
    state: (since) => dashboardState({
      proxy: src.proxy,
      history,
      now: src.clock.now(),
      startedAt: src.startedAt,
      version: src.version,
      source: src.source,
      reload: src.reloader?.status() ?? NEVER_RELOADED,
      reloadAvailable: src.reloader !== null,
      since,
    }),
  });
  app.get("/stats", (c) => c.body(src.reporter.json(), 200, { "content-type": JSON_TYPE }));
  app.get("/metrics", (c) => {
    const now = src.clock.now();
    const text = renderPrometheus({
      pools: src.proxy.pools,
      metrics: src.metrics,
      version: src.version,
      source: src.source,
      uptimeSeconds: Math.floor((now - src.startedAt) / 1000),
      now,
      reload: src.reloader?.status() ?? NEVER_RELOADED,
    });
    return c.body(text, 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });
  app.get("/health", async (c) => {
    if (!src.ready()) return c.json({ status: "unavailable", reason: "not listening" }, 503);
    const report = await src.health.check(src.proxy.pools);
    const down = report.pools.filter((p) => p.reachable === 0).map((p) => p.pool);
    const status = report.ok ? "ok" : "unavailable";
    return c.json({ status, unavailable: down, pools: report.pools }, report.ok ? 200 : 503);
  });
  app.get("/pools", (c) => c.json(describePools(src.proxy, src.clock.now(), src.reloader?.status() ?? NEVER_RELOADED)));
  app.post("/reload", (c) => postReload(c, src.reloader));
  app.get("/reload", (c) => getReload(c, src.reloader));
  installMigrationRoutes(app, () => src.proxy);
  return app;
}

/**
 * How History reads a node's latency buckets from the metrics.
 * @example new History(() => proxy.pools, latencyReader(metrics))
 */
export function latencyReader(metrics: Metrics): LatencyReader {
  // History sees pools' servers through HistoryNode; they are the Servers the metrics know.
  return (node: HistoryNode, out) => metrics.addLatencyCounts(node as Server, out);
}
