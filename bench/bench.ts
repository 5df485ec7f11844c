/**
 * `npm run bench`: Redis (redis-benchmark) and memcached (memcslap) throughput directly
 * and through the proxy on Node, Deno and Bun, in interleaved rounds, with the proxy's
 * CPU per request and peak RSS from /proc, then RSS with many idle client connections,
 * then the replicas scenario (lib/replicas.ts: read_policy master vs prefer_replica) and the
 * Redis Cluster scenario (lib/cluster.ts: the proxy vs redis-benchmark --cluster).
 * Prints markdown (machine and date on top) for the README. Flags: see USAGE.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clockTicks, installCleanup, maxOpenFiles, runTool, stopAll } from "./lib/proc.ts";
import {
  externalTarget, idleHeap, type ProxyProcess, RUNTIMES, type RuntimeName, startAcceptLoop, startMemcached, startNutcracker,
  startProxyOn, startRedis, type Started, stopProxy, type Target,
} from "./lib/targets.ts";
import { type McTest, type RedisTest, REDIS_BENCH_ARGS, runMemcslap, runRedisBenchmark, type Sample } from "./lib/tools.ts";
import { checkMemcache, checkRedis, type IdleResult, idleRss } from "./lib/idle.ts";
import { idleHeapTable, idleTable, machineHeader, type Series, testTable, warnings } from "./lib/report.ts";
import type { HeapResult } from "./lib/idle_heap.ts";
import { replicasSection } from "./lib/replicas.ts";
import { migrationSection } from "./lib/migration.ts";
import { clusterSection } from "./lib/cluster.ts";

const USAGE = `npm run bench -- [flags]
  --rounds N            interleaved rounds (default 3)
  --requests N          requests per -P 1 and MSET run (default 100000)
  --requests-p16 N      requests per -P 16 run (default 4 x --requests)
  --only node,deno,bun  runtimes to start the proxy on (default all; none with --target)
  --workers LIST        worker counts to run each runtime's proxy with, e.g. 2 or 1,2: one proxy per
                        runtime and count, started with --workers N (rows "node ×2"; CPU and RSS summed
                        over the supervisor and its workers); 0 = one process, no --workers (default 0)
  --nutcracker PATH     start this nutcracker binary (the real twemproxy 0.5.0) over the same backends
                        and pools: the reference row "nutcracker 0.5.0 (C)"
  --target HOST:PORT    also benchmark this redis listen address (e.g. a real twemproxy); repeatable
  --mc-target HOST:PORT memcached listen address of the same external proxy
  --redis-ports A,B     fixed ports for the two redis-servers (to point an external proxy at them)
  --memcached-ports A,B fixed ports for the two memcached servers
  --sections LIST       redis,memcache,idle,replicas,cluster,migration (default all); --memcache = memcache only;
                        replicas = 2 shards x (master + replicas), read_policy master vs prefer_replica;
                        cluster = a 3-master Redis Cluster, the proxy vs redis-benchmark --cluster
  --replicas-per-shard N  replicas section: replicas per shard (default 2)
  --cluster-replicas N  cluster section: replicas per master (default 0)
  --mc-threads N        memcslap -c (default 10)   --mc-ops N  memcslap -e per thread (default 10000)
  --idle N              idle client connections (default 10000, capped by the fd limits); the idle
                        section also measures an empty accept loop per runtime (lib/accept_loop.ts),
                        then both again by JS heap after full GCs in one process (lib/idle_heap.ts,
                        up to 5000 clients)
  --clients-high N      redis-benchmark -c of the high-concurrency rows (default 200; 0 = leave them out)
  --out FILE            also write the markdown there`;

interface Options {
  rounds: number;
  requests: number;
  requestsP16: number;
  only: RuntimeName[];
  workers: number[];
  nutcracker?: string;
  clientsHigh: number;
  targets: string[];
  mcTarget?: string;
  redisPorts: number[];
  mcPorts: number[];
  sections: Set<string>;
  mcThreads: number;
  mcOps: number;
  idle: number;
  replicasPerShard: number;
  clusterReplicas: number;
  out?: string;
}

/** Hand-rolled flag parsing (node:util parseArgs belongs to adapters/flags.ts alone). */
function parseOptions(argv: string[]): Options {
  const o: Options = {
    rounds: 3, requests: 100000, requestsP16: 0, only: [...RUNTIMES], workers: [0], clientsHigh: 200, targets: [], redisPorts: [], mcPorts: [],
    sections: new Set(["redis", "memcache", "idle", "replicas", "cluster", "migration"]), mcThreads: 10, mcOps: 10000, idle: 10000,
    replicasPerShard: 2, clusterReplicas: 0,
  };
  let onlyGiven = false;
  const num = (v: string, flag: string, min = 1) => {
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= min)) throw new Error(`${flag} needs an integer >= ${min}, got ${v}`);
    return n;
  };
  const ports = (v: string, flag: string) => v.split(",").map((p) => num(p, flag));
  const takes: Record<string, (v: string, flag: string) => void> = {
    "--rounds": (v, f) => (o.rounds = num(v, f)),
    "--requests": (v, f) => (o.requests = num(v, f)),
    "--requests-p16": (v, f) => (o.requestsP16 = num(v, f)),
    "--only": (v) => {
      onlyGiven = true;
      o.only = v.split(",").filter(Boolean).map((r) => {
        if (!RUNTIMES.includes(r as RuntimeName)) throw new Error(`--only: unknown runtime ${r}`);
        return r as RuntimeName;
      });
    },
    "--workers": (v, f) => (o.workers = v.split(",").map((n) => num(n, f, 0))),
    "--nutcracker": (v) => (o.nutcracker = v),
    "--clients-high": (v, f) => (o.clientsHigh = num(v, f, 0)),
    "--target": (v) => o.targets.push(v),
    "--mc-target": (v) => (o.mcTarget = v),
    "--redis-ports": (v, f) => (o.redisPorts = ports(v, f)),
    "--memcached-ports": (v, f) => (o.mcPorts = ports(v, f)),
    "--sections": (v) => (o.sections = new Set(v.split(","))),
    "--mc-threads": (v, f) => (o.mcThreads = num(v, f)),
    "--mc-ops": (v, f) => (o.mcOps = num(v, f)),
    "--idle": (v, f) => (o.idle = num(v, f)),
    "--replicas-per-shard": (v, f) => (o.replicasPerShard = num(v, f)),
    "--cluster-replicas": (v, f) => (o.clusterReplicas = num(v, f, 0)),
    "--out": (v) => (o.out = v),
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split(/=(.*)/s, 2) : [argv[i], undefined];
    if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    }
    if (flag === "--memcache") {
      o.sections = new Set(["memcache"]);
      continue;
    }
    const take = takes[flag];
    if (take === undefined) throw new Error(`unknown flag ${flag}\n${USAGE}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    take(value, flag);
  }
  if (o.requestsP16 === 0) o.requestsP16 = 4 * o.requests;
  if (o.targets.length > 0 && !onlyGiven) o.only = [];
  return o;
}

const log = (msg: string) => process.stderr.write(`[bench ${((performance.now()) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);

/** The redis-benchmark tests of issue 7. */
function redisTests(o: Options): RedisTest[] {
  return [
    { label: "SET -P 1", test: "set", pipeline: 1, requests: o.requests },
    { label: "GET -P 1", test: "get", pipeline: 1, requests: o.requests },
    { label: "SET -P 16", test: "set", pipeline: 16, requests: o.requestsP16 },
    { label: "GET -P 16", test: "get", pipeline: 16, requests: o.requestsP16 },
    { label: "MSET (10 keys) -P 1", test: "mset", pipeline: 1, requests: o.requests },
    ...(o.clientsHigh > 0
      ? [
        { label: `SET -P 1 -c ${o.clientsHigh}`, test: "set", pipeline: 1, requests: o.requests, clients: o.clientsHigh },
        { label: `GET -P 1 -c ${o.clientsHigh}`, test: "get", pipeline: 1, requests: o.requests, clients: o.clientsHigh },
      ] as RedisTest[]
      : []),
  ];
}

/** Runs `measure(test, target)` for every test and target, `rounds` times, rotating target order per round. */
async function interleave<T extends { label: string }>(
  tests: T[], targets: Target[], rounds: number, measure: (t: T, target: Target) => Promise<Sample>,
): Promise<Map<string, Series[]>> {
  const results = new Map<string, Series[]>(tests.map((t) => [t.label, targets.map((x) => ({ name: x.name, samples: [] }))]));
  for (let round = 0; round < rounds; round++) {
    for (const t of tests) {
      for (let k = 0; k < targets.length; k++) {
        const i = (k + round) % targets.length;
        const s = await measure(t, targets[i]);
        results.get(t.label)![i].samples.push(s);
        log(`round ${round + 1}/${rounds} ${t.label} ${targets[i].name}: ${Math.round(s.rps)}/s, ${s.cpuUsPerReq.toFixed(1)} µs/req${s.warning ? ` (${s.warning})` : ""}`);
      }
    }
  }
  return results;
}

function sectionTables(results: Map<string, Series[]>, unit: string, out: string[]): void {
  const warned: string[] = [];
  for (const [label, series] of results) {
    out.push(`#### ${label}`, "", testTable(series, unit), "");
    warned.push(...warnings(label, series));
  }
  if (warned.length > 0) out.push("Warnings:", "", ...warned, "");
}

async function versions(): Promise<string[]> {
  const first = async (cmd: string, args: string[]) => {
    const r = await runTool(cmd, args, 10000).catch(() => null);
    return (r?.stdout || r?.stderr || "?").trim().split("\n")[0];
  };
  const [deno, bun, redis, mc] = await Promise.all([
    first(join(process.cwd(), "node_modules/.bin/deno"), ["--version"]),
    first(join(process.cwd(), "node_modules/.bin/bun"), ["--version"]),
    first("redis-server", ["--version"]),
    first("memcached", ["-V"]),
  ]);
  return [`Runtimes: node ${process.version}, ${deno}, bun ${bun}`, `Servers: ${redis.replace(/ sha=.*/, "")}; ${mc}`];
}

/** How many idle connections fit: the request, capped by our fd limit and the proxy's. */
function idleCount(wanted: number, pids: number[]): { count: number; note: string } {
  const limits = [maxOpenFiles(process.pid), ...pids.map(maxOpenFiles)].filter(Number.isFinite);
  const cap = Math.min(...limits) - 300;
  const count = Math.max(0, Math.min(wanted, cap));
  const note = `fd limit (soft, ours and the proxies') ${Math.min(...limits)}; using ${count} connections` +
    (count < wanted ? ` (capped from ${wanted}; raise \`ulimit -n\` for more)` : "");
  return { count, note };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), "twemproxy-bench-"));
  const hz = await clockTicks();
  const out: string[] = ["## Benchmark", ""];
  let ok = false;
  try {
    const wantRedis = o.sections.has("redis") || o.sections.has("idle");
    const wantMc = o.sections.has("memcache");
    const redis: Started[] = [];
    const mc: Started[] = [];
    for (let i = 0; wantRedis && i < 2; i++) redis.push(await startRedis(o.redisPorts[i]));
    for (let i = 0; wantMc && i < 2; i++) mc.push(await startMemcached(o.mcPorts[i]));
    log(`redis-server ports ${redis.map((r) => r.port).join(",") || "-"}; memcached ports ${mc.map((m) => m.port).join(",") || "-"}`);
    const startAll = async () => {
      const list: ProxyProcess[] = [];
      for (const rt of o.only) {
        for (const workers of o.workers) {
          const p = await startProxyOn(rt, dir, redis.map((r) => r.port), mc.map((m) => m.port), workers);
          log(`proxy ${p.target.name}: port ${p.started.port}, launcher pid ${p.started.proc.pid}, measured pids ${p.target.pids.join(",")}`);
          list.push(p);
        }
      }
      if (o.nutcracker !== undefined) {
        const p = await startNutcracker(o.nutcracker, dir, redis.map((r) => r.port), mc.map((m) => m.port));
        log(`${p.target.name}: port ${p.started.port}, pid ${p.started.pid}`);
        list.push(p);
      }
      return list;
    };
    const wantBase = wantRedis || wantMc;
    let proxies = wantBase ? await startAll() : [];
    const external = o.targets.map((t, i) => externalTarget(t, i === 0 ? o.mcTarget : undefined));
    for (const t of external) log(`${t.name}: measured pid ${t.pids[0] ?? "unknown (CPU/RSS n/a)"}`);

    const baseNotes = [
      `Load: redis-benchmark ${REDIS_BENCH_ARGS.join(" ")}, -n ${o.requests} (-P 1, MSET) / ${o.requestsP16} (-P 16)` +
        (o.clientsHigh > 0 ? `, and -c ${o.clientsHigh} for the "-c ${o.clientsHigh}" rows` : "") + "; " +
        `memcslap -c ${o.mcThreads} -e ${o.mcOps}; ${o.rounds} interleaved rounds`,
      `CPU µs/req and CPU % = utime+stime of the measured process (/proc, CLK_TCK ${hz}) over the run; ` +
        `for the direct rows it is the server's own CPU. Peak RSS = VmHWM so far. Ratio = median / direct median.`,
      "Proxies: the CLI (mod.ts) on each runtime, one redis pool (fnv1a_64, ketama) over 2 redis-servers " +
        "(and a memcached pool over 2 memcached); direct Redis is one redis-server." +
        (o.workers.some((n) => n > 0) ? " \"node ×N\" = the same CLI with --workers N; its CPU and RSS are summed over the supervisor and workers." : "") +
        (o.nutcracker !== undefined ? ` nutcracker 0.5.0 (C) = ${o.nutcracker} with the same pools.` : ""),
    ];
    out.push(machineHeader([...(await versions()), ...(wantBase ? baseNotes : [])]), "");

    if (o.sections.has("redis")) {
      const direct: Target = { name: "redis (direct)", host: "127.0.0.1", port: redis[0].port, pids: [redis[0].pid] };
      const targets = [direct, ...proxies.map((p) => p.target), ...external];
      for (const t of targets) await checkRedis(t);
      out.push("### Redis (redis-benchmark)", "");
      // One untimed pass per target, so JIT warm-up does not land in round 1.
      for (const target of targets) {
        for (const t of redisTests(o).slice(0, 4)) {
          await runRedisBenchmark(target, { ...t, requests: Math.ceil(t.requests / 10) }, hz, 300000);
        }
      }
      log("warm-up done");
      const results = await interleave(redisTests(o), targets, o.rounds, (t, target) => runRedisBenchmark(target, t, hz, 300000));
      sectionTables(results, "req/s", out);
    }

    if (wantMc) {
      const servers = mc.map((m) => `127.0.0.1:${m.port}`).join(",");
      const direct = { name: "memcached ×2 (direct)", servers, pids: mc.map((m) => m.pid) };
      const viaProxy = [...proxies.map((p) => p.target), ...external].filter((t) => t.mcPort !== undefined)
        .map((t) => ({ name: t.name, servers: `${t.host}:${t.mcPort}`, pids: t.pids }));
      for (const t of viaProxy) {
        const [host, port] = t.servers.split(":");
        await checkMemcache(host, Number(port), t.name);
      }
      const mcTargets = [direct, ...viaProxy];
      const byName = new Map(mcTargets.map((t) => [t.name, t]));
      const tests: McTest[] = (["set", "get"] as const).map((test) => ({ label: `memcslap ${test}`, test, threads: o.mcThreads, perThread: o.mcOps }));
      const asTargets: Target[] = mcTargets.map((t) => ({ name: t.name, host: "", port: 0, pids: t.pids }));
      out.push("### Memcached (memcslap)", "");
      const results = await interleave(tests, asTargets, o.rounds, (t, target) => {
        const m = byName.get(target.name)!;
        return runMemcslap(m.servers, m.pids, t, hz, 300000);
      });
      sectionTables(results, "ops/s", out);
    }

    if (o.sections.has("idle")) {
      // Fresh proxies, so the numbers are not inflated by what the load left behind.
      for (const p of proxies) await stopProxy(p);
      proxies = await startAll();
      const loops: ProxyProcess[] = [];
      for (const rt of o.only) loops.push(await startAcceptLoop(rt, dir));
      const targets = [...proxies.map((p) => p.target), ...external.filter((t) => t.pids.length > 0), ...loops.map((l) => l.target)];
      const { count, note } = idleCount(o.idle, targets.flatMap((t) => t.pids));
      const idle: IdleResult[] = [];
      for (const t of targets) {
        log(`idle connections: ${t.name}, ${count}`);
        idle.push(await idleRss(t, count));
      }
      for (const l of loops) await stopProxy(l);
      out.push("### Idle client connections (RSS of the proxy process)", "", `${note}.`, "", idleTable(idle), "");
      const heapCount = Math.min(count, 5000);
      const heap: HeapResult[] = [];
      for (const rt of o.only) {
        log(`idle connections, JS heap: ${rt}, ${heapCount}`);
        heap.push(await idleHeap(rt, heapCount, 300000));
      }
      out.push("### Idle client connections (JS heap after full GC, in one process)", "", idleHeapTable(heap), "");
    }
    if (o.sections.has("replicas")) {
      // After the other sections' proxies are gone, so they cost no CPU here.
      for (const p of proxies) await stopProxy(p);
      proxies = [];
      out.push(...await replicasSection({
        runtimes: o.only, replicasPerShard: o.replicasPerShard, rounds: o.rounds, requests: o.requests, requestsP16: o.requestsP16, hz, dir, log,
      }));
    }
    if (o.sections.has("cluster")) {
      for (const p of proxies) await stopProxy(p);
      proxies = [];
      out.push(...await clusterSection({
        runtimes: o.only, replicas: o.clusterReplicas, rounds: o.rounds, requests: o.requests, requestsP16: o.requestsP16, hz, dir, log,
      }));
    }
    if (o.sections.has("migration")) {
      for (const p of proxies) await stopProxy(p);
      proxies = [];
      out.push(...await migrationSection({ runtimes: o.only, dir, log }));
    }
    ok = true;
  } finally {
    await stopAll();
    if (ok) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`configs and proxy logs kept in ${dir}\n`);
  }
  const text = out.join("\n");
  console.log(text);
  if (o.out !== undefined) writeFileSync(o.out, text + "\n");
}

main().catch(async (err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  await stopAll();
  process.exitCode = 1;
});
