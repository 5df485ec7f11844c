/**
 * The load generators: redis-benchmark (one test per run, CSV output) and memcslap
 * (its "Time to <test> N keys by T threads: S seconds" line). Each run also samples
 * the CPU ticks and peak RSS of the measured processes before and after.
 */
import { cpuTicks, runTool, vmBytes } from "./proc.ts";
import type { Target } from "./targets.ts";

/** One measured run. */
export interface Sample {
  /** Requests (or memcached ops) per second, as the tool reports it. */
  rps: number;
  /** Requests the tool sent. */
  requests: number;
  /** CPU microseconds per request of the measured processes, user + system (NaN when unknown). */
  cpuUsPerReq: number;
  /** The system (kernel) part of cpuUsPerReq. */
  sysUsPerReq: number;
  /** CPU time of the measured processes / tool wall time (1 = one core busy). */
  cpuShare: number;
  /** Peak RSS (VmHWM) of the measured processes after the run, bytes (NaN when unknown). */
  peakRss: number;
  /** Anything suspicious the tool printed (errors), or "". */
  warning: string;
}

/** A redis-benchmark test: its -t name, pipeline depth and request count. */
export interface RedisTest {
  label: string;
  test: "set" | "get" | "mset";
  pipeline: number;
  requests: number;
  /** redis-benchmark -c (default: the 50 of REDIS_BENCH_ARGS). */
  clients?: number;
}

/** Common redis-benchmark settings from the issue. */
export const REDIS_BENCH_ARGS = ["-c", "50", "-d", "32", "-r", "100000"] as const;

function sumTicks(pids: number[]): { user: number; sys: number } {
  let user = pids.length === 0 ? NaN : 0;
  let sys = user;
  for (const pid of pids) {
    const t = cpuTicks(pid);
    user += t.user;
    sys += t.sys;
  }
  return { user, sys };
}

function sumHwm(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) sum += vmBytes(pid, "VmHWM");
  return pids.length === 0 ? NaN : sum;
}

/** Wraps a tool run with CPU/RSS sampling of `pids`. */
async function measured<T>(pids: number[], run: () => Promise<T>): Promise<{ value: T; ticks: Ticks; wallMs: number; hwm: number }> {
  const before = sumTicks(pids);
  const t0 = performance.now();
  const value = await run();
  const wallMs = performance.now() - t0;
  const after = sumTicks(pids);
  return { value, ticks: { user: after.user - before.user, sys: after.sys - before.sys }, wallMs, hwm: sumHwm(pids) };
}

type Ticks = { user: number; sys: number };

/** Run one redis-benchmark test against `target` (in `--cluster` mode for a cluster node); rps from the CSV line. */
export async function runRedisBenchmark(target: Target, t: RedisTest, hz: number, timeoutMs: number): Promise<Sample> {
  const common = t.clients === undefined ? REDIS_BENCH_ARGS : REDIS_BENCH_ARGS.map((a, i) => (REDIS_BENCH_ARGS[i - 1] === "-c" ? String(t.clients) : a));
  const args = [
    "-h", target.host, "-p", String(target.port), ...common,
    "-n", String(t.requests), "-P", String(t.pipeline), "-t", t.test, "--csv", ...(target.cluster ? ["--cluster"] : []),
  ];
  const m = await measured(target.pids, () => runTool("redis-benchmark", args, timeoutMs));
  const r = m.value;
  const rps = csvRps(r.stdout);
  let warning = r.timedOut ? "timed out" : r.code !== 0 ? `exit ${r.code}` : "";
  const errLine = /^.*(error|refused|reset).*$/im.exec(r.stdout + r.stderr);
  if (errLine !== null) warning = errLine[0].trim().slice(0, 120);
  if (!(rps > 0) && warning === "") warning = `no result: ${(r.stdout + r.stderr).trim().slice(0, 120)}`;
  return sample(rps, t.requests, m.ticks, m.wallMs, m.hwm, hz, warning);
}

/** rps column of redis-benchmark --csv (second line: "TEST","rps",...). */
export function csvRps(stdout: string): number {
  for (const line of stdout.split("\n")) {
    const m = /^"[^"]+","([\d.]+)"/.exec(line.trim());
    if (m !== null) return Number(m[1]);
  }
  return NaN;
}

/** A memcslap test. `perThread` is its -e; total ops = threads * perThread. */
export interface McTest {
  label: string;
  test: "set" | "get";
  threads: number;
  perThread: number;
}

/** Run memcslap against `servers` ("h:p,h:p"); ops/s from its timing line. */
export async function runMemcslap(servers: string, pids: number[], t: McTest, hz: number, timeoutMs: number): Promise<Sample> {
  const args = ["-s", servers, "-t", t.test, "-c", String(t.threads), "-e", String(t.perThread)];
  const m = await measured(pids, () => runTool("memcslap", args, timeoutMs));
  const r = m.value;
  const parsed = memcslapTiming(r.stdout, t.test);
  let warning = r.timedOut ? "timed out" : r.code !== 0 ? `exit ${r.code}` : "";
  const errLine = /^.*(error|failure|failed).*$/im.exec(r.stdout + r.stderr);
  if (errLine !== null) warning = errLine[0].trim().slice(0, 120);
  if (parsed === null && warning === "") warning = `no result: ${(r.stdout + r.stderr).trim().slice(0, 120)}`;
  const ops = parsed?.keys ?? t.threads * t.perThread;
  const rps = parsed === null ? NaN : parsed.keys / parsed.seconds;
  return sample(rps, ops, m.ticks, m.wallMs, m.hwm, hz, warning);
}

/** Keys and seconds from "Time to get 100000 keys by 10 threads: 1.520 seconds." */
export function memcslapTiming(stdout: string, test: string): { keys: number; seconds: number } | null {
  const m = new RegExp(`Time to ${test}\\s+(\\d+) keys by\\s+\\d+ threads:\\s+([\\d.]+) seconds`).exec(stdout);
  if (m === null || !(Number(m[2]) > 0)) return null;
  return { keys: Number(m[1]), seconds: Number(m[2]) };
}

function sample(rps: number, requests: number, ticks: Ticks, wallMs: number, hwm: number, hz: number, warning: string): Sample {
  const cpuSec = (ticks.user + ticks.sys) / hz;
  return {
    rps,
    requests,
    cpuUsPerReq: (cpuSec * 1e6) / requests,
    sysUsPerReq: ((ticks.sys / hz) * 1e6) / requests,
    cpuShare: cpuSec / (wallMs / 1000),
    peakRss: hwm,
    warning,
  };
}
