/**
 * The only I/O surface the core sees. Each runtime adapter (adapters/node.ts,
 * adapters/deno.ts, adapters/bun.ts) implements these interfaces; the core never
 * imports a runtime module.
 */

/** Where to listen or connect: TCP (IPv4, IPv6 or hostname) or a unix socket path. */
export type Addr =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string; readonly mode?: number };

/**
 * One stream connection. The core assigns the `on*` handlers right after it
 * receives the Conn (from `listen`'s callback or from `connect`).
 */
export interface Conn {
  /** Queue bytes. Returns false once buffered bytes exceed the high-water mark: wait for onDrain. */
  write(chunk: Uint8Array): boolean;
  /** Stop delivering onData until resume() (backpressure). */
  pause(): void;
  resume(): void;
  /** Flush what is queued, then close our side. onClose follows. */
  end(): void;
  /** Close now, dropping queued bytes. onClose fires exactly once, whatever happened. */
  destroy(err?: Error): void;
  /** Bytes not yet handed to the kernel. */
  readonly bufferedBytes: number;
  /** "host:port" of the peer, or the unix path. */
  readonly remote: string;

  /** Fires once when an outgoing connection is established (never for accepted ones). */
  onConnect: () => void;
  /** A chunk read from the peer. The core may keep it: adapters hand out a fresh buffer each time. */
  onData: (chunk: Uint8Array) => void;
  /** The peer closed its write side (half-close). We may still write; call end() when done. */
  onEnd: () => void;
  /** The write queue fell below the high-water mark after write() returned false. */
  onDrain: () => void;
  /** Fires exactly once: after end(), destroy(), peer reset, connect failure or error. */
  onClose: (err?: Error) => void;
}

/**
 * Why a connection closed, as a code: the adapters set it on the errors they report
 * (from the OS error), the core on the closes it makes itself. Stats and the failure
 * policy read the code, never the message.
 */
export const CloseReason = {
  /** The peer closed its side cleanly (no error). */
  Eof: 0,
  /** The proxy closed it (shutdown, reload, a setup the server rejected). */
  ByProxy: 1,
  /** A request or the connect took longer than the pool's timeout. */
  Timeout: 2,
  Refused: 3,
  /** Reset by the peer, or a broken pipe. */
  Reset: 4,
  /** The peer sent bytes that are not the protocol. */
  ProtocolError: 5,
  /** Any other socket error. */
  Error: 6,
} as const;
export type CloseReason = typeof CloseReason[keyof typeof CloseReason];

/** An Error that says why its connection closed. */
export type CloseError = Error & { readonly reason?: CloseReason };

/** An error for a close the proxy makes itself; `message` is what clients and logs see. */
export function closeError(reason: CloseReason, message: string): CloseError {
  return Object.assign(new Error(message), { reason });
}

/** The reason code of an onClose error: none means a clean EOF, an error without a code is Error. */
export function closeReasonOf(err: Error | undefined): CloseReason {
  if (err === undefined) return CloseReason.Eof;
  return (err as CloseError).reason ?? CloseReason.Error;
}

/** A listening socket. */
export interface Listener {
  /** The bound address; for port 0 the kernel's chosen port. */
  readonly addr: Addr;
  /** Stop accepting; existing connections are untouched. */
  close(): Promise<void>;
}

export interface ListenOptions {
  backlog?: number;
}

export interface ConnectOptions {
  /** Enable TCP keepalive on the socket. */
  keepAlive?: boolean;
  /** Destroy with an error when the connection is not established within this many ms. */
  connectTimeoutMs?: number;
}

/** An HTTP handler in the Fetch API shape, as hono's `app.fetch`. */
export type FetchHandler = (req: Request) => Response | Promise<Response>;

/** A runtime's networking, as the core needs it. */
export interface Net {
  /** Name of the runtime: "node", "deno" or "bun". */
  readonly runtime: string;
  listen(addr: Addr, onConn: (conn: Conn) => void, opts?: ListenOptions): Promise<Listener>;
  /** Returns at once; writes queue until the connection is open. */
  connect(addr: Addr, opts?: ConnectOptions): Conn;
  /** Serve HTTP (the admin API) on a TCP address. */
  serveHttp(addr: Addr, handler: FetchHandler): Promise<Listener>;
  /**
   * Run `fn` once the runtime has delivered the I/O events that are ready now (Node's
   * setImmediate). Writes are flushed there, so requests from many clients read in one
   * loop turn reach a server in one write.
   */
  defer(fn: () => void): void;
}

/** Time, injected so unit tests can use a fake clock. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

// Read once: on Node the timeOrigin getter costs as much as now() itself.
const TIME_ORIGIN = performance.timeOrigin;

/** The real clock, built on the timers every runtime provides; fractional ms for latency buckets. */
export const systemClock: Clock = {
  now: () => TIME_ORIGIN + performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as number),
};

/** Text form of an address, as twemproxy prints it ("127.0.0.1:22121" or the unix path). */
export function formatAddr(addr: Addr): string {
  if (addr.kind === "unix") return addr.path;
  return addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}
