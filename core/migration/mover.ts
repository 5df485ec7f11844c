/**
 * Store mode's background work in one proxy. Every proxy of the pool runs a Mover; the one
 * holding the lease drives (coordination.ts): it waits until every proxy routes moving keys
 * through the request script, sets the go marker, SCANs each old server from its checkpoint
 * and moves its moving keys in batches at the pool's rate, then marks the migration done on
 * the servers. The others poll for that mark; if the driver dies, the lease expires and
 * another proxy resumes from the checkpoints (a MIGRATE of a key already moved finds nothing).
 */
import type { Clock } from "../net.ts";
import type { Shard, Topology } from "../proxy/topology.ts";
import type { Server } from "../proxy/server.ts";
import { ask } from "./copy.ts";
import { bulkOf, command, integerOf, scanReply } from "./resp.ts";
import { MOVER_CLIENT, moveBatch, type MoveTarget } from "./store.ts";
import { copyInPieces } from "./chunks.ts";
import { goMarker, leaseKey, migratingName, namePrefix, RecordPhase, recordKey, RENEW_SCRIPT, SCANNED } from "./coordination.ts";

export const MoverPhase = {
  /** Another proxy drives; this one waits for its "done". */
  Following: 0,
  /** Driving: waiting until no proxy of the pool routes by the old ring alone. */
  WaitingForProxies: 1,
  Moving: 2,
  /** Every old server was scanned; big keys wait for POST .../finish. */
  BigKeysLeft: 3,
  Done: 4,
} as const;
export type MoverPhase = (typeof MoverPhase)[keyof typeof MoverPhase];

export const MOVER_PHASE_NAMES: Record<MoverPhase, string> = {
  0: "following", 1: "waiting_for_proxies", 2: "moving", 3: "big_keys_left", 4: "done",
};

export interface MoverDeps {
  readonly clock: Clock;
  readonly pool: string;
  readonly from: Topology;
  readonly to: Topology;
  readonly fromId: string;
  readonly toId: string;
  /** This proxy's identity in the lease. */
  readonly proxyId: string;
  /** Keys per second (0 = unlimited). */
  rate(): number;
  target(to: Shard): MoveTarget;
  /** Old servers' lines ("host:port:weight name"), kept in the record so a restarted proxy can resume. */
  readonly fromServers: readonly string[];
  failed(message: string): void;
  notice(message: string): void;
  /** The migration is done (here or by the driver elsewhere). */
  onDone(): void;
}

/** One old server's progress. */
export interface Source {
  readonly shard: Shard;
  cursor: string;
  scanned: number;
  moved: number;
  /** Bytes of the keys moved (MEMORY USAGE on the old server). */
  bytes: number;
  /** Keys on the server when the mover started (DBSIZE), for the estimate. */
  keysAtStart: number;
  done: boolean;
  errors: number;
}

/** A key larger than the big-key limit, left on its old owner, which keeps serving it. */
interface BigKey {
  readonly key: Uint8Array;
  readonly source: Shard;
  readonly to: Shard;
}

export class Mover {
  phase: MoverPhase = MoverPhase.Following;
  paused = false;
  readonly sources: Source[];
  readonly bigKeys: BigKey[] = [];
  /** Connections (address and name) that hold the barrier: proxies not migrating yet. */
  waitingFor: string[] = [];
  private driving = false;
  private stopped = false;
  /** The record's epoch for this same pair of rings when this migration began: an earlier one's "done" is not ours. */
  private staleEpoch: string | null = null;
  /** The epoch this migration's driver wrote (all proxies of one migration share it). */
  private epoch = "";
  private readonly deps: MoverDeps;

  constructor(deps: MoverDeps) {
    this.deps = deps;
    this.sources = deps.from.shards.map((shard) => ({ shard, cursor: "0", scanned: 0, moved: 0, bytes: 0, keysAtStart: 0, done: false, errors: 0 }));
  }

  get isDriver(): boolean {
    return this.driving;
  }

  start(): void {
    void this.announce().then(() => this.leaseLoop());
  }

  /**
   * Write this migration into the record on every old server (unless it is there already), so
   * a proxy restarted with the new config finds it and joins instead of using the new ring alone.
   */
  private async announce(): Promise<void> {
    const record = await this.readRecord();
    const same = record.from === this.deps.fromId && record.to === this.deps.toId;
    if (same && record.phase === RecordPhase.Done) this.staleEpoch = record.epoch;
    if (same && record.phase !== RecordPhase.Done) return;
    const { pool, fromId, toId, fromServers } = this.deps;
    await this.forEachOld(async (server) => {
      await ask(server, MOVER_CLIENT, command("DEL", recordKey(pool)));
      await ask(server, MOVER_CLIENT, command("HSET", recordKey(pool), "from", fromId, "to", toId, "phase", RecordPhase.Waiting, "from_servers", JSON.stringify(fromServers)));
    });
  }

  /** Stop working; a driver gives its lease up so the next migration (an abort's way back) can drive at once. */
  stop(): void {
    this.stopped = true;
    if (!this.driving) return;
    this.driving = false;
    void ask(this.deps.from.shards[0].master, MOVER_CLIENT, command("EVAL", RELEASE_SCRIPT, "1", leaseKey(this.deps.pool), this.deps.proxyId));
  }

  /** The record on the old ring's first server: rings, phase, epoch, and (when `source` is given) its checkpoint. */
  private async readRecord(server = this.deps.from.shards[0].master): Promise<Record<string, string | null>> {
    const fields = ["from", "to", "phase", "epoch", "cursor", "moved"];
    const reply = await ask(server, MOVER_CLIENT, command("HMGET", recordKey(this.deps.pool), ...fields));
    const text = new TextDecoder().decode(reply ?? new Uint8Array());
    const values = [...text.matchAll(/\$(-?\d+)\r\n([^\r]*)/g)].map((m) => (m[1] === "-1" ? null : m[2]));
    return Object.fromEntries(fields.map((f, i) => [f, values[i] ?? null]));
  }

  /** Take the lease when it is free, keep it while driving; follow the driver's "done" otherwise. */
  private async leaseLoop(): Promise<void> {
    const first = this.deps.from.shards[0].master;
    const key = leaseKey(this.deps.pool);
    while (!this.stopped && this.phase !== MoverPhase.Done) {
      if (this.driving) {
        const renewed = integerOf(await ask(first, MOVER_CLIENT, command("EVAL", RENEW_SCRIPT, "1", key, this.deps.proxyId, String(LEASE_MS))));
        if (renewed !== 1 && !this.stopped) {
          this.driving = false;
          this.phase = MoverPhase.Following;
          this.deps.notice("lost the mover lease; another proxy drives");
        }
      } else {
        // "Done" first: the lease is free again once a driver finished.
        if (await this.doneElsewhere()) return this.finished();
        const taken = await ask(first, MOVER_CLIENT, command("SET", key, this.deps.proxyId, "NX", "PX", String(LEASE_MS)));
        if (isOk(taken)) {
          this.driving = true;
          void this.drive();
        }
      }
      await this.sleep(LEASE_MS / 4);
    }
  }

  /** The driver's whole job, from the barrier to "done"; returns early if the lease is lost. */
  private async drive(): Promise<void> {
    if (await this.doneElsewhere()) return this.finished();
    this.phase = MoverPhase.WaitingForProxies;
    this.deps.notice("driving the migration: waiting until every proxy of the pool has reloaded");
    while (this.driving && !this.stopped && !(await this.everyProxyMigrating())) await this.sleep(BARRIER_POLL_MS);
    if (!this.driving || this.stopped) return;
    await this.loadCheckpoints();
    await this.forEachOld((server) => ask(server, MOVER_CLIENT, command("SET", goMarker(this.deps.pool, this.deps.fromId), this.deps.toId)));
    this.phase = MoverPhase.Moving;
    this.deps.notice("every proxy routes moving keys through the old owners: moving keys");
    await Promise.all(this.sources.map((source) => this.moveFrom(source)));
    if (!this.driving || this.stopped) return;
    await this.copyBigKeys();
    if (!this.driving || this.stopped) return;
    if (this.bigKeys.length > 0) {
      this.phase = MoverPhase.BigKeysLeft;
      this.deps.notice(`every old server was scanned; ${this.bigKeys.length} big key(s) stay on their old servers until POST /pools/${this.deps.pool}/migration/finish moves them`);
      return;
    }
    await this.markDone();
  }

  /** Every connection of this pool on the old and new servers is named for this migration. */
  private async everyProxyMigrating(): Promise<boolean> {
    const prefix = namePrefix(this.deps.pool);
    const mine = migratingName(this.deps.pool, this.deps.fromId, this.deps.toId);
    const others: string[] = [];
    const servers = new Set([...this.deps.from.shards, ...this.deps.to.shards].map((s) => s.master));
    for (const server of servers) {
      const list = bulkOf(await ask(server, MOVER_CLIENT, command("CLIENT", "LIST")));
      if (list === null) return false;
      for (const line of new TextDecoder().decode(list).split("\n")) {
        const name = /\bname=(\S*)/.exec(line)?.[1] ?? "";
        if (name.startsWith(prefix) && name !== mine) others.push(`${/\baddr=(\S*)/.exec(line)?.[1] ?? "?"} (${name})`);
      }
    }
    this.waitingFor = others;
    return others.length === 0;
  }

  /**
   * Resume where a driver before this one (that crashed or lost its lease) checkpointed each
   * old server, under its epoch; else begin a new epoch from cursor 0.
   */
  private async loadCheckpoints(): Promise<void> {
    const first = await this.readRecord();
    const resuming = first.from === this.deps.fromId && first.to === this.deps.toId && first.phase === RecordPhase.Moving && first.epoch !== null;
    this.epoch = resuming ? first.epoch! : `${this.deps.proxyId}.${Math.floor(this.deps.clock.now())}`;
    for (const source of this.sources) {
      const record = await this.readRecord(source.shard.master);
      if (!resuming || record.epoch !== this.epoch || record.cursor === null) {
        await this.checkpoint(source);
        continue;
      }
      source.cursor = record.cursor === SCANNED ? "0" : record.cursor;
      source.done = record.cursor === SCANNED;
      source.moved = Number(record.moved ?? 0);
    }
  }

  /** One old server: SCAN it through, moving each page's moving keys, at the pool's rate. */
  private async moveFrom(source: Source): Promise<void> {
    const server = source.shard.master;
    source.keysAtStart = integerOf(await ask(server, MOVER_CLIENT, command("DBSIZE"))) ?? 0;
    while (!source.done && this.driving && !this.stopped) {
      if (this.paused) {
        await this.sleep(PAUSED_POLL_MS);
        continue;
      }
      const page = scanReply(await ask(server, MOVER_CLIENT, command("SCAN", source.cursor, "COUNT", String(SCAN_COUNT))));
      if (page === null) {
        source.errors++;
        this.deps.failed(`SCAN on ${server.conf.id} failed`);
        await this.sleep(RETRY_MS);
        continue;
      }
      source.scanned += page.keys.length;
      const moved = await this.moveKeys(source, page.keys);
      source.cursor = page.cursor;
      if (page.cursor === "0") source.done = true;
      await this.checkpoint(source);
      // The old servers are scanned side by side: each gets its share of the pool's rate.
      const rate = this.deps.rate() / this.sources.length;
      await this.sleep(rate === 0 ? 0 : (moved * 1000) / rate);
    }
  }

  private checkpoint(source: Source): Promise<unknown> {
    return ask(source.shard.master, MOVER_CLIENT, command(
      "HSET", recordKey(this.deps.pool), "from", this.deps.fromId, "to", this.deps.toId, "phase", RecordPhase.Moving, "epoch", this.epoch,
      "cursor", source.done ? SCANNED : source.cursor, "moved", String(source.moved), "from_servers", JSON.stringify(this.deps.fromServers),
    ));
  }

  /** Moves the keys of one SCAN page that leave `source`; returns how many moved. */
  private async moveKeys(source: Source, keys: readonly Uint8Array[]): Promise<number> {
    let moved = 0;
    for (const [to, group] of this.leaving(source.shard, keys)) {
      const result = await moveBatch(group, source.shard.master, this.deps.target(to));
      if (typeof result === "string") {
        source.errors++;
        this.deps.failed(result);
        continue;
      }
      moved += result.moved;
      source.bytes += result.bytes;
      for (const key of result.big) this.bigKeys.push({ key, source: source.shard, to });
    }
    source.moved += moved;
    return moved;
  }

  /** The keys that `shard` owns on the old ring and another shard owns on the new one, by new owner. */
  private leaving(shard: Shard, keys: readonly Uint8Array[]): Map<Shard, Uint8Array[]> {
    const out = new Map<Shard, Uint8Array[]>();
    for (const key of keys) {
      if (startsWith(key, OWN_PREFIX)) continue;
      if (this.deps.from.route(key, 0, key.length)?.id !== shard.id) continue;
      const to = this.deps.to.route(key, 0, key.length);
      if (to === null || to.id === shard.id) continue;
      const group = out.get(to);
      if (group === undefined) out.set(to, [key]);
      else group.push(key);
    }
    return out;
  }

  /** Big keys, one at a time, in pieces (chunks.ts); those that cannot be (streams) stay for finish. */
  private async copyBigKeys(): Promise<void> {
    const left: BigKey[] = [];
    for (const big of this.bigKeys.splice(0)) {
      const failed = await copyInPieces(this.deps.pool, big.key, big.source.master, big.to.master);
      if (failed === null) {
        const source = this.sources.find((s) => s.shard === big.source);
        if (source !== undefined) source.moved++;
        continue;
      }
      left.push(big);
      this.deps.notice(`big key left on ${big.source.master.conf.id}: ${failed}`);
    }
    this.bigKeys.push(...left);
  }

  /** POST finish with big keys left: move them whole (each MIGRATE blocks its server for the copy), then done. */
  async moveBigKeys(): Promise<string | null> {
    if (!this.driving) return "another proxy drives this migration: finish it there";
    if (this.phase !== MoverPhase.BigKeysLeft) return "the background mover has not scanned every old server yet";
    for (const big of this.bigKeys.splice(0)) {
      const result = await moveBatch([big.key], big.source.master, { ...this.deps.target(big.to), bigKeyBytes: Number.MAX_SAFE_INTEGER });
      if (typeof result === "string") {
        this.bigKeys.push(big);
        return `moving a big key failed: ${result}`;
      }
    }
    await this.markDone();
    return null;
  }

  /**
   * Record "done" on the old servers (the other proxies poll it), keep the go marker a day so a
   * proxy started on the old ring is still refused, and lift any marker against the new ring
   * (an abort's way back ends on the ring an earlier migration left).
   */
  private async markDone(): Promise<void> {
    const { pool, fromId, toId } = this.deps;
    await this.forEachOld((server) => ask(server, MOVER_CLIENT, command("HSET", recordKey(pool), "from", fromId, "to", toId, "phase", RecordPhase.Done, "epoch", this.epoch)));
    await this.forEachOld((server) => ask(server, MOVER_CLIENT, command("PEXPIRE", recordKey(pool), String(KEEP_MARKS_MS))));
    await this.forEachOld((server) => ask(server, MOVER_CLIENT, command("PEXPIRE", goMarker(pool, fromId), String(KEEP_MARKS_MS))));
    const newServers = new Set(this.deps.to.shards.map((s) => s.master));
    for (const server of newServers) await ask(server, MOVER_CLIENT, command("DEL", goMarker(pool, toId)));
    await ask(this.deps.from.shards[0].master, MOVER_CLIENT, command("DEL", leaseKey(pool)));
    this.finished();
  }

  private async doneElsewhere(): Promise<boolean> {
    const record = await this.readRecord();
    return record.from === this.deps.fromId && record.to === this.deps.toId && record.phase === RecordPhase.Done && record.epoch !== this.staleEpoch;
  }

  private finished(): void {
    if (this.phase === MoverPhase.Done) return;
    this.phase = MoverPhase.Done;
    this.driving = false;
    this.deps.onDone();
  }

  private async forEachOld(fn: (server: Server) => Promise<unknown>): Promise<void> {
    await Promise.all([...new Set(this.deps.from.shards.map((s) => s.master))].map(fn));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.deps.clock.setTimer(resolve, ms));
  }
}

function isOk(reply: Uint8Array | null): boolean {
  return reply !== null && reply[0] === 0x2b && reply[1] === 0x4f && reply[2] === 0x4b; // "+OK"
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.length >= prefix.length && prefix.every((byte, i) => key[i] === byte);
}

/** Keys the proxy keeps for itself on the servers are never moved. */
const OWN_PREFIX = new TextEncoder().encode("twemproxy-ts:");
/** SCAN's COUNT per page. */
const SCAN_COUNT = 100;
/** The driver's lease lasts this long unless renewed (every quarter of it). */
const LEASE_MS = 4000;
const BARRIER_POLL_MS = 200;
const PAUSED_POLL_MS = 200;
const RETRY_MS = 1000;
/** Gives the lease up when this proxy still holds it. */
const RELEASE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
/** How long the "done" record and the go marker stay on the old servers. */
const KEEP_MARKS_MS = 24 * 3600 * 1000;
