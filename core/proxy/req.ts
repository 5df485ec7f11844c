/**
 * A request in flight. The client keeps its requests in arrival order and writes
 * each reply only when every earlier request is answered; a multi-key request
 * owns fragments, each sent to one server and merged when the last one returns.
 */

import type { Server } from "./server.ts";
import type { Shard } from "./topology.ts";

/** What receives a finished request: the client that sent it, or the server conn for its own preamble. */
export interface ReqOwner {
  reqDone(req: Req): void;
}

/**
 * Sees a reply before the request is finished, for requests sent to a shard with replicas
 * (Req.shard set): may send the request again elsewhere (returns true: not finished yet).
 */
export interface ReplyGuard {
  beforeFinish(req: Req, reply: Uint8Array | null, transportFailed: boolean): boolean;
}

/** Builds a parent's reply from its answered fragments. */
export type MergeFn = (parent: Req) => Uint8Array;

/** Decides, from the server's reply, whether the client sees it (memcached noreply / meta quiet). */
export type ReplyFilter = (reply: Uint8Array) => boolean;

export class Req {
  owner: ReqOwner | null;
  /** Bytes to send to the server (the client's original bytes when unchanged). */
  bytes: Uint8Array;
  /** The reply for the client; null with done=true means "send nothing". */
  reply: Uint8Array | null = null;
  done = false;
  /** Protocol-specific reply shape, used by the memcached reply scanner. */
  kind = 0;
  /** Bytes the client sent for this request, counted against its in-flight limit. */
  clientBytes = 0;
  /** Lower-case command name, for per-command metrics. */
  command = "";
  /** A read (Redis flags the command readonly): a replica may serve it. */
  read = false;
  /** Where it was sent, when its shard has replicas (else null: nothing to retry or fence). */
  shard: Shard | null = null;
  node: Server | null = null;
  /**
   * Memcached copies: what each replica of the shard is sent besides the master (the same
   * bytes for a write; a delete for a cas, whose value the copies cannot check), or null.
   */
  copy: Uint8Array | null = null;
  copyKind = 0;
  /** Redis Cluster redirections followed so far (bounded, so a confused map cannot loop). */
  redirects = 0;
  /** Redis Cluster: times it was held for a node to come back or a failover to end, and until when (clock ms). */
  holds = 0;
  holdUntil = 0;
  /** Failed on a connection that never connected: the server never saw it (safe to send again). */
  unsent = false;
  /** Reads are sent again at most once. */
  retried = false;
  guard: ReplyGuard | null = null;
  /** The proxy's own request (AUTH/SELECT preamble, replica probes): not a client's, not in the stats. */
  internal = false;
  /** When it was handed to a server connection (clock ms), for timeouts and latency. */
  sentAt = 0;
  filter: ReplyFilter | null = null;
  /**
   * Sent right after this request, as the proxy's own (memcached `mn` after a quiet meta
   * request): its reply marks where this request's possibly empty reply ends.
   */
  trailer: Uint8Array | null = null;
  trailerKind = 0;

  parent: Req | null = null;
  frags: Req[] | null = null;
  fragsLeft = 0;
  merge: MergeFn | null = null;
  /** Keys this fragment carries, in the parent's key order (memcached multi-get merge). */
  fragKeys: number[] | null = null;

  constructor(owner: ReqOwner | null, bytes: Uint8Array) {
    this.owner = owner;
    this.bytes = bytes;
  }

  /** Record the answer and tell whoever waits for it. `transportFailed`: the connection failed it. */
  finish(reply: Uint8Array | null, transportFailed = false): void {
    if (this.done) return;
    if (this.guard !== null && this.guard.beforeFinish(this, reply, transportFailed)) return;
    this.done = true;
    this.reply = this.filter !== null && reply !== null && !this.filter(reply) ? null : reply;
    const parent = this.parent;
    if (parent !== null) return fragmentDone(parent);
    if (this.owner !== null) this.owner.reqDone(this);
  }
}

function fragmentDone(parent: Req): void {
  parent.fragsLeft--;
  if (parent.fragsLeft > 0) return;
  parent.finish(parent.merge!(parent));
}
