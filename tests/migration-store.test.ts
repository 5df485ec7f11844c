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

  it("a key over 8 MiB is not MIGRATEd in the background: its old owner serves it until finish moves it", async () => {
    const before = ringOf([r[0], r[2]]);
    const after = ringOf([r[0], r[1], r[2]]);
    const key = Array.from({ length: 1000 }, (_, i) => `big:${i}`).find((k) => ownerOn(after, k) === 1 && ownerOn(before, k) === 0)!;
    const big = "b".repeat(9 * 1024 * 1024);
    assert.deepEqual(await client.exchange(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${big.length}\r\n${big}\r\n`, 1), ["+OK\r\n"]);
    const report = await rig.reload(yaml([r[0], r[1], r[2]], { migration_rate: 0 }));
    assert.equal(report.result, "ok", report.error ?? "");
    assert.ok(await waitFor(() => rig.pool("st").migrationStatus()?.phase === "big_keys_left", 60000, 50), "every old server scanned");
    assert.equal(rig.pool("st").migrationStatus()?.big_keys_left, 1);
    assert.ok((await userKeysOn(r[0])).includes(key), "the big key is still on its old owner");
    // Served where it is: an APPEND runs on the old owner inside the request script.
    assert.deepEqual(await client.exchange(`*3\r\n$6\r\nAPPEND\r\n$${key.length}\r\n${key}\r\n$1\r\nx\r\n`, 1), [`:${big.length + 1}\r\n`]);
    assert.equal(await rig.pool("st").migration!.finish(), "done");
    assert.equal(rig.pool("st").migration, null);
    assert.deepEqual((await misplacedKeys([r[0], r[1], r[2]], r)).slice(0, 5), []);
    assert.deepEqual(await client.exchange(`*2\r\n$6\r\nSTRLEN\r\n$${key.length}\r\n${key}\r\n`, 1), [`:${big.length + 1}\r\n`]);
  });
});
