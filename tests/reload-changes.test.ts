/**
 * Hot reload of a changed redis pool beside an unchanged one, with clients connected
 * across every reload: the unchanged pool is not touched (same pool, same server
 * connection, no error); the changed pool keeps its listener and client sockets, routes
 * new requests by the new hash, distribution, weights and server list, applies the new
 * timeout to the connections it keeps, closes a removed server's connection once its
 * in-flight reply is in, and replaces connections when redis_db, tcpkeepalive or
 * redis_auth changes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Pool } from "../core/proxy/pool.ts";
import type { ReloadReport } from "../core/reload/types.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, encodePipeline } from "./helpers/resp.ts";
import { freeze, PipeClient, waitFor } from "./helpers/soak.ts";
import { sleep } from "./helpers/ports.ts";
import {
  backendGet,
  freePorts,
  keysOwned,
  type PoolKeys,
  poolYaml,
  proxyConnIds,
  proxyConns,
  redisProbe,
  type ReloadRig,
  type RingSpec,
  ringServers,
  startReloadProxy,
} from "./helpers/reload.ts";

const pipe = (...cmds: Arg[][]) => encodePipeline(cmds);
const bulk = (v: string) => `$${v.length}\r\n${v}\r\n`;

/** The change for `pool` in a report (fails when absent). */
function changeOf(report: ReloadReport, pool: string) {
  const found = report.changes.find((c) => c.pool === pool);
  assert.ok(found !== undefined, `no change listed for pool '${pool}': ${JSON.stringify(report.changes)}`);
  return found;
}

function assertOk(report: ReloadReport): void {
  assert.equal(report.error, null, `reload failed: ${report.error}`);
  assert.equal(report.result, "ok");
  assert.equal(report.dryRun, false);
}

describe("reload: pool 'a' changes, pool 'b' does not (redis)", () => {
  let a1: ServerProcess, a2: ServerProcess, a3: ServerProcess, b1: ServerProcess;
  let pa = 0, pb = 0;
  let rig: ReloadRig;
  let ca: PipeClient, cb: PipeClient;
  let poolA: Pool, poolB: Pool;
  let bCount = 0;
  let idsB: number[] = [];
  const yamlOf = (aServers: readonly (number | string)[], aKeys: PoolKeys) =>
    poolYaml("a", pa, aServers, aKeys) + poolYaml("b", pb, [b1.port], { hash: "fnv1a_64", timeout: 2000 });
  const ringOf = (hash: RingSpec["hash"], distribution: RingSpec["distribution"], ports: number[], weights: number[] = []): RingSpec => ({
    hash,
    distribution,
    servers: ringServers(ports, weights),
  });

  /** One INCR on pool b's client: the counter goes up by one every time, with no error. */
  async function incrB(): Promise<void> {
    const [got] = await cb.exchange(pipe(["INCR", "b:counter"]), 1, 3000);
    assert.equal(got, `:${++bCount}\r\n`, "pool b's client gets its INCR reply");
  }

  /** SET each key through client a and check it landed on `on` and nowhere else among `all`. */
  async function setAndCheck(keys: string[], on: ServerProcess, all: ServerProcess[], opts: { db?: number } = {}): Promise<void> {
    const got = await ca.exchange(encodePipeline(keys.map((k) => ["SET", k, `v-${k}`])), keys.length, 3000);
    assert.deepEqual(got, keys.map(() => "+OK\r\n"));
    for (const k of keys) {
      for (const s of all) {
        assert.equal(await backendGet(s.port, k, opts), s === on ? `v-${k}` : null, `key ${k} on server ${s.port} (want ${on.port})`);
      }
    }
  }

  before(async () => {
    [a1, a2, a3, b1] = await Promise.all([startRedis(), startRedis(), startRedis(), startRedis()]);
    [pa, pb] = await freePorts(2);
    rig = await startReloadProxy(yamlOf([a1.port, a2.port], { hash: "fnv1a_64", distribution: "ketama", timeout: 2000 }));
    ca = await PipeClient.connect(pa);
    cb = await PipeClient.connect(pb);
    poolA = rig.pool("a");
    poolB = rig.pool("b");
    await incrB();
    idsB = await proxyConnIds(b1.port);
    assert.equal(idsB.length, 1, "pool b has one connection to its server");
  });

  after(async () => {
    for (const s of [a1, a2, a3, b1]) s?.kill("SIGCONT");
    ca?.destroy();
    cb?.destroy();
    await rig?.close();
    await Promise.all([a1, a2, a3, b1].map((s) => s?.stop()));
  });

  it("changes pool a's hash and leaves pool b alone: same pool, server and connection, no error", async () => {
    const ring0 = ringOf("fnv1a_64", "ketama", [a1.port, a2.port]);
    const ring1 = ringOf("murmur", "ketama", [a1.port, a2.port]);
    // Open pool a's connections to both servers first.
    await setAndCheck(keysOwned(ring0, 0, "warm0"), a1, [a1, a2]);
    await setAndCheck(keysOwned(ring0, 1, "warm1"), a2, [a1, a2]);
    const [ids1, ids2] = [await proxyConnIds(a1.port), await proxyConnIds(a2.port)];
    const serverB = poolB.servers[0];
    const before = { opened: serverB.stats.server_connections_opened, requests: serverB.stats.requests };

    const report = await rig.reload(yamlOf([a1.port, a2.port], { hash: "murmur", distribution: "ketama", timeout: 2000 }));
    assertOk(report);
    assert.equal(report.generation, 2);
    assert.equal(rig.reloader.status().generation, 2);
    assert.equal(changeOf(report, "b").action, "unchanged");
    assert.deepEqual([...changeOf(report, "b").details], []);
    assert.equal(changeOf(report, "a").action, "changed");
    assert.ok(changeOf(report, "a").details.some((d) => d.includes("hash")), `details name the hash: ${changeOf(report, "a").details}`);

    assert.equal(rig.pool("b"), poolB, "pool b is the same object");
    assert.equal(poolB.servers[0], serverB, "pool b's server is the same object");
    await incrB();
    assert.equal(serverB.stats.server_connections_opened, before.opened, "pool b opened no connection");
    assert.equal(serverB.stats.requests, before.requests + 1, "pool b's counters continue");
    assert.deepEqual(await proxyConnIds(b1.port), idsB, "pool b's backend sees the same connection");

    assert.equal(rig.pool("a"), poolA, "pool a is the same object");
    assert.equal(rig.port("a"), pa);
    // Keys whose owner the new hash changes go where murmur puts them.
    await setAndCheck(keysOwned(ring1, 0, "h0", 3, { ring: ring0, index: 1 }), a1, [a1, a2]);
    await setAndCheck(keysOwned(ring1, 1, "h1", 3, { ring: ring0, index: 0 }), a2, [a1, a2]);
    assert.deepEqual(await proxyConnIds(a1.port), ids1, "server a1, in both configs, keeps its connection");
    assert.deepEqual(await proxyConnIds(a2.port), ids2, "server a2, in both configs, keeps its connection");
    assert.equal(ca.closed, false);
  });

  it("swaps a server: the kept one keeps its connection and counters, the removed one answers its in-flight request, then closes", async () => {
    const ring1 = ringOf("murmur", "ketama", [a1.port, a2.port]);
    const ring2 = ringOf("murmur", "ketama", [a1.port, a3.port]);
    const [k2] = keysOwned(ring1, 1, "gone");
    assert.deepEqual(await ca.exchange(pipe(["SET", k2, "on-a2"]), 1), ["+OK\r\n"]);
    const ids1 = await proxyConnIds(a1.port);
    const kept = poolA.servers[0];
    const keptBefore = { requests: kept.stats.requests, opened: kept.stats.server_connections_opened };
    assert.equal(kept.conf.id, `127.0.0.1:${a1.port}`);

    await freeze(a2);
    const first = ca.replies.length;
    ca.write(pipe(["GET", k2])); // in flight to a2 while the reload drops it
    await sleep(50);
    const pending = rig.reload(yamlOf([a1.port, a3.port], { hash: "murmur", distribution: "ketama", timeout: 2000 }));
    await sleep(150);
    a2.kill("SIGCONT");
    const report = await pending;
    assertOk(report);
    assert.equal(changeOf(report, "a").action, "changed");
    assert.equal(changeOf(report, "b").action, "unchanged");
    assert.deepEqual(poolA.servers.map((s) => s.conf.id), [`127.0.0.1:${a1.port}`, `127.0.0.1:${a3.port}`]);
    const replies = await ca.waitReplies(first + 1, 3000);
    assert.equal(new TextDecoder().decode(replies[first]), bulk("on-a2"), "the request sent to a2 before the reload gets a2's answer");
    assert.ok(await waitFor(async () => (await proxyConnIds(a2.port)).length === 0, 3000), "the removed server's connection closes");
    await incrB();

    await setAndCheck(keysOwned(ring2, 1, "new3", 3), a3, [a1, a2, a3]);
    await setAndCheck(keysOwned(ring2, 0, "new1", 3), a1, [a1, a2, a3]);
    assert.deepEqual(await proxyConnIds(a1.port), ids1, "a1 keeps its connection");
    const a1Now = poolA.servers[0];
    assert.equal(a1Now.stats.server_connections_opened, keptBefore.opened, "a1 opened no new connection");
    assert.ok(a1Now.stats.requests >= keptBefore.requests + 3, `a1's request counter continues (${keptBefore.requests} -> ${a1Now.stats.requests})`);
    assert.equal(ca.closed, false);
  });

  it("applies new weights, distribution and timeout without reconnecting; the new timeout holds on a kept connection", async () => {
    const ring3 = ringOf("murmur", "modula", [a1.port, a3.port], [1, 3]);
    const [ids1, ids3] = [await proxyConnIds(a1.port), await proxyConnIds(a3.port)];
    const yaml = yamlOf([`127.0.0.1:${a1.port}:1`, `127.0.0.1:${a3.port}:3`], { hash: "murmur", distribution: "modula", timeout: 300 });
    const report = await rig.reload(yaml);
    assertOk(report);
    assert.equal(changeOf(report, "a").action, "changed");
    assert.equal(poolA.conf.timeout, 300);
    assert.equal(poolA.conf.distribution, "modula");
    await incrB();
    await setAndCheck(keysOwned(ring3, 0, "w0", 3), a1, [a1, a3]);
    await setAndCheck(keysOwned(ring3, 1, "w1", 3), a3, [a1, a3]);
    assert.deepEqual(await proxyConnIds(a1.port), ids1, "a1 keeps its connection");
    assert.deepEqual(await proxyConnIds(a3.port), ids3, "a3 keeps its connection");

    // The kept connection to a1 now times out after 300 ms, not the old 2000.
    const [k1] = keysOwned(ring3, 0, "slow");
    await freeze(a1);
    const start = Date.now();
    try {
      const [got] = await ca.exchange(pipe(["GET", k1]), 1, 3000);
      const elapsed = Date.now() - start;
      assert.equal(got, "-ERR Connection timed out\r\n");
      assert.ok(elapsed >= 250 && elapsed < 1500, `timed out after ${elapsed} ms, want about 300`);
    } finally {
      a1.kill("SIGCONT");
    }
    assert.equal(ca.closed, false);
  });

  it("replaces the connections when redis_db changes: new requests land in the new db", async () => {
    const ring3 = ringOf("murmur", "modula", [a1.port, a3.port], [1, 3]);
    const servers = [`127.0.0.1:${a1.port}:1`, `127.0.0.1:${a3.port}:3`];
    await setAndCheck(keysOwned(ring3, 0, "db0a"), a1, [a1, a3]); // a1 reconnects after the timeout
    await setAndCheck(keysOwned(ring3, 1, "db0b"), a3, [a1, a3]);
    const old = [...await proxyConnIds(a1.port), ...await proxyConnIds(a3.port)];
    assert.equal(old.length, 2);

    const report = await rig.reload(yamlOf(servers, { hash: "murmur", distribution: "modula", timeout: 2000, redis_db: 2 }));
    assertOk(report);
    assert.equal(changeOf(report, "a").action, "changed");
    assert.equal(changeOf(report, "b").action, "unchanged");
    await incrB();
    for (const [i, s] of [[0, a1], [1, a3]] as const) {
      const keys = keysOwned(ring3, i, `db2-${i}`, 2);
      await setAndCheck(keys, s, [a1, a3], { db: 2 });
      for (const k of keys) assert.equal(await backendGet(s.port, k), null, `${k} is not in db 0`);
    }
    for (const s of [a1, a3]) {
      const ok = await waitFor(async () => {
        const conns = await proxyConns(s.port);
        return conns.length > 0 && conns.every((c) => c.db === 2 && !old.includes(c.id));
      }, 3000);
      assert.ok(ok, `server ${s.port}: only new connections on db 2 remain: ${JSON.stringify(await proxyConns(s.port))}`);
    }
    assert.equal(ca.closed, false);
    // The diff speaks the config file's language: the key as written in nutcracker.yml.
    const details = changeOf(report, "a").details;
    assert.ok(details.some((d) => d.startsWith("redis_db ")), `details name the key redis_db: ${JSON.stringify(details)}`);
  });

  it("replaces the connections when tcpkeepalive changes", async () => {
    const ring3 = ringOf("murmur", "modula", [a1.port, a3.port], [1, 3]);
    const servers = [`127.0.0.1:${a1.port}:1`, `127.0.0.1:${a3.port}:3`];
    const old = await proxyConnIds(a3.port);
    assert.equal(old.length, 1);
    const keys = { hash: "murmur", distribution: "modula", timeout: 2000, redis_db: 2, tcpkeepalive: true } as const;
    const report = await rig.reload(yamlOf(servers, keys));
    assertOk(report);
    assert.equal(changeOf(report, "a").action, "changed");
    await incrB();
    await setAndCheck(keysOwned(ring3, 1, "ka"), a3, [a1, a3], { db: 2 });
    const replaced = await waitFor(async () => {
      const ids = await proxyConnIds(a3.port);
      return ids.length === 1 && !old.includes(ids[0]);
    }, 3000);
    assert.ok(replaced, `a3: one new connection, the old one closed (before ${old}, now ${await proxyConnIds(a3.port)})`);
    assert.equal(ca.closed, false);
  });

  it("pool b's client got every reply in order on its first connection, and its server saw no reconnect", async () => {
    await incrB();
    assert.equal(cb.closed, false);
    assert.equal(cb.replies.length, bCount);
    assert.equal(cb.leftover, 0);
    assert.equal(rig.pool("b"), poolB);
    assert.deepEqual(await proxyConnIds(b1.port), idsB);
    assert.equal(poolB.stats.client_err, 0);
    assert.equal(poolB.stats.forward_error, 0);
    assert.equal(poolB.servers[0].stats.server_connections_opened, 1);
    assert.equal(rig.reloader.status().generation, 6);
  });
});

describe("reload: redis_auth changes (redis with requirepass)", () => {
  let server: ServerProcess;
  let port = 0;
  let rig: ReloadRig;
  let client: PipeClient;

  before(async () => {
    server = await startRedis({ args: ["--requirepass", "pw-one"] });
    [port] = await freePorts(1);
    rig = await startReloadProxy(poolYaml("auth", port, [server.port], { redis_auth: "pw-one" }));
    client = await PipeClient.connect(port);
  });

  after(async () => {
    client?.destroy();
    await rig?.close();
    await server?.stop();
  });

  it("authenticates new connections with the new password and closes the old ones; the client stays and takes the new password", async () => {
    assert.deepEqual(await client.exchange(pipe(["AUTH", "pw-one"], ["SET", "auth:k", "before"]), 2), ["+OK\r\n", "+OK\r\n"]);
    const old = await proxyConnIds(server.port, { auth: "pw-one" });
    assert.equal(old.length, 1);
    // The server's password changes; its authenticated connections stay authenticated.
    const [set] = await redisProbe(server.port, [["CONFIG", "SET", "requirepass", "pw-two"]], { auth: "pw-one" });
    assert.deepEqual(set, { type: "status", text: "OK" });

    const report = await rig.reload(poolYaml("auth", port, [server.port], { redis_auth: "pw-two" }));
    assertOk(report);
    assert.equal(changeOf(report, "auth").action, "changed");
    assert.equal(rig.pool("auth").conf.redisAuth, "pw-two");
    assert.deepEqual(await client.exchange(pipe(["GET", "auth:k"], ["SET", "auth:k", "after"]), 2, 3000), [bulk("before"), "+OK\r\n"]);
    assert.equal(await backendGet(server.port, "auth:k", { auth: "pw-two" }), "after");
    const replaced = await waitFor(async () => {
      const ids = await proxyConnIds(server.port, { auth: "pw-two" });
      return ids.length === 1 && !old.includes(ids[0]);
    }, 3000);
    assert.ok(replaced, `one new connection, the old one closed: before ${old}, now ${await proxyConnIds(server.port, { auth: "pw-two" })}`);
    assert.equal(client.closed, false);
    // The proxy's own AUTH now checks the new password, for a new client and the connected one.
    const fresh = await PipeClient.connect(port);
    try {
      const [wrong, right, get] = await fresh.exchange(pipe(["AUTH", "pw-one"], ["AUTH", "pw-two"], ["GET", "auth:k"]), 3, 3000);
      assert.match(wrong, /^-ERR /, "a new client's AUTH with the old password fails");
      assert.deepEqual([right, get], ["+OK\r\n", bulk("after")]);
    } finally {
      fresh.destroy();
    }
    assert.deepEqual(await client.exchange(pipe(["AUTH", "pw-two"]), 1), ["+OK\r\n"], "the connected client's AUTH takes the new password");
  });
});
