/**
 * nutcracker.yml text -> validated, frozen Conf. Follows twemproxy 0.5.0's order:
 * read every pool's directives through the DIRECTIVES table (first bad value wins),
 * then check each pool (listen present, servers present and unique, replicas against
 * the servers, ...), then the pools against each other. Every error names file, line,
 * pool and key.
 */
import { type Addr, formatAddr } from "../net.ts";
import { type Conf, MigrationMode, type PoolConf, type ReadPolicy, type ServerConf } from "./types.ts";
import { defaultMigration } from "./migration.ts";
import { addrKey } from "./addr.ts";
import type { ListenValue } from "./addr.ts";
import { DEFAULTS, DIRECTIVES, REDIS_CLUSTER, REDIS_ONLY } from "./directives.ts";
import { checkReplicas, readReplicas } from "./replicas.ts";
import type { ReplicaGroup, ServerEntry } from "./replicas.ts";
import { Reporter } from "./report.ts";
import { parseYaml, YamlSyntaxError } from "./yaml.ts";
import type { YMap, YNode, YScalar } from "./yaml.ts";

export { ConfError } from "./report.ts";

/** A directive value as read, with where it was written. */
interface Setting {
  readonly value: unknown;
  readonly text: string;
  readonly line: number;
}

/** One pool between reading and checking. */
interface PoolDraft {
  readonly name: string;
  readonly line: number;
  readonly settings: Map<string, Setting>;
  readonly servers: ServerEntry[];
  readonly replicas: ReplicaGroup[];
  readonly sentinels: { readonly addr: Addr; readonly line: number }[];
  /** The line of the `sentinels:` key, once read. */
  sentinelsLine: number;
}

/**
 * Parse and validate a nutcracker.yml. `file` is only used in messages.
 * Throws ConfError.
 * @example loadConf("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n    - 127.0.0.1:6379:1\n", "a.yml")
 */
export function loadConf(text: string, file: string): Conf {
  const report = new Reporter(file);
  const root = parseRoot(text, report);
  const drafts = readPools(root, report);
  const pools = drafts.map((draft) => checkPool(draft, report));
  checkListenUnique(drafts, pools, report);
  return deepFreeze({ file, pools });
}

function parseRoot(text: string, report: Reporter): YMap {
  let root: YNode | null;
  try {
    root = parseYaml(text);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw report.whole(err.line, err.message);
    throw err;
  }
  if (root === null) throw report.whole(1, "has no pools");
  if (root.kind !== "map") {
    throw report.whole(root.line, "the top level must map pool names to their settings");
  }
  if (root.pairs.length === 0) throw report.whole(root.line, "has no pools");
  return root;
}

function readPools(root: YMap, report: Reporter): PoolDraft[] {
  const seen = new Map<string, number>();
  const drafts: PoolDraft[] = [];
  for (const { key, value } of root.pairs) {
    const name = key.value;
    if (name.length === 0) throw report.whole(key.line, "a pool has an empty name");
    const first = seen.get(name);
    if (first !== undefined) throw report.pool(name, key.line, `is a duplicate of the pool on line ${first}`);
    seen.set(name, key.line);
    if (value.kind !== "map") {
      throw report.pool(name, key.line, 'settings must be a mapping of "key: value" lines');
    }
    drafts.push(readPool(name, key, value, report));
  }
  return drafts;
}

function readPool(name: string, nameKey: YScalar, body: YMap, report: Reporter): PoolDraft {
  const draft: PoolDraft = { name, line: nameKey.line, settings: new Map(), servers: [], replicas: [], sentinels: [], sentinelsLine: 0 };
  const seenLines = new Map<string, number>();
  for (const { key, value } of body.pairs) {
    const directive = Object.hasOwn(DIRECTIVES, key.value) ? DIRECTIVES[key.value] : undefined;
    if (directive === undefined) throw report.key(name, key.line, key.value, null, "is unknown");
    const first = seenLines.get(key.value);
    if (first !== undefined) {
      throw report.key(name, key.line, key.value, null, `is a duplicate (first set on line ${first})`);
    }
    seenLines.set(key.value, key.line);
    if (directive.shape === "list") readServers(draft, key, value, report);
    else if (directive.shape === "map") draft.replicas.push(...readReplicas(name, key, value, report));
    else if (directive.shape === "addrs") readSentinels(draft, key, value, report);
    else readScalar(draft, key, value, report);
  }
  return draft;
}

function readScalar(draft: PoolDraft, key: YScalar, value: YNode, report: Reporter): void {
  if (value.kind !== "scalar") throw report.key(draft.name, key.line, key.value, null, "is not a valid string");
  const parsed = DIRECTIVES[key.value].parse(value.value);
  if (!parsed.ok) throw report.key(draft.name, key.line, key.value, value.value, parsed.phrase);
  draft.settings.set(key.value, { value: parsed.value, text: value.value, line: key.line });
}

function readServers(draft: PoolDraft, key: YScalar, value: YNode, report: Reporter): void {
  if (value.kind !== "seq") {
    throw report.key(draft.name, key.line, key.value, null, 'must be a list of "host:port:weight [name]" entries');
  }
  for (const item of value.items) {
    if (item.kind !== "scalar") throw report.key(draft.name, item.line, key.value, null, "entry is not a valid string");
    const parsed = DIRECTIVES.servers.parse(item.value);
    if (!parsed.ok) throw report.key(draft.name, item.line, key.value, item.value, parsed.phrase);
    draft.servers.push({ server: parsed.value as ServerConf, line: item.line });
  }
}

function readSentinels(draft: PoolDraft, key: YScalar, value: YNode, report: Reporter): void {
  if (value.kind !== "seq") throw report.key(draft.name, key.line, key.value, null, 'must be a list of "host:port" entries');
  draft.sentinelsLine = key.line;
  for (const item of value.items) {
    if (item.kind !== "scalar") throw report.key(draft.name, item.line, key.value, null, "entry is not a valid string");
    const parsed = DIRECTIVES.sentinels.parse(item.value);
    if (!parsed.ok) throw report.key(draft.name, item.line, key.value, item.value, parsed.phrase);
    draft.sentinels.push({ addr: parsed.value as Addr, line: item.line });
  }
}

/** With Sentinels, a server's name is the Sentinel master name: every server needs one. */
function checkSentinelNames(draft: PoolDraft, report: Reporter): void {
  if (draft.sentinels.length === 0) return;
  for (const { server, line } of draft.servers) {
    if (server.name === null) {
      throw report.key(draft.name, line, "servers", server.text, "has no name, but a pool with sentinels needs the Sentinel master name of every server");
    }
  }
}

/** The value of a directive, or twemproxy's default. */
function setting<K extends keyof typeof DEFAULTS>(draft: PoolDraft, key: K): unknown {
  const found = draft.settings.get(key);
  return found === undefined ? DEFAULTS[key] : found.value;
}

function checkPool(draft: PoolDraft, report: Reporter): PoolConf {
  const listen = draft.settings.get("listen");
  if (listen === undefined) throw report.key(draft.name, draft.line, "listen", null, "is missing");
  if (draft.servers.length === 0) throw report.key(draft.name, draft.line, "servers", null, "is missing");
  const conns = draft.settings.get("server_connections");
  if (conns !== undefined && conns.value === 0) {
    throw report.key(draft.name, conns.line, "server_connections", conns.text, "cannot be 0");
  }
  const auth = draft.settings.get("redis_auth");
  if (auth !== undefined && auth.value !== null && setting(draft, "redis") !== true) {
    throw report.key(draft.name, auth.line, "redis_auth", null, "is only valid for a redis pool");
  }
  checkRedisOnly(draft, report);
  checkCluster(draft, report);
  checkMigration(draft, report);
  checkServersUnique(draft, report);
  checkSentinelNames(draft, report);
  const replicas = checkReplicas(draft.name, draft.replicas, draft.servers, report);
  return buildPool(draft, listen.value as ListenValue, replicas);
}

/** A Redis Cluster fixes the hash, the hash tag and the db (0): setting them is an error. */
function checkCluster(draft: PoolDraft, report: Reporter): void {
  const dist = draft.settings.get("distribution");
  if (dist === undefined || dist.value !== REDIS_CLUSTER) return;
  if (setting(draft, "redis") !== true) {
    throw report.key(draft.name, dist.line, "distribution", dist.text, "is only valid for a redis pool");
  }
  for (const key of ["hash", "hash_tag"]) {
    const found = draft.settings.get(key);
    if (found !== undefined) {
      throw report.key(draft.name, found.line, key, found.text, "cannot be set with distribution redis_cluster: the cluster's hash slots decide (CRC16, {hash tags})");
    }
  }
  const db = draft.settings.get("redis_db");
  if (db !== undefined && db.value !== 0) {
    throw report.key(draft.name, db.line, "redis_db", db.text, "must be 0 with distribution redis_cluster: a cluster has only db 0");
  }
}

/** Store mode needs Redis (MIGRATE); a Redis Cluster moves its slots itself. */
function checkMigration(draft: PoolDraft, report: Reporter): void {
  const found = draft.settings.get("migration");
  if (found === undefined || found.value === MigrationMode.None) return;
  if (found.value === MigrationMode.Store && setting(draft, "redis") !== true) {
    throw report.key(draft.name, found.line, "migration", found.text, "is only valid for a redis pool (store moves keys with MIGRATE)");
  }
  if (setting(draft, "distribution") === REDIS_CLUSTER) {
    throw report.key(draft.name, found.line, "migration", found.text, "cannot be set with distribution redis_cluster: the cluster moves its slots itself");
  }
}

/** The replica read keys (REDIS_ONLY) set in a memcached pool: refused, as redis_auth is. */
function checkRedisOnly(draft: PoolDraft, report: Reporter): void {
  if (setting(draft, "redis") === true) return;
  if (draft.sentinelsLine > 0) throw report.key(draft.name, draft.sentinelsLine, "sentinels", null, "is only valid for a redis pool");
  for (const key of REDIS_ONLY) {
    const found = draft.settings.get(key);
    if (found !== undefined) throw report.key(draft.name, found.line, key, null, "is only valid for a redis pool");
  }
}

/** twemproxy refuses two servers with the same name; we also refuse two with the same address. */
function checkServersUnique(draft: PoolDraft, report: Reporter): void {
  const byId = new Map<string, number>();
  const byAddr = new Map<string, number>();
  for (const { server, line } of draft.servers) {
    const addr = addrKey(server.addr);
    const sameName = byId.get(server.id);
    const sameAddr = byAddr.get(addr);
    if (sameName !== undefined) {
      throw report.key(draft.name, line, "servers", server.text,
        `is a duplicate of line ${sameName} (same name '${server.id}')`);
    }
    if (sameAddr !== undefined) {
      throw report.key(draft.name, line, "servers", server.text,
        `is a duplicate of line ${sameAddr} (same address '${formatAddr(server.addr)}')`);
    }
    byId.set(server.id, line);
    byAddr.set(addr, line);
  }
}

function checkListenUnique(drafts: PoolDraft[], pools: PoolConf[], report: Reporter): void {
  const seen = new Map<string, PoolDraft>();
  pools.forEach((pool, i) => {
    const key = addrKey(pool.listen);
    const other = seen.get(key);
    if (other !== undefined) {
      const line = drafts[i].settings.get("listen")?.line ?? drafts[i].line;
      throw report.key(pool.name, line, "listen", pool.listenText,
        `is a duplicate of pool '${other.name}' (line ${other.settings.get("listen")?.line ?? other.line})`);
    }
    seen.set(key, drafts[i]);
  });
}

function buildPool(draft: PoolDraft, listen: ListenValue, replicas: readonly ServerConf[][]): PoolConf {
  const timeout = setting(draft, "timeout") as number | null;
  return {
    name: draft.name,
    listen: listen.addr,
    listenText: listen.text,
    hash: setting(draft, "hash") as string,
    hashTag: setting(draft, "hash_tag") as string | null,
    distribution: setting(draft, "distribution") as string,
    // twemproxy arms no timer for a timeout of 0, the same as leaving it out.
    timeout: timeout === 0 ? null : timeout,
    backlog: setting(draft, "backlog") as number,
    preconnect: setting(draft, "preconnect") as boolean,
    redis: setting(draft, "redis") as boolean,
    redisAuth: setting(draft, "redis_auth") as string | null,
    redisDb: setting(draft, "redis_db") as number,
    serverConnections: setting(draft, "server_connections") as number,
    autoEjectHosts: setting(draft, "auto_eject_hosts") as boolean,
    serverRetryTimeout: setting(draft, "server_retry_timeout") as number,
    serverFailureLimit: setting(draft, "server_failure_limit") as number,
    tcpkeepalive: setting(draft, "tcpkeepalive") as boolean,
    clientConnections: setting(draft, "client_connections") as number,
    clientMaxInflight: setting(draft, "client_max_inflight") as number,
    clientMaxInflightBytes: setting(draft, "client_max_inflight_bytes") as number,
    clientMaxOutputBytes: setting(draft, "client_max_output_bytes") as number,
    serverMaxQueueBytes: setting(draft, "server_max_queue_bytes") as number,
    allowFlush: setting(draft, "allow_flush") as boolean,
    readPolicy: setting(draft, "read_policy") as ReadPolicy,
    replicaMaxLag: setting(draft, "replica_max_lag") as number,
    readYourWrites: setting(draft, "read_your_writes") as boolean,
    replicaCheckInterval: setting(draft, "replica_check_interval") as number,
    maxDedicatedConnections: setting(draft, "max_dedicated_connections") as number,
    clusterRefreshInterval: setting(draft, "cluster_refresh_interval") as number,
    sentinels: draft.sentinels.map((s) => s.addr),
    sentinelAuth: setting(draft, "sentinel_auth") as string | null,
    migration: (setting(draft, "migration") as MigrationMode | null) ?? defaultMigration(setting(draft, "redis") as boolean),
    migrationRate: setting(draft, "migration_rate") as number,
    migrationWarmup: setting(draft, "migration_warmup") as number,
    shards: draft.servers.map(({ server }, i) => ({ primary: server, replicas: replicas[i] })),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
