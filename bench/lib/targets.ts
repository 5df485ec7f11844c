/**
 * What the benchmark talks to: redis-server and memcached backends, and the proxy
 * started through the real CLI (mod.ts) on Node, Deno or Bun. Each is a Target with
 * the PID(s) whose CPU time and memory are measured: the process that actually holds
 * the listening socket, found through /proc, not the launcher we spawned.
 */
import { realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { descendants, freePort, listenerPid, runTool, sleep, spawnTracked, stop, type Tracked, waitForPort } from "./proc.ts";
import { REFERENCE } from "./report.ts";
import type { HeapResult } from "./idle_heap.ts";

/** Repository root (absolute). */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const HOST = "127.0.0.1";

export type RuntimeName = "node" | "deno" | "bun";
export const RUNTIMES: readonly RuntimeName[] = ["node", "deno", "bun"];

/** How to run mod.ts on each runtime: the real binary (symlinks resolved) and its arguments. */
export const RUNTIME_COMMANDS: Record<RuntimeName, () => [string, string[]]> = {
  node: () => [process.execPath, ["--import", "tsx", "mod.ts"]],
  deno: () => [realpathSync(join(ROOT, "node_modules/.bin/deno")), ["run", "-A", "mod.ts"]],
  bun: () => [realpathSync(join(ROOT, "node_modules/.bin/bun")), ["run", "mod.ts"]],
};

/** Something to benchmark: an address, and the processes to measure while it runs. */
export interface Target {
  /** Row label in the tables. */
  name: string;
  host: string;
  port: number;
  /** PIDs whose CPU and memory are measured (empty when unknown). */
  pids: number[];
  /** memcached-protocol address of the same proxy, if it has one. */
  mcPort?: number;
  /** A Redis Cluster node: redis-benchmark runs in its own `--cluster` mode against it. */
  cluster?: boolean;
}

/** A started process listening on a port. */
export interface Started {
  proc: Tracked;
  port: number;
  /** The process holding the listening socket (the real runtime, not a wrapper). */
  pid: number;
}

/**
 * Start a listening process on a free port (or `fixedPort`), retrying with another port
 * if it does not come up or someone else owns the port.
 */
export async function startListening(
  name: string,
  cmd: string,
  argsFor: (port: number) => string[],
  opts: { fixedPort?: number; cwd?: string; logFile?: string; timeoutMs?: number } = {},
): Promise<Started> {
  const errors: string[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = opts.fixedPort ?? await freePort();
    const proc = spawnTracked(name, cmd, argsFor(port), { cwd: opts.cwd, logFile: opts.logFile });
    if (await waitForPort(HOST, port, opts.timeoutMs ?? 15000, proc)) {
      // The launcher may be a wrapper; the listener is the process to measure.
      const pid = await findListener(port, proc.pid);
      if (pid > 0) return { proc, port, pid };
      errors.push(`port ${port}: listener is not ours`);
    } else {
      errors.push(`port ${port}: ${proc.exited ? "exited" : "no answer"}`);
    }
    await stop(proc);
    if (opts.fixedPort !== undefined) break;
  }
  throw new Error(`${name} did not start: ${errors.join("; ")}${opts.logFile ? ` (log: ${opts.logFile})` : ""}`);
}

async function findListener(port: number, root: number): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const pid = listenerPid(port, descendants(root));
    if (pid > 0) return pid;
    await sleep(50);
  }
  return -1;
}

/**
 * redis-server on 127.0.0.1 with persistence off; `extra` is appended (e.g. `--dir D
 * --replicaof 127.0.0.1 P`: a full sync writes dump.rdb even with `--save ""`).
 */
export function startRedis(fixedPort?: number, extra: readonly string[] = []): Promise<Started> {
  return startListening("redis-server", "redis-server", (port) => [
    "--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no",
    "--daemonize", "no", "--loglevel", "warning", "--maxclients", "20000", ...extra,
  ], { fixedPort });
}

/** memcached on 127.0.0.1, TCP only. */
export function startMemcached(fixedPort?: number): Promise<Started> {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  return startListening("memcached", "memcached", (port) => [
    "-l", HOST, "-p", String(port), "-U", "0", "-c", "20000", ...(root ? ["-u", "root"] : []),
  ], { fixedPort });
}

/** nutcracker.yml for one proxy: a redis pool and (optionally) a memcached pool, ketama over the backends. */
export function proxyYaml(redisListen: number, redisPorts: number[], mcListen: number | null, mcPorts: number[]): string {
  const servers = (ports: number[]) => ports.map((p) => `   - ${HOST}:${p}:1`).join("\n");
  let yml = `bench_redis:\n  listen: ${HOST}:${redisListen}\n  redis: true\n  hash: fnv1a_64\n` +
    `  distribution: ketama\n  servers:\n${servers(redisPorts)}\n`;
  if (mcListen !== null && mcPorts.length > 0) {
    yml += `bench_mc:\n  listen: ${HOST}:${mcListen}\n  hash: fnv1a_64\n  distribution: ketama\n  servers:\n${servers(mcPorts)}\n`;
  }
  return yml;
}

/** A proxy started on one runtime. */
export interface ProxyProcess {
  /** null: not ours (the real nutcracker). */
  runtime: RuntimeName | null;
  started: Started;
  mcPort: number | null;
  logFile: string;
  target: Target;
}

/**
 * Start mod.ts on `runtime` with its own config in `dir`; stats on a free loopback port.
 * `workers` > 0 runs it with `--workers N`: the row is named "node ×N" and every process
 * of the tree (supervisor and workers) is measured, summed.
 */
export async function startProxyOn(
  runtime: RuntimeName, dir: string, redisPorts: number[], mcPorts: number[], workers = 0,
): Promise<ProxyProcess> {
  const mcPort = mcPorts.length > 0 ? await freePort() : null;
  const label = workers > 0 ? `${runtime} ×${workers}` : runtime;
  const extra = workers > 0 ? ["--workers", String(workers)] : [];
  const p = await startProxyWith(runtime, dir, label, (port) => proxyYaml(port, redisPorts, mcPort, mcPorts), extra);
  if (workers > 0) p.target.pids = await processTree(p.started.proc, workers + 1);
  if (mcPort !== null && !(await waitForPort(HOST, mcPort, 5000, p.started.proc))) {
    await stop(p.started.proc);
    throw new Error(`proxy-${runtime}: memcache pool not listening (log: ${p.logFile})`);
  }
  if (mcPort !== null) p.target.mcPort = mcPort;
  return { ...p, mcPort };
}

/**
 * Start mod.ts on `runtime` with the config `yamlFor(listenPort)` (its redis listen address
 * on that port), written to `dir` as nutcracker-<label>.yml; the target is named `label`.
 */
export async function startProxyWith(
  runtime: RuntimeName, dir: string, label: string, yamlFor: (port: number) => string, extraArgs: string[] = [],
): Promise<ProxyProcess> {
  const [cmd, prefix] = RUNTIME_COMMANDS[runtime]();
  const file = label.replace(/[^\w-]+/g, "");
  const confFile = join(dir, `nutcracker-${file}.yml`);
  const logFile = join(dir, `proxy-${file}.log`);
  const statsPort = await freePort();
  const started = await startListening(`proxy-${label}`, cmd, (port) => {
    writeFileSync(confFile, yamlFor(port));
    return [...prefix, "-c", confFile, "-s", String(statsPort), "-a", HOST, ...extraArgs];
  }, { cwd: ROOT, logFile, timeoutMs: 30000 });
  const target: Target = { name: label, host: HOST, port: started.port, pids: [started.pid] };
  return { runtime, started, mcPort: null, logFile, target };
}

/** The launcher and its descendants, once there are at least `count` of them (bounded: 30 s). */
async function processTree(root: Tracked, count: number): Promise<number[]> {
  for (let i = 0; i < 300 && !root.exited; i++) {
    const pids = descendants(root.pid);
    if (pids.length >= count) {
      // Let the last worker finish binding before it is measured.
      await sleep(1000);
      return descendants(root.pid);
    }
    await sleep(100);
  }
  throw new Error(`${root.name}: fewer than ${count} processes after 30 s`);
}

/**
 * The real twemproxy (nutcracker 0.5.0, a C binary at `bin`) over the same backends with the
 * same pools as the proxies: the reference row. Its stats port is a free loopback port.
 */
export async function startNutcracker(bin: string, dir: string, redisPorts: number[], mcPorts: number[]): Promise<ProxyProcess> {
  const mcPort = mcPorts.length > 0 ? await freePort() : null;
  const confFile = join(dir, "nutcracker-c.yml");
  const logFile = join(dir, "nutcracker-c.log");
  const statsPort = await freePort();
  const started = await startListening("nutcracker", bin, (port) => {
    writeFileSync(confFile, proxyYaml(port, redisPorts, mcPort, mcPorts));
    return ["-c", confFile, "-s", String(statsPort), "-a", HOST, "-o", logFile];
  }, { logFile });
  const target: Target = { name: REFERENCE, host: HOST, port: started.port, pids: [started.pid] };
  if (mcPort !== null) target.mcPort = mcPort;
  return { runtime: null, started, mcPort, logFile, target };
}

/** An empty accept loop (lib/accept_loop.ts) on `runtime`: the idle-memory floor row. */
export async function startAcceptLoop(runtime: RuntimeName, dir: string): Promise<ProxyProcess> {
  const [cmd, prefix] = RUNTIME_COMMANDS[runtime]();
  const args = prefix.slice(0, -1); // the runtime's flags without "mod.ts"
  const logFile = join(dir, `accept-loop-${runtime}.log`);
  const started = await startListening(`accept-loop-${runtime}`, cmd, (port) => [...args, "bench/lib/accept_loop.ts", String(port)], {
    cwd: ROOT, logFile, timeoutMs: 30000,
  });
  const target: Target = { name: `${runtime}: empty accept loop`, host: HOST, port: started.port, pids: [started.pid] };
  return { runtime, started, mcPort: null, logFile, target };
}

/**
 * The in-process JS heap measurement (lib/idle_heap.ts) on `runtime`, with its garbage
 * collector exposed: bytes per idle client of the proxy and of the empty accept loop.
 */
export async function idleHeap(runtime: RuntimeName, count: number, timeoutMs: number): Promise<HeapResult> {
  const [cmd, prefix] = RUNTIME_COMMANDS[runtime]();
  const flags = prefix.slice(0, -1); // without "mod.ts"
  if (runtime === "node") flags.unshift("--expose-gc");
  if (runtime === "deno") flags.splice(2, 0, "--v8-flags=--expose-gc"); // after "run -A"
  const r = await runTool(cmd, [...flags, "bench/lib/idle_heap.ts", String(count)], timeoutMs, ROOT);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (r.code !== 0 || !line.startsWith("{")) throw new Error(`idle heap on ${runtime} failed: ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return JSON.parse(line) as HeapResult;
}

/** Stop a proxy: the launcher, and the other processes measured too if they are not the launcher. */
export async function stopProxy(p: ProxyProcess): Promise<void> {
  await stop(p.started.proc);
  for (const pid of new Set([p.started.pid, ...p.target.pids])) {
    if (pid === p.started.proc.pid) continue;
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // gone with its launcher
    }
  }
}

/** Parse "host:port" (for --target). */
export function parseHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(":");
  const port = Number(text.slice(i + 1));
  if (i < 1 || !(port > 0 && port < 65536)) throw new Error(`expected host:port, got ${text}`);
  return { host: text.slice(0, i), port };
}

/** A target given on the command line (e.g. a real twemproxy): its listener PID if visible. */
export function externalTarget(text: string, mcText?: string): Target {
  const { host, port } = parseHostPort(text);
  const pid = listenerPid(port);
  const target: Target = { name: `target ${text}`, host, port, pids: pid > 0 ? [pid] : [] };
  if (mcText !== undefined) target.mcPort = parseHostPort(mcText).port;
  return target;
}
