/**
 * Loads and views for the Sentinel end-to-end tests: a write load that records every SET with
 * its send and reply times (to measure a failover and to check afterwards which acknowledged
 * writes a server holds), a read load over pre-filled keys that checks every value, INFO read
 * from the servers themselves, the pool YAML of the Sentinel contract, and the proxy's own view
 * of its shard (master, replicas, Sentinel state when the pool exposes one). node:net only.
 */
import { Role } from "../../core/proxy/server.ts";
import type { Server } from "../../core/proxy/server.ts";
import type { TestProxy } from "./proxy.ts";
import type { Switch } from "./sentinel.ts";
import { encodePipeline, RespClient } from "./resp.ts";
import { PipeClient, waitFor } from "./soak.ts";
import { sleep } from "./ports.ts";

/** One SET sent through the proxy: what, when, and the reply ("+OK", "-ERR ...", or "!" + a transport failure). */
export interface WriteRecord {
  readonly key: string;
  readonly value: string;
  readonly sentAt: number;
  doneAt: number;
  reply: string;
}

/** A running load; stop() ends it after the requests in flight and returns everything recorded. */
export interface Load<T> {
  readonly result: T;
  stop(): Promise<T>;
}

export interface LoadOptions {
  prefix: string;
  /** Connections, each with one request (or batch) in flight at a time (default 4). */
  clients?: number;
  /** Pause after each request or batch, ms (default 2; at least 10 after an error). */
  gapMs?: number;
  /** Hard bound on the load's life even if stop() is never called (default 30000). */
  maxMs?: number;
  /** Bound on requests (or batches) per client (default 20000). */
  maxPerClient?: number;
  /** Bound on one reply, ms (default 3000). */
  timeoutMs?: number;
}

/**
 * Starts `clients` connections that each send `SET prefix:client:seq v<seq>` one at a time
 * and record every reply. A failed connection is recorded and replaced.
 */
export function startWriteLoad(port: number, opts: LoadOptions): Load<WriteRecord[]> {
  const records: WriteRecord[] = [];
  return runLoad(port, opts, records, async (pipe, client, seq) => {
    const rec: WriteRecord = { key: `${opts.prefix}:${client}:${seq}`, value: `v${seq}`, sentAt: Date.now(), doneAt: 0, reply: "" };
    records.push(rec);
    try {
      const [reply] = await pipe.exchange(encodePipeline([["SET", rec.key, rec.value]]), 1, opts.timeoutMs ?? 3000);
      rec.reply = reply.trimEnd();
    } catch (err) {
      rec.reply = `!${(err as Error).message}`;
    }
    rec.doneAt = Date.now();
    return rec.reply === "+OK" ? Step.Ok : rec.reply.startsWith("!") ? Step.Broken : Step.Error;
  });
}

/** What a read load saw. */
export interface ReadTally {
  replies: number;
  errors: number;
  wrong: number;
  /** Times (Date.now()) of the errors and wrong values. */
  badAt: number[];
  /** Up to 5 examples, for messages. */
  samples: string[];
}

/** Starts `clients` connections sending batches of 10 pipelined GETs over keys written by fillKeys, checking each value. */
export function startReadLoad(port: number, keys: number, opts: LoadOptions): Load<ReadTally> {
  const tally: ReadTally = { replies: 0, errors: 0, wrong: 0, badAt: [], samples: [] };
  const bad = (what: string) => {
    tally.badAt.push(Date.now());
    if (tally.samples.length < 5) tally.samples.push(what);
  };
  return runLoad(port, opts, tally, async (pipe, client, seq) => {
    const ids = Array.from({ length: 10 }, (_, i) => (client * 7919 + seq * 10 + i) % keys);
    let replies: string[];
    try {
      replies = await pipe.exchange(encodePipeline(ids.map((i) => ["GET", `${opts.prefix}:${i}`])), ids.length, opts.timeoutMs ?? 3000);
    } catch (err) {
      tally.errors++;
      bad(`client ${client}: ${(err as Error).message}`);
      return Step.Broken;
    }
    let ok = true;
    replies.forEach((reply, k) => {
      tally.replies++;
      const want = `v:${ids[k]}`;
      if (reply === `$${want.length}\r\n${want}\r\n`) return;
      ok = false;
      if (reply.startsWith("-")) tally.errors++;
      else tally.wrong++;
      bad(`GET ${opts.prefix}:${ids[k]} -> ${JSON.stringify(reply.slice(0, 80))}`);
    });
    return ok ? Step.Ok : Step.Error;
  });
}

/** How one request (or batch) of a load went: a broken connection is replaced, replies may be out of step. */
const Step = { Ok: 0, Error: 1, Broken: 2 } as const;
type Step = typeof Step[keyof typeof Step];

/** Runs one loop per client until stop(), maxMs or maxPerClient; `step` sends one request or batch. */
function runLoad<T>(
  port: number,
  opts: LoadOptions,
  result: T,
  step: (pipe: PipeClient, client: number, seq: number) => Promise<Step>,
): Load<T> {
  const deadline = Date.now() + (opts.maxMs ?? 30000);
  let stopping = false;
  const one = async (client: number) => {
    let pipe: PipeClient | null = null;
    for (let seq = 0; !stopping && Date.now() < deadline && seq < (opts.maxPerClient ?? 20000); seq++) {
      pipe ??= await PipeClient.connect(port).catch(() => null);
      if (pipe === null) {
        await sleep(50);
        continue;
      }
      const outcome = await step(pipe, client, seq);
      if (outcome === Step.Broken || pipe.closed) {
        pipe.destroy();
        pipe = null;
      }
      await sleep(outcome === Step.Ok ? opts.gapMs ?? 2 : Math.max(10, opts.gapMs ?? 2));
    }
    pipe?.destroy();
  };
  const runs = Array.from({ length: opts.clients ?? 4 }, (_, i) => one(i));
  return {
    result,
    async stop() {
      stopping = true;
      await Promise.all(runs);
      return result;
    },
  };
}

/** Writes `prefix:i` = `v:i` for i < count straight to the server on `port` (a master). */
export async function fillKeys(port: number, prefix: string, count: number): Promise<void> {
  const client = await RespClient.connect(port);
  try {
    await client.pipeline(Array.from({ length: count }, (_, i) => ["SET", `${prefix}:${i}`, `v:${i}`]));
  } finally {
    client.close();
  }
}

/** The acknowledged (+OK) writes among `records` whose value the server on `port` does not hold. */
export async function missingOn(port: number, records: readonly WriteRecord[]): Promise<WriteRecord[]> {
  const acked = records.filter((r) => r.reply === "+OK");
  const missing: WriteRecord[] = [];
  const client = await RespClient.connect(port);
  try {
    for (let at = 0; at < acked.length; at += 1000) {
      const chunk = acked.slice(at, at + 1000);
      const replies = await client.pipeline(chunk.map((r) => ["GET", r.key]));
      replies.forEach((got, i) => {
        const want = chunk[i].value;
        const value = got.reply.type === "bulk" && got.reply.value !== null ? new TextDecoder().decode(got.reply.value) : null;
        if (value !== want) missing.push(chunk[i]);
      });
    }
  } finally {
    client.close();
  }
  return missing;
}

/** Counts of a write load's replies: acknowledged, error replies, transport failures, and a few examples. */
export function tallyWrites(records: readonly WriteRecord[]): { total: number; ok: number; errors: number; samples: string[] } {
  const failed = records.filter((r) => r.reply !== "+OK");
  const samples = [...new Set(failed.map((r) => r.reply.slice(0, 100)))].slice(0, 5);
  return { total: records.length, ok: records.length - failed.length, errors: failed.length, samples };
}

/** The reply time of the first acknowledged write sent at or after `t` (null when none). */
export function firstOkAfter(records: readonly WriteRecord[], t: number): number | null {
  let best: number | null = null;
  for (const r of records) if (r.sentAt >= t && r.reply === "+OK" && (best === null || r.doneAt < best)) best = r.doneAt;
  return best;
}

/** The reply time of the last failed write (null when none failed). */
export function lastErrorAt(records: readonly WriteRecord[]): number | null {
  let last: number | null = null;
  for (const r of records) if (r.reply !== "+OK" && r.doneAt > 0 && (last === null || r.doneAt > last)) last = r.doneAt;
  return last;
}

/** The `field:value` lines of one INFO section of the server on `port`. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const client = await RespClient.connect(port);
  try {
    const reply = await client.call(["INFO", section], 3000);
    const body = reply.type === "bulk" && reply.value !== null ? new TextDecoder().decode(reply.value) : "";
    const fields = new Map<string, string>();
    for (const line of body.split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
    }
    return fields;
  } finally {
    client.close();
  }
}

/** How often `command` reached the server on `port` (INFO commandstats calls + rejected_calls). */
export async function arrivals(port: number, command: string): Promise<number> {
  const stats = (await info(port, "commandstats")).get(`cmdstat_${command}`) ?? "";
  const calls = Number(/(?:^|,)calls=(\d+)/.exec(stats)?.[1] ?? 0);
  const rejected = Number(/rejected_calls=(\d+)/.exec(stats)?.[1] ?? 0);
  return calls + rejected;
}

/** Until every server in `replicas` reports its link up and the offset `master` has now (false after ms). */
export function caughtUp(master: number, replicas: readonly number[], ms = 10000): Promise<boolean> {
  return waitFor(async () => {
    const want = (await info(master, "replication")).get("master_repl_offset");
    const got = await Promise.all(replicas.map((r) => info(r, "replication")));
    return got.every((f) => f.get("master_link_status") === "up" && f.get("slave_repl_offset") === want);
  }, ms, 50);
}

/** The role the server on `port` reports ("master", "slave"), or "down" when it does not answer. */
export async function roleOf(port: number): Promise<string> {
  return (await info(port, "replication").catch(() => null))?.get("role") ?? "down";
}

/** The pool YAML of the Sentinel contract; `listen: 127.0.0.1:0` gets a free port from startTestProxy. */
export function sentinelPoolYaml(opts: {
  sentinels: readonly number[];
  /** [port, Sentinel master name] of each servers: line (the starting guess). */
  servers: readonly (readonly [number, string])[];
  auth?: string;
  readPolicy?: string;
  timeout?: number;
  extra?: Readonly<Record<string, string | number | boolean>>;
}): string {
  const lines = ["alpha:", "  listen: 127.0.0.1:0", "  redis: true", `  timeout: ${opts.timeout ?? 1000}`];
  lines.push(`  read_policy: ${opts.readPolicy ?? "prefer_replica"}`);
  for (const [k, v] of Object.entries(opts.extra ?? {})) lines.push(`  ${k}: ${v}`);
  lines.push("  sentinels:", ...opts.sentinels.map((p) => `   - 127.0.0.1:${p}`));
  if (opts.auth !== undefined) lines.push(`  sentinel_auth: ${opts.auth}`);
  lines.push("  servers:", ...opts.servers.map(([p, name]) => `   - 127.0.0.1:${p}:1 ${name}`));
  return lines.join("\n") + "\n";
}

function portOf(server: Server): number {
  return server.conf.addr.kind === "tcp" ? server.conf.addr.port : -1;
}

/** The proxy's master of `shard` in pool 0 (role master, shard id or name `shard`), if any. */
export function proxyMaster(tp: TestProxy, shard = "shard1"): Server | undefined {
  return tp.proxy.pools[0].servers.find((s) => s.role === Role.Master && (s.shardId === shard || s.conf.name === shard));
}

/** The port of the proxy's master of `shard` (null when it has none). */
export function proxyMasterPort(tp: TestProxy, shard = "shard1"): number | null {
  const master = proxyMaster(tp, shard);
  return master === undefined ? null : portOf(master);
}

/** The proxy's replica on `port`, if it has one. */
export function proxyReplica(tp: TestProxy, port: number): Server | undefined {
  return tp.proxy.pools[0].servers.find((s) => s.role === Role.Replica && portOf(s) === port);
}

/** Every node of pool 0 as "id:port/role/readState", for messages. */
export function describeNodes(tp: TestProxy): string {
  return tp.proxy.pools[0].servers.map((s) => `${s.conf.id}@${portOf(s)}/${s.role === Role.Master ? "M" : "R"}/${s.readState}`).join(" ");
}

/** A record of the proxy's node list (describeNodes) each time it changed, for failure messages. */
export interface NodeTrace {
  /** Stop polling; the changes as lines with times relative to `base`. */
  stop(base: number): string;
}

/** Polls describeNodes every 5 ms (at most maxMs) and keeps every change with its time. */
export function traceNodes(tp: TestProxy, maxMs = 60000): NodeTrace {
  const changes: [number, string][] = [];
  const poll = () => {
    const now = describeNodes(tp);
    if (changes.at(-1)?.[1] !== now) changes.push([Date.now(), now]);
  };
  poll();
  const timer = setInterval(poll, 5);
  const bound = setTimeout(() => clearInterval(timer), maxMs);
  return {
    stop(base) {
      clearInterval(timer);
      clearTimeout(bound);
      return changes.map(([t, nodes]) => `${t - base} ms: ${nodes}`).join("\n");
    },
  };
}

/** The pool's Sentinel state, when the implementation exposes one (`pool.sentinel`). */
export function sentinelState(tp: TestProxy): Record<string, unknown> | null {
  const pool = tp.proxy.pools[0] as unknown as { sentinel?: Record<string, unknown> | null };
  return pool.sentinel ?? null;
}

/** Sentinels the pool is connected to, when it says (`pool.sentinel.reachable`). */
export function sentinelReachable(tp: TestProxy): number | undefined {
  const reachable = sentinelState(tp)?.reachable;
  return typeof reachable === "number" ? reachable : undefined;
}

/** Failovers the pool has seen for `shard`, when it says (`pool.sentinel.failovers` as a Map, object or per-shard records). */
export function failoversSeen(tp: TestProxy, shard = "shard1"): number | undefined {
  const state = sentinelState(tp);
  const found = pick(state?.failovers, shard) ?? pick(pick(state?.shards, shard), "failovers");
  return typeof found === "number" ? found : undefined;
}

/**
 * Master changes in `switches` (+switch-master as the Sentinels announced them, in order) from
 * `initial`: Sentinels that saw different masters announce one switch with different old masters.
 */
export function masterChanges(switches: readonly Switch[], initial: number): number {
  let master = initial;
  let changes = 0;
  for (const sw of [...switches].sort((a, b) => a.at - b.at)) {
    if (sw.to === master) continue;
    master = sw.to;
    changes++;
  }
  return changes;
}

/**
 * The proxy's failover count for `shard` once it equals `announced` (the master changes the
 * Sentinels announced while it ran), waiting up to ms for it to apply the last one; the count it
 * shows after ms otherwise (undefined when the implementation shows none). A busy machine can
 * make Sentinel (down-after-milliseconds 500) fail over a master that was only slow to answer,
 * so a test compares with what Sentinel announced rather than with the switches it caused itself.
 */
export async function failoversOnceEach(tp: TestProxy, announced: () => number, ms = 5000, shard = "shard1"): Promise<number | undefined> {
  await waitFor(() => failoversSeen(tp, shard) === undefined || failoversSeen(tp, shard) === announced(), ms, 10);
  return failoversSeen(tp, shard);
}

function pick(from: unknown, key: string): unknown {
  if (from instanceof Map) return from.get(key);
  if (Array.isArray(from)) return from.find((x) => (x as { name?: string })?.name === key);
  if (typeof from === "object" && from !== null) return (from as Record<string, unknown>)[key];
  return undefined;
}
