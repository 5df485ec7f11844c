/**
 * The replicas scenario (issue 12): 2 shards x (master + 2 replicas) of real redis-servers
 * (--replicaof), the proxy on each runtime with read_policy master and prefer_replica, and
 * redis-benchmark GET at -P 1 and -P 16 over a keyspace written through the proxy first.
 * Per runtime and policy: throughput, the proxy's CPU per request (and its ratio to the
 * master-only path), and where the reads landed, counted by each redis-server's own
 * INFO commandstats. Every wait is bounded; every process is stopped by PID.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { cpuNs, stop } from "./proc.ts";
import { fixed, int, median, table } from "./report.ts";
import { bulk, expectReply, field, resp, until } from "./resp.ts";
import { type ProxyProcess, type RuntimeName, startProxyWith, startRedis, type Started, stopProxy } from "./targets.ts";
import { REDIS_BENCH_ARGS, type RedisTest, runRedisBenchmark, type Sample } from "./tools.ts";

const HOST = "127.0.0.1";
const SHARDS = 2;
/** The policies compared; the first is the baseline of the CPU ratio. */
const POLICIES = ["master", "prefer_replica"] as const;
type Policy = (typeof POLICIES)[number];

/** What redis-benchmark `-t get -r N -d D` reads: key:<12 digits> for 0 <= i < N, D bytes each. */
const KEYSPACE = Number(REDIS_BENCH_ARGS[REDIS_BENCH_ARGS.indexOf("-r") + 1]);
const VALUE = "x".repeat(Number(REDIS_BENCH_ARGS[REDIS_BENCH_ARGS.indexOf("-d") + 1]));
const benchKey = (i: number) => `key:${String(i).padStart(12, "0")}`;

/** One shard: its master and replicas. */
interface ShardProcs {
  name: string;
  master: Started;
  replicas: Started[];
}

/** A proxy under test: runtime, policy, process. */
interface PolicyProxy {
  runtime: RuntimeName;
  policy: Policy;
  proxy: ProxyProcess;
}

/** The options the section takes from bench.ts. */
export interface ReplicaOptions {
  runtimes: RuntimeName[];
  /** Replicas per shard (2 in the issue's scenario; 1 keeps as many server connections as master-only). */
  replicasPerShard: number;
  rounds: number;
  requests: number;
  requestsP16: number;
  hz: number;
  dir: string;
  log: (msg: string) => void;
}

// ---- the replication setup ----

/**
 * Masters first, then their replicas; each server in its own directory under `dir` (dump.rdb
 * of a full sync). Every started server is added to `started` at once, so it is stopped on failure.
 */
async function startShards(dir: string, perShard: number, started: Started[]): Promise<ShardProcs[]> {
  const serverDir = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    return ["--dir", d];
  };
  const shards: ShardProcs[] = [];
  for (let s = 1; s <= SHARDS; s++) {
    const master = await startRedis(undefined, [...serverDir(`shard${s}-master`), "--repl-diskless-sync-delay", "0"]);
    started.push(master);
    const replicas: Started[] = [];
    for (let r = 1; r <= perShard; r++) {
      replicas.push(await startRedis(undefined, [...serverDir(`shard${s}-replica${r}`), "--replicaof", HOST, String(master.port)]));
      started.push(replicas[replicas.length - 1]);
    }
    shards.push({ name: `shard${s}`, master, replicas });
  }
  return shards;
}

async function linksUp(shards: ShardProcs[]): Promise<boolean> {
  for (const r of shards.flatMap((s) => s.replicas)) {
    if (field(await bulk(r.port, "INFO", "replication"), "master_link_status") !== "up") return false;
  }
  return true;
}

/** Every replica has applied everything its master has (INFO replication offsets equal). */
async function caughtUp(shards: ShardProcs[]): Promise<boolean> {
  for (const s of shards) {
    const want = field(await bulk(s.master.port, "INFO", "replication"), "master_repl_offset");
    for (const r of s.replicas) {
      if (field(await bulk(r.port, "INFO", "replication"), "slave_repl_offset") !== want) return false;
    }
  }
  return true;
}

/** The pool: named masters on the ring, their replicas under `replicas:`. */
function replicaYaml(port: number, shards: ShardProcs[], policy: Policy): string {
  const servers = shards.map((s) => `   - ${HOST}:${s.master.port}:1 ${s.name}\n`).join("");
  const replicas = shards.map((s) => `    ${s.name}:\n` + s.replicas.map((r) => `     - ${HOST}:${r.port}:1\n`).join("")).join("");
  return `bench_replicas:\n  listen: ${HOST}:${port}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n` +
    `  read_policy: ${policy}\n  servers:\n${servers}  replicas:\n${replicas}`;
}

/** SET every key redis-benchmark will GET, through the proxy, in pipelined batches. */
async function populate(port: number): Promise<void> {
  const batch = 2000;
  for (let first = 0; first < KEYSPACE; first += batch) {
    const n = Math.min(batch, KEYSPACE - first);
    const request = Array.from({ length: n }, (_, i) => resp("SET", benchKey(first + i), VALUE)).join("");
    await expectReply(port, request, "+OK\r\n".repeat(n), `populate via ${port}`);
  }
}

// ---- per-node counters ----

/** GET calls and keyspace misses of one redis-server so far. */
interface NodeCounts {
  gets: number;
  misses: number;
}

async function nodeCounts(port: number): Promise<NodeCounts> {
  const info = await bulk(port, "INFO", "stats", "commandstats");
  const gets = /^cmdstat_get:calls=(\d+)/m.exec(info)?.[1] ?? "0";
  return { gets: Number(gets), misses: Number(field(info, "keyspace_misses") ?? NaN) };
}

/** Ports in table order: shard1 master, its replicas, shard2 master, ... */
const nodePorts = (shards: ShardProcs[]) => shards.flatMap((s) => [s.master.port, ...s.replicas.map((r) => r.port)]);

const allCounts = (shards: ShardProcs[]) => Promise.all(nodePorts(shards).map(nodeCounts));

/**
 * Until reads through `p` follow its policy: 200 GETs answered with the values, and under
 * prefer_replica none of them on a master (the replica monitor has found the replicas caught up).
 */
async function readsFollowPolicy(p: PolicyProxy, shards: ShardProcs[]): Promise<boolean> {
  const n = 200;
  const request = Array.from({ length: n }, (_, i) => resp("GET", benchKey((i * 499) % KEYSPACE))).join("");
  const before = await allCounts(shards);
  await expectReply(p.proxy.target.port, request, `$${VALUE.length}\r\n${VALUE}\r\n`.repeat(n), `${p.proxy.target.name} GET`);
  const after = await allCounts(shards);
  const perNode = after.map((c, i) => c.gets - before[i].gets);
  const onMasters = shards.reduce((sum, s, i) => sum + perNode[i * (1 + s.replicas.length)], 0);
  const total = perNode.reduce((a, b) => a + b, 0);
  return total === n && (p.policy === "master" ? onMasters === n : onMasters === 0);
}

// ---- measurement ----

/** One target's results in one test over all rounds. */
interface ReplicaSeries {
  p: PolicyProxy;
  samples: Sample[];
  /** GET calls per node (table order), summed over the rounds. */
  reads: number[];
  misses: number;
}

function tests(o: ReplicaOptions): RedisTest[] {
  return [
    { label: "GET -P 1", test: "get", pipeline: 1, requests: o.requests },
    { label: "GET -P 16", test: "get", pipeline: 16, requests: o.requestsP16 },
  ];
}

/** One redis-benchmark run with the proxy's CPU from schedstat (ns) and the per-node GET deltas. */
async function measureOne(p: PolicyProxy, t: RedisTest, shards: ShardProcs[], hz: number): Promise<{ s: Sample; reads: number[]; misses: number }> {
  const before = await allCounts(shards);
  const pid = p.proxy.target.pids[0];
  const ns0 = cpuNs(pid);
  const s = await runRedisBenchmark(p.proxy.target, t, hz, 120000);
  const ns1 = cpuNs(pid);
  const after = await allCounts(shards);
  // Prefer the nanosecond clock: at 10 ms ticks a -P 16 run is only a few ticks of proxy CPU.
  if (Number.isFinite(ns1 - ns0)) s.cpuUsPerReq = (ns1 - ns0) / 1000 / t.requests;
  const reads = after.map((c, i) => c.gets - before[i].gets);
  const misses = after.reduce((sum, c, i) => sum + c.misses - before[i].misses, 0);
  if (misses > 0 && s.warning === "") s.warning = `${misses} GETs missed`;
  return { s, reads, misses };
}

/**
 * The order of the proxies in one round: runtimes rotated by round, and each runtime's two
 * policies back to back (first one, then the other, alternating by round), so a pair meets
 * the same background load and the per-round CPU ratio compares like with like.
 */
function roundOrder(proxies: PolicyProxy[], round: number): number[] {
  const runtimes = [...new Set(proxies.map((p) => p.runtime))];
  const order: number[] = [];
  for (let k = 0; k < runtimes.length; k++) {
    const runtime = runtimes[(k + round) % runtimes.length];
    const pair = proxies.map((p, i) => (p.runtime === runtime ? i : -1)).filter((i) => i >= 0);
    order.push(...(round % 2 === 0 ? pair : pair.reverse()));
  }
  return order;
}

/** Every test x target, `rounds` times. */
async function measureAll(o: ReplicaOptions, proxies: PolicyProxy[], shards: ShardProcs[]): Promise<Map<string, ReplicaSeries[]>> {
  const results = new Map<string, ReplicaSeries[]>();
  for (const t of tests(o)) {
    results.set(t.label, proxies.map((p) => ({ p, samples: [], reads: nodePorts(shards).map(() => 0), misses: 0 })));
  }
  for (let round = 0; round < o.rounds; round++) {
    for (const t of tests(o)) {
      for (const i of roundOrder(proxies, round)) {
        const series = results.get(t.label)![i];
        const { s, reads, misses } = await measureOne(proxies[i], t, shards, o.hz);
        series.samples.push(s);
        reads.forEach((n, j) => (series.reads[j] += n));
        series.misses += misses;
        o.log(`replicas round ${round + 1}/${o.rounds} ${t.label} ${series.p.proxy.target.name}: ${Math.round(s.rps)}/s, ` +
          `${s.cpuUsPerReq.toFixed(2)} µs/req, reads ${reads.join("/")}${s.warning ? ` (${s.warning})` : ""}`);
      }
    }
  }
  return results;
}

// ---- report ----

/** "m / r1 / r2" read shares of one shard in percent of all the row's reads. */
function shardShares(reads: number[], shard: number, width: number): string {
  const total = reads.reduce((a, b) => a + b, 0);
  return reads.slice(shard * width, (shard + 1) * width).map((n) => fixed((100 * n) / total, 0)).join(" / ");
}

/** Median (min..max) over rounds of this row's CPU per request / its runtime's baseline's in the same round. */
function cpuRatio(x: ReplicaSeries, base: ReplicaSeries | undefined): string {
  if (base === undefined) return "n/a";
  if (base === x) return "1.00";
  const ratios = x.samples.map((s, i) => s.cpuUsPerReq / base.samples[i]?.cpuUsPerReq).filter(Number.isFinite);
  if (ratios.length === 0) return "n/a";
  return `${fixed(median(ratios), 2)} (${fixed(Math.min(...ratios), 2)}..${fixed(Math.max(...ratios), 2)})`;
}

function replicaTable(series: ReplicaSeries[], shards: ShardProcs[]): string {
  const rows = series.map((x) => {
    const rps = x.samples.map((s) => s.rps).filter(Number.isFinite);
    const base = series.find((y) => y.p.runtime === x.p.runtime && y.p.policy === POLICIES[0]);
    const warn = x.samples.filter((s) => s.warning).length;
    return [
      x.p.runtime + (warn > 0 ? ` (!${warn})` : ""),
      x.p.policy,
      int(median(rps)),
      rps.length > 0 ? `${int(Math.min(...rps))}..${int(Math.max(...rps))}` : "n/a",
      fixed(median(x.samples.map((s) => s.cpuUsPerReq)), 2),
      cpuRatio(x, base),
      fixed(median(x.samples.map((s) => s.sysUsPerReq)), 1),
      fixed(median(x.samples.map((s) => s.cpuShare)) * 100, 0),
      ...shards.map((s, i) => shardShares(x.reads, i, 1 + s.replicas.length)),
    ];
  });
  const head = [
    "proxy", "read_policy", "req/s median", "min..max", "CPU µs/req", "CPU vs master", "of which sys", "CPU %",
    ...shards.map((s) => `reads % ${s.name}: ${["master", ...s.replicas.map((_, i) => `replica ${i + 1}`)].join(" / ")}`),
  ];
  return table(head, rows);
}

/** The markdown of the section (heading, setup note, one table per test, warnings). */
function report(o: ReplicaOptions, results: Map<string, ReplicaSeries[]>, shards: ShardProcs[]): string[] {
  const out = [
    "### Redis replicas (read_policy master vs prefer_replica)", "",
    `${SHARDS} shards x (master + ${o.replicasPerShard} replica${o.replicasPerShard === 1 ? "" : "s"}), real redis-servers with \`--replicaof\`; one proxy per ` +
      `runtime and policy (fnv1a_64, ketama, named masters, \`replicas:\` per shard, replica_check_interval 1000). ` +
      `The ${int(KEYSPACE)} keys redis-benchmark reads are SET through the proxy first and every replica has caught up ` +
      `(INFO replication offsets) before any read; every GET below was a hit. ` +
      `redis-benchmark ${REDIS_BENCH_ARGS.join(" ")} -t get, -n ${o.requests} (-P 1) / ${o.requestsP16} (-P 16), ` +
      `${o.rounds} rounds. CPU µs/req: the proxy process's CPU over the run from /proc/<pid>/task/*/schedstat ` +
      `(ns; "of which sys" and CPU % from utime/stime ticks). "CPU vs master": per round, this row's CPU µs/req / ` +
      `the same runtime's read_policy master row's, run back to back with it; median (min..max) over the rounds. Read shares: each redis-server's INFO commandstats cmdstat_get calls over all rounds.`,
    "",
  ];
  const warned: string[] = [];
  for (const [label, series] of results) {
    out.push(`#### ${label} (replicas)`, "", replicaTable(series, shards), "");
    for (const x of series) {
      x.samples.forEach((s, round) => {
        if (s.warning) warned.push(`- ${label} / ${x.p.proxy.target.name} round ${round + 1}: ${s.warning}`);
      });
    }
  }
  if (warned.length > 0) out.push("Warnings:", "", ...warned, "");
  return out;
}

// ---- the section ----

/** Start everything, measure, stop everything (also on failure); returns the markdown lines. */
export async function replicasSection(o: ReplicaOptions): Promise<string[]> {
  if (o.runtimes.length === 0) return [];
  const servers: Started[] = [];
  const proxies: PolicyProxy[] = [];
  try {
    const shards = await startShards(o.dir, o.replicasPerShard, servers);
    o.log(`replicas: ${shards.map((s) => `${s.name} master ${s.master.port}, replicas ${s.replicas.map((r) => r.port).join(",")}`).join("; ")}`);
    if (!(await until(() => linksUp(shards), 20000))) throw new Error("replicas: links to the masters not up within 20 s");
    for (const runtime of o.runtimes) {
      for (const policy of POLICIES) {
        const proxy = await startProxyWith(runtime, o.dir, `${runtime}-${policy}`, (port) => replicaYaml(port, shards, policy));
        proxies.push({ runtime, policy, proxy });
        o.log(`replicas: proxy ${runtime} ${policy} on port ${proxy.target.port}, measured pid ${proxy.target.pids[0]}`);
      }
    }
    await populate(proxies[0].proxy.target.port);
    if (!(await until(() => caughtUp(shards), 30000))) throw new Error("replicas: not caught up with the masters within 30 s");
    for (const p of proxies) {
      if (!(await until(() => readsFollowPolicy(p, shards), 15000))) {
        throw new Error(`replicas: reads through ${p.proxy.target.name} do not follow ${p.policy} within 15 s (log: ${p.proxy.logFile})`);
      }
    }
    o.log(`replicas: ${int(KEYSPACE)} keys written and replicated; warming up`);
    for (const p of proxies) {
      for (const t of tests(o)) await runRedisBenchmark(p.proxy.target, { ...t, requests: Math.ceil(t.requests / 10) }, o.hz, 60000);
    }
    const results = await measureAll(o, proxies, shards);
    return report(o, results, shards);
  } finally {
    await Promise.all(proxies.map((p) => stopProxy(p.proxy)));
    await Promise.all(servers.map((s) => stop(s.proc)));
  }
}

