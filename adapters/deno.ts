/**
 * Deno adapter: core/net.ts on Deno.listen / Deno.connect. Deno gives promises
 * that may read or write only part of a buffer, so this file supplies what Node
 * has built in: a read loop that pause() stops, a write queue with one write in
 * flight, the high-water mark and drain, and half-close via closeWrite().
 */
import { formatAddr } from "../core/net.ts";
import type {
  Addr,
  Conn,
  ConnectOptions,
  FetchHandler,
  Listener,
  ListenOptions,
  Net,
} from "../core/net.ts";
import { connectTimeoutError, netError } from "./errors.ts";
import { Inbox, type InboxOwner } from "./inbox.ts";
import {
  applyUnixMode,
  concatChunks,
  END_TIMEOUT_MS,
  HIGH_WATER_MARK,
  noop,
  removeSocketFile,
  removeStaleSocket,
  settle,
} from "./common.ts";

// ---- types ------------------------------------------------------------------

type RawConn = Deno.Conn;
type RawListener = Deno.Listener;

/** First read buffer of a conn: pending reads of idle conns pin only this much. */
const READ_MIN = 4 * 1024;
/** Largest read buffer, reached by doubling while reads keep filling it. */
const READ_MAX = 256 * 1024;

/** Largest batch of queued chunks joined into one write. */
const WRITE_BATCH = 256 * 1024;

// ---- listener ---------------------------------------------------------------

/** Why workers on Deno cannot listen on a unix socket. */
export const UNIX_NOT_SHARED = "workers on Deno cannot share a unix socket (they share TCP ports with SO_REUSEPORT, " +
  "which unix sockets lack); listen on a TCP address, or run the workers on Node or Bun";

function listen(
  addr: Addr,
  onConn: (conn: Conn) => void,
  opts: ListenOptions = {},
): Promise<Listener> {
  return settle(() => listenNow(addr, onConn, opts));
}

/**
 * With `reusePort` (workers, see adapters/mod.ts) every worker binds the TCP address with
 * SO_REUSEPORT and the kernel spreads connections; Deno.listen takes it under --unstable-net,
 * which the supervisor passes to its workers. A unix socket cannot be shared that way.
 */
function listenNow(addr: Addr, onConn: (conn: Conn) => void, opts: ListenOptions, reusePort = false): Listener {
  if (addr.kind === "unix" && reusePort) throw new Error(UNIX_NOT_SHARED);
  if (addr.kind === "unix") removeStaleSocket(addr.path);
  const listener: RawListener = addr.kind === "unix"
    ? Deno.listen({ transport: "unix", path: addr.path })
    : Deno.listen({ hostname: addr.host, port: addr.port, tcpBacklog: opts.backlog, ...(reusePort ? { reusePort } : {}) });
  applyUnixMode(addr);
  const state = { closed: false };
  const accepting = acceptLoop(listener, addr, onConn, state);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      state.closed = true;
      listener.close();
      // The socket stays bound until the pending accept() is cancelled: wait for that,
      // or a connect right after close() is accepted and then reset instead of refused.
      await accepting;
      if (addr.kind === "unix") removeSocketFile(addr.path);
    })();
    return closing;
  };
  return { addr: boundAddr(listener.addr, addr), close };
}

async function acceptLoop(
  listener: RawListener,
  addr: Addr,
  onConn: (conn: Conn) => void,
  state: { closed: boolean },
): Promise<void> {
  while (!state.closed) {
    let raw: RawConn;
    try {
      raw = await listener.accept();
    } catch {
      if (state.closed) return;
      // EMFILE and friends: back off a little instead of spinning.
      await new Promise((resolve) => setTimeout(resolve, 10));
      continue;
    }
    const conn = new DenoConn(acceptedRemote(raw, addr));
    onConn(conn);
    conn.attach(raw, false);
  }
}

function boundAddr(bound: Deno.Addr, addr: Addr): Addr {
  if (addr.kind === "unix" || bound.transport !== "tcp") return addr;
  return { kind: "tcp", host: bound.hostname, port: bound.port };
}

function acceptedRemote(raw: RawConn, addr: Addr): string {
  const peer = raw.remoteAddr;
  if (peer.transport !== "tcp") return formatAddr(addr);
  return formatAddr({ kind: "tcp", host: peer.hostname, port: peer.port });
}

// ---- conn -------------------------------------------------------------------

/** A Conn over a Deno.Conn, with its own read loop and write queue. */
class DenoConn implements Conn, InboxOwner {
  onConnect: () => void = noop;
  onData: (chunk: Uint8Array) => void = noop;
  onEnd: () => void = noop;
  onDrain: () => void = noop;
  onClose: (err?: Error) => void = noop;
  readonly remote: string;

  private raw: RawConn | null = null;
  private readBuf = new Uint8Array(READ_MIN);
  private queue: Uint8Array[] = [];
  private queued = 0;
  private writing = false;
  private needDrain = false;
  private inbox = new Inbox(this);
  private wake: (() => void) | null = null;
  private ending = false;
  private writeShut = false;
  private peerEnded = false;
  private closed = false;
  private connectTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private endTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private abort: AbortController | null = null;

  constructor(remote: string) {
    this.remote = remote;
  }

  get bufferedBytes(): number {
    return this.queued;
  }

  write(chunk: Uint8Array): boolean {
    if (this.ending || this.closed) return false;
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queued += chunk.length;
      // A write in flight takes the queue when it finishes: no new flush (and promise) per write.
      if (!this.writing) void this.flush();
    }
    if (this.queued <= HIGH_WATER_MARK) return true;
    this.needDrain = true;
    return false;
  }

  pause(): void {
    this.inbox.pause();
  }

  resume(): void {
    this.inbox.resume();
    this.wakeReader();
  }

  end(): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    this.endTimer = setTimeout(() => this.finish(undefined), END_TIMEOUT_MS);
    this.maybeShutdown();
  }

  destroy(err?: Error): void {
    this.finish(err);
  }

  /** Start connecting; the Conn is usable (writes queue) before this settles. */
  open(addr: Addr, opts: ConnectOptions): void {
    const ms = opts.connectTimeoutMs ?? 0;
    if (ms > 0) this.connectTimer = setTimeout(() => this.finish(connectTimeoutError()), ms);
    this.abort = new AbortController();
    const pending = addr.kind === "unix"
      ? Deno.connect({ transport: "unix", path: addr.path })
      : Deno.connect({ hostname: addr.host, port: addr.port, signal: this.abort.signal });
    pending.then(
      (raw) => this.connected(raw, opts.keepAlive ?? false),
      (err) => this.finish(netError(err)),
    );
  }

  private connected(raw: RawConn, keepAlive: boolean): void {
    if (this.closed) {
      raw.close();
      return;
    }
    clearTimeout(this.connectTimer);
    this.abort = null;
    this.attach(raw, keepAlive);
    if (!this.closed) this.onConnect();
  }

  /** Take over an open Deno.Conn: start reading, flush what was queued. */
  attach(raw: RawConn, keepAlive: boolean): void {
    if (this.closed) {
      raw.close();
      return;
    }
    this.raw = raw;
    if (raw.localAddr.transport === "tcp") {
      const tcp = raw as Deno.TcpConn;
      tcp.setNoDelay(true);
      if (keepAlive) tcp.setKeepAlive(true);
    }
    this.readLoop(raw);
    this.flush();
    this.maybeShutdown();
  }

  private async readLoop(raw: RawConn): Promise<void> {
    while (!this.closed) {
      // Paused and holding enough: stop reading until resume() (TCP backpressure).
      while (this.inbox.full && !this.closed) await this.untilResumed();
      if (this.closed) return;
      let n: number | null;
      try {
        n = await raw.read(this.readBuf);
      } catch (err) {
        this.finish(netError(err));
        return;
      }
      if (this.closed) return;
      if (n === null) return this.readEnded();
      if (n > 0) this.inbox.data(this.takeChunk(n));
    }
  }

  /**
   * The `n` bytes just read, in a buffer the core may keep. A full buffer is handed
   * out whole and the next read gets a fresh one twice the size (up to READ_MAX);
   * otherwise the bytes are copied, and after a burst the small buffer comes back.
   */
  private takeChunk(n: number): Uint8Array {
    const buf = this.readBuf;
    if (n === buf.length) {
      this.readBuf = new Uint8Array(Math.min(buf.length * 2, READ_MAX));
      return buf;
    }
    if (buf.length > READ_MIN && n < buf.length / 4) this.readBuf = new Uint8Array(READ_MIN);
    return buf.slice(0, n);
  }

  private readEnded(): void {
    this.peerEnded = true;
    this.inbox.end();
  }

  /** InboxOwner: a chunk the core may have now. */
  deliver(chunk: Uint8Array): void {
    this.onData(chunk);
  }

  endDelivered(): void {
    this.onEnd();
    // Our side already shut down too: nothing left to do on this connection.
    if (this.writeShut) this.finish(undefined);
  }

  private untilResumed(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async flush(): Promise<void> {
    if (this.writing || this.raw === null || this.queue.length === 0) return;
    const raw = this.raw;
    this.writing = true;
    try {
      while (this.queue.length > 0 && !this.closed) await this.writeBatch(raw);
    } catch (err) {
      this.finish(netError(err));
      return;
    } finally {
      this.writing = false;
    }
    if (this.closed) return;
    if (this.needDrain) {
      this.needDrain = false;
      this.onDrain();
    }
    this.maybeShutdown();
  }

  /** Write a batch of queued chunks, looping over partial writes. */
  private async writeBatch(raw: RawConn): Promise<void> {
    let count = 0;
    let size = 0;
    while (count < this.queue.length && (count === 0 || size + this.queue[count].length <= WRITE_BATCH)) {
      size += this.queue[count].length;
      count++;
    }
    // Usually the whole queue fits: take it as it is instead of splicing a copy of it.
    const whole = count === this.queue.length;
    const chunks = whole ? this.queue : this.queue.splice(0, count);
    if (whole) this.queue = [];
    const batch = concatChunks(chunks, size);
    let offset = 0;
    while (offset < batch.length) {
      const n = await raw.write(batch.subarray(offset));
      if (this.closed) return;
      offset += n;
      this.queued -= n;
    }
  }

  /** After end(): once the queue is empty, send our FIN (or close if the peer is done too). */
  private maybeShutdown(): void {
    if (!this.ending || this.writeShut || this.closed) return;
    if (this.raw === null || this.writing || this.queue.length > 0) return;
    this.writeShut = true;
    if (this.peerEnded) return this.finish(undefined);
    this.raw.closeWrite().catch((err) => this.finish(netError(err)));
  }

  /** The one way out: close the socket, drop the queue, report once. */
  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.endTimer);
    this.abort?.abort();
    this.queue = [];
    this.queued = 0;
    try {
      this.raw?.close();
    } catch {
      // Already closed by the runtime.
    }
    this.inbox.stop();
    this.wakeReader();
    queueMicrotask(() => this.onClose(err));
  }
}

function connect(addr: Addr, opts: ConnectOptions = {}): Conn {
  const conn = new DenoConn(formatAddr(addr));
  conn.open(addr, opts);
  return conn;
}

// ---- http -------------------------------------------------------------------

function serveHttp(addr: Addr, handler: FetchHandler): Promise<Listener> {
  return settle(() => serveNow(addr, handler));
}

function serveNow(addr: Addr, handler: FetchHandler): Listener {
  if (addr.kind !== "tcp") throw new Error("serveHttp needs a TCP address");
  // onListen replaces Deno's "Listening on ..." banner.
  const server = Deno.serve({ hostname: addr.host, port: addr.port, onListen: noop }, handler);
  const bound = server.addr;
  return { addr: { kind: "tcp", host: bound.hostname, port: bound.port }, close: () => server.shutdown() };
}

/** core/net.ts for Deno. */
export function createNet(opts: { readonly reusePort?: boolean } = {}): Net {
  if (opts.reusePort !== true) return { runtime: "deno", listen, connect, serveHttp, defer };
  const sharedListen = (addr: Addr, onConn: (conn: Conn) => void, o: ListenOptions = {}) => settle(() => listenNow(addr, onConn, o, true));
  return { runtime: "deno", listen: sharedListen, connect, serveHttp, defer };
}

// Reads resolve together per loop turn and writes are joined by the adapter; a microtask measured as fast as setImmediate.
function defer(fn: () => void): void {
  queueMicrotask(fn);
}
