/**
 * The pool directives of nutcracker.yml, one table entry per key, as twemproxy's
 * conf_commands table: each entry parses the written text and returns the value or
 * twemproxy's error phrase. Hash and distribution names are checked against the very
 * tables the proxy routes with, so adding a hash is one entry there and nothing here.
 */
import { HASHES } from "../hash/mod.ts";
import { DISTRIBUTIONS } from "../dist/mod.ts";
import { atoi, parseListen, parseReplica, parseSentinel, parseServer } from "./addr.ts";
import type { Parsed } from "./addr.ts";
import { parseReadPolicy } from "./replicas.ts";
import { parseMigrationMode } from "./migration.ts";
import { ReadPolicy } from "./types.ts";

/**
 * A directive whose value is one scalar, a list of scalars (only `servers`), or a mapping
 * of names to lists of scalars (only `replicas`); `parse` reads one scalar.
 */
export interface Directive {
  readonly shape: "scalar" | "list" | "map" | "addrs";
  readonly parse: (text: string) => Parsed<unknown>;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(phrase: string): Parsed<T> => ({ ok: false, phrase });

/** conf_set_num: a non-negative integer. */
function parseNum(text: string): Parsed<number> {
  const n = atoi(text);
  return n < 0 ? fail("is not a number") : ok(n);
}

/** `distribution: redis_cluster`: the servers are seed nodes of a Redis Cluster; keys go by its hash slots. */
export const REDIS_CLUSTER = "redis_cluster";

/** The largest request count a limit may be set to (2^31-1, twemproxy's integer ceiling). */
export const MAX_COUNT_LIMIT = 0x7fffffff;
/** The largest byte size a limit may be set to: 2^40 (1 TiB), far above any sane buffer. */
export const MAX_BYTES_LIMIT = 2 ** 40;

/**
 * A limit (not in twemproxy): an integer from 1 (or 0 when `zero` is allowed) to `max`.
 * Digits only, as conf_set_num reads them, so "-1", "1.5", "16mb" are "not a number"; a
 * value over `max` names the maximum.
 */
function parseLimit(max: number, zero = false): (text: string) => Parsed<number> {
  return (text) => {
    if (text.length === 0 || !/^[0-9]+$/.test(text)) return fail("is not a number");
    const n = Number(text);
    if (n === 0 && !zero) return fail("cannot be 0");
    return n > max ? fail(`is greater than the maximum ${max}`) : ok(n);
  };
}

/** conf_set_bool: exactly "true" or "false", nothing YAML would also call a boolean. */
function parseBool(text: string): Parsed<boolean> {
  if (text === "true") return ok(true);
  if (text === "false") return ok(false);
  return fail('is not "true" or "false"');
}

/** conf_set_string: any text; empty means "not set", as twemproxy treats a zero-length auth. */
function parseString(text: string): Parsed<string | null> {
  return ok(text.length === 0 ? null : text);
}

/** conf_set_hashtag: exactly two bytes, the opening and closing delimiters. */
function parseHashTag(text: string): Parsed<string> {
  const bytes = new TextEncoder().encode(text).length;
  return bytes === 2 ? ok(text) : fail("is not a valid hash tag string with two characters");
}

/** A name that must be a key of `table` (HASHES, DISTRIBUTIONS). */
function oneOf(table: object, phrase: string): (text: string) => Parsed<string> {
  return (text) => (Object.hasOwn(table, text) ? ok(text) : fail(phrase));
}

const scalar = (parse: (text: string) => Parsed<unknown>): Directive => ({ shape: "scalar", parse });

/** Every key a pool may have, in twemproxy 0.5.0's order, then this project's own keys. */
export const DIRECTIVES: Readonly<Record<string, Directive>> = {
  listen: scalar(parseListen),
  hash: scalar(oneOf(HASHES, "is not a valid hash")),
  hash_tag: scalar(parseHashTag),
  distribution: scalar(oneOf({ ...DISTRIBUTIONS, [REDIS_CLUSTER]: true }, "is not a valid distribution")),
  timeout: scalar(parseNum),
  backlog: scalar(parseNum),
  client_connections: scalar(parseNum),
  redis: scalar(parseBool),
  tcpkeepalive: scalar(parseBool),
  redis_auth: scalar(parseString),
  redis_db: scalar(parseNum),
  preconnect: scalar(parseBool),
  auto_eject_hosts: scalar(parseBool),
  server_connections: scalar(parseNum),
  server_retry_timeout: scalar(parseNum),
  server_failure_limit: scalar(parseNum),
  client_max_inflight: scalar(parseLimit(MAX_COUNT_LIMIT)),
  client_max_inflight_bytes: scalar(parseLimit(MAX_BYTES_LIMIT)),
  client_max_output_bytes: scalar(parseLimit(MAX_BYTES_LIMIT)),
  server_max_queue_bytes: scalar(parseLimit(MAX_BYTES_LIMIT)),
  allow_flush: scalar(parseBool),
  servers: { shape: "list", parse: parseServer },
  replicas: { shape: "map", parse: parseReplica },
  read_policy: scalar(parseReadPolicy),
  replica_max_lag: scalar(parseLimit(MAX_BYTES_LIMIT, true)),
  read_your_writes: scalar(parseBool),
  replica_check_interval: scalar(parseLimit(MAX_COUNT_LIMIT)),
  max_dedicated_connections: scalar(parseLimit(MAX_COUNT_LIMIT)),
  cluster_refresh_interval: scalar(parseLimit(MAX_COUNT_LIMIT)),
  sentinels: { shape: "addrs", parse: parseSentinel },
  sentinel_auth: scalar(parseString),
  migration: scalar(parseMigrationMode),
  migration_rate: scalar(parseLimit(MAX_COUNT_LIMIT, true)),
  migration_warmup: scalar(parseLimit(MAX_COUNT_LIMIT, true)),
};

/** Keys that mean something only in a redis pool: "is only valid for a redis pool" elsewhere. */
export const REDIS_ONLY: readonly string[] = [
  "allow_flush",
  "read_policy",
  "replica_max_lag",
  "read_your_writes",
  "replica_check_interval",
  "sentinels",
  "sentinel_auth",
  "max_dedicated_connections",
  "cluster_refresh_interval",
];

/**
 * twemproxy 0.5.0's value for each directive left out (listen and servers have none, replicas
 * is none); for this project's limits, the values the proxy used before they were keys.
 */
export const DEFAULTS = {
  hash: "fnv1a_64",
  hash_tag: null,
  distribution: "ketama",
  /** null: wait for a server reply forever. */
  timeout: null,
  backlog: 512,
  client_connections: 0,
  redis: false,
  tcpkeepalive: false,
  redis_auth: null,
  redis_db: 0,
  preconnect: false,
  auto_eject_hosts: false,
  server_connections: 1,
  server_retry_timeout: 30000,
  server_failure_limit: 2,
  /** Requests a client may have awaiting replies before the proxy stops reading it. */
  client_max_inflight: 1024,
  /** Bytes of a client's requests awaiting replies before the proxy stops reading it: 16 MiB. */
  client_max_inflight_bytes: 16 * 1024 * 1024,
  /** Reply bytes a client's socket has not taken, above which the client is closed: 256 MiB. */
  client_max_output_bytes: 256 * 1024 * 1024,
  /** Unanswered request bytes on one server connection that stop its senders being read: 64 MiB. */
  server_max_queue_bytes: 64 * 1024 * 1024,
  /** FLUSHDB and FLUSHALL are refused: one command would empty every server. */
  allow_flush: false,
  /** Reads go to the master, as in a pool without replicas. */
  read_policy: ReadPolicy.Master,
  /** Bytes of replication offset a replica may trail its master by: 1 MiB. */
  replica_max_lag: 1024 * 1024,
  read_your_writes: false,
  /** Milliseconds between replica eligibility checks. */
  replica_check_interval: 1000,
  /** Milliseconds between refreshes of a Redis Cluster's slot map (besides those MOVED asks for). */
  cluster_refresh_interval: 5000,
  /** Server connections given to one client alone (transactions, blocking commands), per pool. */
  max_dedicated_connections: 256,
  /** No Sentinels: the servers' addresses are fixed, as in twemproxy. */
  sentinel_auth: null,
  /** null: by protocol (cache for memcached pools, none for redis pools: twemproxy's behaviour). */
  migration: null,
  /** Keys per second moved in the background (store mode). */
  migration_rate: 5000,
  /** How long cache mode falls back to the old ring: 1 h. */
  migration_warmup: 3_600_000,
} as const;
