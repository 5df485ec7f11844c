/**
 * The online expansion scenario (issue 14): a redis pool of 2 real redis-servers holding
 * KEYS keys grows to 3 by a reload with `migration: store` at the default rate, while one
 * client runs GET/SET at -P 1 through the proxy. Per runtime: keys moved and the move rate,
 * the foreground latency (p50/p99) before and during the migration, and the proxy's CPU.
 * Every wait is bounded; every process is stopped by PID.
 */
import net from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpuNs, freePort, stop } from "./proc.ts";
import { fixed, int, table } from "./report.ts";
import { type RuntimeName, startProxyWith, startRedis, type Started, stopProxy } from "./targets.ts";

const HOST = "127.0.0.1";
const KEYS = 100_000;
const BEFORE_MS = 3000;
/** The migration must end within this, or the row says so. */
const MIGRATION_BOUND_MS = 120_000;

export interface MigrationOptions {
  runtimes: RuntimeName[];
  dir: string;
  log: (msg: string) => void;
}

interface Row {
  runtime: string;
  moved: number;
  seconds: number;
  before: Latency;
  during: Latency;
  cpuBefore: number;
  cpuDuring: number;
}

interface Latency {
  p50: number;
  p99: number;
  requests: number;
}

export async function migrationSection(o: MigrationOptions): Promise<string[]> {
  const rows: Row[] = [];
  for (const runtime of o.runtimes) {
    o.log(`migration: ${runtime}`);
    rows.push(await oneRuntime(runtime, o));
  }
  const head = ["runtime", "keys moved", "move rate (keys/s)", "GET/SET p50 before (ms)", "p99 before", "p50 during", "p99 during",
    "p99 during/before", "proxy CPU before (%)", "during (%)"];
  const body = rows.map((r) => [
    r.runtime, int(r.moved), int(r.moved / r.seconds), fixed(r.before.p50, 3), fixed(r.before.p99, 3), fixed(r.during.p50, 3),
    fixed(r.during.p99, 3), fixed(r.during.p99 / r.before.p99, 2), fixed(r.cpuBefore, 1), fixed(r.cpuDuring, 1),
  ]);
  return [
    "### Online expansion (store mode, 2 -> 3 redis-servers)", "",
    `${int(KEYS)} keys; reload to 3 servers with \`migration: store\` at the default rate (5000 keys/s); one client runs ` +
    "GET/SET at -P 1 through the proxy before and during the move.", "",
    table(head, body), "",
  ];
}

async function oneRuntime(runtime: RuntimeName, o: MigrationOptions): Promise<Row> {
  const servers = await Promise.all([startRedis(), startRedis(), startRedis()]);
  const adminPort = await freePort();
  const yaml = (port: number, count: number) => [
    "alpha:", `  listen: ${HOST}:${port}`, "  redis: true", "  migration: store", "  servers:",
    ...servers.slice(0, count).map((s) => `    - ${HOST}:${s.port}:1`), "",
  ].join("\n");
  let listen = 0;
  const proxy = await startProxyWith(runtime, o.dir, `migration-${runtime}`, (port) => yaml((listen = port), 2), ["--admin", `${HOST}:${adminPort}`]);
  try {
    await fill(listen);
    const pid = proxy.started.pid;
    const cpu0 = cpuNs(pid);
    const before = await measure(listen, () => false, BEFORE_MS);
    const cpuBefore = ((cpuNs(pid) - cpu0) / 1e6 / BEFORE_MS) * 100;
    writeFileSync(join(o.dir, `nutcracker-migration-${runtime}.yml`), yaml(listen, 3));
    const cpu1 = cpuNs(pid);
    const started = Date.now();
    const res = await fetch(`http://${HOST}:${adminPort}/reload`, { method: "POST", headers: { "content-type": "application/json" } });
    if (res.status !== 200) throw new Error(`reload: ${res.status} ${await res.text()}`);
    let status: { running: boolean; migration: { keys_moved: number } | null } = { running: true, migration: null };
    const poll = setInterval(async () => {
      status = await (await fetch(`http://${HOST}:${adminPort}/pools/alpha/migration`)).json();
    }, 100);
    const during = await measure(listen, () => !status.running, MIGRATION_BOUND_MS);
    clearInterval(poll);
    const seconds = (Date.now() - started) / 1000;
    const cpuDuring = ((cpuNs(pid) - cpu1) / 1e6 / (seconds * 1000)) * 100;
    return { runtime, moved: status.migration?.keys_moved ?? 0, seconds, before, during, cpuBefore, cpuDuring };
  } finally {
    await stopProxy(proxy);
    await Promise.all(servers.map((s: Started) => stop(s.proc)));
  }
}

/** SET every key through the proxy, pipelined in batches. */
async function fill(port: number): Promise<void> {
  const conn = await Conn.open(port);
  for (let i = 0; i < KEYS; i += 1000) {
    const batch = Array.from({ length: 1000 }, (_, j) => command("SET", `key:${i + j}`, "x".repeat(100)));
    await conn.roundTrip(Buffer.concat(batch), batch.length);
  }
  conn.close();
}

/** GET and SET of random keys at -P 1 until `done()` or `boundMs`; the latency percentiles. */
async function measure(port: number, done: () => boolean, boundMs: number): Promise<Latency> {
  const conn = await Conn.open(port);
  const times: number[] = [];
  const end = Date.now() + boundMs;
  for (let n = 0; Date.now() < end && !done(); n++) {
    const key = `key:${Math.floor(Math.random() * KEYS)}`;
    const t0 = performance.now();
    await conn.roundTrip(n % 2 === 0 ? command("GET", key) : command("SET", key, "y".repeat(100)), 1);
    times.push(performance.now() - t0);
  }
  conn.close();
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), requests: times.length };
}

function command(...args: string[]): Buffer {
  return Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
}

/** A client that writes and waits for `count` replies (simple RESP framing: status, integer, bulk, error). */
class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;

  private constructor(private readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on("data", (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.wake?.();
    });
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: HOST, port }, () => resolve(new Conn(sock)));
      sock.once("error", reject);
    });
  }

  async roundTrip(bytes: Buffer, count: number): Promise<void> {
    this.sock.write(bytes);
    let seen = 0;
    const deadline = Date.now() + 30_000;
    while (seen < count) {
      const end = replyEnd(this.buf, 0);
      if (end > 0) {
        this.buf = this.buf.subarray(end);
        seen++;
        continue;
      }
      if (Date.now() > deadline) throw new Error("no reply within 30 s");
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Offset past one complete reply at `pos`, or -1. */
function replyEnd(buf: Buffer, pos: number): number {
  const eol = buf.indexOf("\r\n", pos);
  if (eol < 0) return -1;
  if (buf[pos] !== 0x24) return eol + 2;
  const len = Number(buf.subarray(pos + 1, eol).toString());
  if (len < 0) return eol + 2;
  return buf.length >= eol + 2 + len + 2 ? eol + 2 + len + 2 : -1;
}
