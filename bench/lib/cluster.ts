/**
 * The Redis Cluster scenario (issue 15): 3 masters (optionally with replicas) of real
 * redis-servers started with --cluster-enabled and joined by `redis-cli --cluster create`; the
 * proxy on each runtime with distribution redis_cluster and the masters as seeds; redis-benchmark
 * SET and GET at -P 1 and -P 16 through each proxy, and in its own `--cluster` mode straight at
 * the cluster. Per target: throughput and its ratio to direct, the proxy's CPU per request and
 * the masters' CPU per request (schedstat ns), and the GET hit rate (the masters' INFO stats).
 * Every wait is bounded; every process is stopped by PID.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { checkRedis } from "./idle.ts";
import { cpuNs, freePort, runTool, stop } from "./proc.ts";
import { fixed, int, median, table } from "./report.ts";
import { bulk, field, until } from "./resp.ts";
import { type ProxyProcess, type RuntimeName, startProxyWith, startRedis, type Started, stopProxy, type Target } from "./targets.ts";
import { REDIS_BENCH_ARGS, type RedisTest, runRedisBenchmark, type Sample } from "./tools.ts";

const HOST = "127.0.0.1";
const MASTERS = 3;
const NODE_TIMEOUT_MS = 1000;
/** redis-benchmark's -r: the keyspace of a proxy run; `--cluster` mode uses one such keyspace per master ({tag} per node). */
const KEYSPACE = Number(REDIS_BENCH_ARGS[REDIS_BENCH_ARGS.indexOf("-r") + 1]);

/** The options the section takes from bench.ts. */
export interface ClusterOptions {
  runtimes: RuntimeName[];
  /** Replicas per master (0: three masters only). */
  replicas: number;
  rounds: number;
  requests: number;
  requestsP16: number;
  hz: number;
  dir: string;
  log: (msg: string) => void;
}

/** A cluster node we started, and its role after `--cluster create`. */
interface ClusterNode {
  server: Started;
  master: boolean;
}

// ---- the cluster ----

/** One redis-server with cluster mode on, its own --dir and nodes.conf, and an explicit bus port (port+10000 may not exist). */
async function startNode(dir: string, index: number): Promise<Started> {
  const nodeDir = join(dir, `cluster-node${index}`);
  mkdirSync(nodeDir, { recursive: true });
  const errors: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const bus = await freePort();
    const args = [
      "--cluster-enabled", "yes", "--cluster-config-file", join(nodeDir, "nodes.conf"), "--cluster-port", String(bus),
      "--cluster-node-timeout", String(NODE_TIMEOUT_MS), "--dir", nodeDir, "--repl-diskless-sync-delay", "0",
    ];
    try {
      return await startRedis(undefined, args);
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  throw new Error(`cluster node ${index} did not start: ${errors.join("; ")}`);
}

/** Every node answers CLUSTER INFO with state ok, all slots assigned, and knows every other node. */
async function clusterOk(ports: number[]): Promise<boolean> {
  for (const port of ports) {
    const info = await bulk(port, "CLUSTER", "INFO");
    if (field(info, "cluster_state") !== "ok") return false;
    if (field(info, "cluster_slots_assigned") !== "16384") return false;
    if (field(info, "cluster_known_nodes") !== String(ports.length)) return false;
  }
  return true;
}

/** Every replica's link to its master is up. */
async function replicasLinked(nodes: ClusterNode[]): Promise<boolean> {
  for (const n of nodes.filter((x) => !x.master)) {
    if (field(await bulk(n.server.port, "INFO", "replication"), "master_link_status") !== "up") return false;
  }
  return true;
}

/** Ports of the masters that own slots, from CLUSTER NODES as `port` sees it. */
async function masterPorts(port: number): Promise<Set<number>> {
  const text = await bulk(port, "CLUSTER", "NODES");
  const out = new Set<number>();
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(" ");
    if (f.length < 9 || !f[2].split(",").includes("master")) continue;
    out.add(Number(/:(\d+)@/.exec(f[1])?.[1]));
  }
  return out;
}

/**
 * Start 3 masters (x (1 + replicas) servers), join them, wait until every node sees the same
 * healthy cluster. Every started server is added to `started` at once, so it is stopped on failure.
 */
async function startCluster(o: ClusterOptions, started: Started[]): Promise<ClusterNode[]> {
  const count = MASTERS * (1 + o.replicas);
  for (let i = 0; i < count; i++) started.push(await startNode(o.dir, i));
  const addrs = started.map((s) => `${HOST}:${s.port}`);
  const r = await runTool("redis-cli", ["--cluster", "create", ...addrs, "--cluster-replicas", String(o.replicas), "--cluster-yes"], 30000);
  if (r.code !== 0 || r.timedOut) throw new Error(`redis-cli --cluster create: ${r.timedOut ? "timed out" : `exit ${r.code}`}: ${(r.stdout + r.stderr).slice(-400)}`);
  const ports = started.map((s) => s.port);
  if (!(await until(() => clusterOk(ports), 20000))) throw new Error("cluster: cluster_state not ok on every node within 20 s");
  const masters = await masterPorts(ports[0]);
  const nodes = started.map((server) => ({ server, master: masters.has(server.port) }));
  if (nodes.filter((n) => n.master).length !== MASTERS) throw new Error(`cluster: expected ${MASTERS} masters, CLUSTER NODES shows ${[...masters].join(",")}`);
  if (!(await until(() => replicasLinked(nodes), 20000))) throw new Error("cluster: replicas not linked to their masters within 20 s");
  return nodes;
}

/** The pool: distribution redis_cluster with the masters as seeds (as in README "Moving a pool to Redis Cluster"). */
function clusterYaml(port: number, masters: Started[]): string {
  const seeds = masters.map((m) => `   - ${HOST}:${m.port}:1\n`).join("");
  return `bench_cluster:\n  listen: ${HOST}:${port}\n  redis: true\n  distribution: redis_cluster\n  servers:\n${seeds}`;
}

// ---- measurement ----

/** One run: redis-benchmark's numbers plus CPU of the proxy and of the masters (ns clock) and the masters' keyspace hits. */
interface ClusterSample {
  s: Sample;
  /** Proxy CPU µs per request (NaN for the direct row). */
  proxyUs: number;
  /** The masters' CPU µs per request, summed. */
  serversUs: number;
  hits: number;
  misses: number;
}

/** One target's results in one test over all rounds (index = round). */
interface ClusterSeries {
  target: Target;
  samples: ClusterSample[];
}

function tests(o: ClusterOptions): RedisTest[] {
  return [
    { label: "SET -P 1", test: "set", pipeline: 1, requests: o.requests },
    { label: "GET -P 1", test: "get", pipeline: 1, requests: o.requests },
    { label: "SET -P 16", test: "set", pipeline: 16, requests: o.requestsP16 },
    { label: "GET -P 16", test: "get", pipeline: 16, requests: o.requestsP16 },
  ];
}

/** keyspace_hits and keyspace_misses summed over the masters. */
async function keyspaceCounts(masters: Started[]): Promise<{ hits: number; misses: number }> {
  const infos = await Promise.all(masters.map((m) => bulk(m.port, "INFO", "stats")));
  const sum = (name: string) => infos.reduce((n, info) => n + Number(field(info, name) ?? NaN), 0);
  return { hits: sum("keyspace_hits"), misses: sum("keyspace_misses") };
}

const sumNs = (pids: number[]) => pids.reduce((n, pid) => n + cpuNs(pid), 0);

async function measureOne(target: Target, t: RedisTest, masters: Started[], hz: number): Promise<ClusterSample> {
  const masterPids = masters.map((m) => m.pid);
  const proxyPid = target.cluster ? -1 : target.pids[0];
  const before = await keyspaceCounts(masters);
  const p0 = cpuNs(proxyPid);
  const s0 = sumNs(masterPids);
  const s = await runRedisBenchmark(target, t, hz, 120000);
  const p1 = cpuNs(proxyPid);
  const s1 = sumNs(masterPids);
  const after = await keyspaceCounts(masters);
  return {
    s,
    proxyUs: (p1 - p0) / 1000 / t.requests,
    serversUs: (s1 - s0) / 1000 / t.requests,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
  };
}

/** Every test x target, `rounds` times, the target order rotated by round. */
async function measureAll(o: ClusterOptions, targets: Target[], masters: Started[]): Promise<Map<string, ClusterSeries[]>> {
  const results = new Map(tests(o).map((t) => [t.label, targets.map((target): ClusterSeries => ({ target, samples: [] }))]));
  for (let round = 0; round < o.rounds; round++) {
    for (const t of tests(o)) {
      for (let k = 0; k < targets.length; k++) {
        const i = (k + round) % targets.length;
        const x = await measureOne(targets[i], t, masters, o.hz);
        results.get(t.label)![i].samples[round] = x;
        o.log(`cluster round ${round + 1}/${o.rounds} ${t.label} ${targets[i].name}: ${Math.round(x.s.rps)}/s, ` +
          `proxy ${x.proxyUs.toFixed(2)} µs/req, masters ${x.serversUs.toFixed(2)} µs/req` +
          (t.test === "get" ? `, hits ${x.hits}/${x.hits + x.misses}` : "") + (x.s.warning ? ` (${x.s.warning})` : ""));
      }
    }
  }
  return results;
}

/**
 * Fill each target's keyspace (SET -P 16 four times over it, so GETs hit ~98% in both modes),
 * then one short GET pass at each depth so JIT warm-up does not land in round 1.
 */
async function warmUp(o: ClusterOptions, targets: Target[], masters: Started[]): Promise<void> {
  for (const target of targets) {
    const keys = KEYSPACE * (target.cluster ? MASTERS : 1);
    const fill = await runRedisBenchmark(target, { label: "fill", test: "set", pipeline: 16, requests: 4 * keys }, o.hz, 120000);
    const sizes = await Promise.all(masters.map((m) => bulk(m.port, "INFO", "keyspace")));
    o.log(`cluster: ${target.name} filled (${4 * keys} SETs, ${Math.round(fill.rps)}/s${fill.warning ? `, ${fill.warning}` : ""}); ` +
      `keys per master ${sizes.map((info) => /^db0:keys=(\d+)/m.exec(info)?.[1] ?? "0").join("/")}`);
    for (const t of tests(o).filter((x) => x.test === "get")) {
      await runRedisBenchmark(target, { ...t, requests: Math.ceil(t.requests / 10) }, o.hz, 60000);
    }
  }
}

// ---- report ----

const finite = (xs: number[]) => xs.filter(Number.isFinite);

/** "median (min..max)" of this row's per-round rps / the direct row's in the same round. */
function ratio(x: ClusterSeries, direct: ClusterSeries): string {
  if (x === direct) return "1.00";
  const perRound = finite(x.samples.map((s, i) => s.s.rps / direct.samples[i]?.s.rps));
  const mid = median(finite(x.samples.map((s) => s.s.rps))) / median(finite(direct.samples.map((s) => s.s.rps)));
  if (perRound.length === 0) return fixed(mid, 2);
  return `${fixed(mid, 2)} (${fixed(Math.min(...perRound), 2)}..${fixed(Math.max(...perRound), 2)})`;
}

function clusterTable(series: ClusterSeries[], isGet: boolean): string {
  const direct = series[0];
  const rows = series.map((x) => {
    const rps = finite(x.samples.map((s) => s.s.rps));
    const warn = x.samples.filter((s) => s.s.warning).length;
    const hits = x.samples.reduce((n, s) => n + s.hits, 0);
    const misses = x.samples.reduce((n, s) => n + s.misses, 0);
    return [
      x.target.name + (warn > 0 ? ` (!${warn})` : ""),
      int(median(rps)),
      rps.length > 0 ? `${int(Math.min(...rps))}..${int(Math.max(...rps))}` : "n/a",
      ratio(x, direct),
      x.target.cluster ? "–" : fixed(median(x.samples.map((s) => s.proxyUs)), 2),
      x.target.cluster ? "–" : fixed(median(x.samples.map((s) => s.s.cpuShare)) * 100, 0),
      fixed(median(x.samples.map((s) => s.serversUs)), 2),
      isGet ? fixed((100 * hits) / (hits + misses), 1) : "–",
    ];
  });
  const head = ["target", "req/s median", "min..max", "ratio (per round)", "proxy CPU µs/req", "proxy CPU %", "masters CPU µs/req", "GET hits %"];
  return table(head, rows);
}

/** The markdown of the section (heading, setup note, one table per test, warnings). */
function report(o: ClusterOptions, results: Map<string, ClusterSeries[]>, seconds: number): string[] {
  const servers = o.replicas === 0 ? `${MASTERS} masters` : `${MASTERS} masters + ${o.replicas} replica${o.replicas === 1 ? "" : "s"} each`;
  const out = [
    "### Redis Cluster (proxy vs redis-benchmark --cluster)", "",
    `A real Redis Cluster of ${servers} (redis-server --cluster-enabled, --cluster-node-timeout ${NODE_TIMEOUT_MS}, ` +
      `joined by redis-cli --cluster create); one proxy per runtime with \`distribution: redis_cluster\` and the masters as seeds. ` +
      `"direct" is redis-benchmark's own \`--cluster\` mode against the same cluster (each of its clients bound to one master, ` +
      `keys hash-tagged to that master's slots), so the ratio prices the proxy hop and its slot routing. ` +
      `redis-benchmark ${REDIS_BENCH_ARGS.join(" ")}, -n ${o.requests} (-P 1) / ${o.requestsP16} (-P 16), ${o.rounds} interleaved rounds ` +
      `after filling each target's keyspace. Ratio: median req/s / direct median, and (min..max) of the per-round ratios. ` +
      `Proxy and masters CPU µs/req: the process's CPU over the run from /proc/<pid>/task/*/schedstat (ns; masters summed); ` +
      `proxy CPU % from utime/stime ticks over the run's wall time. GET hits: the masters' INFO keyspace_hits / (hits + misses). ` +
      `The section took ${Math.round(seconds)} s.`,
    "",
  ];
  const warned: string[] = [];
  for (const [label, series] of results) {
    out.push(`#### ${label} (cluster)`, "", clusterTable(series, label.startsWith("GET")), "");
    for (const x of series) {
      x.samples.forEach((s, round) => {
        if (s.s.warning) warned.push(`- ${label} / ${x.target.name} round ${round + 1}: ${s.s.warning}`);
      });
    }
  }
  if (warned.length > 0) out.push("Warnings:", "", ...warned, "");
  return out;
}

// ---- the section ----

/** Start everything, measure, stop everything (also on failure); returns the markdown lines. */
export async function clusterSection(o: ClusterOptions): Promise<string[]> {
  if (o.runtimes.length === 0) return [];
  const t0 = performance.now();
  const servers: Started[] = [];
  const proxies: ProxyProcess[] = [];
  try {
    const nodes = await startCluster(o, servers);
    const masters = nodes.filter((n) => n.master).map((n) => n.server);
    o.log(`cluster: masters ${masters.map((m) => m.port).join(",")}` +
      (o.replicas > 0 ? `; replicas ${nodes.filter((n) => !n.master).map((n) => n.server.port).join(",")}` : "") + "; state ok");
    for (const runtime of o.runtimes) {
      const p = await startProxyWith(runtime, o.dir, `${runtime}-cluster`, (port) => clusterYaml(port, masters));
      proxies.push(p);
      p.target.name = runtime;
      // The slot map arrives after the listener: retry the SET/MSET/MGET check (its keys span slots).
      if (!(await until(() => checkRedis(p.target).then(() => true), 15000))) {
        throw new Error(`cluster: SET/MSET/MGET through ${runtime} not right within 15 s (log: ${p.logFile})`);
      }
      o.log(`cluster: proxy ${runtime} on port ${p.target.port}, measured pid ${p.target.pids[0]}`);
    }
    const direct: Target = { name: "cluster (direct)", host: HOST, port: masters[0].port, pids: masters.map((m) => m.pid), cluster: true };
    const targets = [direct, ...proxies.map((p) => p.target)];
    await warmUp(o, targets, masters);
    o.log("cluster: keyspaces filled, warm-up done");
    const results = await measureAll(o, targets, masters);
    return report(o, results, (performance.now() - t0) / 1000);
  } finally {
    await Promise.all(proxies.map((p) => stopProxy(p)));
    await Promise.all(servers.map((s) => stop(s.proc)));
  }
}
