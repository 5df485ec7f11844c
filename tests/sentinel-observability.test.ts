/**
 * What /pools and /metrics say about a pool that follows Sentinel (issue 13): how many
 * Sentinels it is subscribed to, the configured list, and per shard the master Sentinel names,
 * the failovers applied and the last switch time; the Prometheus families
 * nutcracker_sentinel_reachable, nutcracker_failovers_total, nutcracker_shard_master_info and
 * nutcracker_shard_last_switch_timestamp_seconds. Unit-level over the in-memory net with a
 * scripted Sentinel (it answers the watcher's questions and publishes +switch-master when
 * told), then once end to end with a real Sentinel and SENTINEL FAILOVER.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import type { Addr, Conn, Listener } from "../core/net.ts";
import { Flusher } from "../core/proxy/flusher.ts";
import type { Proxy } from "../core/proxy/mod.ts";
import { Pool } from "../core/proxy/pool.ts";
import { redisProtocol } from "../core/proxy/redis.ts";
import { memcacheProtocol } from "../core/proxy/memcache.ts";
import { describePools, type SentinelState, type ServerState } from "../core/admin/pools.ts";
import { NEVER_RELOADED } from "../core/admin/reload.ts";
import { createMetrics, renderPrometheus } from "../core/stats/mod.ts";
import { FakeClock, MemNet, settle } from "./helpers/memnet.ts";
import { type Family, parseExposition } from "./helpers/prometheus.ts";
import { bulkText, concat, parseReply } from "./helpers/resp.ts";
import { adminApp, call } from "./helpers/admin-app.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { waitFor } from "./helpers/soak.ts";
import { SentinelSetup } from "./helpers/sentinel.ts";

// ---- a scripted Sentinel and scripted masters over the in-memory net ----

const enc = new TextEncoder();
const tcp = (port: number): Addr => ({ kind: "tcp", host: "127.0.0.1", port });

/** A RESP value: string = bulk, null = nil, number = integer, array = multibulk. */
type Value = string | number | null | readonly Value[];

function resp(value: Value): string {
  if (value === null) return "$-1\r\n";
  if (typeof value === "number") return `:${value}\r\n`;
  if (typeof value === "string") return `$${enc.encode(value).length}\r\n${value}\r\n`;
  return `*${value.length}\r\n${value.map(resp).join("")}`;
}

/** Listen on `addr` and hand every command (its arguments as text) to `answer`, which returns the reply text. */
function serve(net: MemNet, addr: Addr, conns: Set<Conn>, answer: (args: string[], conn: Conn) => string): Promise<Listener> {
  return net.listen(addr, (conn) => {
    conns.add(conn);
    let buf: Uint8Array = new Uint8Array(0);
    conn.onClose = () => void conns.delete(conn);
    conn.onData = (chunk) => {
      buf = concat([buf, chunk]);
      let at = 0;
      for (let got = parseReply(buf, at, buf.length); got !== null; got = parseReply(buf, at, buf.length)) {
        at = got[1];
        const items = got[0].type === "array" ? got[0].items ?? [] : [];
        conn.write(enc.encode(answer(items.map((item) => bulkText(item) ?? ""), conn)));
      }
      buf = buf.slice(at);
    };
  });
}

/**
 * Answers what the watcher asks (AUTH, SUBSCRIBE, SENTINEL get-master-addr-by-name, SENTINEL
 * replicas) from `masters`, and publishes +switch-master to its subscribers on switchMaster().
 */
class ScriptedSentinel {
  readonly masters: Map<string, number>;
  private readonly conns = new Set<Conn>();
  private readonly subscribers = new Set<Conn>();
  private readonly authed = new Set<Conn>();
  private listener: Listener | null = null;

  constructor(
    private readonly net: MemNet,
    readonly port: number,
    masters: Record<string, number>,
    private readonly password: string | null,
  ) {
    this.masters = new Map(Object.entries(masters));
  }

  async start(): Promise<void> {
    this.listener = await serve(this.net, tcp(this.port), this.conns, (args, conn) => this.answer(args, conn));
  }

  /** Move `name` to `port` and publish it, as Sentinel does at the end of a failover. */
  switchMaster(name: string, port: number): void {
    const old = this.masters.get(name);
    this.masters.set(name, port);
    const event = resp(["message", "+switch-master", `${name} 127.0.0.1 ${old} 127.0.0.1 ${port}`]);
    for (const conn of this.subscribers) conn.write(enc.encode(event));
  }

  /** Close every connection (the listener stays): subscriptions are lost until the watcher reconnects. */
  dropConnections(): void {
    for (const conn of [...this.conns]) conn.destroy(new Error("dropped"));
    this.subscribers.clear();
  }

  async stop(): Promise<void> {
    await this.listener?.close();
    this.dropConnections();
  }

  private answer(args: string[], conn: Conn): string {
    const [command, sub, name] = [args[0]?.toUpperCase(), args[1]?.toLowerCase(), args[2]];
    if (command === "AUTH") {
      if (args[1] !== this.password) return "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
      this.authed.add(conn);
      return "+OK\r\n";
    }
    if (this.password !== null && !this.authed.has(conn)) return "-NOAUTH Authentication required.\r\n";
    if (command === "SUBSCRIBE") {
      this.subscribers.add(conn);
      return args.slice(1).map((channel, i) => resp(["subscribe", channel, i + 1])).join("");
    }
    if (command === "SENTINEL" && sub === "get-master-addr-by-name") {
      const port = this.masters.get(name);
      return resp(port === undefined ? null : ["127.0.0.1", String(port)]);
    }
    if (command === "SENTINEL" && sub === "replicas") return resp([]);
    return "-ERR unknown command\r\n";
  }
}

/** A redis master as far as the proxy's control plane asks: ROLE says master, INFO a master's replication section. */
function serveMaster(net: MemNet, port: number): Promise<Listener> {
  return serve(net, tcp(port), new Set(), (args) => {
    const command = args[0]?.toUpperCase();
    if (command === "ROLE") return resp(["master", 0, []]);
    if (command === "INFO") return resp("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n");
    return "+OK\r\n";
  });
}

// ---- pools over the in-memory net ----

const SENTINEL_PORT = 26379;
/** Configured, never listening: one of two Sentinels unreachable. */
const SILENT_SENTINEL_PORT = 26380;
const PASSWORD = "pw";

const YAML = `alpha:
  listen: 127.0.0.1:22121
  redis: true
  sentinels:
    - 127.0.0.1:${SENTINEL_PORT}
    - 127.0.0.1:${SILENT_SENTINEL_PORT}:1 ignored
  sentinel_auth: ${PASSWORD}
  servers:
    - 127.0.0.1:7001:1 shard1
    - 127.0.0.1:7002:1 shard2
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
  net: MemNet;
  clock: FakeClock;
  sentinel: ScriptedSentinel;
  pools: Pool[];
  proxy: Proxy;
  listeners: Listener[];
}

function makePool(net: MemNet, clock: FakeClock, yaml: string, index = 0): Pool {
  const conf = loadConf(yaml, "observe.yml").pools[index];
  return new Pool(conf, {
    net,
    clock,
    log: createLogger(() => {}, 0),
    flusher: new Flusher(queueMicrotask),
    observe: null,
    limitOverrides: {},
    protocol: conf.redis ? redisProtocol : memcacheProtocol,
  });
}

/**
 * The three pools above. The Sentinel names 7101 the master of shard1 (the file says 7001:
 * only the starting guess) and knows no shard2; the pools have asked it once.
 */
async function rig(): Promise<Rig> {
  const net = new MemNet();
  const clock = new FakeClock();
  const sentinel = new ScriptedSentinel(net, SENTINEL_PORT, { shard1: 7101 }, PASSWORD);
  await sentinel.start();
  const listeners = await Promise.all([7101, 7102].map((port) => serveMaster(net, port)));
  const pools = [0, 1, 2].map((i) => makePool(net, clock, YAML, i));
  await Promise.all(pools.map((pool) => pool.settled()));
  await settle();
  // describePools reads only each listener's pool and address.
  const proxy = { pools, listeners: pools.map((pool) => ({ pool, address: pool.conf.listen })) } as unknown as Proxy;
  return { net, clock, sentinel, pools, proxy, listeners };
}

async function unrig(r: Rig): Promise<void> {
  r.pools.forEach((pool) => pool.close());
  await r.sentinel.stop();
  await Promise.all(r.listeners.map((l) => l.close()));
}

type PoolBody = { sentinel?: SentinelState | null; sentinel_auth?: string | null; servers: ServerState[] } & Record<string, unknown>;

function poolsBody(r: Rig): Record<string, PoolBody> {
  // Through JSON, as the admin API sends it.
  return JSON.parse(JSON.stringify(describePools(r.proxy, r.clock.now(), NEVER_RELOADED)));
}

function metricsOf(pools: readonly Pool[], now: number): Map<string, Family> {
  const text = renderPrometheus({ pools, metrics: createMetrics(), version: "0.5.0", source: "h", uptimeSeconds: 1, now });
  return parseExposition(text);
}

/** Samples of a family as "label=value,... -> value" lines, sorted, for whole-family comparisons. */
function lines(families: Map<string, Family>, name: string): string[] {
  const family = families.get(name);
  assert.ok(family, `family ${name}`);
  return family.samples.map((s) => `${[...s.labels].map(([k, v]) => `${k}=${v}`).join(",")} -> ${s.value}`).sort();
}

const SENTINELS = [`127.0.0.1:${SENTINEL_PORT}`, `127.0.0.1:${SILENT_SENTINEL_PORT}`];

describe("Sentinel in /pools (scripted Sentinel)", () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(() => unrig(r));

  it("a pool with sentinels shows the Sentinels subscribed to, the configured list, and each shard's master as Sentinel names it", () => {
    const alpha = poolsBody(r).alpha;
    assert.deepEqual(alpha.sentinel, {
      reachable: 1,
      sentinels: SENTINELS,
      shards: {
        shard1: { master: "127.0.0.1:7101", failovers: 0, last_switch_at: null },
        shard2: { master: null, failovers: 0, last_switch_at: null },
      },
    });
    assert.equal(alpha.sentinel_auth, "<redacted>", "the Sentinel password is never shown");
    assert.equal(JSON.stringify(alpha).includes(PASSWORD + '"'), false);
  });

  it("the server list agrees: shard1's master is where Sentinel put it, shard2 keeps the configured address", () => {
    const masters = poolsBody(r).alpha.servers.filter((s) => s.role === "master").map((s) => [s.shard, s.address]);
    assert.deepEqual(masters, [["shard1", "127.0.0.1:7101"], ["shard2", "127.0.0.1:7002"]]);
  });

  it("a redis pool without sentinels shows sentinel null; a memcached pool shows neither key", () => {
    const body = poolsBody(r);
    assert.equal(body.plain.sentinel, null);
    assert.equal(body.plain.sentinel_auth, null);
    assert.equal("sentinel" in body.cache, false);
    assert.equal("sentinel_auth" in body.cache, false);
    assert.equal(r.pools[1].sentinel, null);
  });

  it("the entry keeps its other keys, with servers last", () => {
    const keys = Object.keys(poolsBody(r).plain);
    for (const key of ["listen", "redis_auth", "read_policy", "generation", "last_reload_error", "servers"]) {
      assert.ok(keys.includes(key), key);
    }
    assert.equal(keys.at(-1), "servers");
  });
});

describe("Sentinel in /metrics (scripted Sentinel)", () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(() => unrig(r));

  it("the exposition with Sentinel families passes the strict parser, each family typed and described", () => {
    const families = metricsOf(r.pools, r.clock.now());
    const types = {
      nutcracker_sentinel_reachable: "gauge",
      nutcracker_failovers_total: "counter",
      nutcracker_shard_master_info: "gauge",
      nutcracker_shard_last_switch_timestamp_seconds: "gauge",
    };
    for (const [name, type] of Object.entries(types)) {
      assert.equal(families.get(name)?.type, type, name);
      assert.ok((families.get(name)?.help ?? "").length > 0, `${name} has HELP`);
    }
  });

  it("only pools with sentinels have samples: reachable per pool; failovers, master and last switch per shard", () => {
    const families = metricsOf(r.pools, r.clock.now());
    assert.deepEqual(lines(families, "nutcracker_sentinel_reachable"), ["pool=alpha -> 1"]);
    assert.deepEqual(lines(families, "nutcracker_failovers_total"), ["pool=alpha,shard=shard1 -> 0", "pool=alpha,shard=shard2 -> 0"]);
    assert.deepEqual(lines(families, "nutcracker_shard_master_info"), ["pool=alpha,shard=shard1,addr=127.0.0.1:7101 -> 1"]);
    assert.deepEqual(lines(families, "nutcracker_shard_last_switch_timestamp_seconds"), [
      "pool=alpha,shard=shard1 -> 0",
      "pool=alpha,shard=shard2 -> 0",
    ]);
  });

  it("a proxy without Sentinel pools has the families, with no samples", () => {
    const families = metricsOf(r.pools.slice(1), r.clock.now());
    assert.deepEqual(families.get("nutcracker_sentinel_reachable")?.samples, []);
    assert.deepEqual(families.get("nutcracker_shard_master_info")?.samples, []);
  });
});

describe("Sentinel view through a failover and a lost Sentinel (scripted Sentinel)", () => {
  let r: Rig;
  let switchedAt = 0;
  before(async () => {
    r = await rig();
  });
  after(() => unrig(r));

  it("+switch-master: /pools shows failovers 1, the new master and when it switched", async () => {
    r.clock.advance(2500);
    switchedAt = r.clock.now();
    r.sentinel.switchMaster("shard1", 7102);
    await settle();
    const alpha = poolsBody(r).alpha;
    assert.deepEqual(alpha.sentinel?.shards.shard1, {
      master: "127.0.0.1:7102",
      failovers: 1,
      last_switch_at: new Date(switchedAt).toISOString(),
    });
    assert.deepEqual(alpha.sentinel?.shards.shard2, { master: null, failovers: 0, last_switch_at: null });
    const master = alpha.servers.find((s) => s.role === "master" && s.shard === "shard1");
    assert.equal(master?.address, "127.0.0.1:7102", "the server list follows");
  });

  it("+switch-master: /metrics counts the failover, moves the master's addr label and stamps the switch", () => {
    const families = metricsOf(r.pools, r.clock.now());
    assert.deepEqual(lines(families, "nutcracker_failovers_total"), ["pool=alpha,shard=shard1 -> 1", "pool=alpha,shard=shard2 -> 0"]);
    assert.deepEqual(lines(families, "nutcracker_shard_master_info"), ["pool=alpha,shard=shard1,addr=127.0.0.1:7102 -> 1"]);
    assert.deepEqual(lines(families, "nutcracker_shard_last_switch_timestamp_seconds"), [
      `pool=alpha,shard=shard1 -> ${switchedAt / 1000}`,
      "pool=alpha,shard=shard2 -> 0",
    ]);
  });

  it("a lost Sentinel drops reachable to 0 and leaves the last known master; reconnected, it counts again", async () => {
    r.sentinel.dropConnections();
    await settle();
    let alpha = poolsBody(r).alpha;
    assert.equal(alpha.sentinel?.reachable, 0);
    assert.equal(alpha.sentinel?.shards.shard1.master, "127.0.0.1:7102");
    assert.deepEqual(lines(metricsOf(r.pools, r.clock.now()), "nutcracker_sentinel_reachable"), ["pool=alpha -> 0"]);
    r.clock.advance(100); // the first reconnect backoff
    await settle();
    alpha = poolsBody(r).alpha;
    assert.equal(alpha.sentinel?.reachable, 1);
    assert.equal(alpha.sentinel?.shards.shard1.failovers, 1, "a reconnect is no failover");
  });

  it("a reload that removes a shard removes it from the view", async () => {
    const oneShard = YAML.replace("    - 127.0.0.1:7002:1 shard2\n", "");
    r.pools[0].apply(loadConf(oneShard, "observe.yml").pools[0]);
    await r.pools[0].settled();
    await settle();
    assert.deepEqual(Object.keys(poolsBody(r).alpha.sentinel?.shards ?? {}), ["shard1"]);
    assert.deepEqual(lines(metricsOf(r.pools, r.clock.now()), "nutcracker_failovers_total"), ["pool=alpha,shard=shard1 -> 1"]);
  });
});

describe("Sentinel reachable counts only Sentinels that accepted the subscription (scripted Sentinel)", () => {
  let net: MemNet;
  let sentinel: ScriptedSentinel;
  let pool: Pool;
  before(async () => {
    net = new MemNet();
    sentinel = new ScriptedSentinel(net, SENTINEL_PORT, { shard1: 7101 }, PASSWORD);
    await sentinel.start();
    pool = makePool(net, new FakeClock(), YAML.replace(`sentinel_auth: ${PASSWORD}`, "sentinel_auth: wrong"));
    await pool.settled();
    await settle();
  });
  after(async () => {
    pool.close();
    await sentinel.stop();
  });

  it("a Sentinel that refuses sentinel_auth is not reachable, and names no master", () => {
    const view = pool.sentinel;
    assert.ok(view !== null);
    assert.equal(view.shards.get("shard1")?.master, null);
    assert.equal(view.reachable, 0);
  });
});

// ---- end to end: a real Sentinel, SENTINEL FAILOVER ----

describe("Sentinel in /pools and /metrics with a real Sentinel", () => {
  let setup: SentinelSetup;
  let tp: TestProxy;
  let app: Awaited<ReturnType<typeof adminApp>>;

  before(async () => {
    setup = await SentinelSetup.start({ replicas: 1, sentinels: 1, quorum: 1, prefix: "sentinel-observe-" });
    await setup.waitAgreed({ masterPort: setup.redises[0].port });
    const yml = [
      "alpha:", "  listen: 127.0.0.1:0", "  redis: true", "  timeout: 1000", "  sentinels:", `   - 127.0.0.1:${setup.sentinelPorts[0]}`,
      "  servers:", `   - 127.0.0.1:${setup.redises[0].port}:1 ${setup.name}`, "",
    ].join("\n");
    tp = await startTestProxy(yml);
    app = await adminApp(tp.proxy);
  });

  after(async () => {
    await tp?.close();
    await setup?.stopAll();
  });

  async function sentinelOf(): Promise<SentinelState> {
    const { status, body } = await call(app, "GET", "/pools", "127.0.0.1:8181");
    assert.equal(status, 200);
    return (body.alpha as PoolBody).sentinel!;
  }

  async function metrics(): Promise<Map<string, Family>> {
    const { status, body } = await call(app, "GET", "/metrics", "127.0.0.1:8181");
    assert.equal(status, 200);
    return parseExposition(String(body.text));
  }

  it("shows the Sentinel reachable and the master it names; after SENTINEL FAILOVER, one failover and the promoted replica", async () => {
    const [master, replica] = setup.redises;
    const shard = setup.name;
    const name = `127.0.0.1:${setup.sentinelPorts[0]}`;
    assert.ok(await waitFor(async () => (await sentinelOf()).reachable === 1, 5000), "the proxy subscribes to the Sentinel");
    assert.deepEqual(await sentinelOf(), {
      reachable: 1,
      sentinels: [name],
      shards: { [shard]: { master: `127.0.0.1:${master.port}`, failovers: 0, last_switch_at: null } },
    });
    let families = await metrics();
    assert.deepEqual(lines(families, "nutcracker_sentinel_reachable"), ["pool=alpha -> 1"]);
    assert.deepEqual(lines(families, "nutcracker_shard_master_info"), [`pool=alpha,shard=${shard},addr=127.0.0.1:${master.port} -> 1`]);
    assert.deepEqual(lines(families, "nutcracker_failovers_total"), [`pool=alpha,shard=${shard} -> 0`]);

    const t0 = Date.now();
    await setup.failover();
    const switched = await waitFor(async () => (await sentinelOf()).shards[shard].failovers === 1, 20000, 50);
    const view = await sentinelOf();
    assert.ok(switched, `the proxy applies the switch: ${JSON.stringify(view)}`);
    console.log(`sentinel observability: /pools shows the failover ${Date.now() - t0} ms after SENTINEL FAILOVER`);
    assert.equal(view.reachable, 1);
    assert.equal(view.shards[shard].master, `127.0.0.1:${replica.port}`);
    const at = Date.parse(view.shards[shard].last_switch_at ?? "");
    assert.ok(at >= t0 && at <= Date.now(), `last_switch_at ${view.shards[shard].last_switch_at} is after the failover began`);
    families = await metrics();
    assert.deepEqual(lines(families, "nutcracker_failovers_total"), [`pool=alpha,shard=${shard} -> 1`]);
    assert.deepEqual(lines(families, "nutcracker_shard_master_info"), [`pool=alpha,shard=${shard},addr=127.0.0.1:${replica.port} -> 1`]);
    const stamp = families.get("nutcracker_shard_last_switch_timestamp_seconds")!.samples;
    assert.equal(stamp.length, 1);
    // The clock has sub-millisecond precision; ISO time has milliseconds.
    assert.ok(Math.abs(stamp[0].value - at / 1000) < 0.001, `last switch ${stamp[0].value} s is last_switch_at ${at / 1000} s`);
  });
});
