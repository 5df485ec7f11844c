/**
 * The Redis protocol for the engine: a per-client session that parses requests,
 * answers the proxy's own commands, forwards single-key commands as their original
 * bytes (a command naming several keys only when they share a server: else -CROSSSLOT),
 * splits multi-key commands per server (redis_frag.ts) and sends keyspace-wide ones to
 * every server (redis_fanout.ts).
 */
import type { PoolConf } from "../conf/types.ts";
import {
  checkArity,
  type CommandSpec,
  CROSSSLOT_REPLY,
  encodeCommand,
  encodeCommandParts,
  errorReply,
  isError,
  keyPositions,
  Kind,
  lookupCommand,
  NEED_MORE as PARSE_NEED_MORE,
  PARSE_ERROR,
  parseRequest,
  ReplyScanner,
  RequestSlots,
  unknownCommandErrorFor,
  unsupportedCommandError,
  wrongArityError,
} from "../redis/mod.ts";
import { CLOSE, NEED_MORE, type Protocol, type Session, type SessionHost } from "./protocol.ts";
import { LOCAL_COMMANDS } from "./redis_local.ts";
import { fragmentMultiKey } from "./redis_frag.ts";
import { argBytes, argInt } from "./redis_args.ts";
import { FAN_OUT_COMMANDS } from "./redis_fanout.ts";
import { sendBlocking, Transaction } from "./redis_txn.ts";
import { notInSubscribedMode, PubSub, SUBSCRIBED_MODE_COMMANDS } from "./redis_pubsub.ts";

const encoder = new TextEncoder();

export class RedisSession implements Session {
  need = 0;
  /** True once AUTH succeeded, or when the pool has no redis_auth. */
  authed: boolean;
  readonly slots = new RequestSlots();
  /** CLIENT SETNAME's name; null when none is set (or it was set to ""). */
  clientName: Uint8Array | null = null;
  /** MULTI/EXEC and WATCH state (see redis_txn.ts), once the client used any of them: most never do. */
  private txn: Transaction | null = null;
  /** Subscriptions, once the client subscribed to anything (redis_pubsub.ts). */
  private pubsub: PubSub | null = null;

  constructor(pool: PoolConf) {
    this.authed = pool.redisAuth === null;
  }

  closed(): void {
    this.pubsub?.close();
  }

  handle(buf: Uint8Array, pos: number, host: SessionHost): number {
    const slots = this.slots;
    const end = parseRequest(buf, pos, slots);
    if (end === PARSE_NEED_MORE) {
      this.need = slots.need;
      return NEED_MORE;
    }
    if (end === PARSE_ERROR) {
      host.replyLocal(errorReply(slots.error));
      return slots.resync < 0 ? CLOSE : slots.resync;
    }
    if (slots.argc === 0) return end;
    if (slots.inline) this.handleInline(host);
    else this.dispatch(buf, pos, end, host);
    return end;
  }

  /** Inline commands ("get foo" typed in telnet) become multibulk, then take the normal path. */
  private handleInline(host: SessionHost): void {
    const slots = this.slots;
    const all: number[] = [];
    for (let i = 0; i < slots.argc; i++) all.push(i);
    const encoded = encodeCommandParts(NO_HEAD, slots.argBuf, slots.argStart, slots.argEnd, all);
    parseRequest(encoded, 0, slots);
    this.dispatch(encoded, 0, encoded.length, host);
  }

  private dispatch(buf: Uint8Array, pos: number, end: number, host: SessionHost): void {
    const slots = this.slots;
    const spec = lookupCommand(buf, slots.argStart[0], slots.argEnd[0]);
    if (spec === undefined) return void host.replyLocal(unknownCommandErrorFor(buf, slots));
    if (!checkArity(spec, slots.argc)) return void host.replyLocal(wrongArityError(spec));
    if (!this.authed && !PRE_AUTH.has(spec.name)) {
      return void host.replyLocal(NOAUTH);
    }
    if (this.pubsub?.active === true && !SUBSCRIBED_MODE_COMMANDS.has(spec.name)) {
      return void host.replyLocal(notInSubscribedMode(spec.name));
    }
    if (spec.kind === Kind.PubSub) return (this.pubsub ??= new PubSub()).handle(spec.name, buf, slots, host);
    if (spec.name === "ping" && this.pubsub?.active === true) {
      return void host.replyLocal(this.pubsub.pong(slots.argc > 1 ? argBytes(buf, slots, 1) : null));
    }
    if (spec.kind === Kind.Transaction) return (this.txn ??= new Transaction()).control({ spec, buf, slots, pos, end }, host);
    const multi = this.txn?.inMulti === true ? this.txn : null;
    if (multi !== null && queuedInMulti(spec)) return multi.queue({ spec, buf, slots, pos, end }, host);
    if (spec.kind === Kind.Local) return LOCAL_COMMANDS[spec.name](this, buf, host);
    if (spec.kind === Kind.Unsupported) {
      // Refused while queueing: as Redis does for a rejected command, EXEC will abort.
      if (multi !== null) return multi.refuse(host, unsupportedCommandError(spec));
      return void host.replyLocal(unsupportedCommandError(spec));
    }
    if (spec.kind === Kind.Blocking) return sendBlocking({ spec, buf, slots, pos, end }, host);
    if (spec.kind === Kind.MultiKey && fragmentMultiKey(spec, buf, slots, end - pos, host)) return;
    if (spec.kind === Kind.FanOut) {
      // Every server at once has no place in one server's transaction.
      if (multi !== null) return multi.refuse(host, FAN_OUT_IN_MULTI);
      return FAN_OUT_COMMANDS[spec.name](this, buf, pos, end, host);
    }
    this.forwardByKey(spec, buf, pos, end, host);
  }

  private forwardByKey(spec: CommandSpec, buf: Uint8Array, pos: number, end: number, host: SessionHost): void {
    const slots = this.slots;
    let keyArg = spec.firstKey;
    if (spec.eval === true) {
      if (argInt(buf, slots, 2) < 1) return void host.replyLocal(EVAL_NO_KEYS);
      keyArg = 3;
    }
    if (spec.several && !keysOnOneShard(spec, buf, slots, host, KEY_ARGS)) return void host.replyLocal(CROSSSLOT_REPLY);
    const req = host.newReq(buf.subarray(pos, end), end - pos);
    req.command = spec.name;
    req.read = spec.readonly;
    // Keyless forms (LOLWUT, OBJECT HELP) route as the empty key: always the same server.
    if (keyArg === 0 || keyArg >= slots.argc) return host.send(req, host.route(buf, pos, pos));
    host.send(req, host.route(buf, slots.argStart[keyArg], slots.argEnd[keyArg]));
  }
}

/**
 * Inside MULTI, what the server queues: forwarded and split commands go whole to the
 * transaction's server, and so do PING and ECHO, whose answers belong in EXEC's reply.
 */
function queuedInMulti(spec: CommandSpec): boolean {
  return spec.kind === Kind.Forward || spec.kind === Kind.MultiKey || spec.kind === Kind.Blocking ||
    spec.name === "ping" || spec.name === "echo";
}

/**
 * True when every key of the request lives on one shard (or it names fewer than two, or its
 * numkeys is not valid: then the server answers with Redis's own error).
 */
export function keysOnOneShard(
  spec: CommandSpec, buf: Uint8Array, slots: RequestSlots, host: SessionHost, scratch: number[],
): boolean {
  const count = keyPositions(spec.keys, buf, slots, scratch);
  if (count < 2) return true;
  // In a Redis Cluster the unit is the hash slot: a node refuses keys of two slots.
  const where = (k: number) => {
    const [start, end] = [slots.argStart[scratch[k]], slots.argEnd[scratch[k]]];
    const slot = host.slotOf(buf, start, end);
    return slot >= 0 ? slot : host.route(buf, start, end);
  };
  const first = where(0);
  for (let k = 1; k < count; k++) if (where(k) !== first) return false;
  return true;
}

/** Scratch for the argument numbers of a request's keys (keysOnOneShard): used and done within one call. */
const KEY_ARGS: number[] = [];
/** Commands a client may send before AUTH, as with Redis. */
const PRE_AUTH = new Set(["auth", "quit", "hello"]);
const NOAUTH = errorReply("NOAUTH Authentication required.");
const NO_HEAD: Uint8Array[] = [];
const EVAL_NO_KEYS = errorReply("ERR EVAL/EVALSHA with no keys cannot be routed by the proxy");
const FAN_OUT_IN_MULTI = errorReply("ERR a command sent to every server cannot be part of a transaction");

export const redisProtocol: Protocol = {
  name: "redis",
  newSession: (pool) => new RedisSession(pool),
  newScanner: () => new ReplyScanner(),
  errorReply: (message) => errorReply(`ERR ${message}`),
  preamble(pool) {
    const out: Uint8Array[] = [];
    if (pool.redisAuth !== null) out.push(encodeCommand([encoder.encode("AUTH"), encoder.encode(pool.redisAuth)]));
    if (pool.redisDb !== 0) out.push(encodeCommand([encoder.encode("SELECT"), encoder.encode(String(pool.redisDb))]));
    return out;
  },
  isErrorReply: (reply) => isError(reply),
};
