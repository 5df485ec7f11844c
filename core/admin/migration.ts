/**
 * A pool's migration through the admin API: GET /pools/<pool>/migration (progress), and
 * POST .../pause, /resume, /abort, /finish (token-protected by the app's guard, as every POST).
 * The same answers are what a worker gives the `--workers` supervisor, which merges them
 * (mergeMigrations, mergeActionAnswers): each worker is one proxy of the pool.
 */
import type { Context, Hono } from "hono";
import type { MigrationStatus } from "../migration/migration.ts";
import type { Proxy } from "../proxy/mod.ts";
import type { Pool } from "../proxy/pool.ts";

/** A pool's running or last migration, as the dashboard and a worker's answer carry it. */
export interface MigrationView extends MigrationStatus {
  /** False once it ended (the status is the last migration's). */
  readonly running: boolean;
}

/** What an action route answers: an HTTP status and its JSON body. */
export interface ActionAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** The routes, installed on the admin app. */
export function installMigrationRoutes(app: Hono, proxy: () => Proxy): void {
  app.get("/pools/:pool/migration", (c) => {
    const pool = poolNamed(proxy(), c.req.param("pool"));
    if (pool === null) return unknownPool(c);
    return c.json({ pool: pool.conf.name, running: pool.migration !== null, migration: pool.migrationStatus() });
  });
  app.post("/pools/:pool/migration/:action", async (c) => {
    const answer = await migrationAction(proxy(), c.req.param("pool"), c.req.param("action"));
    return c.json(answer.body, answer.status as 200);
  });
}

/** The running (or last) migration of `pool` with its running flag; null when it never migrated. */
export function migrationView(pool: Pool): MigrationView | null {
  const status = pool.migrationStatus();
  return status === null ? null : { ...status, running: pool.migration !== null };
}

/**
 * Apply `action` (pause, resume, abort, finish) to the migration of the pool called `name`.
 * @example const { status, body } = await migrationAction(proxy, "alpha", "pause");
 */
export async function migrationAction(proxy: Proxy, name: string, action: string): Promise<ActionAnswer> {
  const pool = poolNamed(proxy, name);
  if (pool === null) return { status: 404, body: { error: `no pool named '${name}'` } };
  if (!Object.hasOwn(ACTIONS, action)) return { status: 404, body: { error: `unknown action '${action}': pause, resume, abort or finish` } };
  if (pool.migration === null) return { status: 409, body: { error: `pool '${pool.conf.name}' is not migrating` } };
  const outcome = await ACTIONS[action](pool);
  return { status: outcome.ok ? 200 : 409, body: { pool: pool.conf.name, action, ...outcome, migration: migrationView(pool) } };
}

type Outcome = { ok: boolean; result: string };

const ACTIONS: Readonly<Record<string, (pool: Pool) => Promise<Outcome>>> = {
  pause: (pool) => Promise.resolve(done(pool.migration!.pause(), "paused", "only a running store migration can be paused")),
  resume: (pool) => Promise.resolve(done(pool.migration!.resume(), "resumed", "the migration is not paused")),
  abort: (pool) => Promise.resolve(done(pool.abortMigration(), "moving back to the old ring", "nothing to abort")),
  finish: async (pool) => {
    const result = await pool.migration!.finish();
    return { ok: result === "done", result };
  },
};

function done(ok: boolean, yes: string, no: string): Outcome {
  return { ok, result: ok ? yes : no };
}

function poolNamed(proxy: Proxy, name: string): Pool | null {
  return proxy.pools.find((pool) => pool.conf.name === name) ?? null;
}

function unknownPool(c: Context): Response {
  return c.json({ error: `no pool named '${c.req.param("pool")}'` }, 404);
}

// ---- several proxies (workers) as one ----

/** Counters each proxy keeps for its own requests: the pool's are their sum. */
const SUMMED = ["requests", "fallback_hits", "fallback_misses", "copied", "removed_old", "served_by_old", "refused", "errors"] as const;

/**
 * Several proxies' views of one pool's migration as one: running when any runs it; the
 * mover's progress (phase, sources, keys moved, rate, ETA, big keys, waiting_for) from the
 * proxy that drives it (store mode; once done, the one that moved most); the per-request
 * counters summed. Only running views count while any runs (a worker's older, finished one
 * is not this migration).
 * @example mergeMigrations([worker1View, worker2View])
 */
export function mergeMigrations(views: readonly (MigrationView | null)[]): MigrationView | null {
  const present = views.filter((v): v is MigrationView => v !== null);
  if (present.length === 0) return null;
  const running = present.filter((v) => v.running);
  const counted = running.length > 0 ? running : present;
  const base = counted.find((v) => v.driver) ?? counted.reduce((a, b) => (b.keys_moved > a.keys_moved ? b : a));
  const sums = Object.fromEntries(SUMMED.map((k) => [k, counted.reduce((n, v) => n + v[k], 0)]));
  return {
    ...base,
    ...sums,
    running: running.length > 0,
    last_error: base.last_error ?? counted.find((v) => v.last_error !== null)?.last_error ?? null,
  };
}

/**
 * Every worker's answer to one action as one: 200 when any applied it (finish in store mode
 * is done by the driver alone; the others answer 409), else the first refusal; each worker's
 * result listed, the migration merged.
 */
export function mergeActionAnswers(answers: readonly (ActionAnswer & { readonly slot: number })[]): ActionAnswer {
  if (answers.length === 0) return { status: 503, body: { error: "no worker answered" } };
  const applied = answers.find((a) => a.status === 200);
  const first = applied ?? answers.find((a) => a.status !== 404) ?? answers[0];
  const workers = answers.map((a) => ({ slot: a.slot, status: a.status, result: a.body.result ?? a.body.error }));
  if (first.body.error !== undefined) return { status: first.status, body: { ...first.body, workers } };
  const migration = mergeMigrations(answers.map((a) => (a.body.migration ?? null) as MigrationView | null));
  return { status: first.status, body: { ...first.body, ok: applied !== undefined, migration, workers } };
}
