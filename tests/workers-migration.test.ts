/**
 * A pool's migration under `--workers N`: each worker is one proxy of the pool, so the
 * supervisor's GET /pools/<pool>/migration merges the workers' views (running when any runs
 * it, the driving worker's progress, the per-request counters summed) and its POST actions go
 * to every worker (200 when any applied it, each worker's result listed). The merge rules on
 * plain values first, then the real CLI with `--workers 2` in front of three real
 * redis-servers: a store pool reloaded from two servers onto three, watched, paused and
 * aborted through the supervisor, and shown in its /api/dashboard.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ActionAnswer, mergeActionAnswers, mergeMigrations, type MigrationView } from "../core/admin/migration.ts";
import type { DashboardState } from "../core/admin/dashboard/mod.ts";
import { killStarted, read, startCli, waitUntil } from "./helpers/cli.ts";
import { freePort } from "./helpers/ports.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { poolYaml } from "./helpers/reload.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { PipeClient } from "./helpers/soak.ts";
import { killWorkers, workers } from "./helpers/workers.ts";

const source = (server: string, scanned: number, moved: number) => ({
  server, keys_scanned: scanned, keys_moved: moved, bytes_moved: 0, keys_remaining_estimate: 100 - scanned, scan_rate: 10, done: false, errors: 0,
});

const view = (over: Partial<MigrationView> = {}): MigrationView => ({
  mode: "store", phase: "following", driver: false, waiting_for: [], reverse: false, started_at: "2030-01-01T00:00:00.000Z",
  finished_at: null, from: ["a", "b"], to: ["a", "b", "c"], keys_moved: 0, move_rate: 0, eta_seconds: 0, big_keys_left: 0,
  requests: 5, fallback_hits: 0, fallback_misses: 0, copied: 0, removed_old: 0, served_by_old: 2, refused: 0, errors: 1,
  last_error: null, sources: [source("a", 0, 0), source("b", 0, 0)], running: true, ...over,
});

describe("mergeMigrations and mergeActionAnswers", () => {
  it("mergeMigrations takes the driver's progress, sums the request counters and runs when any worker runs it", () => {
    const driver = view({ driver: true, phase: "moving", keys_moved: 40, move_rate: 4, eta_seconds: 30, sources: [source("a", 50, 20), source("b", 60, 20)] });
    const merged = mergeMigrations([view({ last_error: "SCAN on a failed" }), null, driver])!;
    assert.deepEqual([merged.phase, merged.driver, merged.keys_moved, merged.eta_seconds], ["moving", true, 40, 30]);
    assert.deepEqual(merged.sources, driver.sources);
    assert.deepEqual([merged.requests, merged.served_by_old, merged.errors], [10, 4, 2]);
    assert.equal(merged.last_error, "SCAN on a failed");
    assert.equal(mergeMigrations([null, null]), null);
    const ended = view({ running: false, phase: "done", keys_moved: 99 });
    const running = mergeMigrations([ended, view({ phase: "moving" })])!;
    assert.deepEqual([running.running, running.phase, running.requests], [true, "moving", 5], "a worker's finished migration is not this one");
    const done = mergeMigrations([view({ running: false, phase: "done" }), ended])!;
    assert.deepEqual([done.running, done.keys_moved], [false, 99], "once done: the view of the worker that moved the keys");
  });

  it("mergeActionAnswers answers 200 when any worker applied the action, else the first refusal", () => {
    const ok = (slot: number): ActionAnswer & { slot: number } =>
      ({ slot, status: 200, body: { pool: "st", action: "finish", ok: true, result: "done", migration: view({ driver: true }) } });
    const refused = (slot: number): ActionAnswer & { slot: number } => ({
      slot,
      status: 409,
      body: { pool: "st", action: "finish", ok: false, result: "another proxy drives this migration: finish it there", migration: view() },
    });
    const both = mergeActionAnswers([refused(1), ok(2)]);
    assert.equal(both.status, 200);
    assert.deepEqual([both.body.ok, both.body.result], [true, "done"]);
    assert.deepEqual(both.body.workers, [
      { slot: 1, status: 409, result: "another proxy drives this migration: finish it there" },
      { slot: 2, status: 200, result: "done" },
    ]);
    assert.equal((both.body.migration as MigrationView).requests, 10);
    assert.equal(mergeActionAnswers([refused(1), refused(2)]).status, 409);
    const unknown = mergeActionAnswers([1, 2].map((slot) => ({ slot, status: 404, body: { error: "no pool named 'x'" } })));
    assert.deepEqual([unknown.status, unknown.body.error], [404, "no pool named 'x'"]);
    assert.equal(mergeActionAnswers([]).status, 503);
  });
});

describe("a store migration under --workers 2, through the supervisor's admin API", () => {
  let r: ServerProcess[] = [];
  let tmp = "";
  let conf = "";
  let port = 0;
  let admin = "";
  const yaml = (servers: ServerProcess[]) => poolYaml("st", port, servers.map((s) => s.port), { migration: "store", migration_rate: 10 });
  type Body = { running: boolean; workers: number; migration: MigrationView | null };
  const get = async (pool = "st") => {
    const res = await fetch(`${admin}/pools/${pool}/migration`);
    return { status: res.status, body: await res.json() as Body & { error?: string } };
  };
  const post = async (action: string) => {
    const res = await fetch(`${admin}/pools/st/migration/${action}`, { method: "POST", headers: { "content-type": "application/json" } });
    return { status: res.status, body: await res.json() as Record<string, unknown> & { migration: MigrationView | null } };
  };

  before(async () => {
    r = await Promise.all([startRedis(), startRedis(), startRedis()]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-workers-migration-"));
    [port] = [await freePort()];
    const [adminPort, statsPort] = [await freePort(), await freePort()];
    conf = path.join(tmp, "st.yml");
    const pidFile = path.join(tmp, "st.pid");
    fs.writeFileSync(conf, yaml([r[0], r[1]]));
    startCli(["-c", conf, "-o", path.join(tmp, "st.log"), "-p", pidFile, "-s", String(statsPort), "--admin", `127.0.0.1:${adminPort}`,
      "--workers", "2"], 180_000);
    admin = `http://127.0.0.1:${adminPort}`;
    await waitUntil(() => read(pidFile) !== "", "the pid file", 60_000);
    await workers({ admin });
    const client = await PipeClient.connect(port);
    try {
      const cmds = Array.from({ length: 1000 }, (_, i) => ["SET", `wm:${i}`, `v${i}`]);
      await client.exchange(encodePipeline(cmds), cmds.length, 30_000);
    } finally {
      client.destroy();
    }
  });

  after(async () => {
    killStarted();
    killWorkers();
    await Promise.all(r.map((s) => s?.stop()));
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("answers no migration before a reload, 404 for an unknown pool, 409 for an action with none running", async () => {
    const before = await get();
    assert.equal(before.status, 200);
    assert.deepEqual([before.body.running, before.body.migration, before.body.workers], [false, null, 2]);
    assert.equal((await get("nope")).status, 404);
    const none = await post("pause");
    assert.equal(none.status, 409);
    assert.equal(none.body.error, "pool 'st' is not migrating");
  });

  it("shows the migration a reload starts with the driving worker's progress", async () => {
    fs.writeFileSync(conf, yaml(r));
    const res = await fetch(`${admin}/reload`, { method: "POST", headers: { "content-type": "application/json" } });
    assert.equal(res.status, 200, await res.text());
    let last: Body | null = null;
    await waitUntil(async () => {
      last = (await get()).body;
      return last.migration?.phase === "moving" && last.migration.keys_moved > 0;
    }, "a worker driving the migration, keys moved", 20_000).catch((err) => assert.fail(`${err}: ${JSON.stringify(last)}`));
    const { migration } = (await get()).body;
    assert.ok(migration !== null);
    assert.deepEqual([migration.running, migration.mode, migration.driver, migration.reverse], [true, "store", true, false]);
    assert.deepEqual(migration.sources.map((s) => s.server), [`127.0.0.1:${r[0].port}`, `127.0.0.1:${r[1].port}`]);
    assert.ok(migration.sources.some((s) => s.keys_scanned > 0));
    const dashboard = await (await fetch(`${admin}/api/dashboard`)).json() as DashboardState;
    assert.deepEqual([dashboard.pools[0].migration?.running, dashboard.pools[0].migration?.phase], [true, "moving"]);
  });

  it("pauses in every worker and aborts through the supervisor", async () => {
    const paused = await post("pause");
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    const answered = paused.body.workers as { status: number; result: string }[];
    assert.deepEqual(answered.map((w) => [w.status, w.result]), [[200, "paused"], [200, "paused"]], "both workers paused");
    assert.equal(paused.body.migration?.phase, "paused");
    assert.equal((await get()).body.migration?.phase, "paused");
    const twice = await post("pause");
    assert.equal(twice.status, 409, "nothing left to pause");
    const aborted = await post("abort");
    assert.equal(aborted.status, 200, JSON.stringify(aborted.body));
    assert.equal(aborted.body.result, "moving back to the old ring");
    const after = (await get()).body;
    assert.deepEqual([after.running, after.migration?.reverse, after.migration?.from.length, after.migration?.to.length], [true, true, 3, 2]);
  });
});
