/**
 * Child processes for the benchmarks: spawn, track by PID, stop by PID (also on
 * SIGINT/SIGTERM and at exit), run a tool to completion within a bound, and read
 * CPU time and memory of any PID from /proc. Linux only, node:* only.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import net from "node:net";

const HOST = "127.0.0.1";

/** A process this module started. */
export interface Tracked {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  exited: boolean;
  /** Resolves when the process has exited. */
  readonly exit: Promise<void>;
}

const live = new Map<number, Tracked>();
let hooksInstalled = false;

/** Kill every tracked process with SIGKILL, synchronously (for "exit"). */
function killAllNow(): void {
  for (const t of live.values()) trySignal(t.pid, "SIGKILL");
  live.clear();
}

/** On SIGINT/SIGTERM stop everything we started, then exit; at exit, SIGKILL what is left. */
export function installCleanup(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllNow);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping ${live.size} child process(es)\n`);
      stopAll().finally(() => process.exit(130));
    });
  }
}

/**
 * Spawn `cmd args` and track it. Output goes to `logFile` (appended) or is ignored,
 * so a chatty child never blocks on a full pipe.
 */
export function spawnTracked(name: string, cmd: string, args: string[], opts: { cwd?: string; logFile?: string } = {}): Tracked {
  const fd = opts.logFile === undefined ? "ignore" : openSync(opts.logFile, "a");
  const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", fd, fd] });
  if (typeof fd === "number") closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  let done: () => void = () => {};
  const exit = new Promise<void>((resolve) => (done = resolve));
  const t: Tracked = { name, pid: child.pid, child, exited: false, exit };
  const onExit = () => {
    t.exited = true;
    live.delete(t.pid);
    done();
  };
  child.once("exit", onExit);
  child.once("error", onExit);
  live.set(t.pid, t);
  return t;
}

/** SIGTERM, then SIGKILL after `boundMs`; resolves once the process is gone. */
export async function stop(t: Tracked, boundMs = 3000): Promise<void> {
  if (t.exited) return;
  trySignal(t.pid, "SIGTERM");
  if (await within(t.exit, boundMs)) return;
  trySignal(t.pid, "SIGKILL");
  await within(t.exit, boundMs);
}

/** Stop every tracked process (in parallel). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live.values()].map((t) => stop(t)));
}

/** Signal a PID, ignoring "no such process". */
export function trySignal(pid: number, sig: "SIGTERM" | "SIGKILL" | "SIGINT"): void {
  try {
    if (pid > 0) process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** What a finished tool printed. */
export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time, ms. */
  wallMs: number;
  timedOut: boolean;
}

/** Run a tool to completion, killing it by PID after `timeoutMs`. Never rejects for a non-zero exit. */
export function runTool(cmd: string, args: string[], timeoutMs: number, cwd?: string): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    const pid = child.pid;
    if (pid === undefined) return reject(new Error(`could not start ${cmd}`));
    let exited = false;
    live.set(pid, { name: cmd, pid, child, exited: false, exit: Promise.resolve() });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout = (stdout + s).slice(-65536)));
    child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr = (stderr + s).slice(-65536)));
    const timer = setTimeout(() => {
      timedOut = true;
      if (!exited) trySignal(pid, "SIGKILL");
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      live.delete(pid);
      reject(err);
    });
    child.once("close", (code) => {
      exited = true;
      clearTimeout(timer);
      live.delete(pid);
      resolve({ code, stdout, stderr, wallMs: performance.now() - started, timedOut });
    });
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count * 4 && out.length < count; i++) {
    const p = await freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** Resolves true once host:port accepts a connection, false after `timeoutMs` (or when `t` exits). */
export async function waitForPort(host: string, port: number, timeoutMs: number, t?: Tracked): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !(t?.exited ?? false)) {
    if (await canConnect(host, port)) return true;
    await sleep(50);
  }
  return false;
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const ok = await Promise.race([p.then(() => true), bound]);
  clearTimeout(timer);
  return ok;
}

// ---- /proc readers ----

/** CPU time of the whole process (all threads) in clock ticks: user (utime) and system (stime); NaN if gone. */
export function cpuTicks(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(rest[11]), sys: Number(rest[12]) };
  } catch {
    return { user: NaN, sys: NaN };
  }
}

/**
 * CPU time of the whole process in nanoseconds: the sum over its live threads of
 * /proc/<pid>/task/<tid>/schedstat's first field (time on CPU, user and system together).
 * Finer than cpuTicks' 10 ms ticks, so short runs still compare; threads that exited are
 * not counted. NaN if the process is gone or the kernel has no schedstat.
 */
export function cpuNs(pid: number): number {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  let sum = 0;
  for (const tid of tasks) {
    try {
      sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread exited while we read
    }
  }
  return tasks.length > 0 ? sum : NaN;
}

/** A "Vm*" line of /proc/<pid>/status in bytes (VmRSS, VmHWM); NaN if gone. */
export function vmBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return m === null ? NaN : Number(m[1]) * 1024;
  } catch {
    return NaN;
  }
}

/** Soft "Max open files" of a PID, or NaN. */
export function maxOpenFiles(pid: number): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
    return m === null ? NaN : Number(m[1]);
  } catch {
    return NaN;
  }
}

/** PIDs of `root` and all its descendants (scans /proc once). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // exited while scanning
    }
  }
  const out = [root];
  for (let i = 0; i < out.length && i < 10000; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** Socket inodes of TCP listeners on `port` (any local address, IPv4 or IPv6). */
function listenInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === "0A" && f[1].endsWith(`:${hexPort}`)) inodes.add(f[9]);
    }
  }
  return inodes;
}

/**
 * The PID that holds the listening socket on `port`: searched among `candidates`
 * (e.g. descendants of a spawned launcher), or among every visible process. -1 if not found.
 * This finds the real runtime process even when the launcher is a wrapper.
 */
export function listenerPid(port: number, candidates?: number[]): number {
  const inodes = listenInodes(port);
  if (inodes.size === 0) return -1;
  const pids = candidates ?? readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number);
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = "";
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m !== null && inodes.has(m[1])) return pid;
    }
  }
  return -1;
}

/** Clock ticks per second (`getconf CLK_TCK`), 100 if getconf is missing. */
export async function clockTicks(): Promise<number> {
  const r = await runTool("getconf", ["CLK_TCK"], 5000).catch(() => null);
  const n = Number(r?.stdout.trim());
  return n > 0 ? n : 100;
}
