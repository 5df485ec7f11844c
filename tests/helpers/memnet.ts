/**
 * An in-memory Net and a fake clock for unit tests of the core: connections are
 * pairs of objects that hand chunks to each other on a microtask, and time moves
 * only when the test advances it.
 */
import type { Addr, Clock, Conn, Listener, Net } from "../../core/net.ts";
import { formatAddr } from "../../core/net.ts";

class MemConn implements Conn {
  peer: MemConn | null = null;
  closed = false;
  paused = false;
  private inbox: Uint8Array[] = [];
  private peerEnded = false;
  readonly remote: string;
  bufferedBytes = 0;
  onConnect = () => {};
  onData = (_chunk: Uint8Array) => {};
  onEnd = () => {};
  onDrain = () => {};
  onClose = (_err?: Error) => {};

  constructor(remote: string) {
    this.remote = remote;
  }

  /** Writes before the connection opens wait here, as with real sockets. */
  early: Uint8Array[] = [];

  write(chunk: Uint8Array): boolean {
    const peer = this.peer;
    if (this.closed) return false;
    if (peer === null) this.early.push(chunk.slice());
    else peer.receive(chunk.slice());
    return true;
  }

  /** Connect two conns and hand over what was written before. */
  link(peer: MemConn): void {
    this.peer = peer;
    for (const chunk of this.early.splice(0)) peer.receive(chunk);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    queueMicrotask(() => this.deliver());
  }

  end(): void {
    this.peer?.receiveEnd();
    this.close(undefined);
  }

  destroy(err?: Error): void {
    this.peer?.close(err === undefined ? undefined : new Error("Connection reset by peer"));
    this.close(err);
  }

  receive(chunk: Uint8Array): void {
    this.inbox.push(chunk);
    queueMicrotask(() => this.deliver());
  }

  receiveEnd(): void {
    this.peerEnded = true;
    queueMicrotask(() => this.deliver());
  }

  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.onClose(err));
  }

  private deliver(): void {
    while (!this.paused && !this.closed && this.inbox.length > 0) this.onData(this.inbox.shift()!);
    if (this.peerEnded && this.inbox.length === 0 && !this.closed) {
      this.peerEnded = false;
      this.onEnd();
    }
  }
}

/** In-memory Net: `listen` registers a handler under the address text; `connect` pairs two conns. */
export class MemNet implements Net {
  readonly runtime = "memory";
  private readonly listeners = new Map<string, (conn: Conn) => void>();

  listen(addr: Addr, onConn: (conn: Conn) => void): Promise<Listener> {
    const key = formatAddr(addr);
    this.listeners.set(key, onConn);
    return Promise.resolve({ addr, close: () => Promise.resolve(void this.listeners.delete(key)) });
  }

  connect(addr: Addr): Conn {
    const client = new MemConn(formatAddr(addr));
    const onConn = this.listeners.get(formatAddr(addr));
    queueMicrotask(() => {
      if (onConn === undefined) return client.close(new Error("Connection refused"));
      const server = new MemConn("memory-client");
      server.peer = client;
      client.link(server);
      onConn(server);
      client.onConnect();
    });
    return client;
  }

  defer(fn: () => void): void {
    queueMicrotask(fn);
  }

  serveHttp(): Promise<Listener> {
    return Promise.reject(new Error("MemNet has no HTTP"));
  }
}

/** A clock that moves only on advance(). */
export class FakeClock implements Clock {
  private time = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.time + ms, fn, id });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Move time forward, firing due timers in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (next === undefined || next.at > until) break;
      this.timers.shift();
      this.time = next.at;
      next.fn();
    }
    this.time = until;
  }
}

/** Let in-memory deliveries run: each macrotask turn drains every queued microtask. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}
