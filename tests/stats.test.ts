/**
 * The twemproxy stats port: exactly nutcracker 0.5.0's field set and layout, servers in
 * twemproxy's order, snapshots on the -i beat, -D describing every field, and counters
 * that move by exactly the traffic sent through a real proxy to two real redis-servers.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { Flusher } from "../core/proxy/flusher.ts";
import { type Proxy, startProxy } from "../core/proxy/mod.ts";
import { Pool } from "../core/proxy/pool.ts";
import { Req } from "../core/proxy/req.ts";
import { redisProtocol } from "../core/proxy/redis.ts";
import { createMetrics, type Observability, startObservability } from "../core/admin/mod.ts";
import { describeStats, StatsReporter } from "../core/stats/mod.ts";
import { loadNet } from "../adapters/mod.ts";
import { FakeClock, MemNet } from "./helpers/memnet.ts";
import { freePort, sleep } from "./helpers/ports.ts";
import { rawExchange, rawRequest, type ServerProcess, startRedis } from "./helpers/servers.ts";

/** nutcracker 0.5.0's fields (nc_stats.c header, STATS_POOL_CODEC, STATS_SERVER_CODEC), in its order. */
const HEADER = ["service", "source", "version", "uptime", "timestamp", "total_connections", "curr_connections"];
const POOL = ["client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"];
const SERVER = [
  "server_eof", "server_err", "server_timedout", "server_connections", "server_ejected_at", "requests",
  "request_bytes", "responses", "response_bytes", "in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes",
];

const INTERVAL_MS = 50;

/** RESP encoding of one command (ASCII arguments). */
const resp = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");
const bulk = (value: string) => `$${value.length}\r\n${value}\r\n`;

type Stats = Record<string, unknown>;
type Counters = Record<string, number>;

describe("stats of a pool over two redis-servers", () => {
  const N = 40;
  // Spread-out keys: twemproxy's fnv1a_64 puts look-alike keys ("key:1".."key:9") on one server.
  const keys = Array.from({ length: N }, (_, i) => `${((i + 1) * 2654435761 >>> 0).toString(36)}:key`);
  const values = keys.map((_, i) => `value-${i}-${"x".repeat(i * 3)}`);
  let redis: ServerProcess[] = [];
  let proxy: Proxy;
  let obs: Observability;
  let proxyPort = 0;
  let statsPort = 0;
  let clientConnections = 0;
  /** Index of the backend (in `redis`) holding each key, asked of the backends themselves. */
  let owner: number[] = [];

  const serverName = (i: number) => `127.0.0.1:${redis[i].port}`;

  async function readStats(): Promise<{ text: string; json: Stats; closed: boolean }> {
    const reply = await rawExchange(statsPort, "", { timeoutMs: 3000 });
    const text = new TextDecoder().decode(reply.data);
    return { text, json: JSON.parse(text) as Stats, closed: reply.closed };
  }

  /** Stats once the aggregator has snapshotted everything sent so far. */
  async function settledStats(): Promise<Stats> {
    await sleep(INTERVAL_MS * 4);
    return (await readStats()).json;
  }

  /** Send a pipeline through the proxy on a fresh client connection; resolves with the replies. */
  function viaProxy(commands: string, replyBytes: number): Promise<string> {
    clientConnections++;
    return rawRequest(proxyPort, commands, { expectBytes: replyBytes, timeoutMs: 5000 }).then((b) => new TextDecoder().decode(b));
  }

  before(async () => {
    redis = [await startRedis(), await startRedis()];
    proxyPort = await freePort();
    const yml = `alpha:\n  listen: 127.0.0.1:${proxyPort}\n  redis: true\n  servers:\n` +
      redis.map((r) => `    - 127.0.0.1:${r.port}:1\n`).join("");
    const net = await loadNet();
    const log = createLogger(() => {}, 0);
    const metrics = createMetrics();
    proxy = await startProxy(loadConf(yml, "stats.yml"), { net, clock: systemClock, log, observe: metrics.observe });
    obs = await startObservability(proxy, metrics, {
      statsAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
      statsIntervalMs: INTERVAL_MS,
      adminAddr: null,
      version: "0.5.0",
      source: "stats-test-host",
    }, { net, clock: systemClock, log });
    statsPort = obs.statsAddr.kind === "tcp" ? obs.statsAddr.port : 0;
    const sets = keys.map((k, i) => resp("SET", k, values[i])).join("");
    assert.equal(await viaProxy(sets, 5 * N), "+OK\r\n".repeat(N));
    const held = await Promise.all(redis.map(async (r) => {
      const text = new TextDecoder().decode(
        await rawRequest(r.port, keys.map((k) => resp("EXISTS", k)).join(""), { expectBytes: 4 * N }),
      );
      return text.split("\r\n").slice(0, N).map((line) => line === ":1");
    }));
    owner = keys.map((_, i) => held.findIndex((h) => h[i]));
  });

  after(async () => {
    await obs?.close();
    await proxy?.close(200);
    for (const r of redis) await r.stop();
  });

  it("the stats port writes one JSON document ending in a newline and closes the connection", async () => {
    const { text, closed } = await readStats();
    assert.equal(closed, true);
    assert.ok(text.endsWith("}\n"));
    assert.equal(text.indexOf("\n"), text.length - 1);
  });

  it("the keys landed on both servers, so the traffic below spans two servers", () => {
    assert.ok(owner.every((o) => o === 0 || o === 1), "every key is on exactly one backend");
    assert.ok(owner.includes(0) && owner.includes(1));
  });

  it("the JSON has exactly twemproxy's header, pool and server fields, in its order", async () => {
    const { json } = await readStats();
    assert.deepEqual(Object.keys(json), [...HEADER, "alpha"]);
    const pool = json.alpha as Record<string, unknown>;
    const names = redis.map((_, i) => serverName(i)).sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    assert.deepEqual(Object.keys(pool), [...POOL, ...names]);
    for (const name of names) assert.deepEqual(Object.keys(pool[name] as object), SERVER);
    assert.equal(json.service, "nutcracker");
    assert.equal(json.source, "stats-test-host");
    assert.equal(json.version, "0.5.0");
  });

  it("the text is laid out as nutcracker writes it: '\"k\":v, ' pairs and '\"name\": {' nesting", async () => {
    const { text } = await readStats();
    const head = /^\{"service":"nutcracker", "source":"stats-test-host", "version":"0\.5\.0", "uptime":\d+, "timestamp":\d+, "total_connections":\d+, "curr_connections":\d+, "alpha": \{"client_eof":\d+, /;
    assert.match(text, head);
    assert.match(text, /"out_queue_bytes":\d+\},"127\.0\.0\.1:\d+": \{"server_eof":/);
    assert.match(text, /"out_queue_bytes":\d+\}\}\}\n$/);
    const timestamp = Number(/"timestamp":(\d+)/.exec(text)![1]);
    assert.ok(Math.abs(timestamp - Date.now() / 1000) < 5);
  });

  it("N GETs move requests, request_bytes, responses and response_bytes by exactly the traffic per server", async () => {
    const before = await settledStats();
    const reply = keys.map((_, i) => bulk(values[i])).join("");
    assert.equal(await viaProxy(keys.map((k) => resp("GET", k)).join(""), reply.length), reply);
    const after = await settledStats();
    for (const s of [0, 1]) {
      const mine = keys.map((_, i) => i).filter((i) => owner[i] === s);
      const was = (before.alpha as Record<string, Counters>)[serverName(s)];
      const now = (after.alpha as Record<string, Counters>)[serverName(s)];
      assert.equal(now.requests - was.requests, mine.length);
      assert.equal(now.request_bytes - was.request_bytes, sum(mine.map((i) => resp("GET", keys[i]).length)));
      assert.equal(now.responses - was.responses, mine.length);
      assert.equal(now.response_bytes - was.response_bytes, sum(mine.map((i) => bulk(values[i]).length)));
      for (const gauge of ["in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"]) assert.equal(now[gauge], 0, gauge);
      assert.equal(now.server_connections, 1);
    }
    const pool = after.alpha as Counters;
    const poolBefore = before.alpha as Counters;
    assert.equal(pool.fragments - poolBefore.fragments, 0);
    assert.equal(pool.client_eof - poolBefore.client_eof, 1);
    assert.equal(pool.client_connections, 0);
  });

  it("an MGET over keys on both servers counts one request and one fragment per server part", async () => {
    const picked = [owner.indexOf(0), owner.indexOf(1), owner.lastIndexOf(0)];
    const before = await settledStats();
    const expected = `*3\r\n` + picked.map((i) => bulk(values[i])).join("");
    assert.equal(await viaProxy(resp("MGET", ...picked.map((i) => keys[i])), expected.length), expected);
    const after = await settledStats();
    assert.equal((after.alpha as Counters).fragments - (before.alpha as Counters).fragments, 2);
    for (const s of [0, 1]) {
      const part = picked.filter((i) => owner[i] === s);
      const was = (before.alpha as Record<string, Counters>)[serverName(s)];
      const now = (after.alpha as Record<string, Counters>)[serverName(s)];
      assert.equal(now.requests - was.requests, 1);
      assert.equal(now.request_bytes - was.request_bytes, resp("mget", ...part.map((i) => keys[i])).length);
      assert.equal(now.responses - was.responses, 1);
      assert.equal(now.response_bytes - was.response_bytes, `*${part.length}\r\n`.length + sum(part.map((i) => bulk(values[i]).length)));
    }
  });

  it("total_connections and curr_connections count the listener, every client and the server connections", async () => {
    const { json } = await readStats();
    assert.equal(json.curr_connections, 1 + 0 + 2);
    assert.equal(json.total_connections, 1 + clientConnections + 2);
  });

  it("the admin API is off unless an address is given", () => {
    assert.equal(obs.adminAddr, null);
  });
});

describe("stats reporter", () => {
  const yml = "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n" +
    "    - 127.0.0.1:7001:1 n10\n    - 127.0.0.1:7002:1 n9\n    - 127.0.0.1:7003:1 m10\n    - 127.0.0.1:7004:1\n";

  function makePools(clock: FakeClock): Pool[] {
    const env = { net: new MemNet(), clock, log: createLogger(() => {}, 0), flusher: new Flusher(queueMicrotask), protocol: redisProtocol, observe: () => {}, limitOverrides: {} };
    return loadConf(yml, "order.yml").pools.map((p) => new Pool(p, env));
  }

  it("servers are listed sorted by name, shorter names first, as twemproxy sorts them", () => {
    const clock = new FakeClock();
    const reporter = new StatsReporter(() => makePools(clock), { source: "h", version: "0.5.0", intervalMs: 1000 }, clock);
    const pool = JSON.parse(reporter.json()).alpha as object;
    assert.deepEqual(Object.keys(pool).slice(POOL.length), ["n9", "m10", "n10", "127.0.0.1:7004"]);
  });

  it("pool and server values stay at the last snapshot until the interval passes", () => {
    const clock = new FakeClock();
    const pools = makePools(clock);
    const reporter = new StatsReporter(() => pools, { source: "h", version: "0.5.0", intervalMs: 1000 }, clock);
    reporter.start();
    pools[0].servers[0].stats.requests = 7;
    pools[0].stats.forward_error = 3;
    const read = () => JSON.parse(reporter.json()).alpha;
    assert.equal(read().n10.requests, 0);
    clock.advance(999);
    assert.equal(read().forward_error, 0);
    clock.advance(1);
    assert.equal(read().n10.requests, 7);
    assert.equal(read().forward_error, 3);
    reporter.stop();
  });

  it("uptime counts whole seconds from the start and timestamp is the unix time in seconds", () => {
    const clock = new FakeClock();
    const reporter = new StatsReporter(() => makePools(clock), { source: "h", version: "0.5.0", intervalMs: 1000 }, clock);
    clock.advance(2500);
    const json = JSON.parse(reporter.json());
    assert.equal(json.uptime, 2);
    assert.equal(json.timestamp, Math.floor(clock.now() / 1000));
  });

  it("a connection opened and closed still counts in total_connections but not in curr_connections", () => {
    const clock = new FakeClock();
    const pools = makePools(clock);
    const reporter = new StatsReporter(() => pools, { source: "h", version: "0.5.0", intervalMs: 1000 }, clock);
    pools[0].stats.client_connections++;
    pools[0].stats.client_connections--;
    pools[0].servers[1].stats.server_connections++;
    const json = JSON.parse(reporter.json());
    assert.equal(json.total_connections, 1 + 1 + 1);
    assert.equal(json.curr_connections, 1 + 0 + 1);
  });

  it("describeStats() (-D) describes every pool and server field of the JSON, each on its own line", () => {
    const lines = describeStats();
    const poolAt = lines.indexOf("pool stats:");
    const serverAt = lines.indexOf("server stats:");
    assert.ok(poolAt === 0 && serverAt > poolAt);
    const named = (part: string[]) => part.map((l) => /^  (\S+)\s+"(.+)"$/.exec(l)).filter((m) => m !== null);
    const pool = named(lines.slice(poolAt + 1, serverAt));
    const server = named(lines.slice(serverAt + 1));
    assert.deepEqual(pool.map((m) => m![1]), POOL);
    assert.deepEqual(server.map((m) => m![1]), SERVER);
    for (const m of [...pool, ...server]) assert.ok(m![2].length > 10, `${m![1]} has a description`);
  });
});

describe("failure counters, as nutcracker 0.5.0 counts them", () => {
  // Expected values recorded from the real nutcracker 0.5.0 binary on the same traffic.
  let redis: ServerProcess;
  let proxy: Proxy;
  let proxyPort = 0;
  const get = resp("GET", "k");

  before(async () => {
    redis = await startRedis();
    proxyPort = await freePort();
    const yml = `alpha:\n  listen: 127.0.0.1:${proxyPort}\n  redis: true\n  timeout: 300\n  servers:\n    - 127.0.0.1:${redis.port}:1\n`;
    proxy = await startProxy(loadConf(yml, "fail.yml"), { net: await loadNet(), clock: systemClock, log: createLogger(() => {}, 0) });
  });

  after(async () => {
    await proxy?.close(200);
    await redis?.stop();
  });

  const counters = () => {
    const pool = proxy.pools[0];
    const s = pool.servers[0].stats;
    return {
      forward_error: pool.stats.forward_error, server_timedout: s.server_timedout, server_err: s.server_err,
      server_eof: s.server_eof, in_queue: s.in_queue, out_queue: s.out_queue, out_queue_bytes: s.out_queue_bytes,
    };
  };

  it("a timed-out request counts server_timedout and forward_error once, and not server_err", async () => {
    assert.equal(new TextDecoder().decode(await rawRequest(proxyPort, get, { expectBytes: 5 })), "$-1\r\n");
    const before = counters();
    redis.kill("SIGSTOP");
    try {
      const reply = await rawRequest(proxyPort, get, { expectBytes: 26, timeoutMs: 5000 });
      assert.equal(new TextDecoder().decode(reply), "-ERR Connection timed out\r\n");
    } finally {
      redis.kill("SIGCONT");
    }
    const after = counters();
    assert.deepEqual(after, {
      ...before, forward_error: before.forward_error + 1, server_timedout: before.server_timedout + 1,
    });
  });

  it("a refused connection counts server_err and forward_error once", async () => {
    await redis.stop();
    const before = counters();
    const reply = await rawRequest(proxyPort, get, { expectBytes: 25, timeoutMs: 5000 });
    assert.equal(new TextDecoder().decode(reply), "-ERR Connection refused\r\n");
    assert.deepEqual(counters(), { ...before, forward_error: before.forward_error + 1, server_err: before.server_err + 1 });
  });
});

describe("in_queue and out_queue", () => {
  it("a request is in in_queue until it is written to the server, then in out_queue until its reply", async () => {
    const net = new MemNet();
    let received = 0;
    await net.listen({ kind: "tcp", host: "127.0.0.1", port: 7001 }, (conn) => {
      conn.onData = (chunk) => received += chunk.length;
    });
    const env = { net, clock: new FakeClock(), log: createLogger(() => {}, 0), flusher: new Flusher(queueMicrotask), protocol: redisProtocol, observe: null, limitOverrides: {} };
    const pool = new Pool(loadConf("a:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n    - 127.0.0.1:7001:1\n", "q.yml").pools[0], env);
    const server = pool.servers[0];
    const bytes = new TextEncoder().encode(resp("GET", "k"));
    server.connFor(0).send(new Req({ reqDone: () => {} }, bytes));
    const queues = () => [server.stats.in_queue, server.stats.in_queue_bytes, server.stats.out_queue, server.stats.out_queue_bytes];
    assert.deepEqual(queues(), [1, bytes.length, 0, 0]);
    await sleep(10);
    assert.equal(received, bytes.length, "the request reached the server");
    assert.deepEqual(queues(), [0, 0, 1, bytes.length]);
    pool.close();
  });
});

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
