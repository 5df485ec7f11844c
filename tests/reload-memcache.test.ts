/**
 * Hot reload of a memcached pool's server list with a client connected: the client's
 * socket keeps working, new keys go by the new ring, the server kept in both lists keeps
 * its connection (memcached's total_connections does not move), and the removed server's
 * connection closes. And a pool that switches protocol on the same address: its listener is
 * handed over (no "address in use"), its redis clients are closed, new clients speak memcached.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ServerProcess, startMemcached, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { memcacheFramer, PipeClient, waitFor } from "./helpers/soak.ts";
import {
  freePorts,
  keysOwned,
  memcachedGet,
  memcachedStats,
  poolYaml,
  type ReloadRig,
  type RingSpec,
  ringServers,
  startReloadProxy,
} from "./helpers/reload.ts";

const set = (key: string, value: string) => `set ${key} 0 0 ${value.length}\r\n${value}\r\n`;
const value = (key: string, v: string) => `VALUE ${key} 0 ${v.length}\r\n${v}\r\n`;

describe("reload: a memcached pool's server list changes", () => {
  let m1: ServerProcess, m2: ServerProcess, m3: ServerProcess;
  let port = 0;
  let rig: ReloadRig;
  let client: PipeClient;
  /** memcached's curr_connections with only the stats probe connected. */
  let idleConns = 0;
  // migration none: twemproxy's switch to the new ring at once (cache mode is tested in migration-cache).
  const keys = { hash: "fnv1a_64", distribution: "ketama", redis: false, migration: "none" } as const;
  const ring = (servers: ServerProcess[]): RingSpec => ({ hash: "fnv1a_64", distribution: "ketama", servers: ringServers(servers.map((s) => s.port)) });
  const curr = async (s: ServerProcess) => Number((await memcachedStats(s.port)).get("curr_connections"));
  const total = async (s: ServerProcess) => Number((await memcachedStats(s.port)).get("total_connections"));

  before(async () => {
    [m1, m2, m3] = await Promise.all([startMemcached(), startMemcached(), startMemcached()]);
    [port] = await freePorts(1);
    idleConns = await curr(m3);
    rig = await startReloadProxy(poolYaml("mc", port, [m1.port, m2.port], keys));
    client = await PipeClient.connect(port, memcacheFramer);
  });

  after(async () => {
    client?.destroy();
    await rig?.close();
    await Promise.all([m1, m2, m3].map((s) => s?.stop()));
  });

  it("keeps the client, routes by the new ring, keeps the kept server's connection and closes the removed one's", async () => {
    const [k1] = keysOwned(ring([m1, m2]), 0, "mk1", 1, { ring: ring([m1, m3]), index: 0 });
    const [k2] = keysOwned(ring([m1, m2]), 1, "mk2");
    assert.deepEqual(await client.exchange(set(k1, "one") + set(k2, "two"), 2), ["STORED\r\n", "STORED\r\n"]);
    assert.equal(await memcachedGet(m2.port, k2), "two");
    assert.ok(await curr(m2) > idleConns, "the proxy is connected to m2");
    const t0 = await total(m1);

    const report = await rig.reload(poolYaml("mc", port, [m1.port, m3.port], keys));
    assert.equal(report.result, "ok", `error: ${report.error}`);
    const change = report.changes.find((c) => c.pool === "mc");
    assert.equal(change?.action, "changed");
    assert.ok(change.details.some((d) => d.includes(String(m3.port))), `details name the added server: ${change.details}`);

    const [k3] = keysOwned(ring([m1, m3]), 1, "mk3");
    assert.deepEqual(await client.exchange(set(k3, "three"), 1, 3000), ["STORED\r\n"]);
    assert.deepEqual(await client.exchange(`get ${k1} ${k3}\r\n`, 1, 3000), [`${value(k1, "one")}${value(k3, "three")}END\r\n`]);
    assert.equal(client.closed, false);
    assert.equal(await total(m1) - t0, 1, "m1 saw no new connection but the second stats probe");
    assert.equal(await memcachedGet(m3.port, k3), "three");
    assert.equal(await memcachedGet(m1.port, k3), null);
    assert.equal(await memcachedGet(m2.port, k3), null);
    assert.ok(await waitFor(async () => await curr(m2) === idleConns, 3000), "the connection to the removed m2 closes");
  });
});

describe("reload: a pool switches from redis to memcached on the same address", () => {
  let redis: ServerProcess, mc: ServerProcess;
  let port = 0;
  let rig: ReloadRig;
  let old: PipeClient;
  let fresh: PipeClient | null = null;

  before(async () => {
    [redis, mc] = await Promise.all([startRedis(), startMemcached()]);
    [port] = await freePorts(1);
    rig = await startReloadProxy(poolYaml("swap", port, [redis.port]));
    old = await PipeClient.connect(port);
  });

  after(async () => {
    old?.destroy();
    fresh?.destroy();
    await rig?.close();
    await Promise.all([redis, mc].map((s) => s?.stop()));
  });

  it("hands the listener over: the redis client is closed, a new client is served by memcached", async () => {
    assert.deepEqual(await old.exchange(encodePipeline([["SET", "proto:k", "r"]]), 1), ["+OK\r\n"]);
    const report = await rig.reload(poolYaml("swap", port, [mc.port], { redis: false }));
    assert.equal(report.result, "ok", `error: ${report.error}`);
    assert.equal(rig.port("swap"), port);
    assert.equal(rig.pool("swap").conf.redis, false);
    assert.ok(await waitFor(() => old.closed, 3000), "the redis client is closed");
    fresh = await PipeClient.connect(port, memcacheFramer);
    assert.deepEqual(await fresh.exchange(set("proto:k", "m") + "get proto:k\r\n", 2, 3000), ["STORED\r\n", `${value("proto:k", "m")}END\r\n`]);
    assert.equal(await memcachedGet(mc.port, "proto:k"), "m");
  });
});
