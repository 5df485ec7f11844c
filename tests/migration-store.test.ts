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
import { PipeClient, waitFor } from "./helpers/soak.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { freePorts, poolYaml, type ReloadRig, startReloadProxy } from "./helpers/reload.ts";
import { checkKeys, createKeys, misplacedKeys, ringOf, Tally, userKeysOn } from "./helpers/migration.ts";
import { ownerOn } from "./helpers/reload.ts";

const KEYS = 20_000;
const CLIENTS = 4;

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

  before(async () => {
    r = await Promise.all([startRedis(), startRedis(), startRedis()]);
    [port] = await freePorts(1);
    rig = await startReloadProxy(yaml([r[0], r[1]]));
    client = await PipeClient.connect(port);
    await createKeys(client, "sk", KEYS);
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
    assert.ok(status.sources.every((s) => s.done && s.keys_scanned > 0 && s.bytes_moved > 0), JSON.stringify(status.sources));
    assert.deepEqual((await misplacedKeys([r[0], r[1], r[2]], r)).slice(0, 5), []);
    await tally.check(client);
    await checkKeys(client, "sk", KEYS);
  });

  it("3 -> 2: the removed server's keys move to the others", async () => {
    await migrateUnderLoad([r[0], r[2]]);
    assert.deepEqual((await misplacedKeys([r[0], r[2]], r)).slice(0, 5), []);
    assert.deepEqual(await userKeysOn(r[1]), [], "the removed server is empty");
    await tally.check(client);
    await checkKeys(client, "sk", KEYS);
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
    await checkKeys(client, "sk", KEYS);
  });

  it("keys over 8 MiB are copied in pieces while their writes wait (none lost); a big stream waits for finish", async () => {
    const before = ringOf([r[0], r[2]]);
    const after = ringOf([r[0], r[1], r[2]]);
    const moving = Array.from({ length: 3000 }, (_, i) => `big:${i}`).filter((k) => ownerOn(after, k) === 1 && ownerOn(before, k) === 0);
    const [str, hash, stream] = moving;
    const piece = "b".repeat(1024 * 1024);
    const cmds: string[][] = [];
    for (let i = 0; i < 9; i++) cmds.push(["APPEND", str, piece]);
    cmds.push(["PEXPIRE", str, "600000"]);
    for (let i = 0; i < 200; i++) cmds.push(["HSET", hash, ...Array.from({ length: 100 }, (_, j) => [`f${i}-${j}`, "h".repeat(500)]).flat()]);
    for (let i = 0; i < 9000; i++) cmds.push(["XADD", stream, "*", "f", "s".repeat(1000)]);
    const setup = await client.exchange(encodePipeline(cmds), cmds.length, 60000);
    assert.ok(setup.every((reply) => !reply.startsWith("-")));

    let done = false;
    let acked = 0;
    const errors: string[] = [];
    const writer = (async () => {
      const conn = await PipeClient.connect(port);
      for (let n = 0; !done && n < 100_000; n++) {
        const [reply] = await conn.exchange(encodePipeline([["HINCRBY", hash, "counter", "1"]]), 1, 40000);
        if (reply.startsWith(":")) acked++;
        else errors.push(reply);
      }
      conn.destroy();
    })();
    const report = await rig.reload(yaml([r[0], r[1], r[2]], { migration_rate: 0 }));
    assert.equal(report.result, "ok", report.error ?? "");
    assert.ok(await waitFor(() => rig.pool("st").migrationStatus()?.phase === "big_keys_left", 90000, 50), "everything but the stream moved");
    done = true;
    await writer;
    assert.deepEqual(errors.slice(0, 3), [], "writes to a key copied in pieces wait, they do not fail");
    assert.equal(rig.pool("st").migrationStatus()?.big_keys_left, 1, "the stream is left for finish");
    const [hlen, counter, strlen, pttl] = await client.exchange(
      encodePipeline([["HLEN", hash], ["HGET", hash, "counter"], ["STRLEN", str], ["PTTL", str]]), 4);
    assert.equal(hlen, ":20001\r\n");
    assert.equal(counter, `$${String(acked).length}\r\n${acked}\r\n`, "every acknowledged increment is in the copy");
    assert.equal(strlen, `:${9 * piece.length}\r\n`);
    assert.ok(Number(/:(\d+)/.exec(pttl)?.[1]) > 0, "the TTL came along");
    assert.ok((await userKeysOn(r[1])).includes(hash) && (await userKeysOn(r[1])).includes(str), "both are on their new owner");
    assert.ok((await userKeysOn(r[0])).includes(stream), "the stream is still on its old owner");
    assert.deepEqual(await client.exchange(encodePipeline([["XLEN", stream]]), 1), [":9000\r\n"], "served where it is");
    assert.equal(await rig.pool("st").migration!.finish(), "done");
    assert.equal(rig.pool("st").migration, null);
    assert.deepEqual((await misplacedKeys([r[0], r[1], r[2]], r)).slice(0, 5), []);
  });
});
