/**
 * Helpers for the adapter contract suite (tests/adapter.test.ts): byte patterns,
 * a recorder for everything a Conn reports, an echo server, bounded waits, and
 * child processes that hold a port or a unix socket in a known state.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import type { Addr, Conn, Listener, Net } from "../../core/net.ts";

/** 127.0.0.1 with a kernel-chosen port. */
export const LOOPBACK: Addr = { kind: "tcp", host: "127.0.0.1", port: 0 };

/** Pseudo-random bytes (xorshift32): a lost, doubled or reordered byte shows up in a compare. */
export function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Index of the first differing byte, or -1 when equal (assert.deepEqual on 32 MiB is slow). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Join chunks (the chunks themselves are kept, which also proves the adapter does not reuse them). */
export function concat(chunks: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Await `promise`, failing with `what` if it takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Poll `check` every 5 ms until it holds; fail after `ms`. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Poll `check` every 5 ms for up to `ms`; true if it came to hold. */
export async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Everything one Conn reported, with promises for the interesting moments. */
export interface Recorder {
  readonly conn: Conn;
  readonly chunks: Uint8Array[];
  bytes: number;
  connects: number;
  ends: number;
  drains: number;
  closes: number;
  closeError: Error | undefined;
  readonly closed: Promise<Error | undefined>;
  readonly ended: Promise<void>;
  readonly connected: Promise<void>;
  /** Resolves once at least `n` bytes arrived in total. */
  received(n: number): Promise<void>;
  data(): Uint8Array;
}

/** Take over a Conn's handlers and record what it reports. */
export function record(conn: Conn): Recorder {
  let closedResolve!: (err: Error | undefined) => void;
  let endedResolve!: () => void;
  let connectedResolve!: () => void;
  const waiters: { n: number; resolve: () => void }[] = [];
  const rec: Recorder = {
    conn,
    chunks: [],
    bytes: 0,
    connects: 0,
    ends: 0,
    drains: 0,
    closes: 0,
    closeError: undefined,
    closed: new Promise((resolve) => (closedResolve = resolve)),
    ended: new Promise((resolve) => (endedResolve = resolve)),
    connected: new Promise((resolve) => (connectedResolve = resolve)),
    received: (n) => {
      if (rec.bytes >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    data: () => concat(rec.chunks),
  };
  conn.onConnect = () => {
    rec.connects++;
    connectedResolve();
  };
  conn.onData = (chunk) => {
    rec.chunks.push(chunk);
    rec.bytes += chunk.length;
    for (const w of waiters.filter((w) => rec.bytes >= w.n)) w.resolve();
  };
  conn.onEnd = () => {
    rec.ends++;
    endedResolve();
  };
  conn.onDrain = () => {
    rec.drains++;
  };
  conn.onClose = (err) => {
    rec.closes++;
    rec.closeError = err;
    closedResolve(err);
  };
  return rec;
}

/** Keeps every listener and conn a test opens, and closes them all afterwards. */
export class Scope {
  readonly conns: Conn[] = [];
  readonly listeners: Listener[] = [];
  readonly children: ChildProcess[] = [];

  conn<T extends Conn>(conn: T): T {
    this.conns.push(conn);
    return conn;
  }

  async close(): Promise<void> {
    for (const conn of this.conns) conn.destroy();
    await Promise.all(this.listeners.map((l) => l.close()));
    for (const child of this.children) child.kill("SIGKILL");
    this.conns.length = 0;
    this.listeners.length = 0;
    this.children.length = 0;
  }
}

/** An echo server: its bound address and a recorder for every conn it accepted. */
export interface EchoServer {
  readonly addr: Addr;
  readonly accepted: Recorder[];
}

/** A server that echoes every byte, pausing its reads while its own writes are backed up. */
export async function startEcho(net: Net, scope: Scope, addr: Addr = LOOPBACK): Promise<EchoServer> {
  const accepted: Recorder[] = [];
  const listener = await net.listen(addr, (conn) => {
    scope.conn(conn);
    const rec = record(conn);
    accepted.push(rec);
    const recordData = conn.onData;
    conn.onData = (chunk) => {
      recordData(chunk);
      if (!conn.write(chunk)) conn.pause();
    };
    conn.onDrain = () => conn.resume();
    const recordEnd = conn.onEnd;
    conn.onEnd = () => {
      recordEnd();
      conn.end();
    };
  }, { backlog: 1024 });
  scope.listeners.push(listener);
  return { addr: listener.addr, accepted };
}

/** Write all of `data` in `chunkSize` pieces, waiting for onDrain whenever write() says so. */
export async function writeAll(conn: Conn, data: Uint8Array, chunkSize: number): Promise<number> {
  let refusals = 0;
  let drained: (() => void) | null = null;
  const previous = conn.onDrain;
  conn.onDrain = () => {
    previous();
    drained?.();
  };
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    if (conn.write(data.subarray(offset, offset + chunkSize))) continue;
    refusals++;
    await within(new Promise<void>((resolve) => (drained = resolve)), 10_000, "onDrain");
  }
  return refusals;
}

/** A port that was just free: listen on port 0, note the port, close. */
export async function unusedPort(net: Net): Promise<number> {
  const listener = await net.listen(LOOPBACK, (conn) => conn.destroy());
  await listener.close();
  return listener.addr.kind === "tcp" ? listener.addr.port : 0;
}

/** Run a few lines of JavaScript in a fresh process of the current runtime. */
export function runScript(net: Net, code: string): ChildProcess {
  const args = net.runtime === "deno" ? ["eval", code] : ["-e", code];
  return spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
}

/** The first line a child prints. */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (chunk: Uint8Array) => {
      text += new TextDecoder().decode(chunk);
      if (text.includes("\n")) resolve(text.slice(0, text.indexOf("\n")).trim());
    });
    child.once("exit", () => reject(new Error("child exited before printing")));
  });
}

/**
 * A TCP port whose listener never accepts: a child listens with backlog 1 and then
 * blocks its event loop, so once the kernel's accept queue is full, further SYNs
 * are dropped and a connect hangs. Loopback only; the child exits after 15 s.
 */
export async function startStalledListener(net: Net, scope: Scope): Promise<number> {
  const code = `import("node:net").then(({ createServer }) => {
    const server = createServer();
    server.listen({ host: "127.0.0.1", port: 0, backlog: 1 }, () => {
      console.log(server.address().port);
      setTimeout(() => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 15000);
        process.exit(0);
      }, 100);
    });
  });`;
  const child = runScript(net, code);
  scope.children.push(child);
  const port = Number(await within(firstLine(child), 10_000, "the stalled listener's port"));
  await sleep(200); // let the child reach Atomics.wait
  return port;
}

/**
 * Leave a socket file with nobody listening on it, as a crashed process would:
 * a child binds `path` and is killed.
 */
export async function leaveStaleSocket(net: Net, scope: Scope, path: string): Promise<void> {
  const code = `import("node:net").then(({ createServer }) => {
    const server = createServer();
    server.listen(${JSON.stringify(path)}, () => console.log("ready"));
  });`;
  const child = runScript(net, code);
  scope.children.push(child);
  await within(firstLine(child), 10_000, "the child's unix listener");
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await within(exited, 5_000, "the child to exit");
}
