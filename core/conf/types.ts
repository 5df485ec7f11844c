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

/** A shard: the servers that hold the same slice of keys. Today one primary; replicas later. */
export interface ShardConf {
  readonly primary: ServerConf;
}

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
  /** Shards in config order; the index is the server index used by distributions and vectors. */
  readonly shards: readonly ShardConf[];
}

/** A whole config file. */
export interface Conf {
  readonly file: string;
  readonly pools: readonly PoolConf[];
}
