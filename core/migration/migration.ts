/**
 * One pool's migration from an old ring to a new one. While it runs the pool keeps both
 * rings: a key whose owner differs between them is *moving*, decided per key (ketama moves
 * some keys between old servers too). Requests for moving keys go through forward(); the
 * others are routed as usual by the new ring.
 *
 * cache: reads go to the new owner and, on a miss, copy the value (with its TTL) from the old
 *   owner; writes go to the new owner and delete the key on the old one. Ends after the warmup.
 * store: every request first runs the per-key rule on the old owner (store.ts), and a
 *   background mover SCANs each old server and moves its moving keys at `migration_rate`.
 *   Ends when every old server was scanned through and no big key is left behind.
 */
import type { Clock } from "../net.ts";
import type { Logger } from "../log.ts";
import { MigrationMode, type PoolConf } from "../conf/types.ts";
import { migrationModeName } from "../conf/migration.ts";
import { McCmd } from "../memcache/request.ts";
import { isErrorReply as isMcError, splitValues } from "../memcache/reply.ts";
import { errorReply } from "../redis/encode.ts";
import type { Req, ReplyGuard } from "../proxy/req.ts";
import type { Server } from "../proxy/server.ts";
import type { Shard, Topology } from "../proxy/topology.ts";
import { type CacheCopier, memcacheCopier, redisCopier } from "./copy.ts";
import { memcacheKeys, redisRequest } from "./keys.ts";
import { type MoveTarget, settle, type Settled, Target } from "./store.ts";
import { lockKey } from "./chunks.ts";
import { MOVER_PHASE_NAMES, Mover } from "./mover.ts";
import { goMarker, ringId } from "./coordination.ts";

export const MigrationPhase = {
  /** Moving keys (store) or warming the new ring up (cache). */
  Moving: 0,
  /** store: the background mover waits; requests still follow the per-key rule. */
  Paused: 1,
  /** Finished: the pool has one ring again. */
  Done: 2,
} as const;
export type MigrationPhase = (typeof MigrationPhase)[keyof typeof MigrationPhase];

const PHASE_NAMES: Record<MigrationPhase, string> = { 0: "moving", 1: "paused", 2: "done" };

/** Everything a migration needs from its pool. */
export interface MigrationDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /** The pool's config now (for the mode, rate, warmup, db, auth, timeout). */
  readonly conf: PoolConf;
  /** The ring keys leave, and the ring they go to. */
  readonly from: Topology;
  readonly to: Topology;
  /** Moving back to the old ring after an abort. */
  readonly reverse: boolean;
  /** Called once when it is done: the pool keeps `to` as its only ring. */
  readonly onDone: () => void;
  /** This proxy's identity among the proxies of the pool (store mode's mover lease). */
  readonly proxyId: string;
}

/** The client a request of a moving key comes from: its id picks connections; sendTo forwards in its order. */
export interface MigrationClient {
  readonly id: number;
  sendTo(req: Req, node: Server): void;
}

export class Migration {
  phase: MigrationPhase = MigrationPhase.Moving;
  readonly mode: MigrationMode;
  readonly from: Topology;
  readonly to: Topology;
  readonly reverse: boolean;
  readonly startedAt: number;
  finishedAt = 0;
  /** Foreground counters: what requests for moving keys did. */
  readonly counts = { requests: 0, fallbackHits: 0, fallbackMisses: 0, copied: 0, removedOld: 0, servedOld: 0, refused: 0, errors: 0 };
  lastError: string | null = null;
  private readonly deps: MigrationDeps;
  private readonly copier: CacheCopier;
  /** One route object per (old owner, new owner) pair, so multi-key requests group by pair. */
  private readonly pairs = new Map<Shard, Map<Shard, Shard>>();
  /** store: the background mover (driving or following another proxy's). */
  private readonly mover: Mover | null;
  /** The rings' identities (connection names, the go marker). */
  readonly fromId: string;
  readonly toId: string;
  private timer: unknown = null;
  private logTimer: unknown = null;

  constructor(deps: MigrationDeps) {
    this.deps = deps;
    this.mode = deps.conf.migration;
    this.from = deps.from;
    this.to = deps.to;
    this.reverse = deps.reverse;
    this.startedAt = deps.clock.now();
    this.copier = deps.conf.redis ? redisCopier : memcacheCopier;
    this.fromId = ringId(deps.from.conf);
    this.toId = ringId(deps.to.conf);
    this.mover = this.mode === MigrationMode.Store ? this.makeMover() : null;
  }

  private makeMover(): Mover {
    const deps = this.deps;
    return new Mover({
      clock: deps.clock,
      pool: deps.conf.name,
      from: deps.from,
      to: deps.to,
      fromId: this.fromId,
      toId: this.toId,
      proxyId: deps.proxyId,
      rate: () => deps.conf.migrationRate,
      target: (to) => this.targetOf(to),
      fromServers: deps.from.conf.shards.map((s) => s.primary.text),
      failed: (message) => this.failed(message),
      notice: (message) => this.log(message),
      onDone: () => this.complete(),
    });
  }

  get name(): string {
    return this.deps.conf.name;
  }

  /** Begin: the warmup timer (cache) or the background mover (store). */
  start(): void {
    this.log(`${migrationModeName(this.mode)} migration ${this.reverse ? "back to the old ring (abort)" : "to the new ring"} started`);
    this.logEvery();
    if (this.mover !== null) return this.mover.start();
    this.timer = this.deps.clock.setTimer(() => this.complete(), this.deps.conf.migrationWarmup);
  }

  /** One progress line every 10 s while it runs. */
  private logEvery(): void {
    this.logTimer = this.deps.clock.setTimer(() => {
      if (this.phase === MigrationPhase.Done) return;
      this.log(this.summary());
      this.logEvery();
    }, LOG_EVERY_MS);
  }

  /** The route of a key whose new owner is `to`: `to` itself, or the pair route when the key moves. */
  routeOf(buf: Uint8Array, start: number, end: number, to: Shard): Shard {
    const from = this.from.route(buf, start, end);
    if (from === null || from.id === to.id) return to;
    let byTo = this.pairs.get(from);
    if (byTo === undefined) this.pairs.set(from, byTo = new Map());
    let pair = byTo.get(to);
    if (pair === undefined) byTo.set(to, pair = { id: to.id, index: to.index, master: to.master, replicas: to.replicas, from, to });
    return pair;
  }

  /**
   * Send `req` (its keys move from route.from to route.to). `next` runs once the client's
   * later requests may be sent: after the step that orders this one among them.
   */
  forward(req: Req, route: Shard, client: MigrationClient, next: () => void): void {
    this.counts.requests++;
    if (this.mode === MigrationMode.Store) return this.forwardStore(req, route, client, next);
    this.forwardCache(req, route, client, next);
  }

  // ---- store mode ----

  private forwardStore(req: Req, route: Shard, client: MigrationClient, next: () => void): void {
    const from = route.from!;
    const to = route.to!;
    const { args, keys, scriptable } = redisRequest(req.bytes);
    const heldUntil = this.deps.clock.now() + HOLD_MS;
    const attempt = () => void settle(args, keys, scriptable, from.master, this.targetOf(to), client.id).then((settled) => {
      // A key being copied in pieces: hold the request (the client's later ones wait behind it).
      if (typeof settled !== "string" && settled.target === Target.Held && this.deps.clock.now() < heldUntil) {
        return void this.deps.clock.setTimer(attempt, HELD_RETRY_MS);
      }
      this.settled(req, settled, from, to, client);
      next();
    });
    attempt();
  }

  private settled(req: Req, settled: Settled | string, from: Shard, to: Shard, client: MigrationClient): void {
    if (typeof settled === "string") {
      this.failed(settled);
      return req.finish(errorReply(`TRYAGAIN key migration failed, retry: ${settled}`));
    }
    if (settled.target === Target.Split || settled.target === Target.Held) {
      this.counts.refused++;
      return req.finish(settled.target === Target.Split ? SPLIT_REPLY : HELD_REPLY);
    }
    if (settled.target === Target.Here) {
      this.counts.servedOld++;
      return req.finish(settled.reply);
    }
    client.sendTo(req, to.master);
  }

  private targetOf(to: Shard): MoveTarget {
    const conf = this.deps.conf;
    return {
      marker: goMarker(conf.name, this.fromId),
      markerValue: this.toId,
      lockPrefix: new TextDecoder().decode(lockKey(conf.name, new Uint8Array())),
      addr: to.master.conf.addr,
      db: conf.redisDb,
      timeoutMs: Math.max(conf.timeout ?? 0, MIGRATE_TIMEOUT_MS),
      bigKeyBytes: BIG_KEY_BYTES,
      auth: conf.redisAuth,
    };
  }

  // ---- cache mode ----

  private forwardCache(req: Req, route: Shard, client: MigrationClient, next: () => void): void {
    const from = route.from!.master;
    const to = route.to!.master;
    const clientId = client.id;
    const { keys, use } = this.deps.conf.redis ? redisUse(req) : memcacheUse(req);
    if (use === Use.Read) {
      req.guard = this.fallback(keys, from, to, client);
      client.sendTo(req, to);
      return next();
    }
    if (use !== Use.NeedsValue) {
      this.writeThenRemove(req, keys, from, to, client);
      return next();
    }
    // An increment or an append must start from the old value: copy it first.
    void Promise.all(keys.map((key) => this.copier.copy(key, from, to, clientId))).then((found) => {
      this.counts.copied += found.filter(Boolean).length;
      this.writeThenRemove(req, keys, from, to, client);
      next();
    });
  }

  /**
   * The write goes to the new owner; once it answered, the keys are deleted on the old one (in
   * that order, so a read in between finds the new value, never a miss on both); the client's
   * reply waits for both, so once a write is acknowledged no fallback can find the old value.
   */
  private writeThenRemove(req: Req, keys: readonly Uint8Array[], from: Server, to: Server, client: MigrationClient): void {
    let held = false;
    req.guard = {
      beforeFinish: (req, reply) => {
        if (held) return false;
        held = true;
        this.counts.removedOld += keys.length;
        void Promise.all(keys.map((key) => this.copier.remove(key, from, client.id))).then(() => req.finish(reply));
        return true;
      },
    };
    client.sendTo(req, to);
  }

  /** A read that missed on the new owner: copy the keys from the old one, then ask the new owner again. */
  private fallback(keys: readonly Uint8Array[], from: Server, to: Server, client: MigrationClient): ReplyGuard {
    let resent = false;
    const redis = this.deps.conf.redis;
    return {
      beforeFinish: (req, reply, transportFailed) => {
        if (resent || transportFailed || !(redis ? redisMissed(reply) : memcacheMissed(reply, keys.length))) return false;
        resent = true;
        void Promise.all(keys.map((key) => this.copier.copy(key, from, to, client.id))).then((found) => {
          const hits = found.filter(Boolean).length;
          if (hits === 0) {
            this.counts.fallbackMisses++;
            return req.finish(reply);
          }
          this.counts.fallbackHits++;
          this.counts.copied += hits;
          client.sendTo(req, to);
        });
        return true;
      },
    };
  }

  // ---- control and status ----

  /** store: the background mover waits (requests still follow the per-key rule). */
  pause(): boolean {
    if (this.mover === null || this.phase !== MigrationPhase.Moving) return false;
    this.phase = MigrationPhase.Paused;
    this.mover.paused = true;
    this.log("paused");
    return true;
  }

  resume(): boolean {
    if (this.mover === null || this.phase !== MigrationPhase.Paused) return false;
    this.phase = MigrationPhase.Moving;
    this.mover.paused = false;
    this.log("resumed");
    return true;
  }

  /**
   * End now. cache: stop falling back. store: move the big keys left behind (each MIGRATE
   * blocks its server for the copy: the operator's call), then end once the mover is through.
   */
  async finish(): Promise<string> {
    if (this.phase === MigrationPhase.Done) return "already done";
    if (this.mover === null) {
      this.complete();
      return "done";
    }
    const refused = await this.mover.moveBigKeys();
    return refused ?? "done";
  }

  /** Stop without completing (the pool replaces it by the reverse migration, or closes). */
  stop(): void {
    for (const timer of [this.timer, this.logTimer]) if (timer !== null) this.deps.clock.clearTimer(timer);
    this.timer = null;
    this.logTimer = null;
    this.mover?.stop();
    this.phase = MigrationPhase.Done;
  }

  private complete(): void {
    if (this.phase === MigrationPhase.Done) return;
    this.stop();
    this.finishedAt = this.deps.clock.now();
    this.log(`done in ${Math.round((this.finishedAt - this.startedAt) / 1000)} s: ${this.summary()}`);
    this.deps.onDone();
  }

  /** What GET /pools/<pool>/migration answers. */
  status(): MigrationStatus {
    const now = this.deps.clock.now();
    const elapsed = Math.max((this.finishedAt || now) - this.startedAt, 1) / 1000;
    const sources = (this.mover?.sources ?? []).map((s) => {
      const remaining = s.done ? 0 : Math.max(s.keysAtStart - s.scanned, 0);
      const rate = s.scanned / elapsed;
      return {
        server: s.shard.master.conf.id,
        keys_scanned: s.scanned,
        keys_moved: s.moved,
        bytes_moved: s.bytes,
        keys_remaining_estimate: remaining,
        scan_rate: Math.round(rate),
        done: s.done,
        errors: s.errors,
      };
    });
    const etaSeconds = sources.reduce((eta, s) => Math.max(eta, s.scan_rate > 0 ? s.keys_remaining_estimate / s.scan_rate : 0), 0);
    const moved = sources.reduce((n, s) => n + s.keys_moved, 0);
    return {
      mode: migrationModeName(this.mode),
      phase: this.phaseName(),
      driver: this.mover?.isDriver ?? false,
      waiting_for: this.mover?.waitingFor ?? [],
      reverse: this.reverse,
      started_at: new Date(this.startedAt).toISOString(),
      finished_at: this.finishedAt === 0 ? null : new Date(this.finishedAt).toISOString(),
      from: this.from.shards.map((s) => s.id),
      to: this.to.shards.map((s) => s.id),
      keys_moved: moved,
      move_rate: Math.round(moved / elapsed),
      eta_seconds: this.mode === MigrationMode.Cache
        ? Math.max(0, Math.round((this.startedAt + this.deps.conf.migrationWarmup - now) / 1000))
        : Math.round(etaSeconds),
      big_keys_left: this.mover?.bigKeys.length ?? 0,
      requests: this.counts.requests,
      fallback_hits: this.counts.fallbackHits,
      fallback_misses: this.counts.fallbackMisses,
      copied: this.counts.copied,
      removed_old: this.counts.removedOld,
      served_by_old: this.counts.servedOld,
      refused: this.counts.refused,
      errors: this.counts.errors + sources.reduce((n, s) => n + s.errors, 0),
      last_error: this.lastError,
      sources,
    };
  }

  /** "warmup" (cache), the mover's phase (store: following, waiting_for_proxies, moving, ...), "paused" or "done". */
  private phaseName(): string {
    if (this.phase !== MigrationPhase.Moving) return PHASE_NAMES[this.phase];
    if (this.mover === null) return "warmup";
    return MOVER_PHASE_NAMES[this.mover.phase];
  }

  private failed(message: string): void {
    this.counts.errors++;
    this.lastError = message;
    this.deps.log.error(`pool '${this.name}': migration: ${message}`);
  }

  private summary(): string {
    const s = this.status();
    if (this.mode === MigrationMode.Cache) return `${s.fallback_hits} fallback hits, ${s.fallback_misses} misses, ${s.copied} keys copied`;
    return `${s.keys_moved} keys moved (${s.move_rate}/s), ${s.big_keys_left} big keys left, ${s.errors} errors, ETA ${s.eta_seconds} s`;
  }

  private log(text: string): void {
    this.deps.log.notice(`pool '${this.name}': migration: ${text}`);
  }

}

/** GET /pools/<pool>/migration, in the admin API's snake_case. */
export interface MigrationStatus {
  readonly mode: string;
  readonly phase: string;
  /** store: this proxy runs the background mover (else another proxy does). */
  readonly driver: boolean;
  /** store: proxies (address and connection name) the migration waits for to reload. */
  readonly waiting_for: readonly string[];
  readonly reverse: boolean;
  readonly started_at: string;
  readonly finished_at: string | null;
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly keys_moved: number;
  readonly move_rate: number;
  readonly eta_seconds: number;
  readonly big_keys_left: number;
  readonly requests: number;
  readonly fallback_hits: number;
  readonly fallback_misses: number;
  readonly copied: number;
  readonly removed_old: number;
  readonly served_by_old: number;
  readonly refused: number;
  readonly errors: number;
  readonly last_error: string | null;
  readonly sources: readonly {
    server: string;
    keys_scanned: number;
    keys_moved: number;
    bytes_moved: number;
    keys_remaining_estimate: number;
    scan_rate: number;
    done: boolean;
    errors: number;
  }[];
}

/** What a request does to its keys, for cache mode. */
const Use = {
  Read: 0,
  /** Deletes and plain overwrites: the old value does not matter. */
  Replace: 1,
  /** Increments, appends, conditional stores: they start from the current value. */
  NeedsValue: 2,
} as const;
type Use = (typeof Use)[keyof typeof Use];

function redisUse(req: Req): { keys: Uint8Array[]; use: Use } {
  const { keys } = redisRequest(req.bytes);
  if (req.read) return { keys, use: Use.Read };
  return { keys, use: REDIS_REPLACING.has(req.command) ? Use.Replace : Use.NeedsValue };
}

const REDIS_REPLACING = new Set(["del", "unlink", "mset", "psetex", "setex"]);

function memcacheUse(req: Req): { keys: Uint8Array[]; use: Use } {
  const { cmd, keys } = memcacheKeys(req.bytes);
  if (MC_READS.has(cmd)) return { keys, use: Use.Read };
  return { keys, use: MC_REPLACING.has(cmd) ? Use.Replace : Use.NeedsValue };
}

const MC_READS = new Set<number>([McCmd.Get, McCmd.Gets, McCmd.Gat, McCmd.Gats, McCmd.Mg]);
const MC_REPLACING = new Set<number>([McCmd.Set, McCmd.Delete, McCmd.Md]);

/** Replies that may mean "the new owner does not have it yet". */
const REDIS_MISSES = ["$-1\r\n", "*-1\r\n", "*0\r\n", ":0\r\n", "_\r\n", "+none\r\n", ":-2\r\n"].map((s) => new TextEncoder().encode(s));
const NIL_ITEM = new TextEncoder().encode("\r\n$-1\r\n");

function redisMissed(reply: Uint8Array | null): boolean {
  if (reply === null) return false;
  if (REDIS_MISSES.some((miss) => sameBytes(reply, miss))) return true;
  // MGET of several moving keys: one nil among them.
  return reply[0] === 0x2a && indexOfBytes(reply, NIL_ITEM) >= 0;
}

const EN = new TextEncoder().encode("EN\r\n");

function memcacheMissed(reply: Uint8Array | null, keys: number): boolean {
  if (reply === null || isMcError(reply)) return false;
  if (sameBytes(reply, EN)) return true;
  return reply[0] !== 0x48 && splitValues(reply).length < keys; // "HD": a hit without a value
}

const HELD_REPLY = errorReply("TRYAGAIN the key is being moved to its new server, retry");
/** How long a request for a key being copied in pieces is held, and how often it asks again. */
const HOLD_MS = 30_000;
const HELD_RETRY_MS = 5;
const SPLIT_REPLY = errorReply("TRYAGAIN Multiple keys request during a migration, some keys are big and not moved yet");
/** A key larger than this is not MIGRATEd in one piece by the mover or a request (~10 ms of copying). */
export const BIG_KEY_BYTES = 8 * 1024 * 1024;
/** MIGRATE's I/O timeout when the pool's timeout is shorter or unset. */
const MIGRATE_TIMEOUT_MS = 5000;
const LOG_EVERY_MS = 10_000;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
