/**
 * read_your_writes with real replication: while the replicas trail the master (held back
 * with CLIENT PAUSE WRITE, so they still answer reads and INFO with an old offset, or one of
 * them SIGSTOPped) and replica_max_lag is large enough that they stay eligible, a client
 * that SETs a key and then GETs it always reads its own write, and a client that never
 * wrote still reads from the replicas. A pool without read_your_writes, reading stale
 * values from the same replicas, shows that they really trail.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadState } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { freeze, PipeClient } from "./helpers/soak.ts";
import {
  bulk,
  caughtUp,
  deltas,
  describeStates,
  fillKeys,
  getCounts,
  keyOf,
  Redises,
  replicaPoolYaml,
  valueOf,
  waitLinked,
  waitStates,
} from "./helpers/replicas.ts";

const KEYS = 100;
const PREFIX = "ryw";
const PAIRS = 200;
const POOL = { ryw: 0, plain: 1 } as const;

describe("replicas: read_your_writes while replicas lag", () => {
  const redis = new Redises("ryw-");
  let master: ServerProcess;
  let r1: ServerProcess;
  let r2: ServerProcess;
  let all: ServerProcess[];
  let tp: TestProxy;

  before(async () => {
    master = await redis.master();
    [r1, r2] = await Promise.all([redis.replica(master.port), redis.replica(master.port)]);
    all = [master, r1, r2];
    assert.ok(await waitLinked([r1, r2]), "the replicas finished their first sync");
    await fillKeys(master, PREFIX, KEYS);
    assert.ok(await caughtUp(master, [r1, r2]), "the replicas have every key");
    // No timeout: a stopped replica is not set aside by a failed check, only by its offset.
    const pool = (name: string, ryw: boolean) =>
      replicaPoolYaml({
        name,
        master: master.port,
        replicas: [r1.port, r2.port],
        policy: "prefer_replica",
        extra: { read_your_writes: ryw, replica_max_lag: 1073741824 },
      });
    tp = await startTestProxy(pool("ryw", true) + pool("plain", false));
    for (const p of Object.values(POOL)) {
      const ready = await waitStates(tp, p, [[r1.port, ReadState.Eligible], [r2.port, ReadState.Eligible]], 10000);
      assert.ok(ready, `pool ${p}: both replicas become eligible (${describeStates(tp, p)})`);
    }
  });

  after(async () => {
    await tp?.close();
    await redis.stopAll();
  });

  /** Hold both replicas' replication back (they keep answering reads and INFO) while `body` runs. */
  async function withPausedReplicas(body: () => Promise<void>): Promise<void> {
    assert.ok(await caughtUp(master, [r1, r2]), "the replicas caught up before the pause");
    await Promise.all([r1, r2].map((r) => redisCli(r.port, "CLIENT", "PAUSE", "15000", "WRITE")));
    try {
      await body();
    } finally {
      await Promise.all([r1, r2].map((r) => redisCli(r.port, "CLIENT", "UNPAUSE").catch(() => "")));
    }
  }

  /** `pairs` SET then GET of one new key each on pool `pool`; each GET sent after its SET's reply unless `pipelined`. Returns the GET replies that were not the value just written. */
  async function setThenGet(pool: number, tag: string, pairs: number, pipelined: boolean): Promise<string[]> {
    const client = await PipeClient.connect(tp.port(pool));
    const misses: string[] = [];
    try {
      for (let i = 0; i < pairs; i++) {
        const key = `${tag}:${i}`;
        const value = `${tag}-value-${i}`;
        let got: string;
        if (pipelined) {
          const [set, get] = await client.exchange(encodePipeline([["SET", key, value], ["GET", key]]), 2, 3000);
          assert.equal(set, "+OK\r\n", `SET ${key}`);
          got = get;
        } else {
          assert.deepEqual(await client.exchange(encodePipeline([["SET", key, value]]), 1, 3000), ["+OK\r\n"], `SET ${key}`);
          [got] = await client.exchange(encodePipeline([["GET", key]]), 1, 3000);
        }
        if (got !== bulk(value)) misses.push(`GET ${key} -> ${JSON.stringify(got)}`);
      }
    } finally {
      client.destroy();
    }
    return misses;
  }

  it("without read_your_writes the held-back replicas answer a client's GET after its SET with the old value (the setup really lags)", async () => {
    await withPausedReplicas(async () => {
      const misses = await setThenGet(POOL.plain, "plain", 20, false);
      assert.ok(misses.length > 0, "some read after a write was stale");
    });
  });

  it(`a client that SETs then GETs its key reads its own write ${PAIRS} times in a row, and a client that never wrote reads from the replicas`, async () => {
    await withPausedReplicas(async () => {
      const misses = await setThenGet(POOL.ryw, "seq", PAIRS, false);
      assert.deepEqual(misses.slice(0, 5), [], `${misses.length} of ${PAIRS} reads missed the client's own write`);
      const before = await getCounts(all);
      const reader = await PipeClient.connect(tp.port(POOL.ryw));
      try {
        const ids = Array.from({ length: 100 }, (_, i) => i % KEYS);
        const got = await reader.exchange(encodePipeline(ids.map((i) => ["GET", keyOf(PREFIX, i)])), ids.length);
        got.forEach((reply, k) => assert.equal(reply, bulk(valueOf(PREFIX, ids[k]))));
      } finally {
        reader.destroy();
      }
      const [onMaster, a, b] = deltas(before, await getCounts(all));
      assert.equal(onMaster, 0, "the client that never wrote did not read from the master");
      assert.equal(a + b, 100, `it read from the replicas (${a} / ${b})`);
    });
  });

  it(`a client that pipelines SET and GET of its key reads its own write ${PAIRS} times in a row`, async () => {
    await withPausedReplicas(async () => {
      const misses = await setThenGet(POOL.ryw, "pipe", PAIRS, true);
      assert.deepEqual(misses.slice(0, 5), [], `${misses.length} of ${PAIRS} pipelined reads missed the client's own write`);
    });
  });

  it(`with one replica SIGSTOPped (its offset frozen, still eligible by lag), SET then GET reads its own write ${PAIRS} times`, async () => {
    assert.ok(await caughtUp(master, [r1, r2]), "the replicas caught up before the stop");
    await freeze(r1);
    try {
      // A read sent to the stopped replica would get no reply: the 3 s bound on each exchange fails the test.
      const misses = await setThenGet(POOL.ryw, "stop", PAIRS, false);
      assert.deepEqual(misses.slice(0, 5), [], `${misses.length} of ${PAIRS} reads missed the client's own write`);
    } finally {
      r1.kill("SIGCONT");
    }
  });
});
