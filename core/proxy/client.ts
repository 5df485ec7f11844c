/**
 * One client connection: bytes in -> protocol session -> requests routed to servers;
 * replies written strictly in request order. Reading pauses while too much is in
 * flight or unsent, so neither a flood of requests nor a client that never reads can
 * grow memory without bound.
 */
import type { Conn } from "../net.ts";
import type { PoolConf } from "../conf/types.ts";
import { Fifo } from "./fifo.ts";
import { type Flushable, joinChunks } from "./flusher.ts";
import { Req, type ReqOwner } from "./req.ts";
import type { QueueWaiter } from "./server.ts";
import { CLOSE, NEED_MORE, type Session, type SessionHost } from "./protocol.ts";
import type { Listening } from "./listening.ts";

/** Per-client bounds; see README "Limits". */
export interface ClientLimits {
  /** Stop reading from a client with this many requests awaiting replies. */
  maxInflight: number;
  /** Stop reading from a client whose requests awaiting replies add up to this many bytes. */
  maxInflightBytes: number;
  /** Stop reading from a client with this many reply bytes not yet taken by its socket. */
  pauseOutputBytes: number;
  /** Close a client whose unsent replies exceed this (it is not reading at all). */
  maxOutputBytes: number;
  /** Close a client that sends a single request larger than this without completing it. */
  maxRequestBytes: number;
  /**
   * Per server connection, not per client: once this many request bytes wait there for
   * replies, every client that sends to it stops being read until it is half as full.
   */
  maxServerQueueBytes: number;
}

export const DEFAULT_LIMITS: ClientLimits = {
  maxInflight: 1024,
  maxInflightBytes: 16 * 1024 * 1024,
  pauseOutputBytes: 4 * 1024 * 1024,
  maxOutputBytes: 256 * 1024 * 1024,
  maxRequestBytes: 600 * 1024 * 1024,
  maxServerQueueBytes: 64 * 1024 * 1024,
};

export class ClientConn implements SessionHost, ReqOwner, Flushable, QueueWaiter {
  dirty = false;
  readonly id: number;
  private readonly conn: Conn;
  private readonly owner: Listening;
  private readonly session: Session;
  private readonly queue = new Fifo<Req>();
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private need = 0;
  /** Bytes still to discard: the rest of a rejected request (e.g. an oversized memcached value). */
  private skip = 0;
  /** Client bytes of the requests in `queue` (each request remembers its share in `clientBytes`). */
  private inflightBytes = 0;
  private readPaused = false;
  /** Congested server connections this client sent to and waits on before reading more. */
  private blockers = 0;
  private inputEnded = false;
  private quitting = false;
  private closed = false;

  constructor(id: number, conn: Conn, owner: Listening) {
    this.id = id;
    this.conn = conn;
    this.owner = owner;
    this.session = owner.protocol.newSession(owner.pool.conf);
    conn.onData = (chunk) => this.onData(chunk);
    conn.onEnd = () => this.onEnd();
    conn.onDrain = () => this.maybeResume();
    conn.onClose = (err) => this.onClose(err);
  }

  get pool(): PoolConf {
    return this.owner.pool.conf;
  }

  // ---- SessionHost: what protocol sessions call ----

  newReq(bytes: Uint8Array): Req {
    return new Req(this, bytes);
  }

  replyLocal(bytes: Uint8Array | null): Req {
    const req = new Req(this, bytes ?? EMPTY);
    this.queue.push(req);
    req.finish(bytes);
    return req;
  }

  enqueue(req: Req): void {
    this.queue.push(req);
  }

  forward(req: Req, buf: Uint8Array, start: number, end: number): void {
    this.queue.push(req);
    const index = this.owner.pool.serverIndexFor(buf, start, end);
    if (index < 0) return this.failNoServer(req);
    this.sendTo(index, req);
  }

  serverIndexFor(buf: Uint8Array, start: number, end: number): number {
    return this.owner.pool.serverIndexFor(buf, start, end);
  }

  sendTo(index: number, req: Req): void {
    if (index < 0) return this.failNoServer(req);
    const conn = this.owner.pool.servers[index].connFor(this.id);
    conn.send(req);
    if (!conn.congested) return;
    this.blockers++;
    conn.wait(this);
  }

  // ---- QueueWaiter ----

  unblock(): void {
    this.blockers--;
    if (this.blockers === 0) this.maybeResume();
  }

  closeAfterReplies(): void {
    this.quitting = true;
  }

  countFragments(n: number): void {
    this.owner.pool.stats.fragments += n;
  }

  // ---- ReqOwner ----

  reqDone(_req: Req): void {
    if (this.closed) return;
    let wrote = false;
    for (let head = this.queue.peek(); head !== undefined && head.done; head = this.queue.peek()) {
      this.queue.shift();
      this.inflightBytes -= head.clientBytes;
      if (head.reply !== null && head.reply.length > 0) {
        this.out.push(head.reply);
        this.outBytes += head.reply.length;
        wrote = true;
      }
    }
    if (wrote) this.owner.flusher.mark(this);
    else if (this.queue.length === 0) this.finishIfDone();
    if (this.readPaused) this.maybeResume();
  }

  // ---- Flushable ----

  flush(): void {
    if (this.closed || this.out.length === 0) return;
    const chunks = joinChunks(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    for (const chunk of chunks) this.conn.write(chunk);
    if (this.conn.bufferedBytes > this.owner.limits.maxOutputBytes) return this.overLimit("output");
    this.finishIfDone();
  }

  // ---- input ----

  private onData(chunk: Uint8Array): void {
    if (this.closed || this.inputEnded || this.quitting) return;
    if (this.skip > 0) {
      const dropped = Math.min(this.skip, chunk.length);
      this.skip -= dropped;
      if (dropped === chunk.length) return;
      chunk = chunk.subarray(dropped);
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > this.owner.limits.maxRequestBytes) return this.overLimit("request");
    if (this.pendingBytes < this.need || this.readPaused) return;
    this.process();
  }

  private process(): void {
    const buf = this.takePending();
    // `need` describes the bytes kept after a NEED_MORE and nothing else: a stop for any
    // other reason (a pause behind a large request) must not leave a stale mark, or the
    // resume would wait for bytes that never come.
    this.need = 0;
    let pos = 0;
    while (pos < buf.length && !this.quitting && !this.closed) {
      if (this.mustPause()) {
        this.pauseReading();
        break;
      }
      const queued = this.queue.length;
      const next = this.session.handle(buf, pos, this);
      if (next === NEED_MORE) {
        this.need = this.session.need;
        break;
      }
      if (next === CLOSE) return this.closeAfterReplies();
      if (next > buf.length) this.skip = next - buf.length;
      if (this.queue.length > queued) this.countInflight(next - pos);
      pos = Math.min(next, buf.length);
    }
    if (pos < buf.length && !this.quitting) this.keepPending(buf.subarray(pos));
  }

  private takePending(): Uint8Array {
    const parts = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (parts.length === 1) return parts[0];
    const buf = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      buf.set(part, at);
      at += part.length;
    }
    return buf;
  }

  private keepPending(rest: Uint8Array): void {
    this.pending.unshift(rest);
    this.pendingBytes += rest.length;
  }

  /** Charge the bytes just parsed to the newest request, until its reply is written. */
  private countInflight(bytes: number): void {
    const newest = this.queue.at(this.queue.length - 1);
    if (newest === undefined || newest.done) return;
    newest.clientBytes = bytes;
    this.inflightBytes += bytes;
  }

  private mustPause(): boolean {
    const limits = this.owner.limits;
    return this.blockers > 0 || this.queue.length >= limits.maxInflight || this.inflightBytes >= limits.maxInflightBytes ||
      this.outBytes + this.conn.bufferedBytes >= limits.pauseOutputBytes;
  }

  private pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.conn.pause();
  }

  private maybeResume(): void {
    if (!this.readPaused || this.closed || this.blockers > 0) return;
    const limits = this.owner.limits;
    if (this.queue.length > limits.maxInflight / 2) return;
    if (this.inflightBytes > limits.maxInflightBytes / 2) return;
    if (this.outBytes + this.conn.bufferedBytes > limits.pauseOutputBytes / 2) return;
    this.readPaused = false;
    this.conn.resume();
    if (this.pendingBytes > 0 && this.pendingBytes >= this.need) this.process();
  }

  private failNoServer(req: Req): void {
    this.owner.pool.stats.forward_error++;
    req.finish(this.owner.protocol.errorReply(NO_SERVER));
  }

  // ---- lifecycle ----

  /** Graceful shutdown: take no new requests, close once in-flight replies are written. */
  shutdown(): void {
    this.quitting = true;
    this.finishIfDone();
  }

  closeNow(): void {
    this.conn.destroy();
  }

  private onEnd(): void {
    this.inputEnded = true;
    this.owner.pool.stats.client_eof++;
    this.finishIfDone();
  }

  /** Half-closed or QUIT: close once every reply is written. */
  private finishIfDone(): void {
    if (this.closed || (!this.inputEnded && !this.quitting)) return;
    if (this.queue.length > 0 || this.out.length > 0) return;
    this.conn.end();
  }

  private overLimit(what: string): void {
    this.owner.log.error(`client ${this.conn.remote} on pool '${this.pool.name}' exceeded the ${what} limit; closing`);
    this.conn.destroy(new Error(`${what} limit exceeded`));
  }

  private onClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    // One count per client, as twemproxy: a client that sent its EOF already counted as client_eof.
    if (err !== undefined && !this.inputEnded) this.owner.pool.stats.client_err++;
    // Requests still at servers finish into nothing; the servers' order is unaffected.
    for (const req of this.queue.drain()) req.owner = null;
    this.out = [];
    this.pending = [];
    this.owner.clientClosed(this);
  }
}

const EMPTY = new Uint8Array(0);
const NO_SERVER = "No server available";
