/**
 * The supervisor's stats port and admin API under `--workers N`: one view over every worker.
 * The stats port writes twemproxy's JSON with each pool and server summed over the workers
 * (refreshed every stats interval, as twemproxy aggregates); /metrics asks every worker for
 * its Prometheus text and merges it (core/stats/aggregate.ts); /health is ok when every
 * worker's pools are; /pools is one worker's view (?worker=SLOT picks it); the dashboard at /
 * is the page of one process over the workers' merged view (dashboard.ts); a pool's migration
 * is every worker's merged (core/admin/migration.ts), and its actions go to every worker;
 * POST /reload, /restart and the migration actions go through the same guard as in one
 * process (core/admin/guard.ts).
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { type Addr, type Clock, formatAddr, type Listener, type Net } from "../net.ts";
import type { Logger } from "../log.ts";
import { adminGuard, isLoopbackHost } from "../admin/guard.ts";
import { getReload, postReload } from "../admin/reload.ts";
import { renderStatsJson } from "../stats/snapshot.ts";
import { mergePrometheus } from "../stats/aggregate.ts";
import { escapeLabelValue, PROMETHEUS_CONTENT_TYPE } from "../stats/prometheus.ts";
import { installDashboard } from "../admin/dashboard/mod.ts";
import { type ActionAnswer, mergeActionAnswers, mergeMigrations, type MigrationView } from "../admin/migration.ts";
import { Question } from "./protocol.ts";
import { WorkersDashboard } from "./dashboard.ts";
import type { Supervisor } from "./supervisor.ts";

export interface SupervisorViewOptions {
  readonly statsAddr: Addr;
  readonly statsIntervalMs: number;
  readonly adminAddr: Addr | null;
  readonly adminToken: string | null;
  /** Reported version ("0.5.0") and host name. */
  readonly version: string;
  readonly source: string;
}

export interface SupervisorViewDeps {
  readonly net: Net;
  readonly clock: Clock;
  readonly log: Logger;
}

/** The running stats port and admin API. */
export interface SupervisorView {
  readonly statsAddr: Addr;
  readonly adminAddr: Addr | null;
  close(): Promise<void>;
}

const JSON_TYPE = "application/json; charset=utf-8";
const encoder = new TextEncoder();

/** Families the supervisor writes itself rather than merging the workers' values. */
const OWN_FAMILIES: ReadonlySet<string> = new Set([
  "nutcracker_uptime_seconds",
  "nutcracker_config_generation",
  "nutcracker_config_reloads_total",
  "nutcracker_config_last_reload_timestamp_seconds",
]);

const ROUTES = {
  "/": "the dashboard (HTML) over every worker: pools, shards, nodes, charts of the last 15 minutes, reload",
  "/api": "this list",
  "/api/dashboard": "what the dashboard shows, as JSON, summed over the workers (?since=MS: only chart points newer than MS)",
  "/stats": "twemproxy stats JSON summed over the workers, as on the stats port",
  "/metrics": "Prometheus text: every worker's merged (counters and counting gauges summed), and the supervisor's own",
  "/health": "200 when every worker has a reachable server in every pool, else 503",
  "/live": "200 while the supervisor serves",
  "/pools": "one worker's pool config and server state (?worker=SLOT picks which; ejection is per worker)",
  "/workers": "the worker processes: slot, generation, pid, state",
  "/reload": "POST: validate the config file once and apply it in every worker, all or nothing (?dry_run=1); GET: status",
  "/restart": "POST: start a new generation of workers; once it listens the old one drains (--drain-timeout)",
  "/pools/<pool>/migration": "a pool's migration over the workers: running if any runs it, the driving worker's progress, counters summed",
  "/pools/<pool>/migration/<action>": "POST pause, resume, abort or finish in every worker; 200 when any applied it; token-protected as /reload",
} as const;

/**
 * Start the stats port, the stats timer and (with an address) the admin API.
 * @example const view = await startSupervisorView(supervisor, opts, { net, clock, log });
 */
export async function startSupervisorView(sup: Supervisor, opts: SupervisorViewOptions, deps: SupervisorViewDeps): Promise<SupervisorView> {
  const { net, clock, log } = deps;
  const startedAt = clock.now();
  const statsJson = () => {
    const { pools, totals } = sup.snapshot();
    return renderStatsJson({ source: opts.source, version: opts.version, startedAt, now: clock.now() }, totals, pools);
  };
  const stats = await net.listen(opts.statsAddr, (conn) => {
    conn.onData = () => {};
    conn.onEnd = () => {};
    conn.onDrain = () => {};
    conn.onClose = () => {};
    conn.write(encoder.encode(statsJson()));
    conn.end();
  });
  log.notice(`stats listening on '${formatAddr(stats.addr)}'`);
  const histograms = opts.adminAddr !== null;
  let timer: unknown = null;
  const tick = () => {
    void sup.collect(histograms).finally(() => {
      if (timer !== null) timer = clock.setTimer(tick, opts.statsIntervalMs);
    });
  };
  timer = clock.setTimer(tick, 0);
  let ready = true;
  let admin: Listener | null = null;
  let dashboard: WorkersDashboard | null = null;
  if (opts.adminAddr !== null) {
    dashboard = new WorkersDashboard(sup, { clock, startedAt, version: opts.version, source: opts.source });
    const app = adminApp(sup, { ...opts, startedAt, statsJson, ready: () => ready, bound: () => admin?.addr ?? null, clock, dashboard });
    try {
      admin = await net.serveHttp(opts.adminAddr, app.fetch);
    } catch (err) {
      clock.clearTimer(timer);
      await stats.close();
      throw err;
    }
    dashboard.start();
    log.notice(`admin listening on 'http://${formatAddr(admin.addr)}'`);
    if (opts.adminToken === null && !(admin.addr.kind === "tcp" && isLoopbackHost(admin.addr.host))) {
      log.warn("admin API on a non-loopback address without --admin-token: POST routes (/reload, /restart) are refused");
    }
  }
  return {
    statsAddr: stats.addr,
    adminAddr: admin?.addr ?? null,
    async close() {
      ready = false;
      clock.clearTimer(timer);
      timer = null;
      dashboard?.stop();
      await Promise.all([stats.close(), admin?.close()]);
    },
  };
}

interface AppSources extends SupervisorViewOptions {
  readonly startedAt: number;
  readonly clock: Clock;
  statsJson(): string;
  ready(): boolean;
  bound(): Addr | null;
  readonly dashboard: WorkersDashboard;
}

function adminApp(sup: Supervisor, src: AppSources): Hono {
  const app = new Hono();
  app.use("*", adminGuard({ token: src.adminToken, bound: src.bound }));
  const routes = (c: Context) => c.json({ service: "nutcracker", version: src.version, workers: true, endpoints: ROUTES });
  app.get("/api", routes);
  installDashboard(app, { state: (since) => src.dashboard.state(since) });
  app.get("/live", (c) => c.json({ status: "live" }));
  app.get("/stats", (c) => c.body(src.statsJson(), 200, { "content-type": JSON_TYPE }));
  app.get("/metrics", async (c) => {
    const reports = await sup.collect(true);
    const texts = reports.map((r) => r.prometheus).filter((t): t is string => t !== null);
    const text = mergePrometheus(texts, sup.retiredCounters, OWN_FAMILIES) + ownMetrics(sup, src);
    return c.body(text, 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });
  app.get("/health", async (c) => {
    if (!src.ready()) return c.json({ status: "unavailable", reason: "not listening" }, 503);
    return await health(c, sup);
  });
  app.get("/pools", async (c) => {
    const wanted = c.req.query("worker");
    const answers = await sup.ask(Question.Pools);
    const answer = wanted === undefined ? answers[0] : answers.find((a) => String(a.slot) === wanted);
    if (answer === undefined) return c.json({ error: wanted === undefined ? "no worker answered" : `no worker ${wanted}` }, 503);
    return c.json(answer.body as Record<string, unknown>, 200, { "x-nutcracker-worker": `${answer.slot} ${answer.pid}` });
  });
  app.get("/workers", (c) => c.json({
    generation: sup.currentGeneration,
    workers: sup.workers().map((w) => ({
      slot: w.slot, generation: w.generation, pid: w.pid, state: w.state, started_at: new Date(w.startedAt).toISOString(),
    })),
    replaced: sup.replaced,
    restarts: sup.restarts,
  }));
  installWorkersMigration(app, sup);
  app.post("/reload", (c) => postReload(c, sup));
  app.get("/reload", (c) => getReload(c, sup));
  app.post("/restart", async (c) => {
    try {
      return c.json(await sup.restart());
    } catch (err) {
      return c.json({ error: err instanceof Error ? err.message : String(err) }, 500);
    }
  });
  return app;
}

/** A migration action may move big keys (finish): the workers get longer to answer than a question. */
const ACTION_TIMEOUT_MS = 60_000;

/** GET /pools/<pool>/migration and its POST actions, over every worker (each one proxy of the pool). */
function installWorkersMigration(app: Hono, sup: Supervisor): void {
  app.get("/pools/:pool/migration", async (c) => {
    const name = c.req.param("pool");
    const answers = await sup.ask(Question.Migrations);
    if (answers.length === 0) return c.json({ error: "no worker answered" }, 503);
    const views = answers.flatMap((a) => (a.body as { pool: string; migration: MigrationView | null }[]).filter((p) => p.pool === name));
    if (views.length === 0) return c.json({ error: `no pool named '${name}'` }, 404);
    const migration = mergeMigrations(views.map((v) => v.migration));
    return c.json({ pool: name, running: migration?.running ?? false, migration, workers: answers.length });
  });
  app.post("/pools/:pool/migration/:action", async (c) => {
    const args = { pool: c.req.param("pool"), action: c.req.param("action") };
    const answers = await sup.ask(Question.MigrationAction, args, ACTION_TIMEOUT_MS);
    const merged = mergeActionAnswers(answers.map((a) => ({ slot: a.slot, ...(a.body as ActionAnswer) })));
    return c.json(merged.body, merged.status as 200);
  });
}

interface HealthBody {
  readonly ok: boolean;
  readonly pools: readonly { readonly pool: string; readonly reachable: number }[];
}

async function health(c: Context, sup: Supervisor): Promise<Response> {
  const answers = await sup.ask(Question.Health);
  const expected = sup.workers().filter((w) => w.generation === sup.currentGeneration).length;
  const workers = answers.map(({ slot, pid, body }) => {
    const report = body as HealthBody;
    const unavailable = report.pools.filter((p) => p.reachable === 0).map((p) => p.pool);
    return { slot, pid, status: report.ok ? "ok" : "unavailable", unavailable };
  });
  const unavailable = [...new Set(workers.flatMap((w) => w.unavailable))];
  const ok = answers.length > 0 && answers.length === expected && workers.every((w) => w.status === "ok");
  const pools = answers.length > 0 ? (answers[0].body as HealthBody).pools : [];
  return c.json({ status: ok ? "ok" : "unavailable", unavailable, pools, workers }, ok ? 200 : 503);
}

/** The supervisor's own families: uptime, the reload status it keeps, and its workers. */
function ownMetrics(sup: Supervisor, src: AppSources): string {
  const now = src.clock.now();
  const status = sup.status();
  const states = new Map<string, number>();
  for (const w of sup.workers()) states.set(w.state, (states.get(w.state) ?? 0) + 1);
  const lines = [
    "# HELP nutcracker_uptime_seconds seconds since the proxy started",
    "# TYPE nutcracker_uptime_seconds gauge",
    `nutcracker_uptime_seconds ${Math.floor((now - src.startedAt) / 1000)}`,
    "# HELP nutcracker_config_generation configuration generation in force: 1 at start, +1 per applied reload",
    "# TYPE nutcracker_config_generation gauge",
    `nutcracker_config_generation ${status.generation}`,
    "# HELP nutcracker_config_reloads_total reload attempts (dry runs excluded) by result",
    "# TYPE nutcracker_config_reloads_total counter",
    `nutcracker_config_reloads_total{result="ok"} ${status.reloads.ok}`,
    `nutcracker_config_reloads_total{result="error"} ${status.reloads.error}`,
    "# HELP nutcracker_config_last_reload_timestamp_seconds seconds since the epoch of the last reload attempt (dry runs excluded), 0 when none",
    "# TYPE nutcracker_config_last_reload_timestamp_seconds gauge",
    `nutcracker_config_last_reload_timestamp_seconds ${status.lastReloadAt === null ? 0 : status.lastReloadAt / 1000}`,
    "# HELP nutcracker_workers worker processes alive, by state (ready: the current generation; draining: an old one)",
    "# TYPE nutcracker_workers gauge",
    ...[...states].map(([state, n]) => `nutcracker_workers{state="${escapeLabelValue(state)}"} ${n}`),
    "# HELP nutcracker_worker_generation the generation of workers accepting connections: 1 at start, +1 per restart",
    "# TYPE nutcracker_worker_generation gauge",
    `nutcracker_worker_generation ${sup.currentGeneration}`,
    "# HELP nutcracker_worker_replacements_total workers started again after exiting unexpectedly",
    "# TYPE nutcracker_worker_replacements_total counter",
    `nutcracker_worker_replacements_total ${sup.replaced}`,
    "# HELP nutcracker_restarts_total restarts (SIGUSR2, POST /restart) completed",
    "# TYPE nutcracker_restarts_total counter",
    `nutcracker_restarts_total ${sup.restarts}`,
  ];
  return `${lines.join("\n")}\n`;
}
