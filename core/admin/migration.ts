/**
 * A pool's migration through the admin API: GET /pools/<pool>/migration (progress), and
 * POST .../pause, /resume, /abort, /finish (token-protected by the app's guard, as every POST).
 */
import type { Context, Hono } from "hono";
import type { Proxy } from "../proxy/mod.ts";
import type { Pool } from "../proxy/pool.ts";

/** The routes, installed on the admin app. */
export function installMigrationRoutes(app: Hono, proxy: () => Proxy): void {
  app.get("/pools/:pool/migration", (c) => {
    const pool = poolNamed(proxy(), c.req.param("pool"));
    if (pool === null) return unknownPool(c);
    return c.json({ pool: pool.conf.name, running: pool.migration !== null, migration: pool.migrationStatus() });
  });
  app.post("/pools/:pool/migration/:action", async (c) => {
    const pool = poolNamed(proxy(), c.req.param("pool"));
    if (pool === null) return unknownPool(c);
    const action = c.req.param("action");
    const migration = pool.migration;
    if (!Object.hasOwn(ACTIONS, action)) return c.json({ error: `unknown action '${action}': pause, resume, abort or finish` }, 404);
    if (migration === null) return c.json({ error: `pool '${pool.conf.name}' is not migrating` }, 409);
    const outcome = await ACTIONS[action](pool);
    return c.json({ pool: pool.conf.name, action, ...outcome, migration: pool.migrationStatus() }, outcome.ok ? 200 : 409);
  });
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
