/**
 * A backend server (the topology's node): its address, role, health, counters and
 * connections - shared ones for every client, and dedicated ones lent to one client at a
 * time (transactions, blocking commands). The connections themselves: server_conn.ts.
 */
import { type Clock, closeError, CloseReason, type Net } from "../net.ts";
import type { ServerConf } from "../conf/types.ts";
import { type PoolCounters, ServerCounters } from "../stats/counters.ts";
import type { Logger } from "../log.ts";
import type { Flusher } from "./flusher.ts";
import type { Req } from "./req.ts";
import type { Protocol } from "./protocol.ts";
import type { FailurePolicy, Health } from "./failure.ts";
import { ServerConn } from "./server_conn.ts";

/**
 * Everything a server needs from its pool. A reload hands surviving servers a new env:
 * timeouts and limits apply at once; a change in how connections are set up (preamble,
 * keepalive, count) replaces the connections gracefully.
 */
export interface ServerEnv {
  readonly net: Net;
  readonly clock: Clock;
  readonly log: Logger;
  readonly flusher: Flusher;
  readonly protocol: Protocol;
  readonly timeout: number | null;
  readonly keepAlive: boolean;
  /** Connections per server (server_connections). */
  readonly connections: number;
  readonly preamble: Uint8Array[];
  /**
   * Write nothing else on a new connection until every preamble reply has come back fine
   * (store migration: the setup may refuse the connection, and no request may run before).
   */
  readonly awaitPreamble: boolean;
  /** Sent after the preamble on a replica's connections (Redis Cluster: READONLY). */
  readonly replicaPreamble: Uint8Array[];
  /** The pool's counters: client requests failed by a broken server connection are its forward errors. */
  readonly poolStats: PoolCounters;
  /** Unanswered request bytes at which a connection is congested: clients sending to it stop being read. */
  readonly queueMark: number;
  readonly policy: FailurePolicy;
  /** Connections of the pool given to one client alone (transactions, blocking commands), and the cap. */
  readonly dedicated: { used: number; max: number };
  /** The pool has replicas: keep each server's reply latency for load-aware reads. */
  readonly loadAware: boolean;
  /** The failure policy just ejected `server`: the pool rebuilds its ring without it. */
  onEjected(server: Server): void;
  /** Observe one answered request (latency and sizes, for metrics); null when nobody reads them. */
  readonly observe: ((server: Server, req: Req, reply: Uint8Array, now: number) => void) | null;
}

/** A server's role in its shard. */
export const Role = { Master: 0, Replica: 1 } as const;
export type Role = typeof Role[keyof typeof Role];

/** Whether a replica may serve reads, or the reason it may not. */
export const ReadState = {
  Eligible: 0,
  /** Not checked yet: no reads until the first check says it is ready. */
  Unchecked: 1,
  /** Its connection failed or it is ejected. */
  Down: 2,
  /** Loading its dataset from disk. */
  Loading: 3,
  /** Its link to the master is down, or a full sync is in progress. */
  LinkDown: 4,
  /** Further behind the master than replica_max_lag. */
  Lagging: 5,
  /** Not a replica of this shard's master (role:master, or it follows another master). */
  NotReplica: 6,
} as const;
export type ReadState = typeof ReadState[keyof typeof ReadState];

/** One backend process (the topology's node): its address, connections, counters and health. */
export class Server implements Health {
  conf: ServerConf;
  env: ServerEnv;
  readonly stats = new ServerCounters();
  conns: ServerConn[] = [];
  /** Master or replica of its shard (a Role code). */
  role: Role = Role.Master;
  /** The id of the shard it serves (a master's own id). */
  shardId: string;
  /** Replicas: whether reads may go here now, or why not (a ReadState code). Masters stay Eligible. */
  readState: ReadState = ReadState.Eligible;
  /** Replicas: bytes of replication offset behind the master at the last check (-1 = unknown). */
  lagBytes = -1;
  /** Replicas: serving reads while the master is down, so possibly stale. */
  stale = false;
  /** Replicas: the latest replica-check round whose master offset this replica has reached. */
  syncedRound = 0;
  /** Moving average of reply latency in ms (0 until the first reply), for load-aware reads. */
  latencyMs = 0;
  /** Reads and writes this server was sent (client requests). */
  reads = 0;
  writes = 0;
  /** Consecutive transport failures (reset by any reply). */
  failures = 0;
  /** Clock ms until which the server is ejected; 0 = live. */
  ejectedUntil = 0;

  constructor(conf: ServerConf, env: ServerEnv) {
    this.conf = conf;
    this.shardId = conf.id;
    this.env = env;
    this.conns = this.makeConns();
  }

  /**
   * Take a reloaded pool's settings, keeping connections and counters. When the way a
   * connection is set up changed (AUTH, SELECT, keepalive, count), new requests go to
   * new connections and the old ones close once they owe no replies.
   */
  adopt(conf: ServerConf, env: ServerEnv): void {
    const old = this.env;
    this.conf = conf;
    this.env = env;
    if (sameSetup(old, env)) return;
    const retired = this.conns;
    this.conns = this.makeConns();
    for (const conn of retired) conn.retire();
  }

  /** Idle connections that served one client alone and may serve another. */
  private spare: ServerConn[] = [];

  /**
   * A connection for one client alone (a transaction, a blocking command): a spare one, or a
   * new one while the pool has fewer than max_dedicated_connections; else null.
   */
  takeDedicated(): ServerConn | null {
    const spare = this.spare.pop();
    if (spare !== undefined) return spare;
    const slots = this.env.dedicated;
    if (slots.used >= slots.max) return null;
    slots.used++;
    return new ServerConn(this, true);
  }

  /** A dedicated connection that owes nothing: kept for the next client (a few), else closed. */
  giveBack(conn: ServerConn): void {
    if (conn.broken) return;
    if (this.spare.length < SPARE_DEDICATED) this.spare.push(conn);
    else conn.close(closeError(CloseReason.ByProxy, "Connection closed by proxy"));
  }

  /** A dedicated connection closed: its slot is free. */
  dedicatedClosed(conn: ServerConn): void {
    this.spare = this.spare.filter((c) => c !== conn);
    conn.env.dedicated.used--;
  }

  /** Requests sent here and not yet answered (the proxy's own probes too), over all connections. */
  get outstanding(): number {
    let n = 0;
    for (const conn of this.conns) n += conn.outstanding;
    return n;
  }

  private makeConns(): ServerConn[] {
    return Array.from({ length: this.env.connections }, () => new ServerConn(this));
  }

  /** The connection for a client: clients are spread over connections but each stays on one (read-your-writes). */
  connFor(clientId: number): ServerConn {
    return this.conns[clientId % this.conns.length];
  }

  /** Open every connection now (preconnect). */
  connectAll(): void {
    for (const conn of this.conns) conn.ensureConnected();
  }

  close(): void {
    for (const conn of [...this.conns, ...this.spare]) conn.close(closeError(CloseReason.ByProxy, "Connection closed by proxy"));
  }

  /** Taken out of its pool: close each connection once it owes no more replies. */
  retire(): void {
    for (const conn of [...this.conns, ...this.spare]) conn.retire();
  }
}

/** Dedicated connections a server keeps idle for reuse. */
const SPARE_DEDICATED = 8;

function sameSetup(a: ServerEnv, b: ServerEnv): boolean {
  return a.keepAlive === b.keepAlive && a.connections === b.connections && a.awaitPreamble === b.awaitPreamble &&
    a.preamble.length === b.preamble.length &&
    a.preamble.every((bytes, i) => sameBytes(bytes, b.preamble[i]));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
