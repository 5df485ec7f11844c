/**
 * Helpers for the replica tests: redis-server masters and replicas, each in its own
 * temporary --dir (replicas sharing one dump.rdb would load each other's snapshots); INFO
 * fields and per-command counts read from the servers themselves; bounded waits for links
 * and offsets; pool YAML with replicas; the proxy's read state per node; and a read load
 * that checks every reply. node:fs, node:os and the servers/soak helpers only.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Server } from "../../core/proxy/server.ts";
import type { TestProxy } from "./proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./servers.ts";
import { encodePipeline } from "./resp.ts";
import { PipeClient, waitFor } from "./soak.ts";
import { sleep } from "./ports.ts";

/**
 * The redis-servers of one test file, under one temporary directory that `stopAll` removes.
 * @example const redis = new Redises("policies-"); const m = await redis.master(); const r = await redis.replica(m.port);
 */
export class Redises {
  private readonly root: string;
  private readonly started: ServerProcess[] = [];
  private dirs = 0;

  constructor(prefix: string) {
    this.root = mkdtempSync(path.join(tmpdir(), `replicas-${prefix}`));
  }

  /** A standalone server (a master); it starts a replica's sync at once (no diskless delay). */
  master(extra: string[] = []): Promise<ServerProcess> {
    return this.start(["--repl-diskless-sync-delay", "0", ...extra]);
  }

  /** A replica of 127.0.0.1:masterPort (which may be a port nothing listens on). */
  replica(masterPort: number, extra: string[] = []): Promise<ServerProcess> {
    return this.start(["--replicaof", "127.0.0.1", String(masterPort), ...extra]);
  }

  /** Thaw (a test may have left one stopped), stop every server, remove the directories. */
  async stopAll(): Promise<void> {
    for (const s of this.started) s.kill("SIGCONT");
    await Promise.all(this.started.map((s) => s.stop().catch(() => {})));
    rmSync(this.root, { recursive: true, force: true });
  }

  private async start(args: string[]): Promise<ServerProcess> {
    const dir = mkdtempSync(path.join(this.root, `s${this.dirs++}-`));
    const server = await startRedis({ args: ["--dir", dir, ...args] });
    this.started.push(server);
    const password = args.indexOf("--requirepass");
    if (password >= 0) PASSWORDS.set(server.port, args[password + 1]);
    return server;
  }
}

/** Servers started with --requirepass: cli() authenticates to them. */
const PASSWORDS = new Map<number, string>();

/** redis-cli against the server on `port`, authenticated when it was started with --requirepass. */
export function cli(port: number, ...args: string[]): Promise<string> {
  const password = PASSWORDS.get(port);
  return password === undefined ? redisCli(port, ...args) : redisCli(port, "-a", password, "--no-auth-warning", ...args);
}

/**
 * A port for a master that is not there: below the ephemeral range, so no server another test
 * file starts meanwhile (they take free ephemeral ports) can take it, as one could a port
 * freePort() found free a moment ago.
 */
export const NOTHING_LISTENS = 1;

/** The `field:value` lines of one INFO section of the server on `port`. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  for (const line of (await cli(port, "INFO", section)).split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/**
 * How often `command` reached the server on `port`: INFO commandstats calls plus
 * rejected_calls (a GET answered -LOADING is rejected, not called, but it did arrive).
 */
export async function arrivals(port: number, command: string): Promise<number> {
  const stats = (await info(port, "commandstats")).get(`cmdstat_${command}`) ?? "";
  const calls = Number(/(?:^|,)calls=(\d+)/.exec(stats)?.[1] ?? 0);
  const rejected = Number(/rejected_calls=(\d+)/.exec(stats)?.[1] ?? 0);
  return calls + rejected;
}

/** GET arrivals on each server, in order. */
export function getCounts(servers: readonly ServerProcess[]): Promise<number[]> {
  return Promise.all(servers.map((s) => arrivals(s.port, "get")));
}

/** after[i] - before[i]. */
export function deltas(before: readonly number[], after: readonly number[]): number[] {
  return after.map((n, i) => n - before[i]);
}

/** Until every replica reports master_link_status:up (false after ms). */
export function waitLinked(replicas: readonly ServerProcess[], ms = 20000): Promise<boolean> {
  return waitFor(async () => {
    const all = await Promise.all(replicas.map((r) => info(r.port, "replication")));
    return all.every((fields) => fields.get("master_link_status") === "up");
  }, ms, 100);
}

/** Until every replica has applied everything its master has (false after ms). */
export function caughtUp(master: ServerProcess, replicas: readonly ServerProcess[], ms = 10000): Promise<boolean> {
  return waitFor(async () => {
    const want = (await info(master.port, "replication")).get("master_repl_offset");
    const got = await Promise.all(replicas.map(async (r) => (await info(r.port, "replication")).get("slave_repl_offset")));
    return got.every((offset) => offset === want);
  }, ms, 50);
}

/** Key `i` of a set written by fillKeys. */
export function keyOf(prefix: string, i: number): string {
  return `${prefix}:${i}`;
}

/** The value fillKeys stores under keyOf(prefix, i). */
export function valueOf(prefix: string, i: number): string {
  return `v:${prefix}:${i}`;
}

/** A RESP bulk string reply of text. */
export function bulk(text: string): string {
  return `$${new TextEncoder().encode(text).length}\r\n${text}\r\n`;
}

const FILL = "for i = 0, tonumber(ARGV[2]) - 1 do redis.call('SET', ARGV[1] .. ':' .. i, 'v:' .. ARGV[1] .. ':' .. i) end return 1";

/** SET keyOf(prefix, i) = valueOf(prefix, i) for i < count on the master, in one script (replicated). */
export async function fillKeys(master: ServerProcess, prefix: string, count: number): Promise<void> {
  await cli(master.port, "EVAL", FILL, "0", prefix, String(count));
}

/** One pool of a proxy config: a single shard `shard1` with replicas. */
export interface ReplicaPool {
  name: string;
  master: number;
  /** Replica ports, or [port, weight]. */
  replicas: readonly (number | readonly [number, number])[];
  policy: string;
  /** More pool keys, written as `key: value`. */
  extra?: Readonly<Record<string, string | number | boolean>>;
}

/** nutcracker.yml text for one pool (listen port 0: startTestProxy picks a free one); checks every 100 ms. */
export function replicaPoolYaml(pool: ReplicaPool): string {
  const extra = { replica_check_interval: 100, ...pool.extra };
  const keys = Object.entries(extra).map(([k, v]) => `  ${k}: ${v}\n`).join("");
  const replicas = pool.replicas.map((r) => typeof r === "number" ? `      - 127.0.0.1:${r}:1\n` : `      - 127.0.0.1:${r[0]}:${r[1]}\n`);
  return `${pool.name}:\n  listen: 127.0.0.1:0\n  redis: true\n  read_policy: ${pool.policy}\n${keys}` +
    `  servers:\n    - 127.0.0.1:${pool.master}:1 shard1\n  replicas:\n    shard1:\n${replicas.join("")}`;
}

/** The proxy's node at 127.0.0.1:port in pool `pool`. */
export function nodeAt(tp: TestProxy, pool: number, port: number): Server {
  const found = tp.proxy.pools[pool].servers.find((s) => s.conf.addr.kind === "tcp" && s.conf.addr.port === port);
  if (found === undefined) throw new Error(`pool ${pool} has no server on port ${port}`);
  return found;
}

/** "port=state" for every node of pool `pool`, for assertion messages. */
export function describeStates(tp: TestProxy, pool: number): string {
  return tp.proxy.pools[pool].servers.map((s) => `${s.conf.id}=${s.readState}`).join(" ");
}

/** The proxy's last `max` log lines about server connections that closed (which node, why), for messages. */
export function closeLog(tp: TestProxy, max = 8): string {
  return tp.logs.filter((line) => line.includes(" closed")).slice(-max).join(" | ");
}

/** Until each [port, readState] pair holds in pool `pool` (false after ms). */
export function waitStates(tp: TestProxy, pool: number, want: readonly (readonly [number, number])[], ms = 5000): Promise<boolean> {
  return waitFor(() => want.every(([port, state]) => nodeAt(tp, pool, port).readState === state), ms, 10);
}

/** What a read load saw: replies checked, error replies and wrong values (the first few of each, and counts). */
export interface LoadResult {
  replies: number;
  errors: number;
  wrong: number;
  /** Up to 5 examples of errors and wrong values, for messages. */
  samples: string[];
}

/** A running read load; stop() ends it after the batches in flight and returns the tally. */
export interface ReadLoad {
  /** Replies checked so far. */
  readonly replies: number;
  stop(): Promise<LoadResult>;
}

export interface ReadLoadOptions {
  prefix: string;
  /** Keys keyOf(prefix, 0..keys-1), all written by fillKeys. */
  keys: number;
  clients?: number;
  /** GETs pipelined per exchange. */
  batch?: number;
  /** Hard bound on the load's life even if stop() is never called (ms). */
  maxMs?: number;
  /** Pause between batches of one client (ms; 0 = none). */
  gapMs?: number;
}

/**
 * Starts `clients` connections that each send batches of pipelined GETs over the keys and
 * check every reply against valueOf. Each batch waits at most 5 s for its replies.
 */
export function startReadLoad(port: number, opts: ReadLoadOptions): ReadLoad {
  const tally: LoadResult = { replies: 0, errors: 0, wrong: 0, samples: [] };
  const deadline = Date.now() + (opts.maxMs ?? 20000);
  let stopping = false;
  const note = (text: string) => {
    if (tally.samples.length < 5) tally.samples.push(text);
  };
  const one = async (client: number) => {
    const pipe = await PipeClient.connect(port);
    const batch = opts.batch ?? 20;
    let next = client * 7919;
    try {
      while (!stopping && Date.now() < deadline) {
        const ids = Array.from({ length: batch }, () => next++ % opts.keys);
        const got = await pipe.exchange(encodePipeline(ids.map((i) => ["GET", keyOf(opts.prefix, i)])), batch, 5000);
        got.forEach((reply, k) => {
          tally.replies++;
          if (reply.startsWith("-")) tally.errors++;
          else if (reply !== bulk(valueOf(opts.prefix, ids[k]))) tally.wrong++;
          else return;
          note(`GET ${keyOf(opts.prefix, ids[k])} -> ${JSON.stringify(reply.slice(0, 80))}`);
        });
        if (opts.gapMs) await sleep(opts.gapMs);
      }
    } catch (err) {
      tally.errors++;
      note(`client ${client}: ${(err as Error).message}`);
    } finally {
      pipe.destroy();
    }
  };
  const runs = Array.from({ length: opts.clients ?? 2 }, (_, i) => one(i));
  return {
    get replies() {
      return tally.replies;
    },
    async stop() {
      stopping = true;
      await Promise.all(runs);
      return tally;
    },
  };
}

/** One line for assertion messages. */
export function describeLoad(result: LoadResult): string {
  return `${result.replies} replies, ${result.errors} errors, ${result.wrong} wrong: ${result.samples.join("; ")}`;
}

/**
 * Stop `server` for stopMs of every periodMs, `cycles` times (a slow node), then leave it running.
 * @example await dutyCycle(replica, 40, 100, 20) // about 2 s, stopped 40% of the time
 */
export async function dutyCycle(server: ServerProcess, stopMs: number, periodMs: number, cycles: number): Promise<void> {
  try {
    for (let i = 0; i < cycles; i++) {
      server.kill("SIGSTOP");
      await sleep(stopMs);
      server.kill("SIGCONT");
      await sleep(periodMs - stopMs);
    }
  } finally {
    server.kill("SIGCONT");
  }
}
