/**
 * The loaded configuration: plain, immutable values. Pools and servers are data, so a
 * reload can build new ones and the proxy can swap a pool's servers at runtime.
 */
import type { Addr } from "../net.ts";

/** One backend line: `host:port:weight [name]` or `/path/sock:weight [name]`. */
export interface ServerConf {
  readonly addr: Addr;
  readonly weight: number;
  /** The optional name after the weight. */
  readonly name: string | null;
  /** Identity on the hash ring and in stats: the name, else "host:port" as written. */
  readonly id: string;
  /** The line as written in the config, for messages. */
  readonly text: string;
}

/**
 * A shard: the servers that hold the same slice of keys. The primary (master) is the
 * `servers:` line and alone decides the shard's place on the ring; its replicas, from
 * `replicas:`, never enter the ring, so adding or removing one moves no key.
 */
export interface ShardConf {
  readonly primary: ServerConf;
  /** In file order; empty when the shard has none. A replica's id is "host:port" as written. */
  readonly replicas: readonly ServerConf[];
}

/**
 * Where a Redis pool sends reads (`read_policy`); writes always go to the master.
 * Stored as this code; READ_POLICIES (replicas.ts) maps the YAML names to it.
 */
export const ReadPolicy = {
  /** `master`: every read to the master (the default: as without replicas). */
  Master: 0,
  /** `prefer_master`: the master; its replicas only while it is down or ejected. */
  PreferMaster: 1,
  /** `replica`: only replicas; an error when none is eligible. */
  Replica: 2,
  /** `prefer_replica`: replicas; the master when none is eligible. */
  PreferReplica: 3,
  /** `any`: the master and replicas alike. */
  Any: 4,
} as const;
export type ReadPolicy = (typeof ReadPolicy)[keyof typeof ReadPolicy];

/**
 * What a reload that changes a pool's ring does with the keys that change owner (`migration`).
 * Stored as this code; MIGRATION_MODES (migration.ts) maps the YAML names to it.
 */
export const MigrationMode = {
  /** `none`: the new ring at once, as twemproxy (the default for redis pools). */
  None: 0,
  /** `cache`: a miss on the new owner falls back to the old one and copies the hit (memcached's default). */
  Cache: 1,
  /** `store`: every key is moved to its new owner; each key has one authoritative server throughout. */
  Store: 2,
} as const;
export type MigrationMode = (typeof MigrationMode)[keyof typeof MigrationMode];

/** One pool, with twemproxy 0.5.0's keys and defaults applied, plus this project's limits. */
export interface PoolConf {
  readonly name: string;
  readonly listen: Addr;
  /** The listen value as written ("127.0.0.1:22121", "/tmp/x.sock 0666"). */
  readonly listenText: string;
  readonly hash: string;
  /** Two bytes (open, close), or null. */
  readonly hashTag: string | null;
  readonly distribution: string;
  /** Milliseconds, or null for "wait forever" (twemproxy's default). */
  readonly timeout: number | null;
  readonly backlog: number;
  readonly preconnect: boolean;
  readonly redis: boolean;
  readonly redisAuth: string | null;
  readonly redisDb: number;
  readonly serverConnections: number;
  readonly autoEjectHosts: boolean;
  readonly serverRetryTimeout: number;
  readonly serverFailureLimit: number;
  readonly tcpkeepalive: boolean;
  /** 0 = unlimited. */
  readonly clientConnections: number;
  /** Requests a client may have awaiting replies before the proxy stops reading it (>= 1). */
  readonly clientMaxInflight: number;
  /** Bytes of a client's requests awaiting replies before the proxy stops reading it (>= 1). */
  readonly clientMaxInflightBytes: number;
  /** Reply bytes not yet taken by a client's socket above which the client is closed (>= 1). */
  readonly clientMaxOutputBytes: number;
  /**
   * Unanswered request bytes on one server connection at which every client sending to it
   * stops being read until the queue is half empty (>= 1).
   */
  readonly serverMaxQueueBytes: number;
  /** FLUSHDB/FLUSHALL are sent to every server (`allow_flush`); else refused. */
  readonly allowFlush: boolean;
  /** Where reads go (`read_policy`): a ReadPolicy code. */
  readonly readPolicy: ReadPolicy;
  /** Bytes of replication offset a replica may trail its master by and still serve reads (>= 0). */
  readonly replicaMaxLag: number;
  /** A client that wrote to a shard reads it from the master until a replica has caught up. */
  readonly readYourWrites: boolean;
  /** Milliseconds between replica eligibility checks (INFO replication polls) (>= 1). */
  readonly replicaCheckInterval: number;
  /** Redis Cluster pools: ms between slot map refreshes. */
  readonly clusterRefreshInterval: number;
  /** Server connections the pool gives to one client alone (transactions, blocking commands). */
  readonly maxDedicatedConnections: number;
  /** Sentinels that name each shard's master (the server's name is the master name); empty: none. */
  readonly sentinels: readonly Addr[];
  /** Password for Sentinels that require AUTH. */
  readonly sentinelAuth: string | null;
  /** What a reload that changes the ring does with moving keys (`migration`): a MigrationMode code. */
  readonly migration: MigrationMode;
  /** Store mode: keys per second the background mover moves (0 = unlimited). */
  readonly migrationRate: number;
  /** Cache mode: ms the old ring is still asked on a miss. */
  readonly migrationWarmup: number;
  /** Shards in config order; the index is the server index used by distributions and vectors. */
  readonly shards: readonly ShardConf[];
}

/** A whole config file. */
export interface Conf {
  readonly file: string;
  readonly pools: readonly PoolConf[];
}
