/**
 * The Redis command table: for every command the proxy knows, how it is handled
 * (forwarded by key, split across servers, answered locally, or refused), its arity
 * and where its routing key is. Grouped by argument shape, as twemproxy's nc_redis.c
 * groups them; arities are Redis's (COMMAND INFO), so the proxy rejects exactly what
 * Redis would. Lookup is by the raw bytes of argv[0], case-insensitive, no strings.
 */

import { latin1Bytes, latin1String } from "../bytes.ts";
import { errorReply } from "./encode.ts";
import { type KeySpec, keySpecsOf, namesSeveralKeys } from "./keys.ts";

/** How the proxy handles a command. */
export const Kind = {
  /**
   * Sent whole to the server that owns argv[firstKey] (keyless when firstKey is 0 or >= argc);
   * a command naming several keys (`several`) only when they all live there.
   */
  Forward: 0,
  /** Keys spread over servers: split per server, then merge the replies (MGET, MSET, DEL...). */
  MultiKey: 1,
  /** Answered by the proxy itself (PING, QUIT, AUTH, SELECT, ECHO, COMMAND, CONFIG, HELLO). */
  Local: 2,
  /** Known to Redis but refused by the proxy (no sensible meaning across shards). */
  Unsupported: 3,
  /** MULTI, EXEC, DISCARD, WATCH, UNWATCH: on a server connection of the client's own. */
  Transaction: 4,
  /** Blocking reads (BLPOP, XREAD BLOCK...): on a connection of the client's own while they block. */
  Blocking: 5,
  /** Sent to every shard and merged (SCAN, DBSIZE, KEYS, RANDOMKEY, SCRIPT, FLUSHDB, FLUSHALL). */
  FanOut: 6,
  /** (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE: subscriber connections per shard (redis_pubsub.ts). */
  PubSub: 7,
} as const;


/** One command table entry. */
export interface CommandSpec {
  /** Lower-case canonical name. */
  name: string;
  /** Kind.* */
  kind: number;
  /** Redis arity: positive = exact argc (name included), negative = at least -arity. */
  arity: number;
  /** Index of the argument routed on; 0 if the command has no key. */
  firstKey: number;
  /** MultiKey: 1 when every argument after the name is a key, 2 for key/value pairs (MSET; MSETNX too). */
  keyStep?: number;
  /** EVAL-like: argv[2] is numkeys; the routing key argv[3] exists only when numkeys > 0. */
  eval?: boolean;
  /**
   * True when Redis flags the command `readonly` in COMMAND INFO: a read a replica may serve.
   * Everything else is a write, including EVAL/EVALSHA/FCALL (their `_ro` forms are reads),
   * container commands whose top level Redis leaves unflagged (OBJECT, XINFO), and any
   * command missing from the table (see isReadOnly).
   */
  readonly: boolean;
  /** Where its keys are: Redis's key specs (see keys.ts); empty for a keyless command. */
  keys: readonly KeySpec[];
  /** It may name more than one key: forwarded only when they all live on one server, else -CROSSSLOT. */
  several: boolean;
}

type Group = readonly (readonly [arity: number, names: string])[];

/** Single-key commands: the key is argv[1]. */
const SINGLE_KEY: Group = [
  [2, "dump persist pttl ttl type expiretime pexpiretime decr get getdel incr strlen hgetall hkeys hlen hvals llen scard smembers zcard xlen"],
  [3, "move append decrby getbit getset incrby incrbyfloat setnx hexists hget hstrlen lindex sismember zscore"],
  [4, "getrange psetex setbit setex setrange substr hincrby hincrbyfloat hsetnx lrange lrem lset ltrim zcount zincrby zlexcount zremrangebylex zremrangebyrank zremrangebyscore"],
  [5, "linsert"],
  [-2, "sort sort_ro bitcount bitfield bitfield_ro getex hrandfield lpop rpop spop srandmember pfadd zpopmax zpopmin zrandmember geohash geopos"],
  // zrank/zrevrank: 3 in Redis 7.0, -3 since 7.2 (WITHSCORE); the lenient one is used.
  [-3, "expire expireat pexpire pexpireat bitpos set hdel hmget hscan lpos lpush lpushx rpush rpushx sadd srem smismember sscan zrem zmscore zscan zrank zrevrank xdel xpending xsetid"],
  [-4, "restore hset hmset zadd zrange zrangebylex zrangebyscore zrevrange zrevrangebylex zrevrangebyscore geodist xack xrange xrevrange xtrim"],
  [-5, "geoadd georadiusbymember georadiusbymember_ro xadd"],
  [-6, "georadius georadius_ro xautoclaim xclaim"],
  [-7, "geosearch"],
];

/**
 * Commands naming several keys, routed by the first one (argv[1]) and forwarded whole
 * only when every key lives on that server (else -CROSSSLOT; twemproxy routes them by the
 * first key alone). Where the other keys are comes from keys.ts; so does SORT's and
 * GEORADIUS's STORE destination, though they are listed with the single-key commands.
 */
const FIRST_OF_SEVERAL: Group = [
  [3, "rpoplpush rename renamenx"],
  [4, "smove"],
  [5, "lmove"],
  [-2, "sdiff sinter sunion pfcount pfmerge"],
  [-3, "copy lcs sdiffstore sinterstore sunionstore"],
  [-4, "zdiffstore zinterstore zunionstore"],
  [-5, "zrangestore"],
  [-8, "geosearchstore"],
];

/**
 * Commands whose first key is argv[2]: after numkeys (zdiff, zinter, zunion,
 * sintercard, zintercard, lmpop, zmpop), after a subcommand (object, xinfo, xgroup) or
 * after BITOP's operation.
 * twemproxy routes zdiff/zinter/zunion by argv[1], the numkeys digits; routing by the
 * first real key is what makes hash-tagged keys work, so this table does that.
 */
const SECOND_ARG_KEY: Group = [
  [-2, "object xinfo xgroup"],
  [-3, "zdiff zinter zunion sintercard zintercard"],
  [-4, "lmpop zmpop bitop"],
];

/** MSETNX key value [key value ...]: forwarded whole (it is atomic), its keys on one server. */
const KEY_VALUE_ON_ONE_SERVER: Group = [[-3, "msetnx"]];

/** Scripts: "EVAL script numkeys key...": routed by argv[3] when numkeys > 0. */
const EVAL_LIKE: Group = [[-3, "eval evalsha eval_ro evalsha_ro fcall fcall_ro"]];

/** Keyless commands forwarded to any server (twemproxy has lolwut too). */
const KEYLESS: Group = [[-1, "lolwut"]];

/** Split per server and merged: every argument after the name is a key. */
const MULTI_KEY: Group = [[-2, "mget del unlink exists touch"]];
/** Split per server and merged: key/value pairs. */
const MULTI_KEY_VALUE: Group = [[-3, "mset"]];

/** Answered by the proxy (INFO and CLIENT from the proxy's own state: redis_info.ts, redis_client_cmds.ts). */
const LOCAL: Group = [
  [-1, "ping quit command hello info"],
  [-2, "auth config client"],
  [2, "select echo"],
];

/** Routed by their channel (argv[1]), as a key: publishers meet the channel's subscribers there. */
const PUBLISH: Group = [[3, "publish spublish"]];

/** Subscriptions, on subscriber connections of the client's own. */
const SUBSCRIPTIONS: Group = [
  [-2, "subscribe psubscribe ssubscribe"],
  [-1, "unsubscribe punsubscribe sunsubscribe"],
];

/**
 * Refused with "-ERR unsupported command": function management and server administration
 * (each server's own business: SAVE, SHUTDOWN, CLUSTER, DEBUG, MONITOR...), PUBSUB introspection.
 */
const UNSUPPORTED: Group = [
  [1, "asking bgrewriteaof lastsave monitor pfselftest readonly readwrite reset role save sync time"],
  [3, "pfdebug replicaof slaveof swapdb wait"],
  [4, "waitaof"],
  [-1, "bgsave failover replconf shutdown"],
  [-2, "acl cluster debug function latency memory module pubsub slowlog"],
  [-3, "psync"],
  [-4, "restore-asking"],
  [-6, "migrate"],
];

/**
 * Sent to every shard's master and merged (redis_fanout.ts): SCAN with a composite cursor,
 * DBSIZE summed, KEYS concatenated, RANDOMKEY from a random non-empty server, SCRIPT
 * LOAD/EXISTS/FLUSH, and FLUSHDB/FLUSHALL when the pool sets allow_flush.
 */
const FAN_OUT: Group = [
  [1, "dbsize randomkey"],
  [2, "keys"],
  [-1, "flushall flushdb"],
  [-2, "scan script"],
];

/** Transactions, pinned to one server (see core/proxy/redis_txn.ts). */
const TRANSACTION: Group = [
  [1, "multi exec discard unwatch"],
  [-2, "watch"],
];

/** Blocking commands, grouped by where their first key is (keys.ts knows the rest). */
const BLOCKING_FIRST_ARG: Group = [[-3, "blpop brpop bzpopmax bzpopmin"], [4, "brpoplpush"], [6, "blmove"]];
const BLOCKING_AFTER_NUMKEYS: Group = [[-5, "blmpop bzmpop"]];
const BLOCKING_AFTER_STREAMS: Group = [[-4, "xread"], [-7, "xreadgroup"]];

/**
 * The commands Redis 7 flags `readonly` in COMMAND INFO (refused ones included, so the flag
 * is true to Redis everywhere); a test compares this set with a live redis-server's flags.
 */
const READONLY = new Set(
  `bitcount bitfield_ro bitpos dbsize dump eval_ro evalsha_ro exists expiretime fcall_ro geodist geohash geopos
  georadius_ro georadiusbymember_ro geosearch get getbit getrange hexists hget hgetall hkeys hlen hmget hrandfield
  hscan hstrlen hvals keys lcs lindex llen lolwut lpos lrange mget pexpiretime pfcount pttl randomkey scan scard
  sdiff sinter sintercard sismember smembers smismember sort_ro srandmember sscan strlen substr sunion touch ttl
  type xlen xpending xrange xread xrevrange zcard zcount zdiff zinter zintercard zlexcount zmscore zrandmember
  zrange zrangebylex zrangebyscore zrank zrevrange zrevrangebylex zrevrangebyscore zrevrank zscan zscore zunion`
    .split(/\s+/),
);

const TABLE: CommandSpec[] = [];

function add(group: Group, kind: number, firstKey: number, extra?: Partial<CommandSpec>): void {
  for (const [arity, names] of group) {
    for (const name of names.split(" ")) {
      const keys = keySpecsOf(name, firstKey);
      TABLE.push({ name, kind, arity, firstKey, ...extra, readonly: READONLY.has(name), keys, several: namesSeveralKeys(keys) });
    }
  }
}

add(SINGLE_KEY, Kind.Forward, 1);
add(FIRST_OF_SEVERAL, Kind.Forward, 1);
add(SECOND_ARG_KEY, Kind.Forward, 2);
add(KEY_VALUE_ON_ONE_SERVER, Kind.Forward, 1, { keyStep: 2 });
add(EVAL_LIKE, Kind.Forward, 3, { eval: true });
add(KEYLESS, Kind.Forward, 0);
add(MULTI_KEY, Kind.MultiKey, 1, { keyStep: 1 });
add(MULTI_KEY_VALUE, Kind.MultiKey, 1, { keyStep: 2 });
add(LOCAL, Kind.Local, 0);
add(UNSUPPORTED, Kind.Unsupported, 0);
add(PUBLISH, Kind.Forward, 1);
add(SUBSCRIPTIONS, Kind.PubSub, 0);
add(FAN_OUT, Kind.FanOut, 0);
add(TRANSACTION, Kind.Transaction, 0);
add(BLOCKING_FIRST_ARG, Kind.Blocking, 1);
add(BLOCKING_AFTER_NUMKEYS, Kind.Blocking, 3);
add(BLOCKING_AFTER_STREAMS, Kind.Blocking, 0);

/** Every command in the table. */
export const COMMANDS: readonly CommandSpec[] = TABLE;

for (const name of READONLY) {
  if (!TABLE.some((c) => c.name === name)) throw new Error("readonly command not in the table: " + name);
}

/**
 * True when a replica may serve the command: its spec says readonly. An unknown command
 * (no spec) is a write.
 * @example isReadOnly(lookupCommand(bytes("GET"), 0, 3)) // true
 */
export function isReadOnly(spec: CommandSpec | undefined): boolean {
  return spec !== undefined && spec.readonly;
}

function namesOf(pred: (c: CommandSpec) => boolean): readonly string[] {
  return TABLE.filter(pred).map((c) => c.name).sort();
}

/** Names of the commands the proxy serves (forwarded, split or local), sorted. */
export const SUPPORTED_COMMANDS: readonly string[] = namesOf((c) => c.kind !== Kind.Unsupported);
/** Names of the commands the proxy refuses, sorted. */
export const UNSUPPORTED_COMMANDS: readonly string[] = namesOf((c) => c.kind === Kind.Unsupported);

// Lookup: open addressing on a hash of the lower-cased name bytes, then a byte compare.
const LOWER = new Uint8Array(256);
for (let b = 0; b < 256; b++) LOWER[b] = b >= 0x41 && b <= 0x5a ? b + 32 : b;
const SLOTS = 1024; // > 4x the table, so probes are short
const MAX_NAME = 32;
const slotSpec: (CommandSpec | undefined)[] = new Array(SLOTS);
const slotName: Uint8Array[] = new Array(SLOTS);

function hashName(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ LOWER[buf[i]], 0x01000193);
  return (h >>> 0) & (SLOTS - 1);
}

for (const spec of TABLE) {
  const bytes = latin1Bytes(spec.name);
  let i = hashName(bytes, 0, bytes.length);
  while (slotSpec[i] !== undefined) {
    if (slotSpec[i]!.name === spec.name) throw new Error("duplicate command " + spec.name);
    i = (i + 1) & (SLOTS - 1);
  }
  slotSpec[i] = spec;
  slotName[i] = bytes;
}

function sameName(name: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
  if (name.length !== end - start) return false;
  for (let i = 0; i < name.length; i++) if (name[i] !== LOWER[buf[start + i]]) return false;
  return true;
}

/**
 * The spec of the command named by buf[start, end), case-insensitive; undefined if
 * the name is not in the table.
 * @example lookupCommand(bytes("GeT"), 0, 3)?.name // "get"
 */
export function lookupCommand(buf: Uint8Array, start: number, end: number): CommandSpec | undefined {
  if (end - start > MAX_NAME) return undefined;
  let i = hashName(buf, start, end);
  for (;;) {
    const spec = slotSpec[i];
    if (spec === undefined) return undefined;
    if (sameName(slotName[i], buf, start, end)) return spec;
    i = (i + 1) & (SLOTS - 1);
  }
}

/**
 * True if argc (name included) fits the command's arity; for key/value MultiKey
 * commands (MSET) the pairs must also be complete, as Redis requires.
 */
export function checkArity(spec: CommandSpec, argc: number): boolean {
  const a = spec.arity;
  if (a >= 0 ? argc !== a : argc < -a) return false;
  return spec.keyStep === 2 ? (argc - 1) % 2 === 0 : true;
}

/**
 * Redis's reply to wrong argument counts.
 * @example wrongArityError(get) // "-ERR wrong number of arguments for 'get' command\r\n"
 */
export function wrongArityError(spec: CommandSpec): Uint8Array {
  return errorReply("ERR wrong number of arguments for '" + spec.name + "' command");
}

/**
 * Redis Cluster's reply to a command whose keys live on different servers: the proxy gives
 * it instead of sending the command to one of them.
 */
export const CROSSSLOT_REPLY: Uint8Array = errorReply("CROSSSLOT Keys in request don't hash to the same slot");

/** The proxy's reply to a command it refuses: "-ERR unsupported command 'keys'\r\n". */
export function unsupportedCommandError(spec: CommandSpec): Uint8Array {
  return errorReply("ERR unsupported command '" + spec.name + "'");
}

// Redis prints at most 128 bytes of the name, and of the arguments in total; %s stops at NUL.
function cString(b: Uint8Array, max: number): string {
  const nul = b.indexOf(0);
  return latin1String(b, 0, Math.min(nul < 0 ? b.length : nul, max));
}

/**
 * Redis 7's reply to an unknown command, raw bytes kept:
 * "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n".
 */
export function unknownCommandError(name: Uint8Array, args: readonly Uint8Array[] = []): Uint8Array {
  let list = "";
  for (let i = 0; i < args.length && list.length < 128; i++) {
    list += "'" + cString(args[i], 128 - list.length) + "' ";
  }
  return errorReply("ERR unknown command '" + cString(name, 128) + "', with args beginning with: " + list);
}

/** unknownCommandError for a parsed request: argv[0] is the name, the rest the args. */
export function unknownCommandErrorFor(
  buf: Uint8Array,
  req: { readonly argc: number; readonly argStart: readonly number[]; readonly argEnd: readonly number[] },
): Uint8Array {
  const args: Uint8Array[] = [];
  for (let i = 1; i < req.argc && i <= 128; i++) args.push(buf.subarray(req.argStart[i], req.argEnd[i]));
  return unknownCommandError(buf.subarray(req.argStart[0], req.argEnd[0]), args);
}
