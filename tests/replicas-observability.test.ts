/**
 * What /pools, /metrics and the stats port say about replicas: each node's role, shard,
 * read eligibility and its reason, staleness, lag, latency, load, reads and writes; the
 * Prometheus families nutcracker_node_role, nutcracker_node_eligible,
 * nutcracker_replica_lag_bytes, nutcracker_replica_max_lag_bytes and
 * nutcracker_node_requests_total; replicas as extra stats-port servers. Unit-level over
 * the in-memory net (states set by hand), then once end to end with real replication.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { Flusher } from "../core/proxy/flusher.ts";
import type { Proxy } from "../core/proxy/mod.ts";
import { Pool } from "../core/proxy/pool.ts";
import { redisProtocol } from "../core/proxy/redis.ts";
import { memcacheProtocol } from "../core/proxy/memcache.ts";
import { ReadState, type Server } from "../core/proxy/server.ts";
import { describePools, type ServerState } from "../core/admin/pools.ts";
import { NEVER_RELOADED } from "../core/admin/reload.ts";
import {
  createMetrics,
  READ_STATE_REASONS,
  renderPrometheus,
  renderStatsJson,
  SERVER_STAT_FIELDS,
  POOL_STAT_FIELDS,
  takeSnapshot,
} from "../core/stats/mod.ts";
import { FakeClock, MemNet, settle } from "./helpers/memnet.ts";
import { type Family, parseExposition } from "./helpers/prometheus.ts";
import { adminApp, call } from "./helpers/admin-app.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { freePort } from "./helpers/ports.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { PipeClient, waitFor } from "./helpers/soak.ts";

// ---- pools over the in-memory net ----

const REDIS_YAML = `alpha:
  listen: 127.0.0.1:22121
  redis: true
  read_policy: prefer_replica
  replica_max_lag: 4096
  replica_check_interval: 500
  servers:
    - 127.0.0.1:7001:1 shard1
    - 127.0.0.1:7002:1
  replicas:
    shard1:
      - 127.0.0.1:7101
      - 127.0.0.1:7102:2
    127.0.0.1:7002:
      - 127.0.0.1:7103
plain:
  listen: 127.0.0.1:22122
  redis: true
  servers:
    - 127.0.0.1:7003:1
cache:
  listen: 127.0.0.1:22123
  servers:
    - 127.0.0.1:11311:1 c1
`;

interface Rig {
  pools: Pool[];
  clock: FakeClock;
  /** alpha's servers by name. */
  node: (id: string) => Server;
  proxy: Proxy;
}

/** The three pools above; the replica monitor's first probes (refused) have run. */
async function rig(): Promise<Rig> {
  const conf = loadConf(REDIS_YAML, "observe.yml");
  const clock = new FakeClock();
  const base = {
    net: new MemNet(),
    clock,
    log: createLogger(() => {}, 0),
    flusher: new Flusher(queueMicrotask),
    observe: null,
    limitOverrides: {},
  };
  const pools = conf.pools.map((p) => new Pool(p, { ...base, protocol: p.redis ? redisProtocol : memcacheProtocol }));
  await settle();
  const node = (id: string) => pools[0].servers.find((s) => s.conf.id === id)!;
  // describePools reads only each listener's pool and address.
  const proxy = { pools, listeners: pools.map((pool) => ({ pool, address: pool.conf.listen })) } as unknown as Proxy;
  return { pools, clock, node, proxy };
}

/** alpha's nodes in a known state: one of each kind of eligibility. */
function setStates(r: Rig): void {
  const r1 = r.node("shard1/127.0.0.1:7101");
  Object.assign(r1, { readState: ReadState.Eligible, lagBytes: 12, latencyMs: 1.23456, reads: 7, writes: 0 });
  Object.assign(r.node("shard1/127.0.0.1:7102"), { readState: ReadState.Lagging, lagBytes: 9000, reads: 2 });
  Object.assign(r.node("127.0.0.1:7002/127.0.0.1:7103"), { readState: ReadState.Loading, lagBytes: -1 });
  // The monitor's probes were refused (nothing listens), so set every node's state here.
  Object.assign(r.node("shard1"), { readState: ReadState.Eligible, writes: 5, reads: 1, latencyMs: 0.5 });
  r.node("127.0.0.1:7002").readState = ReadState.Eligible;
  // The unnamed master is ejected: not eligible, whatever its read state says.
  r.node("127.0.0.1:7002").ejectedUntil = r.clock.now() + 10_000;
}

function poolsBody(r: Rig): Record<string, { servers: ServerState[] } & Record<string, unknown>> {
  // Through JSON, as the admin API sends it.
  return JSON.parse(JSON.stringify(describePools(r.proxy, r.clock.now(), NEVER_RELOADED)));
}

function metrics(r: Rig): Map<string, Family> {
  const text = renderPrometheus({ pools: r.pools, metrics: createMetrics(), version: "0.5.0", source: "h", uptimeSeconds: 1, now: r.clock.now() });
  return parseExposition(text);
}

/** Samples of a family as "label=value,... -> value" lines, sorted, for whole-family comparisons. */
function lines(families: Map<string, Family>, name: string): string[] {
  const family = families.get(name);
  assert.ok(family, `family ${name}`);
  return family.samples.map((s) => `${[...s.labels].map(([k, v]) => `${k}=${v}`).join(",")} -> ${s.value}`).sort();
}

describe("replicas in /pools", () => {
  let r: Rig;
  before(async () => {
    r = await rig();
    setStates(r);
  });
  after(() => r.pools.forEach((pool) => pool.close()));

  it("every server shows its role, shard, eligibility with the reason, stale, lag, latency, outstanding, reads and writes", () => {
    const servers = poolsBody(r).alpha.servers;
    const view = servers.map((s) => ({
      name: s.name,
      role: s.role,
      shard: s.shard,
      state: s.state,
      eligible: s.eligible,
      reason: s.reason,
      stale: s.stale,
      lag_bytes: s.lag_bytes,
      latency_ms: s.latency_ms,
      outstanding: s.outstanding,
      reads: s.reads,
      writes: s.writes,
    }));
    const common = { stale: false, outstanding: 0 };
    assert.deepEqual(view, [
      { ...common, name: "shard1", role: "master", shard: "shard1", state: "up", eligible: true, reason: null, lag_bytes: null, latency_ms: 0.5, reads: 1, writes: 5 },
      { ...common, name: "127.0.0.1:7002", role: "master", shard: "127.0.0.1:7002", state: "ejected", eligible: false, reason: "ejected", lag_bytes: null, latency_ms: 0, reads: 0, writes: 0 },
      { ...common, name: "shard1/127.0.0.1:7101", role: "replica", shard: "shard1", state: "up", eligible: true, reason: null, lag_bytes: 12, latency_ms: 1.235, reads: 7, writes: 0 },
      { ...common, name: "shard1/127.0.0.1:7102", role: "replica", shard: "shard1", state: "up", eligible: false, reason: "lagging", lag_bytes: 9000, latency_ms: 0, reads: 2, writes: 0 },
      { ...common, name: "127.0.0.1:7002/127.0.0.1:7103", role: "replica", shard: "127.0.0.1:7002", state: "up", eligible: false, reason: "loading", lag_bytes: null, latency_ms: 0, reads: 0, writes: 0 },
    ]);
  });

  it("the existing server keys keep their values: name, address, weight, state, connections, failures", () => {
    const replica = poolsBody(r).alpha.servers[3];
    assert.equal(replica.server, "127.0.0.1:7102:2");
    assert.equal(replica.address, "127.0.0.1:7102");
    assert.equal(replica.weight, 2);
    assert.equal(typeof replica.connections, "number");
    assert.equal(typeof replica.failures, "number");
  });

  it("each read state's reason is a word, one per ReadState code, and only Eligible has none", () => {
    const replica = r.node("shard1/127.0.0.1:7102");
    const seen = new Map<string, number>();
    for (const code of Object.values(ReadState)) {
      replica.readState = code;
      const entry = poolsBody(r).alpha.servers.find((s) => s.name === replica.conf.id)!;
      assert.equal(entry.eligible, code === ReadState.Eligible, `code ${code}`);
      assert.equal(entry.reason, READ_STATE_REASONS[code]);
      if (code === ReadState.Eligible) continue;
      assert.match(entry.reason!, /^[a-z_]+$/);
      assert.equal(seen.has(entry.reason!), false, `reason ${entry.reason} used once`);
      seen.set(entry.reason!, code);
    }
    assert.deepEqual([...seen.keys()].sort(), ["down", "lagging", "link_down", "loading", "not_replica", "unchecked"]);
    replica.readState = ReadState.Lagging;
  });

  it("a master is eligible unless ejected or down; a replica serving while its master is down shows stale", () => {
    const master = r.node("shard1");
    const replica = r.node("shard1/127.0.0.1:7101");
    master.readState = ReadState.Down;
    replica.stale = true;
    const [m, , rep] = poolsBody(r).alpha.servers;
    assert.deepEqual([m.eligible, m.reason, m.state], [false, "down", "up"]);
    assert.deepEqual([rep.eligible, rep.stale], [true, true]);
    master.readState = ReadState.Eligible;
    replica.stale = false;
    const unnamed = r.node("127.0.0.1:7002");
    const until = unnamed.ejectedUntil;
    unnamed.ejectedUntil = r.clock.now();
    const back = poolsBody(r).alpha.servers[1];
    assert.deepEqual([back.state, back.eligible, back.reason], ["up", true, null], "the unnamed master is back once its ejection expires");
    unnamed.ejectedUntil = until;
  });

  it("a pool without replicas shows every server as an eligible master of its own shard", () => {
    const [only] = poolsBody(r).plain.servers;
    assert.deepEqual(
      [only.role, only.shard, only.eligible, only.reason, only.stale, only.lag_bytes],
      ["master", "127.0.0.1:7003", true, null, false, null],
    );
  });

  it("a redis pool shows its replica keys under their YAML names; a memcached pool has none", () => {
    const body = poolsBody(r);
    const keys = (entry: Record<string, unknown>) =>
      [entry.read_policy, entry.replica_max_lag, entry.read_your_writes, entry.replica_check_interval];
    assert.deepEqual(keys(body.alpha), ["prefer_replica", 4096, false, 500]);
    assert.deepEqual(keys(body.plain), ["master", 1048576, false, 1000]);
    assert.equal("read_policy" in body.cache, false);
    assert.equal(body.cache.servers[0].role, "master");
  });
});

describe("replicas in /metrics", () => {
  let r: Rig;
  before(async () => {
    r = await rig();
    setStates(r);
  });
  after(() => r.pools.forEach((pool) => pool.close()));

  it("the new families pass the strict parser with HELP and the right TYPE", () => {
    const families = metrics(r);
    const types = {
      nutcracker_node_role: "gauge",
      nutcracker_node_eligible: "gauge",
      nutcracker_replica_lag_bytes: "gauge",
      nutcracker_replica_max_lag_bytes: "gauge",
      nutcracker_node_requests_total: "counter",
    };
    for (const [name, type] of Object.entries(types)) {
      assert.equal(families.get(name)?.type, type, name);
      assert.ok((families.get(name)?.help ?? "").length > 10, `${name} has a HELP`);
    }
  });

  it("nutcracker_node_role is 1 per node, labelled with its pool, shard, server and role", () => {
    assert.deepEqual(lines(metrics(r), "nutcracker_node_role"), [
      "pool=alpha,shard=127.0.0.1:7002,server=127.0.0.1:7002,role=master -> 1",
      "pool=alpha,shard=127.0.0.1:7002,server=127.0.0.1:7002/127.0.0.1:7103,role=replica -> 1",
      "pool=alpha,shard=shard1,server=shard1,role=master -> 1",
      "pool=alpha,shard=shard1,server=shard1/127.0.0.1:7101,role=replica -> 1",
      "pool=alpha,shard=shard1,server=shard1/127.0.0.1:7102,role=replica -> 1",
      "pool=cache,shard=c1,server=c1,role=master -> 1",
      "pool=plain,shard=127.0.0.1:7003,server=127.0.0.1:7003,role=master -> 1",
    ]);
  });

  it("nutcracker_node_eligible is 1 for nodes that may serve reads now and 0 for ejected, lagging or loading ones", () => {
    assert.deepEqual(lines(metrics(r), "nutcracker_node_eligible"), [
      "pool=alpha,shard=127.0.0.1:7002,server=127.0.0.1:7002 -> 0",
      "pool=alpha,shard=127.0.0.1:7002,server=127.0.0.1:7002/127.0.0.1:7103 -> 0",
      "pool=alpha,shard=shard1,server=shard1 -> 1",
      "pool=alpha,shard=shard1,server=shard1/127.0.0.1:7101 -> 1",
      "pool=alpha,shard=shard1,server=shard1/127.0.0.1:7102 -> 0",
      "pool=cache,shard=c1,server=c1 -> 1",
      "pool=plain,shard=127.0.0.1:7003,server=127.0.0.1:7003 -> 1",
    ]);
  });

  it("nutcracker_replica_lag_bytes covers replicas whose lag is known; the limit is given for pools with replicas only", () => {
    const families = metrics(r);
    assert.deepEqual(lines(families, "nutcracker_replica_lag_bytes"), [
      "pool=alpha,shard=shard1,server=shard1/127.0.0.1:7101 -> 12",
      "pool=alpha,shard=shard1,server=shard1/127.0.0.1:7102 -> 9000",
    ]);
    assert.deepEqual(lines(families, "nutcracker_replica_max_lag_bytes"), ["pool=alpha -> 4096"]);
  });

  it("nutcracker_node_requests_total counts reads and writes per node; nutcracker_requests_total keeps its meaning", () => {
    r.node("shard1").stats.requests = 6;
    const families = metrics(r);
    const alpha = lines(families, "nutcracker_node_requests_total").filter((l) => l.startsWith("pool=alpha,"));
    assert.deepEqual(alpha, [
      "pool=alpha,server=127.0.0.1:7002,kind=read -> 0",
      "pool=alpha,server=127.0.0.1:7002,kind=write -> 0",
      "pool=alpha,server=127.0.0.1:7002/127.0.0.1:7103,kind=read -> 0",
      "pool=alpha,server=127.0.0.1:7002/127.0.0.1:7103,kind=write -> 0",
      "pool=alpha,server=shard1,kind=read -> 1",
      "pool=alpha,server=shard1,kind=write -> 5",
      "pool=alpha,server=shard1/127.0.0.1:7101,kind=read -> 7",
      "pool=alpha,server=shard1/127.0.0.1:7101,kind=write -> 0",
      "pool=alpha,server=shard1/127.0.0.1:7102,kind=read -> 2",
      "pool=alpha,server=shard1/127.0.0.1:7102,kind=write -> 0",
    ]);
    const requests = families.get("nutcracker_requests_total")!.samples;
    const master = requests.find((s) => s.labels.get("server") === "shard1")!;
    assert.deepEqual([...master.labels.keys()], ["pool", "server"]);
    assert.equal(master.value, 6);
  });
});

describe("replicas on the stats port", () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(() => r.pools.forEach((pool) => pool.close()));

  it("keeps twemproxy's shape: replicas are extra servers named shard/host:port, with the server fields only", () => {
    const text = renderStatsJson(
      { source: "h", version: "0.5.0", startedAt: 0, now: 5000 },
      { total: 0, curr: 0 },
      takeSnapshot(r.pools),
    );
    const json = JSON.parse(text) as Record<string, Record<string, unknown>>;
    const alpha = json.alpha;
    const names = Object.keys(alpha).filter((k) => typeof alpha[k] === "object");
    // twemproxy's order: shorter names first, then by name.
    assert.deepEqual(names, [
      "shard1",
      "127.0.0.1:7002",
      "shard1/127.0.0.1:7101",
      "shard1/127.0.0.1:7102",
      "127.0.0.1:7002/127.0.0.1:7103",
    ]);
    assert.deepEqual(
      Object.keys(alpha).filter((k) => typeof alpha[k] !== "object"),
      POOL_STAT_FIELDS.map((f) => f.name),
    );
    for (const name of names) {
      assert.deepEqual(Object.keys(alpha[name] as object), SERVER_STAT_FIELDS.map((f) => f.name), name);
    }
  });
});

// ---- end to end: a real master and a real replica ----

/** `calls` of one command in a server's INFO commandstats (0 when never called). */
async function calls(port: number, command: string): Promise<number> {
  const text = await redisCli(port, "INFO", "commandstats");
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(text)?.[1] ?? 0);
}

async function offset(port: number, field: string): Promise<number> {
  return Number(new RegExp(`${field}:(\\d+)`).exec(await redisCli(port, "INFO", "replication"))?.[1] ?? -1);
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(families: Map<string, Family>, name: string, labels: Record<string, string>): number | undefined {
  const match = (families.get(name)?.samples ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels.get(k) === v));
  assert.ok(match.length <= 1, `${name} ${JSON.stringify(labels)} matches one sample`);
  return match[0]?.value;
}

describe("replica observability with real replication", () => {
  const DIR = mkdtempSync(path.join(tmpdir(), "replicas-observe-"));
  const READS = 50;
  const WRITES = 20;
  let master: ServerProcess;
  let replica: ServerProcess;
  let tp: TestProxy;
  let app: Awaited<ReturnType<typeof adminApp>>;
  let replicaName = "";

  before(async () => {
    master = await startRedis({ args: ["--dir", DIR] });
    replica = await startRedis({ args: ["--dir", DIR, "--replicaof", "127.0.0.1", String(master.port)] });
    replicaName = `shard1/127.0.0.1:${replica.port}`;
    tp = await startTestProxy(
      `alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  timeout: 2000\n  read_policy: prefer_replica\n` +
        `  replica_max_lag: 65536\n  replica_check_interval: 100\n  servers:\n    - 127.0.0.1:${master.port}:1 shard1\n` +
        `  replicas:\n    shard1:\n      - 127.0.0.1:${replica.port}:1\n`,
    );
    app = await adminApp(tp.proxy);
  });
  after(async () => {
    await tp?.close();
    await Promise.all([master, replica].map((s) => s?.stop()));
    rmSync(DIR, { recursive: true, force: true });
  });

  async function pools(): Promise<ServerState[]> {
    const { status, body } = await call(app, "GET", "/pools", "127.0.0.1:8181");
    assert.equal(status, 200);
    return (body.alpha as { servers: ServerState[] }).servers;
  }

  async function scrape(): Promise<Map<string, Family>> {
    const res = await app.fetch(new Request("http://127.0.0.1:8181/metrics", { headers: { host: "127.0.0.1:8181" } }));
    assert.equal(res.status, 200);
    return parseExposition(await res.text());
  }

  it("after writes and reads, /pools shows the replica eligible with its lag and the reads it served, the master the writes", async () => {
    const eligible = async () => (await pools())[1].eligible === true;
    assert.ok(await waitFor(eligible, 10000, 50), "the replica becomes eligible once synced");
    const client = await PipeClient.connect(tp.port());
    const sets = Array.from({ length: WRITES }, (_, i) => ["SET", `obs:${i}`, `v${i}`]);
    assert.ok((await client.exchange(encodePipeline(sets), WRITES)).every((reply) => reply === "+OK\r\n"));
    const caughtUp = async () => await offset(replica.port, "slave_repl_offset") === await offset(master.port, "master_repl_offset");
    assert.ok(await waitFor(caughtUp, 10000, 50), "the replica caught up");
    const getsBefore = await calls(replica.port, "get");
    const gets = Array.from({ length: READS }, (_, i) => ["GET", `obs:${i % WRITES}`]);
    await client.exchange(encodePipeline(gets), READS);
    client.destroy();
    const served = (await calls(replica.port, "get")) - getsBefore;
    assert.equal(served, READS, "prefer_replica with one eligible replica: the replica served every read");

    const [m, rep] = await pools();
    assert.deepEqual(
      [m.name, m.role, m.shard, m.eligible, m.reason, m.lag_bytes, m.reads, m.writes],
      ["shard1", "master", "shard1", true, null, null, 0, WRITES],
    );
    assert.deepEqual(
      [rep.name, rep.role, rep.shard, rep.state, rep.eligible, rep.reason, rep.stale, rep.reads, rep.writes],
      [replicaName, "replica", "shard1", "up", true, null, false, served, 0],
    );
    assert.equal(typeof rep.lag_bytes, "number");
    assert.ok(rep.lag_bytes! >= 0 && rep.lag_bytes! <= 65536, `lag ${rep.lag_bytes}`);
    assert.ok(rep.latency_ms > 0, `latency ${rep.latency_ms} ms`);
    // The monitor's INFO probe may be in flight.
    assert.ok(rep.outstanding >= 0 && rep.outstanding <= 1, `outstanding ${rep.outstanding}`);
  });

  it("/metrics shows the same: role, eligibility, lag, its limit and the read count", async () => {
    const families = await scrape();
    const labels = { pool: "alpha", shard: "shard1", server: replicaName };
    assert.equal(value(families, "nutcracker_node_role", { ...labels, role: "replica" }), 1);
    assert.equal(value(families, "nutcracker_node_role", { pool: "alpha", server: "shard1", role: "master" }), 1);
    assert.equal(value(families, "nutcracker_node_eligible", labels), 1);
    const lag = value(families, "nutcracker_replica_lag_bytes", labels);
    assert.ok(lag !== undefined && lag >= 0 && lag <= 65536, `lag ${lag}`);
    assert.equal(value(families, "nutcracker_replica_lag_bytes", { server: "shard1" }), undefined, "no lag for the master");
    assert.equal(value(families, "nutcracker_replica_max_lag_bytes", { pool: "alpha" }), 65536);
    assert.equal(value(families, "nutcracker_node_requests_total", { server: replicaName, kind: "read" }), READS);
    assert.equal(value(families, "nutcracker_node_requests_total", { server: replicaName, kind: "write" }), 0);
    assert.equal(value(families, "nutcracker_node_requests_total", { server: "shard1", kind: "write" }), WRITES);
  });

  it("a replica pointed at a master that does not exist shows link_down in /pools and 0 in nutcracker_node_eligible", async () => {
    await redisCli(replica.port, "REPLICAOF", "127.0.0.1", String(await freePort()));
    const linkDown = async () => (await pools())[1].reason === "link_down";
    assert.ok(await waitFor(linkDown, 10000, 50), "the monitor notices the broken link");
    assert.equal((await pools())[1].eligible, false);
    assert.equal(value(await scrape(), "nutcracker_node_eligible", { server: replicaName }), 0);
  });
});
