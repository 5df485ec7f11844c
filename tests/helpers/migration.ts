/**
 * What the store-mode migration tests check, shared: where every key is on the backends,
 * and that the totals of a load's acknowledged increments are what the servers hold.
 */
import assert from "node:assert/strict";
import type { ServerProcess } from "./servers.ts";
import { encodePipeline } from "./resp.ts";
import { PipeClient } from "./soak.ts";
import { ownerOn, redisProbe, type RingSpec, ringServers } from "./reload.ts";

const decoder = new TextDecoder();

/** The ring a pool of `servers` (127.0.0.1:port:1, fnv1a_64, ketama) builds. */
export function ringOf(servers: readonly ServerProcess[]): RingSpec {
  return { hash: "fnv1a_64", distribution: "ketama", servers: ringServers(servers.map((s) => s.port)) };
}

/** Every key on a backend (SCAN), but the proxy's own coordination keys. */
export async function userKeysOn(server: ServerProcess): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [reply] = await redisProbe(server.port, [["SCAN", cursor, "COUNT", "1000"]]);
    const [next, keys] = reply.type === "array" && reply.items !== null ? reply.items : [];
    if (next?.type !== "bulk" || next.value === null || keys?.type !== "array") throw new Error(`SCAN: ${JSON.stringify(reply)}`);
    cursor = decoder.decode(next.value);
    for (const k of keys.items ?? []) {
      if (k.type !== "bulk" || k.value === null) continue;
      const key = decoder.decode(k.value);
      // The migration record and go marker stay where they were written.
      if (!key.startsWith("twemproxy-ts:")) out.push(key);
    }
  } while (cursor !== "0");
  return out;
}

/** Keys that are not on exactly one of `all`, the owner on `servers`' ring ("key on 0+1, owner 2"). */
export async function misplacedKeys(servers: readonly ServerProcess[], all: readonly ServerProcess[]): Promise<string[]> {
  const seen = new Map<string, number[]>();
  for (const [i, server] of all.entries()) {
    for (const key of await userKeysOn(server)) seen.set(key, [...(seen.get(key) ?? []), i]);
  }
  const spec = ringOf(servers);
  const wrong: string[] = [];
  for (const [key, where] of seen) {
    const owner = all.indexOf(servers[ownerOn(spec, key)]);
    if (where.length !== 1 || where[0] !== owner) wrong.push(`${key} on ${where.join("+")}, owner ${owner}`);
  }
  return wrong;
}

/** The commands that create data key `prefix:i`: one of six types; every 7th key gets a TTL. */
export function createKey(prefix: string, i: number): string[][] {
  const key = `${prefix}:${i}`;
  const cmds: string[][] = [
    [["SET", key, `v${i}`], ["HSET", key, "a", "1", "b", "2"], ["RPUSH", key, "x", "y", "z"],
      ["SADD", key, "p", "q"], ["ZADD", key, "1", "m1", "2", "m2"], ["XADD", key, "1-1", "f", "v"]][i % 6],
  ];
  if (i % 7 === 0) cmds.push(["PEXPIRE", key, "600000"]);
  return cmds;
}

const TYPES = ["string", "hash", "list", "set", "zset", "stream"];

/** Write `count` data keys through `client` (pipelined). */
export async function createKeys(client: PipeClient, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const cmds = Array.from({ length: Math.min(500, count - i) }, (_, j) => createKey(prefix, i + j)).flat();
    const replies = await client.exchange(encodePipeline(cmds), cmds.length, 30000);
    assert.ok(replies.every((reply) => !reply.startsWith("-")), replies.find((reply) => reply.startsWith("-")));
  }
}

/** Every data key has its type, and every 7th its TTL (none for the others), read through `client`. */
export async function checkKeys(client: PipeClient, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const n = Math.min(500, count - i);
    const cmds: string[][] = [];
    for (let j = i; j < i + n; j++) cmds.push(["TYPE", `${prefix}:${j}`], ["PTTL", `${prefix}:${j}`]);
    const replies = await client.exchange(encodePipeline(cmds), cmds.length, 30000);
    for (let j = 0; j < n; j++) {
      const k = i + j;
      assert.equal(replies[2 * j], `+${TYPES[k % 6]}\r\n`, `${prefix}:${k} keeps its type`);
      const ttl = Number(/^:(-?\d+)/.exec(replies[2 * j + 1])?.[1]);
      if (k % 7 === 0) assert.ok(ttl > 0 && ttl <= 600000, `${prefix}:${k} keeps its TTL (${ttl})`);
      else assert.equal(ttl, -1, `${prefix}:${k} has no TTL`);
    }
  }
}

/** What load clients were acknowledged: the exact totals the servers must hold afterwards. */
export class Tally {
  readonly incr = new Map<string, number>();
  readonly hincr = new Map<string, number>();
  readonly sadd = new Map<string, Set<string>>();
  readonly lpush = new Map<string, number>();
  readonly errors: string[] = [];

  /**
   * One client's increments through the proxy on `port` until `stop()` (at most `max` rounds),
   * each round acknowledged before the next; `tag` keeps members distinct between clients.
   */
  async run(port: number, tag: string, stop: () => boolean, max = 3000): Promise<void> {
    const conn = await PipeClient.connect(port);
    try {
      for (let n = 0; !stop() && n < max; n++) {
        const slot = (n * 13 + tag.length * 7 + tag.charCodeAt(tag.length - 1)) % 60;
        const member = `${tag}n${n}`;
        const cmds = [["INCR", `cnt:${slot}`], ["HINCRBY", `h:${slot}`, "f", "2"], ["SADD", `s:${slot}`, member], ["LPUSH", `l:${slot}`, member]];
        const replies = await conn.exchange(encodePipeline(cmds), cmds.length, 20000);
        replies.forEach((reply, i) => this.count(cmds[i], reply, member));
      }
    } finally {
      conn.destroy();
    }
  }

  private count(cmd: string[], reply: string, member: string): void {
    if (!reply.startsWith(":")) return void this.errors.push(`${cmd.join(" ")} -> ${reply.trim()}`);
    const key = cmd[1];
    if (cmd[0] === "INCR") this.incr.set(key, (this.incr.get(key) ?? 0) + 1);
    if (cmd[0] === "HINCRBY") this.hincr.set(key, (this.hincr.get(key) ?? 0) + 2);
    if (cmd[0] === "SADD") this.sadd.set(key, (this.sadd.get(key) ?? new Set()).add(member));
    if (cmd[0] === "LPUSH") this.lpush.set(key, (this.lpush.get(key) ?? 0) + 1);
  }

  /** The totals read through `client` equal the acknowledged ones, and no client saw an error. */
  async check(client: PipeClient): Promise<void> {
    assert.deepEqual(this.errors.slice(0, 5), [], `${this.errors.length} client errors`);
    const cmds: string[][] = [];
    for (const key of this.incr.keys()) cmds.push(["GET", key]);
    for (const key of this.hincr.keys()) cmds.push(["HGET", key, "f"]);
    for (const key of this.sadd.keys()) cmds.push(["SCARD", key]);
    for (const key of this.lpush.keys()) cmds.push(["LLEN", key]);
    const got = (await client.exchange(encodePipeline(cmds), cmds.length, 20000)).map((reply) => Number(/(-?\d+)\r\n$/.exec(reply)?.[1]));
    const want = [...this.incr.values(), ...this.hincr.values(), ...[...this.sadd.values()].map((s) => s.size), ...this.lpush.values()];
    assert.deepEqual(got, want);
  }
}
