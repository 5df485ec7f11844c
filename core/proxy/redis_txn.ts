/**
 * Transactions and blocking commands, which need a server connection of the client's own
 * (SessionHost.pin): no other client may share a MULTI, and a blocked BLPOP must not hold
 * up other clients' replies. Both are allowed when every key involved lives on one shard;
 * a key elsewhere gets Redis Cluster's -CROSSSLOT, and a transaction that saw one ends in
 * -EXECABORT, as Redis Cluster behaves.
 *
 * MULTI is answered by the proxy and sent to the server only with the first command that
 * names a shard (or at once after WATCH, which already chose one).
 */
import { type CommandSpec, CROSSSLOT_REPLY as CROSSSLOT, errorReply, keyPositions, type RequestSlots, statusReply } from "../redis/mod.ts";
import type { Route, SessionHost } from "./protocol.ts";

const encoder = new TextEncoder();
const MULTI = encoder.encode("*1\r\n$5\r\nMULTI\r\n");
const DISCARD = encoder.encode("*1\r\n$7\r\nDISCARD\r\n");
const OK = statusReply("OK");
const QUEUED = statusReply("QUEUED");
const EMPTY_EXEC = encoder.encode("*0\r\n");
const EXECABORT = errorReply("EXECABORT Transaction discarded because of previous errors.");
const NESTED = errorReply("ERR MULTI calls can not be nested");
const EXEC_WITHOUT = errorReply("ERR EXEC without MULTI");
const DISCARD_WITHOUT = errorReply("ERR DISCARD without MULTI");
const WATCH_IN_MULTI = errorReply("ERR WATCH inside MULTI is not allowed");
const NO_DEDICATED = errorReply("ERR max_dedicated_connections reached for this pool; try again later");
const DROP = () => false;

/** A request as the session parsed it. */
export interface Parsed {
  readonly spec: CommandSpec;
  readonly buf: Uint8Array;
  readonly slots: RequestSlots;
  readonly pos: number;
  readonly end: number;
}

/** One client's transaction state. */
export class Transaction {
  /** Between MULTI and EXEC/DISCARD. */
  inMulti = false;
  /** MULTI reached the server (the pinned connection holds a transaction). */
  private multiSent = false;
  /** A command was refused while queueing: EXEC will abort. */
  private aborted = false;
  /** WATCH pinned the connection. */
  private watching = false;

  /** MULTI, EXEC, DISCARD, WATCH, UNWATCH. */
  control(cmd: Parsed, host: SessionHost): void {
    const name = cmd.spec.name;
    if (name === "multi") return this.multi(cmd, host);
    if (name === "exec") return this.finish(cmd, host, true);
    if (name === "discard") return this.finish(cmd, host, false);
    if (name === "watch") return this.watch(cmd, host);
    this.unwatch(cmd, host);
  }

  /** A command between MULTI and EXEC: queued on the transaction's server, or refused. */
  queue(cmd: Parsed, host: SessionHost): void {
    if (this.aborted) return void host.replyLocal(QUEUED);
    const route = keysRoute(cmd, host) ?? host.pinned ?? host.shards()[0] ?? null;
    if (route === CROSS || route === null) return this.refuse(host, CROSSSLOT);
    if (host.pinned === null && !host.pin(route)) return this.refuse(host, NO_DEDICATED);
    if (host.pinned!.id !== route.id) return this.refuse(host, CROSSSLOT);
    if (!this.multiSent) this.sendMulti(route, host);
    host.send(whole(cmd, host), route);
  }

  private multi(cmd: Parsed, host: SessionHost): void {
    if (this.inMulti) return void host.replyLocal(NESTED);
    this.inMulti = true;
    const pinned = host.pinned;
    if (pinned === null) return void host.replyLocal(OK);
    this.multiSent = true;
    host.send(whole(cmd, host), pinned);
  }

  private watch(cmd: Parsed, host: SessionHost): void {
    if (this.inMulti) return void host.replyLocal(WATCH_IN_MULTI);
    const route = keysRoute(cmd, host);
    if (route === CROSS || route === null) return void host.replyLocal(CROSSSLOT);
    if (!host.pin(route)) return void host.replyLocal(host.pinned === null ? NO_DEDICATED : CROSSSLOT);
    this.watching = true;
    host.send(whole(cmd, host), route);
  }

  private unwatch(cmd: Parsed, host: SessionHost): void {
    if (this.inMulti) return this.queue(cmd, host);
    const pinned = host.pinned;
    if (pinned === null || !this.watching) return void host.replyLocal(OK);
    host.send(whole(cmd, host), pinned);
    this.reset(host);
  }

  /** EXEC (`exec`) or DISCARD. */
  private finish(cmd: Parsed, host: SessionHost, exec: boolean): void {
    if (!this.inMulti) return void host.replyLocal(exec ? EXEC_WITHOUT : DISCARD_WITHOUT);
    const pinned = host.pinned;
    if (exec && this.aborted) {
      if (this.multiSent && pinned !== null) host.send(dropped(DISCARD, host), pinned);
      host.replyLocal(EXECABORT);
    } else if (this.multiSent && pinned !== null) {
      host.send(whole(cmd, host), pinned);
    } else {
      host.replyLocal(exec ? EMPTY_EXEC : OK);
    }
    this.reset(host);
  }

  private sendMulti(route: Route, host: SessionHost): void {
    this.multiSent = true;
    host.send(dropped(MULTI, host), route);
  }

  /** Refuse a command while queueing: the client gets `reply` now, and EXEC will abort. */
  refuse(host: SessionHost, reply: Uint8Array): void {
    this.aborted = true;
    host.replyLocal(reply);
  }

  private reset(host: SessionHost): void {
    this.inMulti = false;
    this.multiSent = false;
    this.aborted = false;
    this.watching = false;
    host.unpin();
  }
}

/**
 * A blocking command on a connection of its own, released once it is answered; inside a
 * transaction it is queued like any other command (Redis runs it without blocking there).
 */
export function sendBlocking(cmd: Parsed, host: SessionHost): void {
  const route = keysRoute(cmd, host);
  if (route === CROSS) return void host.replyLocal(CROSSSLOT);
  if (route === null) return void host.replyLocal(errorReply("ERR No server available"));
  if (host.pinned !== null) {
    if (host.pinned.id !== route.id) return void host.replyLocal(CROSSSLOT);
    return host.send(whole(cmd, host), route);
  }
  if (!host.pin(route)) return void host.replyLocal(NO_DEDICATED);
  host.send(whole(cmd, host), route);
  host.unpin();
}

/** Keys on several shards. */
const CROSS = Symbol("cross");

/** The one shard every key of the command lives on; null for a keyless command or no live shard. */
function keysRoute(cmd: Parsed, host: SessionHost): Route | null | typeof CROSS {
  const { spec, buf, slots } = cmd;
  const args: number[] = [];
  if (keyPositions(spec.keys, buf, slots, args) < 0) return CROSS;
  let route: Route | null = null;
  for (const arg of args) {
    const here = host.route(buf, slots.argStart[arg], slots.argEnd[arg]);
    if (here === null) return null;
    if (route !== null && route.id !== here.id) return CROSS;
    route = here;
  }
  return route;
}

/** The command as the client sent it, as a request of its own. */
function whole(cmd: Parsed, host: SessionHost) {
  const req = host.newReq(cmd.buf.subarray(cmd.pos, cmd.end), cmd.end - cmd.pos);
  req.command = cmd.spec.name;
  return req;
}

/** The proxy's own command in the client's stream, whose reply the client never sees. */
function dropped(bytes: Uint8Array, host: SessionHost) {
  const req = host.newReq(bytes, 0);
  req.filter = DROP;
  return req;
}
