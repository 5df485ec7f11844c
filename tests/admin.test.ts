/**
 * The HTTP admin API served by the runtime's adapter, in front of a real proxy and real
 * redis-servers: /stats, /metrics, /pools, and /health flipping to 503 when every server
 * of a pool is down and back to 200 when one returns; ejection shows in /pools.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { type Proxy, startProxy } from "../core/proxy/mod.ts";
import { createMetrics, type Observability, startObservability } from "../core/admin/mod.ts";
import { loadNet } from "../adapters/mod.ts";
import { freePort, sleep } from "./helpers/ports.ts";
import { rawExchange, rawRequest, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { checkHistogram, parseExposition } from "./helpers/prometheus.ts";

const resp = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");

interface Stack {
  proxy: Proxy;
  obs: Observability;
  base: string;
  statsPort: number;
  ports: number[];
}

/** A proxy for the given pools ({name: backend ports}) plus the stats port and the admin API on free ports. */
async function startStack(pools: Record<string, number[]>, extra = ""): Promise<Stack> {
  const ports: number[] = [];
  let yml = "";
  for (const [name, backends] of Object.entries(pools)) {
    const port = await freePort();
    ports.push(port);
    yml += `${name}:\n  listen: 127.0.0.1:${port}\n  redis: true\n${extra}  servers:\n` +
      backends.map((p) => `    - 127.0.0.1:${p}:1\n`).join("");
  }
  const net = await loadNet();
  const log = createLogger(() => {}, 0);
  const metrics = createMetrics();
  const proxy = await startProxy(loadConf(yml, "admin.yml"), { net, clock: systemClock, log, observe: metrics.observe });
  const obs = await startObservability(proxy, metrics, {
    statsAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
    statsIntervalMs: 50,
    adminAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
    version: "0.5.0",
    source: "admin-test-host",
    healthCacheMs: 0,
    // A stopped server refuses at once; a live one must not count as down because a busy machine
    // ran the probe's timer before its connect callback.
    probeTimeoutMs: 5000,
  }, { net, clock: systemClock, log });
  const admin = obs.adminAddr!;
  const stats = obs.statsAddr;
  assert.ok(admin.kind === "tcp" && stats.kind === "tcp");
  return { proxy, obs, base: `http://127.0.0.1:${admin.port}`, statsPort: stats.port, ports };
}

async function getJson(url: string): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.json() as Record<string, unknown> };
}

/** Sum of the samples of `name` whose labels include every pair in `match`. */
function total(text: string, name: string, match: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labels = line.slice(name.length, line.lastIndexOf(" "));
    if (Object.entries(match).every(([k, v]) => labels.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

describe("admin API of a proxy with two pools", () => {
  let alpha: ServerProcess[] = [];
  let beta: ServerProcess;
  let stack: Stack;

  before(async () => {
    alpha = [await startRedis(), await startRedis()];
    beta = await startRedis();
    stack = await startStack({ alpha: alpha.map((r) => r.port), beta: [beta.port] });
  });

  after(async () => {
    await stack?.obs.close();
    await stack?.proxy.close(200);
    for (const r of [...alpha, beta]) await r?.stop();
  });

  it("GET /stats answers the same JSON as the stats port", async () => {
    await sleep(200);
    const http = await getJson(`${stack.base}/stats`);
    const port = JSON.parse(new TextDecoder().decode((await rawExchange(stack.statsPort, "", { timeoutMs: 3000 })).data));
    assert.equal(http.status, 200);
    assert.match(http.type, /^application\/json/);
    for (const field of ["uptime", "timestamp"]) {
      delete http.body[field];
      delete port[field];
    }
    assert.deepEqual(http.body, port);
  });

  it("GET /metrics is Prometheus text whose counters and latency histograms move with each GET at once", async () => {
    const K = 25;
    const read = async () => {
      const res = await fetch(`${stack.base}/metrics`);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      return await res.text();
    };
    const before = await read();
    const gets = Array.from({ length: K }, (_, i) => resp("GET", `${((i + 1) * 2654435761 >>> 0).toString(36)}:missing`)).join("");
    await rawRequest(stack.ports[0], gets, { expectBytes: 5 * K, timeoutMs: 5000 });
    const after = await read();
    const families = parseExposition(after);
    for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);
    assert.ok(families.has("nutcracker_request_duration_seconds"), "the live text has the latency histogram");
    const delta = (name: string, match: Record<string, string>) => total(after, name, match) - total(before, name, match);
    assert.equal(delta("nutcracker_requests_total", { pool: "alpha" }), K);
    assert.equal(delta("nutcracker_responses_total", { pool: "alpha" }), K);
    assert.equal(delta("nutcracker_request_duration_seconds_count", { pool: "alpha", command: "get" }), K);
    assert.equal(delta("nutcracker_request_duration_seconds_bucket", { pool: "alpha", command: "get", le: "+Inf" }), K);
    assert.equal(delta("nutcracker_response_size_bytes_sum", { pool: "alpha", command: "get" }), 5 * K);
    assert.equal(delta("nutcracker_response_size_bytes_bucket", { pool: "alpha", command: "get", le: "16" }), K);
    assert.equal(delta("nutcracker_requests_total", { pool: "beta" }), 0);
  });

  it("GET /pools shows each pool's loaded config and every server up with its connections", async () => {
    const { status, body } = await getJson(`${stack.base}/pools`);
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(body), ["alpha", "beta"]);
    const pool = body.alpha as Record<string, unknown>;
    assert.equal(pool.listen, `127.0.0.1:${stack.ports[0]}`);
    assert.equal(pool.redis, true);
    assert.equal(pool.hash, "fnv1a_64");
    assert.equal(pool.distribution, "ketama");
    assert.equal(pool.server_connections, 1);
    assert.equal(pool.redis_auth, null);
    const servers = pool.servers as Record<string, unknown>[];
    assert.deepEqual(servers.map((s) => s.address), alpha.map((r) => `127.0.0.1:${r.port}`));
    for (const server of servers) {
      assert.equal(server.state, "up");
      assert.equal(server.ejected_since, null);
      assert.equal(server.retry_at, null);
      assert.equal(typeof server.connections, "number");
    }
    assert.equal(servers.reduce((n, s) => n + (s.connections as number), 0), 2);
  });

  it("GET /health is 200 while every pool has a reachable server", async () => {
    const { status, body } = await getJson(`${stack.base}/health`);
    assert.equal(status, 200);
    assert.equal(body.status, "ok");
    assert.deepEqual(body.unavailable, []);
  });

  it("GET /health turns 503 naming the pool when all its servers stop, and 200 again once one is back", async () => {
    await beta.stop();
    const down = await getJson(`${stack.base}/health`);
    assert.equal(down.status, 503);
    assert.equal(down.body.status, "unavailable");
    assert.deepEqual(down.body.unavailable, ["beta"]);
    await beta.restart();
    const up = await getJson(`${stack.base}/health`);
    assert.equal(up.status, 200);
    assert.deepEqual(up.body.unavailable, []);
  });

  it("an unknown path answers 404", async () => {
    const res = await fetch(`${stack.base}/nope`);
    await res.body?.cancel();
    assert.equal(res.status, 404);
  });
});

describe("admin API of a pool whose only server refuses connections", () => {
  let stack: Stack;

  before(async () => {
    const closed = await freePort();
    stack = await startStack(
      { gamma: [closed] },
      "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 30000\n",
    );
  });

  after(async () => {
    await stack?.obs.close();
    await stack?.proxy.close(200);
  });

  it("after a failed request the server shows as ejected with when and until when", async () => {
    const sent = Date.now();
    const reply = new TextDecoder().decode(await rawRequest(stack.ports[0], resp("GET", "k"), { untilEnds: "\r\n", timeoutMs: 5000 }));
    assert.ok(reply.startsWith("-"), reply);
    const { body } = await getJson(`${stack.base}/pools`);
    const [server] = (body.gamma as { servers: Record<string, unknown>[] }).servers;
    assert.equal(server.state, "ejected");
    const since = Date.parse(server.ejected_since as string);
    const retry = Date.parse(server.retry_at as string);
    assert.ok(since >= sent - 1000 && since <= Date.now() + 1000, `ejected_since ${server.ejected_since}`);
    assert.ok(Math.abs(retry - since - 30000) < 1000, `retry_at ${server.retry_at}`);
  });

  it("GET /health is 503 and counts the ejected server", async () => {
    const { status, body } = await getJson(`${stack.base}/health`);
    assert.equal(status, 503);
    assert.deepEqual(body.unavailable, ["gamma"]);
    assert.deepEqual(body.pools, [{ pool: "gamma", servers: 1, ejected: 1, reachable: 0 }]);
  });

  it("GET /metrics reports the ejection", async () => {
    const text = await (await fetch(`${stack.base}/metrics`)).text();
    assert.equal(total(text, "nutcracker_server_ejected", { pool: "gamma" }), 1);
    assert.equal(total(text, "nutcracker_server_ejects_total", { pool: "gamma" }), 1);
    assert.ok(total(text, "nutcracker_forward_error_total", { pool: "gamma" }) + total(text, "nutcracker_server_err_total", { pool: "gamma" }) >= 1);
  });
});
