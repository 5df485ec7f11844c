/**
 * Where reads go under each read_policy, and by replica weight, with real replication:
 * one master, two replicas and a replica whose link never comes up, behind one proxy with
 * a pool per policy. Counted with the servers' own INFO commandstats, not the proxy's.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { systemClock } from "../core/net.ts";
import { ReadState } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import type { ServerProcess } from "./helpers/servers.ts";
import { canConnect } from "./helpers/ports.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { freeze, PipeClient, waitFor } from "./helpers/soak.ts";
import {
  bulk,
  caughtUp,
  deltas,
  describeStates,
  fillKeys,
  getCounts,
  keyOf,
  nodeAt,
  NOTHING_LISTENS,
  Redises,
  replicaPoolYaml,
  valueOf,
  waitLinked,
  waitStates,
} from "./helpers/replicas.ts";

const KEYS = 100;
const PREFIX = "pol";

/** Pool indexes in the proxy's config. */
const POOL = { master: 0, preferMaster: 1, replica: 2, any: 3, replicaNone: 4, weights: 5 } as const;

describe("replicas: read policies and weights", () => {
  const redis = new Redises("policies-");
  let master: ServerProcess;
  let r1: ServerProcess;
  let r2: ServerProcess;
  /** A replica of a port nothing listens on: its link never comes up. */
  let broken: ServerProcess;
  let all: ServerProcess[];
  let tp: TestProxy;

  before(async () => {
    assert.equal(await canConnect(NOTHING_LISTENS), false, `nothing listens on port ${NOTHING_LISTENS}`);
    master = await redis.master();
    [r1, r2, broken] = await Promise.all([redis.replica(master.port), redis.replica(master.port), redis.replica(NOTHING_LISTENS)]);
    all = [master, r1, r2, broken];
    assert.ok(await waitLinked([r1, r2]), "the replicas finished their first sync");
    await fillKeys(master, PREFIX, KEYS);
    assert.ok(await caughtUp(master, [r1, r2]), "the replicas have every key");
    const [m, a, b, x] = all.map((s) => s.port);
    const ejecting = { auto_eject_hosts: true, server_failure_limit: 1, server_retry_timeout: 500, timeout: 300 };
    tp = await startTestProxy([
      replicaPoolYaml({ name: "p_master", master: m, replicas: [a, b], policy: "master" }),
      replicaPoolYaml({ name: "p_prefer_master", master: m, replicas: [a, b], policy: "prefer_master", extra: ejecting }),
      replicaPoolYaml({ name: "p_replica", master: m, replicas: [a, b, x], policy: "replica" }),
      replicaPoolYaml({ name: "p_any", master: m, replicas: [a, b, x], policy: "any" }),
      replicaPoolYaml({ name: "p_replica_none", master: m, replicas: [x], policy: "replica" }),
      replicaPoolYaml({ name: "p_weights", master: m, replicas: [[a, 1], [b, 3]], policy: "replica" }),
    ].join(""));
    // Every pool but p_replica_none lists both linked replicas: wait until each pool finds them eligible.
    for (const pool of Object.values(POOL).filter((p) => p !== POOL.replicaNone)) {
      const ready = await waitStates(tp, pool, [[a, ReadState.Eligible], [b, ReadState.Eligible]], 10000);
      assert.ok(ready, `pool ${pool}: the linked replicas become eligible (${describeStates(tp, pool)})`);
    }
  });

  after(async () => {
    master?.kill("SIGCONT");
    await tp?.close();
    await redis.stopAll();
  });

  /** `count` GETs of the filled keys through pool `pool`, pipelined `batch` at a time; returns GET arrivals per server. */
  async function reads(pool: number, count: number, batch = count): Promise<number[]> {
    const before = await getCounts(all);
    const client = await PipeClient.connect(tp.port(pool));
    try {
      for (let sent = 0; sent < count; sent += batch) {
        const ids = Array.from({ length: Math.min(batch, count - sent) }, (_, i) => (sent + i) % KEYS);
        const got = await client.exchange(encodePipeline(ids.map((i) => ["GET", keyOf(PREFIX, i)])), ids.length, 10000);
        got.forEach((reply, k) => assert.equal(reply, bulk(valueOf(PREFIX, ids[k])), `GET ${keyOf(PREFIX, ids[k])}`));
      }
    } finally {
      client.destroy();
    }
    return deltas(before, await getCounts(all));
  }

  describe("read_policy", () => {
    it("master: every read goes to the master", async () => {
      assert.deepEqual(await reads(POOL.master, 300), [300, 0, 0, 0]);
    });

    it("prefer_master: every read goes to the master while it is up", async () => {
      assert.deepEqual(await reads(POOL.preferMaster, 300), [300, 0, 0, 0]);
    });

    it("replica: reads go only to the replicas that are linked, both of them, none to the master", async () => {
      const [onMaster, a, b, onBroken] = await reads(POOL.replica, 300);
      assert.equal(onMaster, 0, "no reads on the master");
      assert.equal(onBroken, 0, "no reads on the replica whose link is down");
      assert.equal(a + b, 300);
      assert.ok(a > 0 && b > 0, `both replicas serve reads (${a} / ${b})`);
    });

    it("any: reads spread over the master and the linked replicas", async () => {
      const [onMaster, a, b, onBroken] = await reads(POOL.any, 300);
      assert.equal(onBroken, 0, "no reads on the replica whose link is down");
      assert.equal(onMaster + a + b, 300);
      assert.ok(onMaster > 0 && a > 0 && b > 0, `master and both replicas serve reads (${onMaster} / ${a} / ${b})`);
    });

    it("replica: with no eligible replica a read gets an error reply, the connection stays and writes still work", async () => {
      const checked = () => nodeAt(tp, POOL.replicaNone, broken.port).readState !== ReadState.Unchecked;
      assert.ok(await waitFor(checked, 5000), `the replica was checked (${describeStates(tp, POOL.replicaNone)})`);
      assert.notEqual(nodeAt(tp, POOL.replicaNone, broken.port).readState, ReadState.Eligible, "and is not eligible");
      const before = await getCounts(all);
      const client = await PipeClient.connect(tp.port(POOL.replicaNone));
      try {
        const [read] = await client.exchange(encodePipeline([["GET", keyOf(PREFIX, 1)]]), 1);
        assert.match(read, /^-ERR /, "the read is answered with an error");
        const more = await client.exchange(encodePipeline([["PING"], ["SET", "none:w", "1"], ["GET", keyOf(PREFIX, 2)]]), 3);
        assert.equal(more[0], "+PONG\r\n", "the connection still serves");
        assert.equal(more[1], "+OK\r\n", "a write still goes to the master");
        assert.match(more[2], /^-ERR /, "the next read is an error again");
        assert.equal(client.closed, false, "the connection stays open");
      } finally {
        client.destroy();
      }
      const [onMaster, , , onBroken] = deltas(before, await getCounts(all));
      assert.equal(onMaster, 0, "no read fell back to the master");
      assert.equal(onBroken, 0, "no read went to the replica whose link is down");
    });

    it("prefer_master: while the master is stopped and ejected, every read is answered by the replicas, then the master again", async () => {
      const pool = POOL.preferMaster;
      const m = nodeAt(tp, pool, master.port);
      const replicas = [r1, r2];
      const replicaGets = async () => (await getCounts(replicas)).reduce((x, y) => x + y, 0);
      const start = await replicaGets();
      await freeze(master);
      try {
        // The first reads wait for the 300 ms timeout on the master, then go to a replica.
        const first = await readsOn(pool, 100);
        assert.ok(await waitFor(() => m.ejectedUntil > systemClock.now(), 3000), "the stopped master is ejected");
        const second = await readsOn(pool, 100);
        assert.deepEqual([first, second].map((r) => r.errors), [0, 0], "no read failed");
        assert.equal(await replicaGets() - start, 200, "the replicas answered all 200 reads");
      } finally {
        master.kill("SIGCONT");
      }
      const back = () => m.ejectedUntil <= systemClock.now() && m.readState === ReadState.Eligible;
      assert.ok(await waitFor(back, 5000), `the master is back (${describeStates(tp, pool)})`);
      assert.deepEqual(await reads(pool, 100), [100, 0, 0, 0], "reads go to the master again");
    });

    it("prefer_master: a write while the master is stopped and ejected fails at once, not after the timeout", async () => {
      const pool = POOL.preferMaster;
      const m = nodeAt(tp, pool, master.port);
      const client = await PipeClient.connect(tp.port(pool));
      let reply = "";
      let tookMs = -1;
      await freeze(master);
      try {
        // The replica checks' INFO to the master times out (300 ms), which ejects it (server_failure_limit 1).
        assert.ok(await waitFor(() => m.ejectedUntil > systemClock.now() + 100, 3000), "the stopped master is ejected");
        const start = Date.now();
        [reply] = await client.exchange(encodePipeline([["SET", "ejected:w", "1"]]), 1, 5000);
        tookMs = Date.now() - start;
      } finally {
        master.kill("SIGCONT");
        client.destroy();
      }
      assert.match(reply, /^-/, "the write is answered with an error");
      assert.ok(tookMs < 150, `the write failed fast: ${tookMs} ms with the master ejected (timeout 300 ms): ${JSON.stringify(reply)}`);
      const back = () => m.ejectedUntil <= systemClock.now() && m.readState === ReadState.Eligible;
      assert.ok(await waitFor(back, 5000), `the master is back (${describeStates(tp, pool)})`);
    });
  });

  /** `count` pipelined GETs through `pool`, counting error replies and asserting every other reply. */
  async function readsOn(pool: number, count: number): Promise<{ errors: number }> {
    const client = await PipeClient.connect(tp.port(pool));
    try {
      const ids = Array.from({ length: count }, (_, i) => i % KEYS);
      const got = await client.exchange(encodePipeline(ids.map((i) => ["GET", keyOf(PREFIX, i)])), count, 10000);
      let errors = 0;
      got.forEach((reply, k) => {
        if (reply.startsWith("-")) errors++;
        else assert.equal(reply, bulk(valueOf(PREFIX, ids[k])), `GET ${keyOf(PREFIX, ids[k])}`);
      });
      return { errors };
    } finally {
      client.destroy();
    }
  }

  describe("weights", () => {
    it("a replica of weight 3 gets more reads than its peer of weight 1, the master none", async () => {
      const [onMaster, light, heavy, onBroken] = await reads(POOL.weights, 600, 10);
      assert.equal(onMaster + onBroken, 0, "reads only on the two replicas");
      assert.equal(light + heavy, 600);
      assert.ok(heavy > light, `weight 3 gets more reads than weight 1 (${heavy} vs ${light})`);
      assert.ok(light > 0, `weight 1 still gets some reads (${light})`);
    });
  });
});
