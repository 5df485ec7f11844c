/**
 * Real-server helpers for tests: start and stop redis-server and memcached on free
 * loopback ports, send signals to them, talk to any port with raw bytes, and run the
 * real redis-cli. Only node:child_process and node:net, so Node, Deno and Bun all run it.
 * Every server started here is killed when the test process exits, even if a test fails.
 */
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { freePort, sleep } from "./ports.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Signals tests send to servers. */
export type Signal = "SIGSTOP" | "SIGCONT" | "SIGKILL" | "SIGTERM" | "SIGINT" | "SIGHUP";

/** Options for startRedis / startMemcached. */
export interface ServerOptions {
  /** Fixed port; default: a free one (retried with another on a bind race). */
  port?: number;
  /** Extra command-line arguments appended after the defaults. */
  args?: string[];
  /** Bound on one start attempt, ms (default 10000). */
  startTimeoutMs?: number;
}

/** A running server process started by this module. */
export interface ServerProcess {
  readonly kind: "redis" | "memcached";
  readonly port: number;
  /** PID of the current process (changes after restart()). */
  readonly pid: number;
  /** True until the process has exited. */
  readonly running: boolean;
  /** SIGTERM (then SIGKILL after a bound) and wait for the exit. Safe to call twice. */
  stop(): Promise<void>;
  /** Send a signal to the current process, e.g. SIGSTOP to make it hang, SIGKILL to crash it. */
  kill(signal: Signal): void;
  /** Stop if running, then start again on the same port with the same arguments. */
  restart(): Promise<void>;
}

type Kind = ServerProcess["kind"];

/** How to launch and probe each kind of server; the probe's reply names the answering PID. */
const KINDS = {
  redis: {
    bin: "redis-server",
    argv: (port: number): string[] => [
      "--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no",
      "--daemonize", "no", "--loglevel", "warning",
    ],
    probe: "INFO server\r\n",
    complete: redisReplyComplete,
    pidPattern: /process_id:(\d+)/,
  },
  memcached: {
    bin: "memcached",
    // memcached refuses to run as root unless told which user to be.
    argv: (port: number): string[] => ["-l", HOST, "-p", String(port), "-U", "0", ...(isRoot() ? ["-u", "root"] : [])],
    probe: "stats\r\n",
    complete: (d: Uint8Array) => endsWith(d, "END\r\n") || endsWith(d, "ERROR\r\n"),
    pidPattern: /STAT pid (\d+)/,
  },
} as const;

/** Every child still running, killed synchronously when the process exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of live) {
      if (child.pid !== undefined) trySignal(child.pid, "SIGKILL");
    }
    live.clear();
  };
  process.on("exit", killAll);
  // `deno test` skips process "exit" but fires the web "unload" event.
  const target = globalThis as { addEventListener?: (type: string, fn: () => void) => void };
  target.addEventListener?.("unload", killAll);
}

/** One spawned process and what we learned about it. */
export interface Launched {
  child: ChildProcess;
  pid: number;
  exited: boolean;
  exit: Promise<void>;
  output: string;
}

function launch(kind: Kind, port: number, args: readonly string[]): Launched {
  const spec = KINDS[kind];
  return spawnTracked(spec.bin, [...spec.argv(port), ...args]);
}

/**
 * Spawn `bin` with its output's tail kept, killed when the test process exits if still running
 * (also for helpers that start other kinds of servers, such as Sentinels).
 */
export function spawnTracked(bin: string, argv: readonly string[]): Launched {
  installExitHook();
  const child = spawn(bin, [...argv], { stdio: ["ignore", "pipe", "pipe"] });
  const run: Launched = { child, pid: child.pid ?? -1, exited: false, exit: Promise.resolve(), output: "" };
  const keepTail = (chunk: Uint8Array) => {
    run.output = (run.output + decoder.decode(chunk)).slice(-2000);
  };
  child.stdout?.on("data", keepTail);
  child.stderr?.on("data", keepTail);
  run.exit = new Promise((resolve) => {
    const done = () => {
      run.exited = true;
      live.delete(child);
      resolve();
    };
    child.once("exit", done);
    child.once("error", (err: Error) => {
      run.output += `\n${err.message}`;
      done();
    });
  });
  live.add(child);
  // A test that forgets stop() must not keep the process alive; the exit hook kills it.
  child.unref();
  for (const s of [child.stdout, child.stderr]) (s as { unref?: () => void } | null)?.unref?.();
  return run;
}

/** Polls the probe until this very process answers (by PID), it exits, or the bound passes. */
async function awaitReady(kind: Kind, port: number, run: Launched, timeoutMs: number): Promise<boolean> {
  const spec = KINDS[kind];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !run.exited) {
    const reply = await rawExchange(port, spec.probe, { until: spec.complete, timeoutMs: 500 }).catch(() => null);
    if (reply !== null && !run.exited) {
      const text = decoder.decode(reply.data);
      const pid = spec.pidPattern.exec(text)?.[1];
      if (pid === String(run.pid)) return true;
      // Auth-protected redis answers INFO with an error: alive, but the PID cannot be checked.
      if (pid === undefined && text.startsWith("-")) return !run.exited;
    }
    await sleep(25);
  }
  return false;
}

/** SIGTERM (SIGKILL after `boundMs`) and wait for the exit. */
export async function terminate(run: Launched, boundMs = 3000): Promise<void> {
  if (run.exited) return;
  trySignal(run.pid, "SIGTERM");
  trySignal(run.pid, "SIGCONT"); // a SIGSTOPped server only handles SIGTERM once continued
  if (await within(run.exit, boundMs)) return;
  trySignal(run.pid, "SIGKILL");
  if (!(await within(run.exit, boundMs))) throw new Error(`pid ${run.pid} did not exit after SIGKILL`);
}

/** Start one process, retrying with a fresh port (unless fixed) when it fails to come up. */
async function startOn(kind: Kind, fixedPort: number | undefined, args: readonly string[], timeoutMs: number) {
  const errors: string[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = fixedPort ?? await freePort();
    const run = launch(kind, port, args);
    if (await awaitReady(kind, port, run, timeoutMs)) return { port, run };
    await terminate(run).catch(() => {});
    errors.push(`port ${port}: ${run.output.trim().slice(-300) || "no answer"}`);
    if (fixedPort !== undefined) await sleep(200);
  }
  throw new Error(`${KINDS[kind].bin} did not start:\n${errors.join("\n")}`);
}

async function startServer(kind: Kind, opts: ServerOptions = {}): Promise<ServerProcess> {
  installExitHook();
  const args = opts.args ?? [];
  const timeoutMs = opts.startTimeoutMs ?? 10000;
  const first = await startOn(kind, opts.port, args, timeoutMs);
  const port = first.port;
  let run = first.run;
  return {
    kind,
    port,
    get pid() {
      return run.pid;
    },
    get running() {
      return !run.exited;
    },
    stop: () => terminate(run),
    kill: (sig: Signal) => trySignal(run.pid, sig),
    async restart() {
      await terminate(run);
      run = (await startOn(kind, port, args, timeoutMs)).run;
    },
  };
}

/**
 * Starts `redis-server` on 127.0.0.1 with persistence off; resolves once it answers.
 * @example const r = await startRedis(); ...; await r.stop();
 */
export function startRedis(opts?: ServerOptions): Promise<ServerProcess> {
  return startServer("redis", opts);
}

/** Starts `memcached` on 127.0.0.1 (TCP only); resolves once it answers. */
export function startMemcached(opts?: ServerOptions): Promise<ServerProcess> {
  return startServer("memcached", opts);
}

/** Sends a signal to a PID (SIGSTOP to freeze a server, SIGCONT to thaw, SIGKILL to crash). */
export function signal(pid: number, sig: Signal): void {
  process.kill(pid, sig);
}

/** True while a process with this PID exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Send a signal to a process that may already be gone. */
export function trySignal(pid: number, sig: Signal): void {
  try {
    if (pid > 0) process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Options for rawRequest / rawExchange. Give at most one of expectBytes, untilEnds, until. */
export interface RawOptions {
  /** Done once at least this many bytes have arrived. */
  expectBytes?: number;
  /** Done once the bytes received so far end with this text. */
  untilEnds?: string;
  /** Done once this returns true for the bytes received so far. */
  until?: (data: Uint8Array) => boolean;
  /** Bound on the whole exchange, ms (default 2000). */
  timeoutMs?: number;
  /** Half-close our side after writing. */
  endAfterWrite?: boolean;
  host?: string;
}

/** What came back: the bytes, whether the peer closed, and whether the wait condition was met. */
export interface RawReply {
  data: Uint8Array;
  closed: boolean;
  done: boolean;
}

/**
 * Connects, sends bytes, and collects the reply until the condition holds, the peer closes,
 * or the timeout passes (never rejects after connecting). Rejects if the connection fails.
 */
export function rawExchange(port: number, bytes: Uint8Array | string, opts: RawOptions = {}): Promise<RawReply> {
  const isDone = doneTest(opts);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: opts.host ?? HOST, port });
    let buf = new Uint8Array(4096);
    let len = 0;
    let connected = false;
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const data = buf.slice(0, len);
      resolve({ data, closed, done: isDone !== null && isDone(data) });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 2000);
    sock.setNoDelay(true);
    sock.once("connect", () => {
      connected = true;
      sock.write(typeof bytes === "string" ? encoder.encode(bytes) : bytes);
      if (opts.endAfterWrite) sock.end();
    });
    sock.on("data", (chunk: Uint8Array) => {
      if (len + chunk.length > buf.length) {
        const bigger = new Uint8Array(Math.max(buf.length * 2, len + chunk.length));
        bigger.set(buf.subarray(0, len));
        buf = bigger;
      }
      buf.set(chunk, len);
      len += chunk.length;
      if (isDone !== null && isDone(buf.subarray(0, len))) finish(false);
    });
    sock.once("close", () => finish(true));
    sock.once("error", (err: Error) => {
      if (connected) return finish(true);
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Like rawExchange but returns only the bytes, and rejects when a wait condition was
 * given and not met (the error shows what did arrive).
 * @example await rawRequest(port, "PING\r\n", { untilEnds: "\r\n" }) // bytes of "+PONG\r\n"
 */
export async function rawRequest(port: number, bytes: Uint8Array | string, opts: RawOptions = {}): Promise<Uint8Array> {
  const reply = await rawExchange(port, bytes, opts);
  if (doneTest(opts) !== null && !reply.done) {
    const why = reply.closed ? "connection closed" : `no complete reply within ${opts.timeoutMs ?? 2000} ms`;
    throw new Error(`rawRequest to port ${port}: ${why}; got ${JSON.stringify(decoder.decode(reply.data).slice(0, 500))}`);
  }
  return reply.data;
}

/** rawRequest decoded as UTF-8 text. */
export async function rawText(port: number, bytes: Uint8Array | string, opts: RawOptions = {}): Promise<string> {
  return decoder.decode(await rawRequest(port, bytes, opts));
}

/**
 * Runs the real /usr/bin/redis-cli against 127.0.0.1:port and returns its stdout
 * (raw output, as when not on a terminal). Rejects on a non-zero exit or after timeoutMs (10 s).
 */
export function redisCli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("redis-cli", ["-h", HOST, "-p", String(port), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.on("data", (c: Uint8Array) => (out += decoder.decode(c)));
    child.stderr?.on("data", (c: Uint8Array) => (err += decoder.decode(c)));
    const timer = setTimeout(() => trySignal(child.pid ?? -1, "SIGKILL"), 10000);
    child.once("error", (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code: number | null) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`redis-cli ${args.join(" ")} exited with ${code}: ${err || out}`));
    });
  });
}

function doneTest(opts: RawOptions): ((d: Uint8Array) => boolean) | null {
  if (opts.until) return opts.until;
  if (opts.expectBytes !== undefined) return (d) => d.length >= opts.expectBytes!;
  if (opts.untilEnds !== undefined) return (d) => endsWith(d, opts.untilEnds!);
  return null;
}

function endsWith(data: Uint8Array, suffix: string): boolean {
  const want = encoder.encode(suffix);
  if (data.length < want.length) return false;
  const off = data.length - want.length;
  for (let i = 0; i < want.length; i++) if (data[off + i] !== want[i]) return false;
  return true;
}

/** True once data holds one complete RESP simple/error/integer line or bulk string. */
function redisReplyComplete(data: Uint8Array): boolean {
  const text = decoder.decode(data);
  const eol = text.indexOf("\r\n");
  if (eol < 0) return false;
  if (text[0] !== "$") return true;
  const size = Number(text.slice(1, eol));
  return size < 0 || data.length >= eol + 2 + size + 2;
}

function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Resolves true if p settles within ms. */
async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const ok = await Promise.race([p.then(() => true), bound]);
  clearTimeout(timer);
  return ok;
}
