/**
 * One TCP/unix connection to a server. It keeps the requests it sent in order and matches
 * every reply to the oldest one; a close, error or timeout fails everything still
 * outstanding on it, so a late reply can never reach the wrong request.
 */
import { concatBytes } from "../bytes.ts";
import { closeError, CloseReason, closeReasonOf, type Conn } from "../net.ts";
import { Fifo } from "./fifo.ts";
import { type Flushable, joinChunks } from "./flusher.ts";
import { Req, type ReqOwner } from "./req.ts";
import type { ReplyScanner } from "./protocol.ts";
import { serverFailure, serverOk } from "./failure.ts";
import { Role, type Server, type ServerEnv } from "./server.ts";

/** A client held back while a server connection it sent to is congested. */
export interface QueueWaiter {
  unblock(): void;
}

/** One TCP/unix connection to a server. */
export class ServerConn implements Flushable, ReqOwner {
  dirty = false;
  private conn: Conn | null = null;
  private readonly sent = new Fifo<Req>();
  private out: Uint8Array[] = [];
  private outBytes = 0;
  /** Preamble replies still awaited before anything after the preamble is written (awaitPreamble). */
  private setupLeft = 0;
  /** Bytes of client requests queued or sent and not yet answered (what a stalled server makes us hold). */
  private unansweredBytes = 0;
  private waiters: QueueWaiter[] = [];
  /** Set by retire(): end the connection when the last owed reply arrives. */
  private retiring = false;
  /** Client requests (and their bytes) queued in `out`: twemproxy's in_queue until flushed. */
  private queuedReqs = 0;
  private queuedReqBytes = 0;
  private readonly scanner: ReplyScanner;
  private partial: Uint8Array[] = [];
  private timer: unknown = null;
  /** Clock ms when the chunk being scanned was read (0 when metrics are off). */
  private arrivedAt = 0;
  private readonly server: Server;
  /** The setup this connection was made with (a reload may give the server a new one). */
  private readonly setup: ServerEnv;
  /**
   * One client's alone (a transaction, a blocking command): no pool timeout cuts it short,
   * and once closed it never reconnects (a new connection would not hold the client's MULTI).
   */
  readonly dedicated: boolean;
  /** The current connection was established (requests written to it may have been executed). */
  private established = false;
  /** A dedicated connection that closed: requests sent to it fail at once. */
  broken = false;
  /** Called once when the last owed reply has arrived (then cleared). */
  private onIdle: (() => void) | null = null;

  constructor(server: Server, dedicated = false) {
    this.server = server;
    this.setup = server.env;
    this.dedicated = dedicated;
    this.scanner = server.env.protocol.newScanner();
  }

  /** The pool's current settings (timeout, limits, observer) for this server. */
  get env(): ServerEnv {
    return this.server.env;
  }

  /** Run `fn` once this connection owes no replies (now, if it owes none). */
  whenIdle(fn: () => void): void {
    if (this.sent.length === 0) return fn();
    this.onIdle = fn;
  }

  /** Whether anything reads a request's send time (a timeout, or latency metrics): else skip the clock. */
  private get timed(): boolean {
    const env = this.server.env;
    return env.timeout !== null || env.observe !== null || env.loadAware;
  }

  /** Number of requests sent and not yet answered. */
  get outstanding(): number {
    return this.sent.length;
  }

  /** Over its mark: the server is not keeping up, so clients sending to it should wait. */
  get congested(): boolean {
    return this.unansweredBytes >= this.env.queueMark;
  }

  /** Call `waiter.unblock()` once the unanswered bytes fall to half the mark (or the connection closes). */
  wait(waiter: QueueWaiter): void {
    this.waiters.push(waiter);
  }

  /** Queue a request; it is written with everything else queued in this tick. */
  send(req: Req): void {
    if (this.broken) return req.finish(this.env.protocol.errorReply("Connection reset by peer"), true);
    this.ensureConnected();
    if (this.timed) req.sentAt = this.env.clock.now();
    this.sent.push(req);
    this.queueBytes(req.bytes);
    const stats = this.server.stats;
    stats.requests++;
    stats.request_bytes += req.bytes.length;
    stats.in_queue++;
    stats.in_queue_bytes += req.bytes.length;
    this.queuedReqs++;
    this.queuedReqBytes += req.bytes.length;
    this.unansweredBytes += req.bytes.length;
    if (req.trailer !== null) this.sendInternal(req.trailer, req.trailerKind);
    if (this.timer === null) this.armTimer(this.env.timeout);
  }

  ensureConnected(): void {
    if (this.conn !== null) return;
    const env = this.setup;
    const conn = env.net.connect(this.server.conf.addr, {
      keepAlive: env.keepAlive,
      connectTimeoutMs: this.env.timeout ?? undefined,
    });
    this.conn = conn;
    this.setupLeft = 0;
    this.server.stats.server_connections++;
    this.established = false;
    conn.onConnect = () => {
      this.established = true;
      env.log.log(6, `connected to server ${this.server.conf.id}`);
    };
    conn.onData = (chunk) => this.onData(chunk);
    // The server closed its side: an EOF, not an error (an idle close is no failure).
    conn.onEnd = () => conn.destroy();
    conn.onDrain = () => {};
    conn.onClose = (err) => this.onClose(conn, err);
    for (const bytes of env.preamble) this.sendInternal(bytes);
    if (this.server.role === Role.Replica) for (const bytes of env.replicaPreamble) this.sendInternal(bytes);
    if (env.awaitPreamble && env.preamble.length > 0) this.writeSetupOnly(env.preamble.length);
  }

  /** Write the preamble now and hold what follows until its replies came back fine (reqDone). */
  private writeSetupOnly(count: number): void {
    const setup = this.out.splice(0, count);
    for (const bytes of setup) this.outBytes -= bytes.length;
    this.setupLeft = count;
    for (const bytes of setup) this.conn!.write(bytes);
  }

  flush(): void {
    if (this.conn === null || this.out.length === 0 || this.setupLeft > 0) return;
    const chunks = joinChunks(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.moveQueuedToSent();
    for (const chunk of chunks) this.conn.write(chunk);
  }

  /** Requests handed to the socket leave in_queue for out_queue, where they await replies. */
  private moveQueuedToSent(): void {
    const stats = this.server.stats;
    stats.in_queue -= this.queuedReqs;
    stats.in_queue_bytes -= this.queuedReqBytes;
    stats.out_queue += this.queuedReqs;
    stats.out_queue_bytes += this.queuedReqBytes;
    this.queuedReqs = 0;
    this.queuedReqBytes = 0;
  }

  /** Close the connection, failing what is outstanding with `err`'s message. */
  close(err: Error): void {
    this.conn?.destroy(err);
  }

  /** Close gracefully once every reply still owed has arrived (no new requests come here). */
  retire(): void {
    this.retiring = true;
    if (this.sent.length === 0) this.conn?.end();
  }

  /** Preamble replies (AUTH, SELECT) land here. */
  reqDone(req: Req): void {
    const reply = req.reply;
    if (reply === null || !this.env.protocol.isErrorReply(reply)) {
      // The whole preamble came back fine: write what waited for it.
      if (this.setupLeft > 0 && --this.setupLeft === 0) this.env.flusher.mark(this);
      return;
    }
    const text = new TextDecoder().decode(reply).trim();
    this.env.log.error(`server ${this.server.conf.id} rejected connection setup: ${text}`);
    this.close(closeError(CloseReason.ByProxy, "Connection setup rejected"));
  }

  /** Send the proxy's own request; `owner` gets its reply (or the connection's error). */
  probe(bytes: Uint8Array, owner: ReqOwner, kind = 0): void {
    this.ensureConnected();
    this.sendInternal(bytes, kind, owner);
    if (this.timer === null) this.armTimer(this.env.timeout);
  }

  private sendInternal(bytes: Uint8Array, kind = 0, owner: ReqOwner = this): void {
    const req = new Req(owner, bytes);
    req.internal = true;
    req.kind = kind;
    if (this.timed) req.sentAt = this.env.clock.now();
    this.sent.push(req);
    this.queueBytes(bytes);
  }

  private queueBytes(bytes: Uint8Array): void {
    this.out.push(bytes);
    this.outBytes += bytes.length;
    this.env.flusher.mark(this);
  }

  private onData(chunk: Uint8Array): void {
    // Every reply in a chunk arrived at the same moment: one clock read serves them all.
    this.arrivedAt = this.env.observe === null ? 0 : this.env.clock.now();
    let pos = 0;
    while (pos < chunk.length) {
      const head = this.sent.peek();
      if (head === undefined) return this.protocolError("unexpected reply with no request outstanding");
      const end = this.scanner.scan(chunk, pos, head.kind);
      if (end === -1) {
        this.partial.push(pos === 0 ? chunk : chunk.subarray(pos));
        return;
      }
      if (end < 0) return this.protocolError(this.scanner.error);
      this.deliver(this.takeReply(chunk, pos, end));
      pos = end;
    }
  }

  private takeReply(chunk: Uint8Array, pos: number, end: number): Uint8Array {
    const tail = chunk.subarray(pos, end);
    if (this.partial.length === 0) return tail;
    this.partial.push(tail);
    const reply = concatBytes(this.partial);
    this.partial = [];
    return reply;
  }

  private deliver(reply: Uint8Array): void {
    const req = this.sent.shift()!;
    const stats = this.server.stats;
    if (!req.internal) {
      stats.responses++;
      stats.response_bytes += reply.length;
      stats.out_queue--;
      stats.out_queue_bytes -= req.bytes.length;
      this.env.observe?.(this.server, req, reply, this.arrivedAt);
      if (this.env.loadAware) this.recordLatency(req);
      this.unansweredBytes -= req.bytes.length;
      if (this.waiters.length > 0) this.releaseWaiters();
    }
    if (this.server.failures !== 0) serverOk(this.server);
    req.finish(reply);
    if (this.sent.length > 0) return;
    this.disarmTimer();
    if (this.retiring) this.conn?.end();
    this.idle();
  }

  private idle(): void {
    const fn = this.onIdle;
    this.onIdle = null;
    fn?.();
  }

  /** Moving average (weight 1/8 per reply) of reply latency, for choosing among a shard's nodes. */
  private recordLatency(req: Req): void {
    const ms = (this.arrivedAt || this.env.clock.now()) - req.sentAt;
    const server = this.server;
    server.latencyMs = server.latencyMs === 0 ? ms : server.latencyMs + (ms - server.latencyMs) / 8;
  }

  private protocolError(message: string): void {
    this.env.log.error(`server ${this.server.conf.id}: bad reply: ${message}`);
    this.close(closeError(CloseReason.ProtocolError, "Protocol error"));
  }

  private onClose(conn: Conn, err?: Error): void {
    if (this.conn !== conn) return;
    this.conn = null;
    this.disarmTimer();
    this.scanner.reset();
    this.partial = [];
    this.out = [];
    this.outBytes = 0;
    // Unsent requests fail like sent ones: count them as sent so one path takes them off the queues.
    this.moveQueuedToSent();
    const stats = this.server.stats;
    stats.server_connections--;
    // As twemproxy, a close counts once: as an eof, a timeout (of a request or of the connect) or an error.
    const reason = closeReasonOf(err);
    if (reason === CloseReason.Eof) stats.server_eof++;
    else if (reason === CloseReason.Timeout) stats.server_timedout++;
    else stats.server_err++;
    if (this.dedicated) this.broken = true;
    this.failOutstanding(err);
    if (this.dedicated) this.server.dedicatedClosed(this);
    this.idle();
  }

  /**
   * Fail every request still on this connection. A failure counts toward ejection when
   * requests were lost or the connection broke (refused, reset, timed out), not when an
   * idle connection was closed by the server or by us.
   */
  private failOutstanding(err: Error | undefined): void {
    const reason = err?.message ?? "Connection reset by peer";
    const pending = this.sent.drain();
    const stats = this.server.stats;
    const hadClientRequests = pending.some((req) => !req.internal);
    const byProxy = closeReasonOf(err) === CloseReason.ByProxy;
    if (hadClientRequests || (err !== undefined && !byProxy)) {
      this.env.log.log(hadClientRequests ? 4 : 6, `server ${this.server.conf.id} closed: ${reason}`);
    }
    const reply = this.env.protocol.errorReply(reason);
    for (const req of pending) {
      if (!req.internal) {
        stats.out_queue--;
        stats.out_queue_bytes -= req.bytes.length;
        this.env.poolStats.forward_error++;
        this.unansweredBytes -= req.bytes.length;
      }
      // Never connected: the server never saw it, so sending it elsewhere cannot apply it twice.
      if (!this.established) req.unsent = true;
      req.finish(reply, true);
    }
    this.releaseWaiters();
    if (hadClientRequests || (err !== undefined && !byProxy)) this.countFailure();
  }

  private countFailure(): void {
    const env = this.env;
    if (serverFailure(this.server, env.policy, env.clock.now())) env.onEjected(this.server);
  }

  /** Below half the mark (hysteresis, so clients are not woken for every reply): let the waiters read again. */
  private releaseWaiters(): void {
    if (this.unansweredBytes > this.env.queueMark / 2) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.unblock();
  }

  private armTimer(ms: number | null): void {
    if (ms === null || this.dedicated) return;
    this.timer = this.env.clock.setTimer(() => this.onTimer(), ms);
  }

  private disarmTimer(): void {
    if (this.timer === null) return;
    this.env.clock.clearTimer(this.timer);
    this.timer = null;
  }

  /** One timer per connection, checked against the oldest request rather than re-armed per reply. */
  private onTimer(): void {
    this.timer = null;
    const head = this.sent.peek();
    const timeout = this.env.timeout;
    if (head === undefined || timeout === null) return;
    const left = head.sentAt + timeout - this.env.clock.now();
    if (left > 0) return this.armTimer(left);
    // The proxy itself may have stalled past the deadline with the reply already waiting to
    // be read: give the runtime one turn to read it before calling it a timeout.
    this.timer = this.env.clock.setTimer(() => this.timeOutIfStill(head), 0);
  }

  private timeOutIfStill(head: Req): void {
    this.timer = null;
    if (this.sent.peek() === head) return this.close(closeError(CloseReason.Timeout, "Connection timed out"));
    if (this.sent.length > 0) this.armTimer(1);
  }
}
