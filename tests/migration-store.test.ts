/**
 * Online expansion, store mode, with real redis-servers: a redis pool holding 20,000 keys of
 * every type grows from 2 to 3 servers and shrinks back, while several clients increment
 * counters, hashes, sets and lists through the proxy. Afterwards every key is on exactly one
 * server, its owner on the ring in force; every acknowledged increment is counted; TTLs are
 * kept; no client saw an error. An abort half way moves the keys back by the same rule.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { PipeClient, waitFor } from "./helpers/soak.ts";
import { freePorts, ownerOn, poolYaml, redisProbe, type ReloadRig, type RingSpec, ringServers, startReloadProxy } from "./helpers/reload.ts";

const KEYS = 20_000;
const BATCH = 500;
const CLIENTS = 4;
const decoder = new TextDecoder();

/** The commands that create key `i`: one of six types; every 7th key gets a TTL. */
function create(i: number): string[][] {
  const key = `sk:${i}`;
  const cmds: string[][] = [
    [["SET", key, `v${i}`], ["HSET", key, "a", "1", "b", "2"], ["RPUSH", key, "x", "y", "z"],
      ["SADD", key, "p", "q"], ["ZADD", key, "1", "m1", "2", "m2"], ["XADD", key, "1-1", "f", "v"]][i % 6],
  ];
  if (i % 7 === 0) cmds.push(["PEXPIRE", key, "600000"]);
  return cmds;
}

const TYPES = ["string", "hash", "list", "set", "zset", "stream"];

/** What a load client acknowledged: the exact totals the servers must hold afterwards. */
interface Tally {
  incr: Map<string, number>;
  hincr: Map<string, number>;
  sadd: Map<string, Set<string>>;
  lpush: Map<string, number>;
  errors: string[];
}

describe("migration: store mode, redis 2 -> 3 -> 2 under increments", () => {
  let r: ServerProcess[];
  let port = 0;
  let rig: ReloadRig;
  let client: PipeClient;
  const tally: Tally = { incr: new Map(), hincr: new Map(), sadd: new Map(), lpush: new Map(), errors: [] };
  const yaml = (servers: ServerProcess[], extra: Record<string, string | number> = {}) =>
    poolYaml("st", port, servers.map((s) => s.port), { migration: "store", ...extra });
  const ring = (servers: ServerProcess[]): RingSpec => ({ hash: "fnv1a_64", distribution: "ketama", servers: ringServers(servers.map((s) => s.port)) });

  /** Every key on a backend, by SCAN. */
  async function keysOn(server: ServerProcess): Promise<string[]> {
    const out: string[] = [];
    let cursor = "0";
    do {
      const [reply] = await redisProbe(server.port, [["SCAN", cursor, "COUNT", "1000"]]);
      const [next, keys] = reply.type === "array" && reply.items !== null ? reply.items : [];
      if (next?.type !== "bulk" || next.value === null || keys?.type !== "array") throw new Error(`SCAN: ${JSON.stringify(reply)}`);
      cursor = decoder.decode(next.value);
      for (const k of keys.items ?? []) if (k.type === "bulk" && k.value !== null) out.push(decoder.decode(k.value));
    } while (cursor !== "0");
    return out;
  }

  /** Keys that are not on exactly one server, their owner on `servers`' ring. */
  async function misplaced(servers: ServerProcess[], all: ServerProcess[]): Promise<string[]> {
    const seen = new Map<string, number[]>();
    for (const [i, server] of all.entries()) {
      for (const key of await keysOn(server)) {
        // The proxy's own coordination keys (the migration record, the go marker) stay where they were written.
        if (!key.startsWith("twemproxy-ts:")) seen.set(key, [...(seen.get(key) ?? []), i]);
      }
    }
    const spec = ring(servers);
    const wrong: string[] = [];
    for (const [key, where] of seen) {
      const owner = all.indexOf(servers[ownerOn(spec, key)]);
      if (where.length !== 1 || where[0] !== owner) wrong.push(`${key} on ${where.join("+")}, owner ${owner}`);
    }
    return wrong;
  }

  /** One client's increments until `stop()` says so (bounded in count), each acknowledged before the next batch. */
  async function loadClient(c: number, stop: () => boolean): Promise<void> {
    const conn = await PipeClient.connect(port);
    for (let n = 0; !stop() && n < 3000; n++) {
      const slot = (n * 13 + c) % 60;
      const member = `c${c}n${n}`;
      const cmds = [["INCR", `cnt:${slot}`], ["HINCRBY", `h:${slot}`, "f", "2"], ["SADD", `s:${slot}`, member], ["LPUSH", `l:${slot}`, member]];
      const replies = await conn.exchange(encodePipeline(cmds), cmds.length, 20000);
      replies.forEach((reply, i) => {
        if (!reply.startsWith(":")) return void tally.errors.push(`${cmds[i].join(" ")} -> ${reply.trim()}`);
        const key = cmds[i][1];
        if (i === 0) tally.incr.set(key, (tally.incr.get(key) ?? 0) + 1);
        if (i === 1) tally.hincr.set(key, (tally.hincr.get(key) ?? 0) + 2);
        if (i === 2) tally.sadd.set(key, (tally.sadd.get(key) ?? new Set()).add(member));
        if (i === 3) tally.lpush.set(key, (tally.lpush.get(key) ?? 0) + 1);
      });
    }
    conn.destroy();
  }

  /** Reload to `servers` with the load running; resolves when the migration is done and the load stopped. */
  async function migrateUnderLoad(servers: ServerProcess[], extra: Record<string, string | number> = {}): Promise<void> {
    let done = false;
    const loads = Array.from({ length: CLIENTS }, (_, c) => loadClient(c, () => done));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const report = await rig.reload(yaml(servers, extra));
    assert.equal(report.result, "ok", report.error ?? "");
    assert.ok(rig.pool("st").migration !== null, "a store migration runs");
    assert.ok(await waitFor(() => rig.pool("st").migration === null, 60000, 50), "the migration ends");
    await new Promise((resolve) => setTimeout(resolve, 100));
    done = true;
    await Promise.all(loads);
  }

  /** The totals through the proxy equal what the clients were acknowledged. */
  async function checkTotals(): Promise<void> {
    assert.deepEqual(tally.errors.slice(0, 5), [], `${tally.errors.length} client errors`);
    const cmds: string[][] = [];
    for (const key of tally.incr.keys()) cmds.push(["GET", key]);
    for (const key of tally.hincr.keys()) cmds.push(["HGET", key, "f"]);
    for (const key of tally.sadd.keys()) cmds.push(["SCARD", key]);
    for (const key of tally.lpush.keys()) cmds.push(["LLEN", key]);
    const got = (await client.exchange(encodePipeline(cmds), cmds.length, 20000)).map((reply) => Number(/(-?\d+)\r\n$/.exec(reply)?.[1]));
    const want = [...tally.incr.values(), ...tally.hincr.values(), ...[...tally.sadd.values()].map((s) => s.size), ...tally.lpush.values()];
    assert.deepEqual(got, want);
  }

  /** Every data key has its type, and every 7th its TTL, read through the proxy. */
  async function checkData(): Promise<void> {
    for (let i = 0; i < KEYS; i += BATCH) {
      const cmds: string[][] = [];
      for (let j = i; j < i + BATCH; j++) cmds.push(["TYPE", `sk:${j}`], ["PTTL", `sk:${j}`]);
      const replies = await client.exchange(encodePipeline(cmds), cmds.length, 30000);
      for (let j = 0; j < BATCH; j++) {
        const n = i + j;
        assert.equal(replies[2 * j], `+${TYPES[n % 6]}\r\n`, `sk:${n} keeps its type`);
        const ttl = Number(/^:(-?\d+)/.exec(replies[2 * j + 1])?.[1]);
        if (n % 7 === 0) assert.ok(ttl > 0 && ttl <= 600000, `sk:${n} keeps its TTL (${ttl})`);
        else assert.equal(ttl, -1, `sk:${n} has no TTL`);
      }
    }
  }

  before(async () => {
    r = await Promise.all([startRedis(), startRedis(), startRedis()]);
    [port] = await freePorts(1);
    rig = await startReloadProxy(yaml([r[0], r[1]]));
    client = await PipeClient.connect(port);
    for (let i = 0; i < KEYS; i += BATCH) {
      const cmds = Array.from({ length: BATCH }, (_, j) => create(i + j)).flat();
      const replies = await client.exchange(encodePipeline(cmds), cmds.length, 30000);
      assert.ok(replies.every((reply) => !reply.startsWith("-")), replies.find((reply) => reply.startsWith("-")));
    }
  });

  after(async () => {
    client?.destroy();
    await rig?.close();
    await Promise.all((r ?? []).map((s) => s?.stop()));
  });

  it("2 -> 3: every key ends on its new owner only; every acknowledged increment counted; TTLs kept; no client error", async () => {
    await migrateUnderLoad([r[0], r[1], r[2]]);
    const status = rig.pool("st").migrationStatus()!;
    assert.equal(status.phase, "done");
    assert.ok(status.keys_moved > KEYS / 5, `${status.keys_moved} keys moved in the background`);
    assert.deepEqual((await misplaced([r[0], r[1], r[2]], r)).slice(0, 5), []);
    await checkTotals();
    await checkData();
  });

  it("3 -> 2: the removed server's keys move to the others", async () => {
    await migrateUnderLoad([r[0], r[2]]);
    assert.deepEqual((await misplaced([r[0], r[2]], r)).slice(0, 5), []);
    assert.deepEqual((await keysOn(r[1])).filter((k) => !k.startsWith("twemproxy-ts:")), [], "the removed server is empty");
    await checkTotals();
    await checkData();
  });

  it("abort half way: the keys that moved come back, the others never left", async () => {
    let done = false;
    const loads = Array.from({ length: CLIENTS }, (_, c) => loadClient(c, () => done));
    const report = await rig.reload(yaml([r[0], r[1], r[2]], { migration_rate: 1000 }));
    assert.equal(report.result, "ok", report.error ?? "");
    assert.ok(await waitFor(() => (rig.pool("st").migrationStatus()?.keys_moved ?? 0) > 300, 20000, 20), "some keys moved");
    assert.ok(rig.pool("st").abortMigration());
    assert.equal(rig.pool("st").migrationStatus()!.reverse, true);
    assert.ok(await waitFor(() => rig.pool("st").migration === null, 60000, 50), "the way back ends");
    done = true;
    await Promise.all(loads);
    assert.deepEqual((await misplaced([r[0], r[2]], r)).slice(0, 5), []);
    await checkTotals();
    await checkData();
  });
});
