/**
 * What the engine needs from a wire protocol (Redis or memcached). The engine moves
 * bytes and keeps order; a Protocol decides what a request means and how to answer.
 */
import type { Req } from "./req.ts";
import type { PoolConf } from "../conf/types.ts";
import type { Shard } from "./topology.ts";
import type { PushLink } from "./pushlink.ts";
import type { Pool } from "./pool.ts";

/** Finds where each server reply ends; resumable across chunks. */
export interface ReplyScanner {
  /** Offset past the reply's end, NEED_MORE (-1, continue with the next chunk at 0) or PARSE_ERROR (-2). */
  scan(buf: Uint8Array, pos: number, kind: number): number;
  error: string;
  reset(): void;
}

/**
 * The engine's services, as seen by a protocol session while it parses a client's bytes.
 * A session never sees the pool: it asks which shard owns a key, and sends requests there.
 */
export interface SessionHost {
  /** Create a request of this client; `clientBytes` is what the client sent for it (its in-flight charge). */
  newReq(bytes: Uint8Array, clientBytes: number): Req;
  /** Answer locally (null = no reply at all), in order with the forwarded requests. */
  replyLocal(bytes: Uint8Array | null): Req;
  /** The shard owning key buf[start, end) under the pool's topology now; null when none is live. */
  route(buf: Uint8Array, start: number, end: number): Route | null;
  /**
   * Send `req` to `route` (null answers "No server available"). A top-level request also
   * takes its place in the client's reply order; a fragment (req.parent set) does not.
   */
  send(req: Req, route: Route | null): void;
  /** A Redis Cluster pool: the hash slot of key buf[start, end); -1 in other pools. */
  slotOf(buf: Uint8Array, start: number, end: number): number;
  /** Every shard of the pool's topology now, in config order (fan-out commands: SCAN, DBSIZE...). */
  shards(): readonly Route[];
  /**
   * Give this client a server connection of its own to `route`'s master (a transaction, a
   * blocking command): requests sent to that shard use it until unpin(). False when the
   * pool's max_dedicated_connections are all in use, or the client is pinned to another shard.
   */
  pin(route: Route): boolean;
  /** Back to the shared connections; the dedicated one is released once it owes no replies. */
  unpin(): void;
  /** The shard this client is pinned to, or null. */
  readonly pinned: Route | null;
  /**
   * A subscriber connection of this client's own to `route`'s shard (pub/sub): messages it
   * receives are written to the client in order with its other replies; `onReconnect` runs
   * when a lost connection was reopened (send the subscriptions again).
   */
  pushLink(route: Route, onReconnect: () => void): PushLink;
  /** Put a request in the client's reply order without sending it (a fragmented parent). */
  enqueue(req: Req): void;
  /** Close the client once every queued reply has been written (QUIT). */
  closeAfterReplies(): void;
  readonly pool: PoolConf;
  /** This client's number in the proxy (CLIENT ID); unique while the proxy runs. */
  readonly id: number;
  /** The client's address: "host:port", or the unix socket path (CLIENT INFO). */
  readonly remote: string;
  /** The proxy as a whole: its version, uptime and pools (INFO). */
  readonly about: ProxyAbout;
}

/** What INFO tells about the proxy: who it is, since when, and its pools now. */
export interface ProxyAbout {
  /** This implementation's version; "" when whoever started the proxy did not say. */
  readonly version: string;
  /** "node", "deno" or "bun". */
  readonly runtime: string;
  /** The process id, when whoever started the proxy passed it (the core cannot read it). */
  readonly pid: number | null;
  /** Clock ms when the proxy started. */
  readonly startedAt: number;
  /** Clock ms now. */
  now(): number;
  /** The pools of the config in force, in its order. */
  readonly pools: readonly Pool[];
}

/** Where a request goes: a shard of the topology it was routed under (opaque to sessions). */
export type Route = Shard;

/** Per-client protocol state: parses requests and turns each into engine calls. */
export interface Session {
  /**
   * Handle one request at buf[pos..]. Returns the offset past it, NEED_MORE (-1), or
   * CLOSE (-3) when the stream cannot be resynchronised (an error was already queued).
   */
  handle(buf: Uint8Array, pos: number, host: SessionHost): number;
  /** After NEED_MORE: bytes needed from `pos` before parsing can progress (0 = unknown). */
  readonly need: number;
  /** The client is gone: release what the session holds (subscriber connections). */
  closed?(): void;
}

export const NEED_MORE = -1;
export const CLOSE = -3;

export interface Protocol {
  readonly name: "redis" | "memcache";
  newSession(pool: PoolConf): Session;
  newScanner(): ReplyScanner;
  /** The reply a client gets when its request fails with `message` ("Connection refused"). */
  errorReply(message: string): Uint8Array;
  /** Requests every new server connection sends first (AUTH, SELECT), with their expected kind. */
  preamble(pool: PoolConf): Uint8Array[];
  /** True when a reply is a protocol-level error (counts toward nothing, but preamble checks use it). */
  isErrorReply(reply: Uint8Array): boolean;
}
