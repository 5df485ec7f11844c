/**
 * Bun adapter: core/net.ts on Bun.listen / Bun.connect. Bun's socket.write()
 * writes what the kernel takes right now and returns the count, so this file
 * keeps the rest in its own queue and flushes it from the `drain` handler.
 * Bun hands each `data` event a fresh buffer (checked on 1.4.5), so no copy.
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
import { connectTimeoutError, errnoError, netError } from "./errors.ts";
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
// The few parts of Bun's API used here, declared locally so that `deno check`
// and tsc need no bun-types package.

interface BunSocket {
  data: BunConn | undefined;
  write(data: Uint8Array): number;
  end(): void;
  shutdown(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay: boolean): boolean;
  setKeepAlive(enable: boolean): boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

interface BunHandlers {
  /** "uint8array": `data` gets a fresh plain Uint8Array (the default, a Buffer, needs a re-view per chunk). */
  binaryType: "uint8array";
  open(socket: BunSocket): void;
  data(socket: BunSocket, chunk: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket, err?: Error): void;
  error(socket: BunSocket, err: Error): void;
  connectError(socket: BunSocket, err: Error): void;
}

type BunTarget = { hostname: string; port: number } | { unix: string };
type BunSocketOptions = BunTarget & { allowHalfOpen: boolean; socket: BunHandlers; data?: BunConn };

interface BunApi {
  listen(opts: BunSocketOptions): { readonly hostname: string; readonly port: number; stop(): void };
  connect(opts: BunSocketOptions): Promise<BunSocket>;
  serve(opts: { hostname: string; port: number; development: boolean; fetch: FetchHandler }): {
    readonly hostname: string;
    readonly port: number;
    stop(): Promise<void> | void;
  };
}

const Bun = (globalThis as unknown as { Bun: BunApi }).Bun;

/** Largest batch of queued chunks joined into one write. */
const WRITE_BATCH = 256 * 1024;

function target(addr: Addr): BunTarget {
  return addr.kind === "unix" ? { unix: addr.path } : { hostname: addr.host, port: addr.port };
}

// ---- listener ---------------------------------------------------------------

function listen(addr: Addr, onConn: (conn: Conn) => void, _opts: ListenOptions = {}): Promise<Listener> {
  // Bun.listen has no backlog option; Bun's own (512, measured on 1.4.5) applies.
  return settle(() => listenNow(addr, onConn));
}

function listenNow(addr: Addr, onConn: (conn: Conn) => void): Listener {
  if (addr.kind === "unix") removeStaleSocket(addr.path);
  const open = guarded((socket: BunSocket) => {
    const conn = new BunConn(acceptedRemote(socket, addr), addr.kind === "tcp");
    socket.data = conn;
    onConn(conn);
    conn.attach(socket, false);
  });
  const server = Bun.listen({ ...target(addr), allowHalfOpen: true, socket: { ...HANDLERS, open } });
  applyUnixMode(addr);
  let closed = false;
  const close = () => {
    if (closed) return Promise.resolve();
    closed = true;
    server.stop();
    if (addr.kind === "unix") removeSocketFile(addr.path);
    return Promise.resolve();
  };
  const bound: Addr = addr.kind === "unix" ? addr : { kind: "tcp", host: server.hostname, port: server.port };
  return { addr: bound, close };
}

function acceptedRemote(socket: BunSocket, addr: Addr): string {
  if (addr.kind === "unix" || !socket.remoteAddress) return formatAddr(addr);
  return formatAddr({ kind: "tcp", host: socket.remoteAddress, port: socket.remotePort });
}

// ---- conn -------------------------------------------------------------------

/**
 * Bun hands an exception thrown by a handler to the `error` handler and keeps
 * going; rethrow it outside Bun's callback instead, so a bug in the core is an
 * uncaught error here just as it is on Node and Deno, not a socket error.
 */
function guarded<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  };
}

/** Bun calls one handler set per listener; each event goes to the socket's BunConn. */
const HANDLERS: BunHandlers = {
  binaryType: "uint8array",
  open: guarded((socket) => socket.data?.connected(socket)),
  data: guarded((socket, chunk) => socket.data?.received(chunk)),
  drain: guarded((socket) => socket.data?.flushQueue()),
  end: guarded((socket) => socket.data?.peerEnd()),
  close: guarded((socket, err) => socket.data?.socketClosed(err)),
  error: (socket, err) => socket.data?.socketError(err),
  connectError: guarded((socket, err) => socket.data?.finish(netError(err))),
};

/** A Conn over a Bun socket, with its own write queue. */
class BunConn implements Conn, InboxOwner {
  onConnect: () => void = noop;
  onData: (chunk: Uint8Array) => void = noop;
  onEnd: () => void = noop;
  onDrain: () => void = noop;
  onClose: (err?: Error) => void = noop;
  readonly remote: string;

  private tcp: boolean;
  private socket: BunSocket | null = null;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private needDrain = false;
  private inbox = new Inbox(this);
  private hardPaused = false;
  private keepAlive = false;
  private ending = false;
  private writeShut = false;
  private peerEnded = false;
  private closed = false;
  private error: Error | undefined = undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private endTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(remote: string, tcp: boolean) {
    this.remote = remote;
    this.tcp = tcp;
  }

  get bufferedBytes(): number {
    return this.queued;
  }

  write(chunk: Uint8Array): boolean {
    if (this.ending || this.closed) return false;
    let rest = chunk;
    if (this.socket !== null && this.queue.length === 0 && rest.length > 0) {
      const written = this.socket.write(rest);
      if (written < 0) return this.writeFailed();
      rest = rest.subarray(written);
    }
    if (rest.length > 0) {
      this.queue.push(rest);
      this.queued += rest.length;
    }
    if (this.queued <= HIGH_WATER_MARK) return true;
    this.needDrain = true;
    return false;
  }

  /** Soft pause (see inbox.ts); the socket itself stops reading once the inbox is full. */
  pause(): void {
    this.inbox.pause();
  }

  resume(): void {
    this.inbox.resume();
    if (!this.hardPaused) return;
    this.hardPaused = false;
    this.socket?.resume();
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
    this.keepAlive = opts.keepAlive ?? false;
    const options = { ...target(addr), allowHalfOpen: true, socket: HANDLERS, data: this };
    // Failures arrive through connectError; the promise rejection is a duplicate.
    Bun.connect(options).catch(noop);
  }

  /** Bun's `open` for an outgoing socket. */
  connected(socket: BunSocket): void {
    if (this.closed) {
      socket.end();
      return;
    }
    clearTimeout(this.connectTimer);
    this.attach(socket, this.keepAlive);
    if (!this.closed) this.onConnect();
  }

  /** Take over an open socket: apply options, flush what was queued. */
  attach(socket: BunSocket, keepAlive: boolean): void {
    if (this.closed) {
      socket.end(); // destroyed by the core before Bun finished opening
      return;
    }
    this.socket = socket;
    if (this.tcp) {
      socket.setNoDelay(true);
      if (keepAlive) socket.setKeepAlive(true);
    }
    this.flushQueue();
  }

  /** Write queued chunks until the kernel stops taking them; Bun calls `drain` later. */
  flushQueue(): void {
    const socket = this.socket;
    if (socket === null || this.closed) return;
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      const written = socket.write(batch);
      if (written < 0) return void this.writeFailed();
      if (this.closed) return; // Bun closed the socket during the write
      this.queued -= written;
      if (written < batch.length) {
        this.queue.unshift(batch.subarray(written));
        return;
      }
    }
    if (this.needDrain) {
      this.needDrain = false;
      this.onDrain();
    }
    this.maybeShutdown();
  }

  private takeBatch(): Uint8Array {
    let count = 0;
    let size = 0;
    while (count < this.queue.length && (count === 0 || size + this.queue[count].length <= WRITE_BATCH)) {
      size += this.queue[count].length;
      count++;
    }
    return concatChunks(this.queue.splice(0, count), size);
  }

  /** After end(): once the queue is empty, send our FIN (or close if the peer is done too). */
  private maybeShutdown(): void {
    if (!this.ending || this.writeShut || this.closed) return;
    if (this.socket === null || this.queue.length > 0) return;
    this.writeShut = true;
    if (this.peerEnded) return this.finish(undefined);
    this.socket.shutdown();
  }

  /**
   * Bun's write() returns -1 once the socket is dead. On a paused socket Bun may
   * report nothing else (no `close` until it reads again), so close it here.
   */
  private writeFailed(): false {
    this.finish(errnoError("EPIPE"));
    return false;
  }

  /** Bun's `data`. Bun may call it even on a paused socket (as it closes), so the inbox decides. */
  received(chunk: Uint8Array): void {
    this.inbox.data(chunk);
    if (!this.inbox.full || this.hardPaused || this.socket === null) return;
    this.hardPaused = true;
    this.socket.pause();
  }

  /** Bun's `end`: the peer sent FIN. */
  peerEnd(): void {
    if (this.closed || this.peerEnded) return;
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

  socketError(err: Error): void {
    this.error ??= netError(err);
  }

  /** Bun's `close`. After our shutdown() Bun skips `end`, so report the FIN here. */
  socketClosed(err?: Error): void {
    if (this.closed) return;
    const error = err ? netError(err) : this.error;
    if (error === undefined && this.writeShut && !this.peerEnded) {
      this.peerEnded = true;
      this.onEnd();
    }
    this.finish(error);
  }

  /** The one way out: close the socket, drop the queue, report once. */
  finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.endTimer);
    this.queue = [];
    this.queued = 0;
    this.inbox.stop();
    // end() closes fully here (no half-open FIN wait); Bun's close handler then
    // runs synchronously and finds the conn already closed.
    this.socket?.end();
    queueMicrotask(() => this.onClose(err));
  }
}

function connect(addr: Addr, opts: ConnectOptions = {}): Conn {
  const conn = new BunConn(formatAddr(addr), addr.kind === "tcp");
  conn.open(addr, opts);
  return conn;
}

// ---- http -------------------------------------------------------------------

function serveHttp(addr: Addr, handler: FetchHandler): Promise<Listener> {
  return settle(() => serveNow(addr, handler));
}

function serveNow(addr: Addr, handler: FetchHandler): Listener {
  if (addr.kind !== "tcp") throw new Error("serveHttp needs a TCP address");
  const server = Bun.serve({ hostname: addr.host, port: addr.port, development: false, fetch: handler });
  const close = async () => {
    await server.stop();
  };
  return { addr: { kind: "tcp", host: server.hostname, port: server.port }, close };
}

/** core/net.ts for Bun. */
export function createNet(): Net {
  return { runtime: "bun", listen, connect, serveHttp, defer };
}

// After the I/O events of this loop turn: requests from many sockets share a write.
function defer(fn: () => void): void {
  setImmediate(fn);
}
