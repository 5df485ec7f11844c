/**
 * Helpers for the fault and soak tests: a pipelining client that records every reply
 * (RESP or memcached text) with progress hooks and can be cut off mid-flight; a rig of
 * servers plus proxy per describe; a scripted fake backend; SIGSTOP that waits until the
 * process really stopped; keys chosen by the server that owns them; bounded polling; a
 * seeded random source. node:net and node:fs only, so Node, Deno and Bun all run it.
 */
import net from "node:net";
import { readFileSync } from "node:fs";
import { after, before } from "node:test";
import type { Pool } from "../../core/proxy/pool.ts";
import type { ClientLimits } from "../../core/proxy/limits.ts";
import { startTestProxy, type TestProxy } from "./proxy.ts";
import type { ServerProcess } from "./servers.ts";
import { parseReply } from "./resp.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Returns the offset just past one complete reply at buf[start, end), or -1 if more bytes are needed. */
export type Framer = (buf: Uint8Array, start: number, end: number) => number;

/** Frames RESP2 replies. */
export const respFramer: Framer = (buf, start, end) => parseReply(buf, start, end)?.[1] ?? -1;

/** Frames memcached text replies: one line, or VALUE blocks up to END. */
export const memcacheFramer: Framer = (buf, start, end) => {
  let pos = start;
  for (;;) {
    const eol = findCrlf(buf, pos, end);
    if (eol < 0) return -1;
    if (!startsWith(buf, pos, "VALUE ")) return eol + 2;
    const fields = decoder.decode(buf.subarray(pos, eol)).split(" ");
    const next = eol + 2 + Number(fields[3]) + 2;
    if (next > end) return -1;
    pos = next;
  }
};

function startsWith(buf: Uint8Array, pos: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[pos + i] !== text.charCodeAt(i)) return false;
  return true;
}

function findCrlf(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

/**
 * One client connection that collects replies in arrival order. Nothing is matched
 * here: the test compares `replies[i]` with what request i should get.
 */
export class PipeClient {
  readonly replies: Uint8Array[] = [];
  /** True once the socket closed (either side). */
  closed = false;
  /** Resolves when the socket has closed. */
  readonly whenClosed: Promise<void>;
  /** Bytes that arrived after the last complete reply (must be empty at the end). */
  leftover = 0;
  /** Called after each reply with the count so far. */
  onReply: ((count: number) => void) | null = null;
  private readonly sock: net.Socket;
  private readonly framer: Framer;
  private buf = new Uint8Array(64 * 1024);
  private start = 0;
  private end = 0;
  private wake: (() => void) | null = null;

  private constructor(sock: net.Socket, framer: Framer) {
    this.sock = sock;
    this.framer = framer;
    let markClosed!: () => void;
    this.whenClosed = new Promise((resolve) => (markClosed = resolve));
    sock.on("data", (chunk: Uint8Array) => this.onData(chunk));
    sock.on("error", () => {});
    sock.once("close", () => {
      this.closed = true;
      markClosed();
      this.wake?.();
    });
  }

  /** Connects to 127.0.0.1:port; rejects on refusal or after timeoutMs. */
  static connect(port: number, framer: Framer = respFramer, timeoutMs = 5000): Promise<PipeClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: "127.0.0.1", port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${port} timed out`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        resolve(new PipeClient(sock, framer));
      });
      sock.once("error", (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  write(bytes: Uint8Array | string): void {
    this.sock.write(typeof bytes === "string" ? encoder.encode(bytes) : bytes);
  }

  /** Stop reading (the kernel buffers fill, then the proxy must hold back). */
  stopReading(): void {
    this.sock.pause();
  }

  /** Bytes this client has queued that the proxy has not read yet. */
  get unsentBytes(): number {
    return this.sock.writableLength;
  }

  /** Drop the connection at once (requests in flight are abandoned). */
  destroy(): void {
    this.sock.destroy();
  }

  /** Writes bytes and resolves with the next `count` replies, as text. */
  async exchange(bytes: Uint8Array | string, count: number, timeoutMs = 10000): Promise<string[]> {
    const first = this.replies.length;
    this.write(bytes);
    const all = await this.waitReplies(first + count, timeoutMs);
    return all.slice(first, first + count).map((r) => decoder.decode(r));
  }

  /** Resolves once `count` replies have arrived; rejects after timeoutMs or on close, saying how many came. */
  async waitReplies(count: number, timeoutMs = 10000): Promise<Uint8Array[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count) {
      const left = deadline - Date.now();
      if (this.closed || left <= 0) {
        const why = this.closed ? "connection closed" : `no reply within ${timeoutMs} ms`;
        throw new Error(`${why}: ${this.replies.length} of ${count} replies arrived`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.replies;
  }

  private onData(chunk: Uint8Array): void {
    this.append(chunk);
    for (;;) {
      const next = this.start < this.end ? this.framer(this.buf, this.start, this.end) : -1;
      if (next < 0) break;
      this.replies.push(this.buf.slice(this.start, next));
      this.start = next;
      this.onReply?.(this.replies.length);
    }
    this.leftover = this.end - this.start;
    this.wake?.();
  }

  private append(chunk: Uint8Array): void {
    const live = this.end - this.start;
    if (this.end + chunk.length > this.buf.length) {
      const next = live + chunk.length > this.buf.length ? new Uint8Array((live + chunk.length) * 2) : this.buf;
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }
}

/** Servers and the proxy in front of them, filled in by `rig`'s before hook. */
export interface Rig {
  servers: ServerProcess[];
  tp: TestProxy;
}

/**
 * Registers before/after hooks in the calling describe: start `count` servers, a proxy
 * over them from `yaml(ports)`, and stop everything (thawing stopped servers) after.
 */
export function rig(
  start: () => Promise<ServerProcess>,
  yaml: (ports: number[]) => string,
  count = 2,
  limits: Partial<ClientLimits> = {},
): Rig {
  const r: Rig = { servers: [], tp: null as unknown as TestProxy };
  before(async () => {
    r.servers = await Promise.all(Array.from({ length: count }, () => start()));
    r.tp = await startTestProxy(yaml(r.servers.map((s) => s.port)), { limits });
  });
  after(async () => {
    for (const s of r.servers) s.kill("SIGCONT");
    await r.tp?.close();
    await Promise.all(r.servers.map((s) => s.stop()));
  });
  return r;
}

/** A scripted TCP backend on a free loopback port, for replies no real server sends on cue. */
export interface FakeBackend {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/**
 * Starts a backend that calls `answer(connIndex, socket, chunk)` for every chunk received
 * (connIndex counts from 0 in accept order); the test writes, ends or destroys as it likes.
 */
export function startFakeBackend(answer: (conn: number, sock: net.Socket, chunk: Uint8Array) => void): Promise<FakeBackend> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((sock) => {
    const index = accepted++;
    sockets.add(sock);
    sock.on("error", () => {});
    sock.once("close", () => sockets.delete(sock));
    sock.on("data", (chunk: Uint8Array) => answer(index, sock, chunk));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      resolve({
        port: typeof addr === "object" && addr !== null ? addr.port : 0,
        get accepted() {
          return accepted;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/** `count` keys `prefix:N` that the pool currently routes to server `index`. */
export function keysOn(pool: Pool, index: number, prefix: string, count = 1): string[] {
  const out: string[] = [];
  for (let n = 0; out.length < count && n < 100000; n++) {
    const key = encoder.encode(`${prefix}:${n}`);
    if (pool.serverIndexFor(key, 0, key.length) === index) out.push(`${prefix}:${n}`);
  }
  if (out.length < count) throw new Error(`only ${out.length} keys with prefix ${prefix} land on server ${index}`);
  return out;
}

/** Index of the server the pool routes `key` to now (-1 when none is available). */
export function ownerOf(pool: Pool, key: string): number {
  const bytes = encoder.encode(key);
  return pool.serverIndexFor(bytes, 0, bytes.length);
}

/**
 * SIGSTOP a server and wait until the kernel reports it stopped (state T in /proc), so a
 * request sent next cannot be answered by a thread that had not yet seen the signal.
 */
export async function freeze(server: { pid: number; kill(sig: "SIGSTOP"): void }): Promise<void> {
  server.kill("SIGSTOP");
  const state = () => {
    try {
      const stat = readFileSync(`/proc/${server.pid}/stat`, "utf8");
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    } catch {
      return "?";
    }
  };
  if (!(await waitFor(() => state() === "T", 2000, 5))) throw new Error(`pid ${server.pid} did not stop (state ${state()})`);
}

/** Polls cond every stepMs until it holds (true) or ms pass (false). */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** Reply bytes as one readable line (\r\n shown), cut to max characters. */
export function text(reply: Uint8Array | undefined, max = 120): string {
  if (reply === undefined) return "(none)";
  const s = decoder.decode(reply.subarray(0, max)).replace(/\r/g, "\\r").replace(/\n/g, "\\n");
  return reply.length > max ? `${s}...(${reply.length} bytes)` : s;
}

/** A small seeded generator (mulberry32), so a soak run can be replayed from its seed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}
