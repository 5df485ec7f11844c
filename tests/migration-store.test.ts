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
import { freePorts, poolYaml, type ReloadRig, startReloadProxy } from "./helpers/reload.ts";
import { misplacedKeys, Tally, userKeysOn } from "./helpers/migration.ts";

const KEYS = 20_000;
const BATCH = 500;
const CLIENTS = 4;

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

describe("migration: store mode, redis 2 -> 3 -> 2 under increments", () => {
  let r: ServerProcess[];
  let port = 0;
  let rig: ReloadRig;
  let client: PipeClient;
  const tally = new Tally();
  const yaml = (servers: ServerProcess[], extra: Record<string, string | number> = {}) =>
    poolYaml("st", port, servers.map((s) => s.port), { migration: "store", ...extra });

  /** Reload to `servers` with the load running; resolves when the migration is done and the load stopped. */
  async function migrateUnderLoad(servers: ServerProcess[], extra: Record<string, string | number> = {}): Promise<void> {
    let done = false;
    const loads = Array.from({ length: CLIENTS }, (_, c) => tally.run(port, `c${c}`, () => done));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const report = await rig.reload(yaml(servers, extra));
    assert.equal(report.result, "ok", report.error ?? "");
    assert.ok(rig.pool("st").migration !== null, "a store migration runs");
    assert.ok(await waitFor(() => rig.pool("st").migration === null, 60000, 50), "the migration ends");
    await new Promise((resolve) => setTimeout(resolve, 100));
    done = true;
    await Promise.all(loads);
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
    assert.deepEqual((await misplacedKeys([r[0], r[1], r[2]], r)).slice(0, 5), []);
    await tally.check(client);
    await checkData();
  });

  it("3 -> 2: the removed server's keys move to the others", async () => {
    await migrateUnderLoad([r[0], r[2]]);
    assert.deepEqual((await misplacedKeys([r[0], r[2]], r)).slice(0, 5), []);
    assert.deepEqual(await userKeysOn(r[1]), [], "the removed server is empty");
    await tally.check(client);
    await checkData();
  });

  it("abort half way: the keys that moved come back, the others never left", async () => {
    let done = false;
    const loads = Array.from({ length: CLIENTS }, (_, c) => tally.run(port, `c${c}`, () => done));
    const report = await rig.reload(yaml([r[0], r[1], r[2]], { migration_rate: 1000 }));
    assert.equal(report.result, "ok", report.error ?? "");
    assert.ok(await waitFor(() => (rig.pool("st").migrationStatus()?.keys_moved ?? 0) > 300, 20000, 20), "some keys moved");
    assert.ok(rig.pool("st").abortMigration());
    assert.equal(rig.pool("st").migrationStatus()!.reverse, true);
    assert.ok(await waitFor(() => rig.pool("st").migration === null, 60000, 50), "the way back ends");
    done = true;
    await Promise.all(loads);
    assert.deepEqual((await misplacedKeys([r[0], r[2]], r)).slice(0, 5), []);
    await tally.check(client);
    await checkData();
  });
});
