/**
 * What the dashboard reads, served by this runtime's adapter in front of real servers: the
 * page and its assets (strict CSP, a script that parses), /live against /health, /api, and
 * /api/dashboard for a redis pool with a replica that is down, a memcached pool, a pool
 * following a real Sentinel (its panel data and the replica it discovered) and a pool whose
 * only server is down: roles, states with reasons, rates and quantiles after traffic, the
 * history sampled from start and `?since=`; and the page's reload request through the guard.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { type Proxy, startProxy } from "../core/proxy/mod.ts";
import { createReloader } from "../core/reload/reloader.ts";
import { createMetrics, type Observability, startObservability } from "../core/admin/mod.ts";
import type { DashboardState, NodeView, PoolView } from "../core/admin/dashboard/mod.ts";
import { loadNet } from "../adapters/mod.ts";
import { freePort, sleep } from "./helpers/ports.ts";
import { rawRequest, type ServerProcess, startMemcached, startRedis } from "./helpers/servers.ts";
import { SentinelSetup } from "./helpers/sentinel.ts";
import { waitFor } from "./helpers/soak.ts";

const DEAD = "127.0.0.1:1";
const resp = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");

describe("the dashboard's routes and data", () => {
  let redis: ServerProcess;
  let memcached: ServerProcess;
  let setup: SentinelSetup;
  let proxy: Proxy;
  let obs: Observability;
  let base = "";
  let alphaPort = 0;
  let startedAt = 0;

  before(async () => {
    [redis, memcached, setup] = await Promise.all([
      startRedis(),
      startMemcached(),
      SentinelSetup.start({ replicas: 1, sentinels: 1, quorum: 1, prefix: "dashboard-api-" }),
    ]);
    await setup.waitAgreed({ masterPort: setup.redises[0].port, replicas: 1 });
    alphaPort = await freePort();
    const [mcPort, watchedPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    const yml = `alpha:\n  listen: 127.0.0.1:${alphaPort}\n  redis: true\n  servers:\n    - 127.0.0.1:${redis.port}:1 s1\n` +
      `  replicas:\n    s1:\n      - ${DEAD}\n  replica_check_interval: 200\n` +
      `cache:\n  listen: 127.0.0.1:${mcPort}\n  servers:\n    - 127.0.0.1:${memcached.port}:1\n` +
      `watched:\n  listen: 127.0.0.1:${watchedPort}\n  redis: true\n  sentinels:\n    - 127.0.0.1:${setup.sentinelPorts[0]}\n` +
      `  servers:\n    - 127.0.0.1:${setup.redises[0].port}:1 ${setup.name}\n  replica_check_interval: 200\n` +
      `dead:\n  listen: 127.0.0.1:${deadPort}\n  redis: true\n  servers:\n    - ${DEAD}:1\n`;
    const net = await loadNet();
    const log = createLogger(() => {}, 0);
    const metrics = createMetrics();
    const readConf = () => loadConf(yml, "dashboard.yml");
    startedAt = Date.now();
    proxy = await startProxy(readConf(), { net, clock: systemClock, log, observe: metrics.observe });
    obs = await startObservability(proxy, metrics, {
      statsAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
      statsIntervalMs: 1000,
      adminAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
      version: "0.5.0",
      source: "dashboard-test-host",
      healthCacheMs: 0,
      // A stopped server refuses at once; a live one must not count as down because a busy machine
      // ran the probe's timer before its connect callback.
      probeTimeoutMs: 5000,
      reloader: createReloader(proxy, readConf, { clock: systemClock, log }),
    }, { net, clock: systemClock, log });
    const admin = obs.adminAddr!;
    assert.ok(admin.kind === "tcp");
    base = `http://127.0.0.1:${admin.port}`;
  });

  after(async () => {
    await obs?.close();
    await proxy?.close(100);
    await Promise.all([redis?.stop(), memcached?.stop(), setup?.stopAll()]);
  });

  const state = async (query = ""): Promise<DashboardState> => (await fetch(`${base}/api/dashboard${query}`)).json() as Promise<DashboardState>;
  const poolOf = (s: DashboardState, name: string): PoolView => s.pools.find((p) => p.name === name)!;
  const nodesOf = (p: PoolView): NodeView[] => p.shards.flatMap((s) => s.nodes);

  it("GET / serves the page under a CSP that forbids inline code; its script, stylesheet and icon are served; the script parses", async () => {
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script");
    assert.doesNotMatch(html, /\sstyle=|<style/, "no inline style");
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, "nothing from another origin");
    const types: Record<string, string> = {
      "assets/dashboard.js": "text/javascript; charset=utf-8",
      "assets/dashboard.css": "text/css; charset=utf-8",
      "assets/icon.svg": "image/svg+xml",
    };
    for (const [asset, type] of Object.entries(types)) {
      assert.ok(html.includes(`"${asset}"`), `the page references ${asset}`);
      const r = await fetch(`${base}/${asset}`);
      assert.equal(r.status, 200, asset);
      assert.equal(r.headers.get("content-type"), type);
      const body = await r.text();
      if (asset.endsWith(".js")) new Function(body);
    }
  });

  it("GET /live answers 200 while /health answers 503 for a pool whose only server is down", async () => {
    const live = await fetch(`${base}/live`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: "live" });
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 503);
    assert.deepEqual((await health.json() as { unavailable: string[] }).unavailable, ["dead"]);
  });

  it("GET /api lists the routes that GET / listed before, plus the dashboard's", async () => {
    const body = await (await fetch(`${base}/api`)).json() as { service: string; endpoints: Record<string, string> };
    assert.equal(body.service, "nutcracker");
    for (const route of ["/", "/api/dashboard", "/stats", "/metrics", "/health", "/live", "/pools", "/reload"]) {
      assert.ok(route in body.endpoints, route);
    }
  });

  it("keeps a point per second from start, so the first answer already holds the history", async () => {
    await sleep(Math.max(0, startedAt + 2300 - Date.now()));
    const s = await state();
    assert.equal(s.history.full, true);
    assert.equal(s.history.step_ms, 1000);
    assert.equal(s.history.span_ms, 900_000);
    assert.ok(s.history.times.length >= 2, `${s.history.times.length} points after 2.3 s`);
    for (const name of ["alpha", "cache", "watched", "dead"]) {
      const h = s.history.pools[name];
      assert.equal(h.rate.length, s.history.times.length, name);
      assert.equal(h.p99_ms.length, s.history.times.length, name);
    }
    assert.deepEqual(Object.keys(s.history.pools.alpha.nodes), ["s1", `s1/${DEAD}`]);
  });

  it("shows every pool with its listen address, shards and nodes, roles and states with reasons", async () => {
    assert.ok(await waitFor(async () => nodesOf(poolOf(await state(), "alpha"))[1].reason === "down", 5000), "the dead replica is found down");
    const s = await state();
    assert.deepEqual(s.pools.map((p) => p.name), ["alpha", "cache", "watched", "dead"]);
    assert.equal(s.source, "dashboard-test-host");
    assert.equal(s.reload.generation, 1);
    assert.equal(s.reload.available, true);
    const alpha = poolOf(s, "alpha");
    assert.equal(alpha.listen, `127.0.0.1:${alphaPort}`);
    assert.equal(alpha.protocol, "redis");
    assert.equal(alpha.sentinel, null);
    assert.deepEqual(alpha.shards.map((sh) => sh.id), ["s1"]);
    const [master, replica] = nodesOf(alpha);
    assert.deepEqual([master.name, master.role, master.state, master.reason], ["s1", "master", "up", null]);
    assert.deepEqual([replica.name, replica.role, replica.state, replica.reason], [`s1/${DEAD}`, "replica", "ineligible", "down"]);
    const cache = poolOf(s, "cache");
    assert.equal(cache.protocol, "memcached");
    assert.equal(cache.sentinel, null);
    assert.equal(nodesOf(cache)[0].lag_bytes, null);
  });

  it("shows a Sentinel pool's Sentinels, master and the replica Sentinel reported", async () => {
    const master = `127.0.0.1:${setup.redises[0].port}`;
    const replica = `${setup.name}/127.0.0.1:${setup.redises[1].port}`;
    const ready = (p: PoolView) => p.sentinel?.reachable === 1 && nodesOf(p).some((n) => n.name === replica && n.state === "up");
    assert.ok(await waitFor(async () => ready(poolOf(await state(), "watched")), 10_000),
      `Sentinel reachable and its replica up: ${JSON.stringify(poolOf(await state(), "watched"))}`);
    const watched = poolOf(await state(), "watched");
    assert.deepEqual(watched.sentinel?.sentinels, [`127.0.0.1:${setup.sentinelPorts[0]}`]);
    assert.equal(watched.sentinel?.shards[setup.name].master, master);
    assert.equal(watched.sentinel?.shards[setup.name].failovers, 0);
    const node = nodesOf(watched).find((n) => n.name === replica)!;
    assert.equal(node.role, "replica");
    assert.equal(typeof node.lag_bytes, "number");
  });

  it("shows request rates and p50/p99 after traffic, the pool's rate the sum of its nodes'", async () => {
    const batch = Array.from({ length: 200 }, (_, i) => resp("SET", `dash:${i}`, "v")).join("");
    // The live rate spans back to the newest sample at least 250 ms old, so it is read right
    // after a batch; a slow machine may answer after that window moved past the batch: another batch.
    const deadline = Date.now() + 15_000;
    let batches = 0;
    let s: DashboardState;
    do {
      await rawRequest(alphaPort, batch, { expectBytes: 200 * 5, timeoutMs: 5000 });
      batches++;
      s = await state();
    } while (!(poolOf(s, "alpha").rate! > 0) && Date.now() < deadline);
    const alpha = poolOf(s, "alpha");
    assert.ok(alpha.rate! > 0, `pool rate ${alpha.rate} right after each of ${batches} batches of 200 SETs`);
    assert.equal(alpha.rate, nodesOf(alpha).reduce((sum, n) => sum + (n.rate ?? 0), 0));
    assert.equal(alpha.errors, 0);
    assert.ok(alpha.p50_ms !== null && alpha.p99_ms !== null && alpha.p50_ms <= alpha.p99_ms, `p50 ${alpha.p50_ms} p99 ${alpha.p99_ms}`);
    assert.equal(nodesOf(alpha)[0].p99_ms, alpha.p99_ms);
    assert.equal(nodesOf(alpha)[1].p99_ms, null, "no reply from the dead replica");
    // The next per-second sample after the traffic holds it (waited for: a busy machine delays the sampler).
    let rates: readonly (number | null)[] = [];
    const charted = await waitFor(async () => {
      rates = (await state()).history.pools.alpha.rate;
      return rates.some((v) => v !== null && v > 0);
    }, 10_000, 100);
    assert.ok(charted, `a chart point with the traffic: ${rates.join(",")}`);
  });

  it("answers only newer points for ?since=, all of them when since is out of the window, and 400 for a bad since", async () => {
    const fullAt = Date.now();
    const full = await state();
    const last = full.history.times.at(-1)!;
    const next = await state(`?since=${last}`);
    assert.equal(next.history.full, false);
    assert.ok(next.history.times.every((t) => t > last));
    assert.equal(next.history.pools.alpha.rate.length, next.history.times.length);
    await sleep(1100);
    const after1s = await state(`?since=${last}`);
    // A point a second: `last` is under a second older than fullAt, so at most one per whole second since, plus one
    // (2 on an idle machine; more only when this answer came late).
    const most = Math.floor((Date.now() - fullAt) / 1000) + 1;
    const got = after1s.history.times;
    assert.ok(got.length >= 1 && got.length <= most, `${got.length} new points, expected 1 to ${most}`);
    assert.ok(got.every((t) => t > last), "only points newer than since");
    const future = await state(`?since=${last + 3_600_000}`);
    assert.equal(future.history.full, true);
    assert.ok(future.history.times.length >= full.history.times.length);
    assert.equal((await fetch(`${base}/api/dashboard?since=soon`)).status, 400);
  });

  it("lets the page's reload request (JSON, own Origin) through the guard on a loopback address, not one from another origin", async () => {
    const headers = { "content-type": "application/json", origin: base };
    const res = await fetch(`${base}/reload`, { method: "POST", headers, body: "{}" });
    assert.equal(res.status, 200);
    assert.equal((await res.json() as { generation: number }).generation, 2);
    const foreign = await fetch(`${base}/reload`, { method: "POST", headers: { ...headers, origin: "http://evil.example" }, body: "{}" });
    assert.equal(foreign.status, 403);
    assert.equal((await state()).reload.generation, 2);
  });
});
