/**
 * Replicas that stall under a read load, with real replication: one SIGSTOPped for a second
 * (pool timeout 300 ms) costs no client an error or a wrong value, and serves again after
 * SIGCONT; one stopped 40 ms of every 100 ms gets fewer reads than its fast peer.
 * Counted with the servers' own INFO commandstats.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadState } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import type { ServerProcess } from "./helpers/servers.ts";
import { sleep } from "./helpers/ports.ts";
import { freeze, PipeClient, waitFor } from "./helpers/soak.ts";
import { encodePipeline } from "./helpers/resp.ts";
import {
  caughtUp,
  closeLog,
  deltas,
  describeLoad,
  describeStates,
  dutyCycle,
  fillKeys,
  getCounts,
  type LoadResult,
  nodeAt,
  Redises,
  replicaPoolYaml,
  startReadLoad,
  waitLinked,
  waitStates,
} from "./helpers/replicas.ts";

const KEYS = 200;
const PREFIX = "stall";
const POOL = { stopped: 0, slow: 1 } as const;
/** SET KEYS[1] ARGV[1] after about 50 ms of waiting inside redis. */
const SLOW_SET = "local t0 = redis.call('TIME') repeat local t = redis.call('TIME') " +
  "until (t[1] - t0[1]) * 1000000 + t[2] - t0[2] > 50000 return redis.call('SET', KEYS[1], ARGV[1])";

describe("replicas: a replica that stalls during a read load", () => {
  const redis = new Redises("stall-");
  let master: ServerProcess;
  let r1: ServerProcess;
  let r2: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    master = await redis.master();
    [r1, r2] = await Promise.all([redis.replica(master.port), redis.replica(master.port)]);
    assert.ok(await waitLinked([r1, r2]), "the replicas finished their first sync");
    await fillKeys(master, PREFIX, KEYS);
    assert.ok(await caughtUp(master, [r1, r2]), "the replicas have every key");
    const pool = (name: string, timeout: number) =>
      replicaPoolYaml({ name, master: master.port, replicas: [r1.port, r2.port], policy: "prefer_replica", extra: { timeout } });
    tp = await startTestProxy(pool("stopped", 300) + pool("slow", 2000));
    for (const p of Object.values(POOL)) {
      const ready = await waitStates(tp, p, [[r1.port, ReadState.Eligible], [r2.port, ReadState.Eligible]], 10000);
      assert.ok(ready, `pool ${p}: both replicas become eligible (${describeStates(tp, p)})`);
    }
  });

  after(async () => {
    await tp?.close();
    await redis.stopAll();
  });

  it("SIGSTOP of a replica for a second (timeout 300 ms): zero client errors, every read correct, and it serves again after SIGCONT", async () => {
    const load = startReadLoad(tp.port(POOL.stopped), { prefix: PREFIX, keys: KEYS, clients: 2, batch: 10, maxMs: 20000 });
    let result: LoadResult | null = null;
    try {
      assert.ok(await waitFor(() => load.replies > 200, 5000), "the read load is running");
      const [before] = await getCounts([r1]);
      assert.ok(before > 0, `the replica served reads before it stopped (${before})`);
      await freeze(r1);
      const repliesAtStop = load.replies;
      try {
        await sleep(1000);
        assert.ok(load.replies - repliesAtStop > 100, `reads kept being answered while it was stopped (${load.replies - repliesAtStop})`);
        assert.ok(nodeAt(tp, POOL.stopped, r1.port).stats.server_timedout > 0, "the proxy timed out on the stopped replica");
        assert.notEqual(nodeAt(tp, POOL.stopped, r1.port).readState, ReadState.Eligible, "the stopped replica is set aside");
      } finally {
        r1.kill("SIGCONT");
      }
      assert.ok(await waitStates(tp, POOL.stopped, [[r1.port, ReadState.Eligible]], 5000), `eligible again (${describeStates(tp, POOL.stopped)})`);
      const [thawed] = await getCounts([r1]);
      assert.ok(await waitFor(async () => (await getCounts([r1]))[0] > thawed, 5000, 50), "it serves reads again");
    } finally {
      r1.kill("SIGCONT");
      result = await load.stop();
    }
    assert.equal(result.errors + result.wrong, 0, `every read answered correctly: ${describeLoad(result)}; proxy log: ${closeLog(tp)}`);
  });

  it("a stall of the proxy's own event loop longer than the timeout fails no request whose reply arrived meanwhile", async () => {
    // A write that redis answers after about 50 ms (a script that waits on TIME), then this process - which runs the
    // proxy - is busy for 500 ms (as in a long GC pause or CPU starvation): the reply is waiting in the socket when
    // the 300 ms timer is next looked at. Reads would be retried elsewhere; a write is not, so its reply shows it.
    const stats = nodeAt(tp, POOL.stopped, master.port).stats;
    const client = await PipeClient.connect(tp.port(POOL.stopped));
    const replies: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const next = client.replies.length;
        client.write(encodePipeline([["EVAL", SLOW_SET, "1", `stall:w${i}`, "1"]]));
        assert.ok(await waitFor(() => stats.out_queue > 0, 2000, 1), "the proxy sent the write to the master");
        const start = Date.now();
        while (Date.now() - start < 500) {
          // busy: no timer, no I/O of this process runs
        }
        await client.waitReplies(next + 1, 3000);
        replies.push(new TextDecoder().decode(client.replies[next]));
      }
    } finally {
      client.destroy();
    }
    assert.deepEqual(replies, ["+OK\r\n", "+OK\r\n", "+OK\r\n"], "each write's reply, which redis sent within about 50 ms");
  });

  it("a replica stopped 40 ms of every 100 ms gets fewer reads than its fast peer", async () => {
    const before = await getCounts([r1, r2]);
    const load = startReadLoad(tp.port(POOL.slow), { prefix: PREFIX, keys: KEYS, clients: 4, batch: 10, maxMs: 20000 });
    let result: LoadResult;
    try {
      await dutyCycle(r1, 40, 100, 20);
    } finally {
      result = await load.stop();
    }
    const [slow, fast] = deltas(before, await getCounts([r1, r2]));
    assert.equal(result.errors + result.wrong, 0, `every read answered correctly: ${describeLoad(result)}; proxy log: ${closeLog(tp)}`);
    assert.ok(slow + fast > 500, `the load ran (${slow + fast} reads on the replicas)`);
    assert.ok(slow < fast, `the slow replica got fewer reads (${slow}) than its fast peer (${fast})`);
  });
});
