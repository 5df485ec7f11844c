/**
 * The admin API's reload routes and reload status, against the hono app in front of a
 * real proxy with a scripted Reloader: POST /reload (200 ok, 400 refused, dry_run, no
 * reloader), GET /reload, the status fields in every /pools entry, and the config
 * metrics in /metrics (checked by the strict exposition parser).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hono } from "hono";
import type { ReloadReport } from "../core/reload/types.ts";
import { adminApp, call, ScriptedReloader } from "./helpers/admin-app.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { parseExposition } from "./helpers/prometheus.ts";

const JSON_CT = { "content-type": "application/json" };
const HOST = "127.0.0.1:8181";
const TWO_POOLS = "alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n    - 127.0.0.1:1:1\n" +
  "beta:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n    - 127.0.0.1:2:1\n";

const BROKEN: ReloadReport = {
  result: "error",
  dryRun: false,
  generation: 3,
  changes: [],
  error: "nutcracker: /etc/nutcracker.yml:3: pool 'alpha': \"hash\" \"foo\" is not a valid hash",
};

/** The value of the one sample of `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const family = parseExposition(text).get(name);
  assert.ok(family, `${name} missing`);
  const found = family.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels.get(k) === v));
  assert.equal(found.length, 1, `${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0].value;
}

async function metricsText(app: Hono): Promise<string> {
  return await (await app.fetch(new Request(`http://${HOST}/metrics`))).text();
}

describe("admin reload routes", () => {
  let stack: TestProxy;
  const reloader = new ScriptedReloader();
  let app: Hono;
  let bare: Hono;

  before(async () => {
    stack = await startTestProxy(TWO_POOLS);
    app = await adminApp(stack.proxy, { reloader });
    bare = await adminApp(stack.proxy, { reloader: null });
  });

  after(async () => {
    await stack?.close();
  });

  it("POST /reload answers 200 with the report when the reload applied", async () => {
    reloader.next = {
      result: "ok", dryRun: false, generation: 2, error: null,
      changes: [{ pool: "alpha", action: "unchanged", details: [] }, { pool: "gamma", action: "added", details: ["listen 127.0.0.1:22123"] }],
    };
    const res = await call(app, "POST", "/reload", HOST, JSON_CT);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ...reloader.next, dryRun: false });
    assert.deepEqual(reloader.calls.at(-1), { dryRun: false });
  });

  it("POST /reload answers 400 with the report, error included, when the new file was refused", async () => {
    reloader.next = BROKEN;
    const res = await call(app, "POST", "/reload", HOST, JSON_CT);
    assert.equal(res.status, 400);
    assert.equal(res.body.result, "error");
    assert.equal(res.body.error, BROKEN.error);
  });

  it("POST /reload?dry_run=1 asks for a dry run; dry_run=0 does not; another value is a 400", async () => {
    reloader.next = { result: "ok", dryRun: true, generation: 1, error: null, changes: [] };
    const calls = reloader.calls.length;
    for (const [query, dryRun] of [["?dry_run=1", true], ["?dry_run=true", true], ["?dry_run", true], ["?dry_run=0", false]] as const) {
      const res = await call(app, "POST", `/reload${query}`, HOST, JSON_CT);
      assert.equal(res.status, 200, query);
      assert.equal(res.body.dryRun, dryRun, query);
    }
    assert.deepEqual(reloader.calls.slice(calls), [{ dryRun: true }, { dryRun: true }, { dryRun: true }, { dryRun: false }]);
    const bad = await call(app, "POST", "/reload?dry_run=maybe", HOST, JSON_CT);
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.error), /dry_run/);
    assert.equal(reloader.calls.length, calls + 4);
  });

  it("POST /reload answers 503 with a message when the proxy has no reloader", async () => {
    const res = await call(bare, "POST", "/reload", HOST, JSON_CT);
    assert.equal(res.status, 503);
    assert.match(String(res.body.error), /reload is not available/);
  });

  it("GET /api lists /reload among the endpoints", async () => {
    const res = await call(app, "GET", "/api", HOST);
    const endpoints = res.body.endpoints as Record<string, string>;
    assert.deepEqual(Object.keys(endpoints), ["/", "/api", "/api/dashboard", "/stats", "/metrics", "/health", "/live", "/pools", "/reload",
      "/pools/<pool>/migration", "/pools/<pool>/migration/<action>"]);
    assert.match(endpoints["/reload"], /^POST: .*dry_run=1/);
  });

  it("GET /reload shows the status; /pools keeps its pool-name keys and shows the same status in every entry", async () => {
    reloader.current = { generation: 4, reloads: { ok: 3, error: 1 }, lastReloadAt: Date.UTC(2030, 0, 2, 3, 4, 5, 678), lastError: "bad file" };
    const status = await call(app, "GET", "/reload", HOST);
    assert.deepEqual(status.body, {
      generation: 4, last_reload_at: "2030-01-02T03:04:05.678Z", last_reload_error: "bad file",
      reloads: { ok: 3, error: 1 }, available: true,
    });
    const pools = await call(app, "GET", "/pools", HOST);
    assert.deepEqual(Object.keys(pools.body), ["alpha", "beta"]);
    for (const name of ["alpha", "beta"]) {
      const entry = pools.body[name] as Record<string, unknown>;
      assert.equal(entry.generation, 4);
      assert.equal(entry.last_reload_at, "2030-01-02T03:04:05.678Z");
      assert.equal(entry.last_reload_error, "bad file");
      assert.equal(entry.hash, "fnv1a_64", "the config keys are still there");
      assert.ok(Array.isArray(entry.servers));
    }
  });

  it("/metrics has the config generation, both reload result counters and the last reload time", async () => {
    reloader.current = { generation: 4, reloads: { ok: 3, error: 1 }, lastReloadAt: 1_900_000_000_500, lastError: "bad file" };
    const text = await metricsText(app);
    const families = parseExposition(text);
    assert.equal(families.get("nutcracker_config_generation")?.type, "gauge");
    assert.equal(families.get("nutcracker_config_reloads_total")?.type, "counter");
    assert.equal(families.get("nutcracker_config_last_reload_timestamp_seconds")?.type, "gauge");
    assert.equal(sample(text, "nutcracker_config_generation"), 4);
    assert.equal(sample(text, "nutcracker_config_reloads_total", { result: "ok" }), 3);
    assert.equal(sample(text, "nutcracker_config_reloads_total", { result: "error" }), 1);
    assert.equal(sample(text, "nutcracker_config_last_reload_timestamp_seconds"), 1_900_000_000.5);
  });

  it("without a reloader: generation 1, zero reloads of either result, last reload time 0, /pools nulls", async () => {
    const text = await metricsText(bare);
    assert.equal(sample(text, "nutcracker_config_generation"), 1);
    assert.equal(sample(text, "nutcracker_config_reloads_total", { result: "ok" }), 0);
    assert.equal(sample(text, "nutcracker_config_reloads_total", { result: "error" }), 0);
    assert.equal(sample(text, "nutcracker_config_last_reload_timestamp_seconds"), 0);
    const alpha = (await call(bare, "GET", "/pools", HOST)).body.alpha as Record<string, unknown>;
    assert.deepEqual([alpha.generation, alpha.last_reload_at, alpha.last_reload_error], [1, null, null]);
  });
});
