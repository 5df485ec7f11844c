/**
 * Node adapter: core/net.ts on node:net. Node already has the semantics the seam
 * asks for (write() returns false over the high-water mark and 'drain' follows,
 * allowHalfOpen keeps a socket writable after the peer's FIN), so this file
 * mostly maps events and normalizes errors. HTTP goes through @hono/node-server.
 */
import * as net from "node:net";
import { createServer as createHttpServer } from "node:http";
import { getRequestListener } from "@hono/node-server";
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
import {
  applyUnixMode,
  END_TIMEOUT_MS,
  HIGH_WATER_MARK,
  noop,
  plainBytes,
  removeStaleSocket,
} from "./common.ts";

// ---- types ------------------------------------------------------------------

type AnyServer = net.Server | ReturnType<typeof createHttpServer>;

const SOCKET_OPTIONS = {
  allowHalfOpen: true,
  noDelay: true,
  highWaterMark: HIGH_WATER_MARK,
} as const;

// ---- listener ---------------------------------------------------------------

async function listen(
  addr: Addr,
  onConn: (conn: Conn) => void,
  opts: ListenOptions = {},
  shared = false,
): Promise<Listener> {
  const server = net.createServer(SOCKET_OPTIONS, (socket) => {
    onConn(new NodeConn(socket, addr));
  });
  return await startServer(server, addr, opts.backlog, shared);
}

/**
 * `shared`: in a node:cluster worker the supervisor holds the listening socket, so a socket
 * file at the path is its live one, not a stale one to remove.
 */
async function startServer(server: AnyServer, addr: Addr, backlog?: number, shared = false): Promise<Listener> {
  if (addr.kind === "unix" && !shared) removeStaleSocket(addr.path);
  const where = addr.kind === "unix"
    ? { path: addr.path, backlog }
    : { host: addr.host, port: addr.port, backlog };
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => reject(netError(err));
    server.once("error", failed);
    server.listen(where, () => {
      server.off("error", failed);
      resolve();
    });
  });
  // Accept errors (EMFILE...) are reported on the server; they must not crash us.
  server.on("error", noop);
  applyUnixMode(addr);
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= closeServer(server));
  return { addr: boundAddr(server, addr), close };
}

function boundAddr(server: AnyServer, addr: Addr): Addr {
  const info = server.address();
  if (addr.kind === "unix" || info === null || typeof info === "string") return addr;
  return { kind: "tcp", host: info.address, port: info.port };
}

function closeServer(server: AnyServer): Promise<void> {
  return new Promise((resolve) => {
    // Resolve once the port is released; open connections are not waited for.
    server.close(() => resolve());
    if ("closeIdleConnections" in server) server.closeIdleConnections();
    setImmediate(resolve);
  });
}

function acceptedRemote(socket: net.Socket, addr: Addr): string {
  if (addr.kind === "unix" || socket.remoteAddress === undefined) return formatAddr(addr);
  return formatAddr({ kind: "tcp", host: socket.remoteAddress, port: socket.remotePort ?? 0 });
}

// ---- conn -------------------------------------------------------------------

/**
 * The socket's events go to its NodeConn through listeners shared by every socket (Node calls
 * them with the socket as `this`), not five closures made per connection: idle clients are many.
 */
const OWNER = Symbol("NodeConn");
type OwnedSocket = net.Socket & { [OWNER]: NodeConn };
function onSocketData(this: OwnedSocket, chunk: Uint8Array): void {
  this[OWNER].onData(plainBytes(chunk));
}
function onSocketEnd(this: OwnedSocket): void {
  this[OWNER].onEnd();
}
function onSocketDrain(this: OwnedSocket): void {
  this[OWNER].onDrain();
}
function onSocketError(this: OwnedSocket, err: Error): void {
  this[OWNER].socketError(err);
}
function onSocketClose(this: OwnedSocket): void {
  this[OWNER].finish();
}

/** A Conn over a net.Socket; every runtime event funnels into one close path. */
class NodeConn implements Conn {
  onConnect: () => void = noop;
  onData: (chunk: Uint8Array) => void = noop;
  onEnd: () => void = noop;
  onDrain: () => void = noop;
  onClose: (err?: Error) => void = noop;
  /** The peer's "host:port", asked for when first needed (most clients are never asked). */
  private remote_: string | null;
  /** The listen address an accepted socket came in on; null for our own connections. */
  private readonly acceptedOn: Addr | null;

  private socket: net.Socket;
  private error: Error | undefined = undefined;
  private ending = false;
  private closed = false;
  private connectTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private endTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  /** `from`: the listen address it was accepted on, or the peer's address string for a connect. */
  constructor(socket: net.Socket, from: Addr | string) {
    this.socket = socket;
    this.acceptedOn = typeof from === "string" ? null : from;
    this.remote_ = typeof from === "string" ? from : null;
    (socket as OwnedSocket)[OWNER] = this;
    socket.on("data", onSocketData);
    socket.on("end", onSocketEnd);
    socket.on("drain", onSocketDrain);
    socket.on("error", onSocketError);
    socket.on("close", onSocketClose);
  }

  socketError(err: Error): void {
    this.error ??= netError(err);
  }

  get remote(): string {
    return (this.remote_ ??= acceptedRemote(this.socket, this.acceptedOn!));
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  write(chunk: Uint8Array): boolean {
    if (this.ending || this.closed) return false;
    return this.socket.write(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    this.socket.end();
    this.endTimer = setTimeout(() => this.socket.destroy(), END_TIMEOUT_MS);
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    if (err) this.error = err;
    // 'close' comes a tick later; until then refuse writes (Node would report
    // ERR_STREAM_DESTROYED as the close error).
    this.ending = true;
    this.socket.destroy();
  }

  /** Outgoing connections: report the connect, or give up after `ms`. */
  watchConnect(ms: number | undefined): void {
    this.socket.once("connect", () => {
      clearTimeout(this.connectTimer);
      this.onConnect();
    });
    if (ms === undefined || ms <= 0) return;
    this.connectTimer = setTimeout(() => this.destroy(connectTimeoutError()), ms);
  }

  finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.endTimer);
    this.onClose(this.error);
  }
}

function connect(addr: Addr, opts: ConnectOptions = {}): Conn {
  const target = addr.kind === "unix" ? { path: addr.path } : { host: addr.host, port: addr.port };
  const socket = net.connect({ ...target, ...SOCKET_OPTIONS, keepAlive: opts.keepAlive ?? false });
  const conn = new NodeConn(socket, formatAddr(addr));
  conn.watchConnect(opts.connectTimeoutMs);
  return conn;
}

// ---- http -------------------------------------------------------------------

async function serveHttp(addr: Addr, handler: FetchHandler): Promise<Listener> {
  if (addr.kind !== "tcp") throw new Error("serveHttp needs a TCP address");
  // Leave the global Request/Response alone: other code in the process may rely on them.
  const server = createHttpServer(getRequestListener(handler, { overrideGlobalObjects: false }));
  return await startServer(server, addr);
}

/**
 * core/net.ts for Node. With `shared` (a worker under --workers, see adapters/mod.ts), listen
 * goes through node:cluster: the supervisor holds each listening socket and hands
 * connections to its workers, and the socket outlives any one generation of them.
 */
export function createNet(opts: { readonly shared?: boolean } = {}): Net {
  if (opts.shared !== true) return { runtime: "node", listen, connect, serveHttp, defer };
  const sharedListen = (addr: Addr, onConn: (conn: Conn) => void, o?: ListenOptions) => listen(addr, onConn, o, true);
  return { runtime: "node", listen: sharedListen, connect, serveHttp, defer };
}

// After the poll phase: requests read from many sockets in one loop turn share a write.
function defer(fn: () => void): void {
  setImmediate(fn);
}
