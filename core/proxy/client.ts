/**
 * One client connection: bytes in -> protocol session -> requests routed to servers;
 * replies written strictly in request order. Reading pauses while too much is in
 * flight or unsent, so neither a flood of requests nor a client that never reads can
 * grow memory without bound.
 */
import { closeError, CloseReason, type Conn } from "../net.ts";
import type { PoolConf } from "../conf/types.ts";
import { Fifo } from "./fifo.ts";
import { type Flushable, joinChunks } from "./flusher.ts";
import { Req, type ReplyGuard, type ReqOwner } from "./req.ts";
import type { Server } from "./server.ts";
import type { QueueWaiter, ServerConn } from "./server_conn.ts";
import type { Shard } from "./topology.ts";
import { sendCopies } from "./replication/copies.ts";
import { Fences } from "./replication/fences.ts";
import type { PushLink } from "./pushlink.ts";
import { keySlot } from "../cluster/slots.ts";
import { CLOSE, NEED_MORE, type ProxyAbout, type Route, type Session, type SessionHost } from "./protocol.ts";
import type { Listening } from "./listening.ts";
import type { Pool } from "./pool.ts";
import type { ClientLimits } from "./limits.ts";
import type { MigrationClient } from "../migration/migration.ts";

export class ClientConn implements SessionHost, ReqOwner, Flushable, QueueWaiter, ReplyGuard, MigrationClient {
  dirty = false;
  readonly id: number;
  private readonly conn: Conn;
  private readonly owner: Listening;
  /** The pool this client was accepted for: a reload changes its topology, not this reference. */
  readonly home: Pool;
  private readonly session: Session;
  private readonly queue = new Fifo<Req>();
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private need = 0;
  /** Bytes still to discard: the rest of a rejected request (e.g. an oversized memcached value). */
  private skip = 0;
  /** Client bytes of the requests in `queue`, charged as each enters it (Req.clientBytes). */
  private inflightBytes = 0;
  private readPaused = false;
  /** Congested server connections this client sent to and waits on before reading more. */
  private blockers = 0;
  private inputEnded = false;
  /** The dedicated server connection requests to one shard go to (a transaction), or null. */
  private pin_: { shard: Shard; conn: ServerConn } | null = null;
  /** Dedicated connections this client still owes replies on: closed with the client (made on first use). */
  private dedicatedInUse: Set<ServerConn> | null = null;
  /** read_your_writes: per shard written to, the replica-check round its replicas must have reached. */
  private fences: Fences | null = null;
  private quitting = false;
  private closed = false;
  /**
   * During a migration: requests waiting behind one whose moving keys are being settled on
   * their old owner, so this client's requests reach the servers in the order it sent them.
   */
  private held: Fifo<{ req: Req; route: Route | null }> | null = null;
  private holding = false;

  constructor(id: number, conn: Conn, owner: Listening, pool: Pool) {
    this.id = id;
    this.conn = conn;
    this.owner = owner;
    this.home = pool;
    this.session = pool.protocol.newSession(pool.conf);
    conn.onData = (chunk) => this.onData(chunk);
    conn.onEnd = () => this.onEnd();
    conn.onDrain = () => this.maybeResume();
    conn.onClose = (err) => this.onClose(err);
  }

  get pool(): PoolConf {
    return this.home.conf;
  }

  get remote(): string {
    return this.conn.remote;
  }

  get about(): ProxyAbout {
    return this.owner.about;
  }

  private get limits(): ClientLimits {
    return this.home.limits;
  }

  // ---- SessionHost: what protocol sessions call ----

  newReq(bytes: Uint8Array, clientBytes: number): Req {
    const req = new Req(this, bytes);
    req.clientBytes = clientBytes;
    return req;
  }

  replyLocal(bytes: Uint8Array | null): Req {
    const req = new Req(this, bytes ?? EMPTY);
    this.enqueue(req);
    req.finish(bytes);
    return req;
  }

  enqueue(req: Req): void {
    this.queue.push(req);
    this.inflightBytes += req.clientBytes;
  }

  route(buf: Uint8Array, start: number, end: number): Route | null {
    return this.home.route(buf, start, end);
  }

  slotOf(buf: Uint8Array, start: number, end: number): number {
    return this.home.cluster === null ? -1 : keySlot(buf, start, end);
  }

  shards(): readonly Route[] {
    return this.home.shards;
  }

  pin(route: Route): boolean {
    if (this.pin_ !== null) return this.pin_.shard.id === route.id;
    const conn = route.master.takeDedicated();
    if (conn === null) return false;
    this.pin_ = { shard: route, conn };
    (this.dedicatedInUse ??= new Set()).add(conn);
    return true;
  }

  unpin(): void {
    const pin = this.pin_;
    if (pin === null) return;
    this.pin_ = null;
    pin.conn.whenIdle(() => {
      this.dedicatedInUse?.delete(pin.conn);
      pin.shard.master.giveBack(pin.conn);
    });
  }

  pushLink(route: Route, onReconnect: () => void): PushLink {
    return this.home.pushLink(route.id, (reply) => this.replyLocal(reply), onReconnect);
  }

  get pinned(): Route | null {
    return this.pin_?.shard ?? null;
  }

  send(req: Req, route: Route | null): void {
    if (req.parent === null) this.enqueue(req);
    else this.home.stats.fragments++;
    if (this.held !== null || (route !== null && route.from !== null)) return this.hold(req, route);
    this.forward(req, route);
  }

  private forward(req: Req, route: Route | null): void {
    const pin = this.pin_;
    // By shard id: a reload or failover may have built new Shard objects for the same shard.
    if (pin !== null && route !== null && route.id === pin.shard.id) return pin.conn.send(req);
    const node = route === null ? null : this.home.nodeFor(route, req, this.fenceOf(route));
    if (node === null) return this.failNoServer(req);
    const replicated = route!.replicas.length > 0;
    if ((replicated && (req.read || this.pool.readYourWrites)) || this.home.sentinel !== null || this.home.cluster !== null) {
      req.shard = route;
      req.node = node;
      req.guard = this;
      if (!req.read && this.pool.readYourWrites) (this.fences ??= new Fences()).sent(route!);
    }
    this.dispatch(req, node);
    if (replicated && req.copy !== null) sendCopies(req, route!);
  }

  // ---- migration: requests for moving keys ----

  private hold(req: Req, route: Route | null): void {
    (this.held ??= new Fifo()).push({ req, route });
    if (!this.holding) this.releaseHeld();
  }

  /** Send held requests in order; stop at one whose keys are being settled until it says next. */
  private releaseHeld(): void {
    const held = this.held!;
    while (held.length > 0) {
      const { req, route } = held.shift()!;
      const migration = this.home.migration;
      // A migration that ended meanwhile left one ring: the new owner's.
      if (route === null || route.from === null || migration === null) {
        this.forward(req, route?.to ?? route);
        continue;
      }
      let waiting = true;
      this.holding = true;
      migration.forward(req, route, this, () => {
        this.holding = false;
        if (waiting) waiting = false;
        else this.releaseHeld();
      });
      if (waiting) {
        waiting = false;
        return;
      }
    }
    this.held = null;
  }

  /** MigrationClient: forward to `node` on this client's connection (its pinned one when it is pinned there). */
  sendTo(req: Req, node: Server): void {
    const pin = this.pin_;
    if (pin !== null && pin.shard.master === node) return pin.conn.send(req);
    this.dispatch(req, node);
  }

  private dispatch(req: Req, node: Server): void {
    if (req.read) node.reads++;
    else node.writes++;
    const conn = node.connFor(this.id);
    conn.send(req);
    if (!conn.congested) return;
    this.blockers++;
    conn.wait(this);
  }

  // ---- ReplyGuard: requests to shards with replicas ----

  /** A read that failed on a node not ready for it goes once to another node; a write sets this client's fence. */
  beforeFinish(req: Req, reply: Uint8Array | null, transportFailed: boolean): boolean {
    if (this.followedRedirect(req, reply, transportFailed)) return true;
    const shard = req.shard!;
    if (!req.read) {
      this.fences?.answered(shard, this.home.nextCheckRound);
      this.home.masterRefused(shard, reply);
      return false;
    }
    if (this.closed || req.retried) return false;
    const next = this.home.retryTarget(shard, req, reply, transportFailed, this.fenceOf(shard));
    // The same node again only when its connection failed: the resend goes on a new one.
    if (next === null || (next === req.node && !transportFailed)) return false;
    req.retried = true;
    req.node = next;
    this.dispatch(req, next);
    return true;
  }

  /** Redis Cluster: a MOVED/ASK/TRYAGAIN reply is followed, never shown to the client. */
  private followedRedirect(req: Req, reply: Uint8Array | null, transportFailed: boolean): boolean {
    if (this.home.cluster === null) return false;
    if (transportFailed) this.home.clusterFailure();
    if (this.closed) return false;
    return this.home.redirect(req, reply, transportFailed, (node, asking) => this.resend(req, node, asking));
  }

  private resend(req: Req, node: Server | null, asking: boolean): void {
    if (node === null) return req.finish(this.home.protocol.errorReply("No server available"));
    req.node = node;
    // ASKING must reach the node right before the request, on the same connection.
    if (asking) node.connFor(this.id).probe(ASKING, IGNORED);
    this.dispatch(req, node);
  }

  private fenceOf(shard: Shard): number {
    return this.fences?.of(shard) ?? 0;
  }

  // ---- QueueWaiter ----

  unblock(): void {
    this.blockers--;
    if (this.blockers === 0) this.maybeResume();
  }

  closeAfterReplies(): void {
    this.quitting = true;
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
    if (this.conn.bufferedBytes > this.limits.maxOutputBytes) return this.overLimit("output");
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
    if (this.pendingBytes > this.limits.maxRequestBytes) return this.overLimit("request");
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
      const next = this.session.handle(buf, pos, this);
      if (next === NEED_MORE) {
        this.need = this.session.need;
        break;
      }
      this.home.stats.client_requests++;
      if (next === CLOSE) return this.closeAfterReplies();
      if (next > buf.length) this.skip = next - buf.length;
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

  private mustPause(): boolean {
    const limits = this.limits;
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
    const limits = this.limits;
    if (this.queue.length > limits.maxInflight / 2) return;
    if (this.inflightBytes > limits.maxInflightBytes / 2) return;
    if (this.outBytes + this.conn.bufferedBytes > limits.pauseOutputBytes / 2) return;
    this.readPaused = false;
    this.conn.resume();
    if (this.pendingBytes > 0 && this.pendingBytes >= this.need) this.process();
  }

  private failNoServer(req: Req): void {
    this.home.stats.forward_error++;
    req.finish(this.home.protocol.errorReply(NO_SERVER));
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
    this.home.stats.client_eof++;
    // A client that left cannot be in a transaction or wait for a blocked command: as Redis
    // frees a departed client, give those connections up rather than wait for them.
    this.dropDedicated();
    this.finishIfDone();
  }

  private dropDedicated(): void {
    for (const conn of this.dedicatedInUse ?? []) conn.close(closeError(CloseReason.ByProxy, "Connection closed by proxy"));
    this.pin_ = null;
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
    if (err !== undefined && !this.inputEnded) this.home.stats.client_err++;
    // Requests still at servers finish into nothing; the servers' order is unaffected.
    for (const req of this.queue.drain()) req.owner = null;
    // A dedicated connection may hold this client's MULTI or a blocked command: it goes too.
    this.dropDedicated();
    this.session.closed?.();
    this.out = [];
    this.pending = [];
    this.owner.clientClosed(this);
  }
}

const EMPTY = new Uint8Array(0);
const ASKING = new TextEncoder().encode("*1\r\n$6\r\nASKING\r\n");
const IGNORED: ReqOwner = { reqDone: () => {} };
const NO_SERVER = "No server available";
