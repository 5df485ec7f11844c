/**
 * A replica that is loading its dataset gets no reads: one replica reloads 20000 keys slowly
 * (DEBUG RELOAD with key-load-delay) under a continuous read load. Once the replica check
 * has seen loading:1 no GET reaches it until the load ends, and no client ever sees -LOADING
 * (a read that reached it first is answered by another node). Counted with INFO commandstats.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadState } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess } from "./helpers/servers.ts";
import { sleep } from "./helpers/ports.ts";
import { waitFor } from "./helpers/soak.ts";
import {
  arrivals,
  caughtUp,
  describeLoad,
  describeStates,
  fillKeys,
  getCounts,
  info,
  type LoadResult,
  Redises,
  replicaPoolYaml,
  startReadLoad,
  waitLinked,
  waitStates,
} from "./helpers/replicas.ts";

const KEYS = 200;
const PREFIX = "load";
/** Keys that make the reload slow: BULK x key-load-delay (µs) is over a second. */
const BULK = 20000;
const KEY_LOAD_DELAY_US = "50";

describe("replicas: a loading replica", () => {
  const redis = new Redises("loading-");
  let master: ServerProcess;
  let slow: ServerProcess;
  let peer: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    master = await redis.master();
    [slow, peer] = await Promise.all([
      redis.replica(master.port, ["--enable-debug-command", "yes"]),
      redis.replica(master.port),
    ]);
    assert.ok(await waitLinked([slow, peer]), "the replicas finished their first sync");
    await fillKeys(master, PREFIX, KEYS);
    await fillKeys(master, "bulk", BULK);
    assert.ok(await caughtUp(master, [slow, peer]), "the replicas have every key");
    tp = await startTestProxy(replicaPoolYaml({
      name: "alpha",
      master: master.port,
      replicas: [slow.port, peer.port],
      policy: "prefer_replica",
      extra: { timeout: 2000 },
    }));
    const ready = await waitStates(tp, 0, [[slow.port, ReadState.Eligible], [peer.port, ReadState.Eligible]], 10000);
    assert.ok(ready, `both replicas become eligible (${describeStates(tp, 0)})`);
  });

  after(async () => {
    await tp?.close();
    await redis.stopAll();
  });

  it("gets no reads while loading (once the check saw it), clients see no -LOADING, and serves again after", async () => {
    const loading = async () => (await info(slow.port, "persistence")).get("loading") === "1";
    const load = startReadLoad(tp.port(), { prefix: PREFIX, keys: KEYS, clients: 2, batch: 10, maxMs: 20000 });
    let reload: Promise<string> | null = null;
    let during = [-1, -1];
    let result: LoadResult = { replies: 0, errors: 0, wrong: 0, samples: [] };
    try {
      assert.ok(await waitFor(() => load.replies > 200, 5000), "the read load is running");
      const served = await arrivals(slow.port, "get");
      assert.ok(served > 0, `the replica served reads before its reload (${served})`);
      // Load slowly, and answer INFO (and refuse others with -LOADING) while loading.
      await redisCli(slow.port, "CONFIG", "SET", "key-load-delay", KEY_LOAD_DELAY_US);
      await redisCli(slow.port, "CONFIG", "SET", "loading-process-events-interval-bytes", "1024");
      reload = redisCli(slow.port, "DEBUG", "RELOAD");
      assert.ok(await waitFor(loading, 5000, 20), "INFO says loading:1");
      assert.ok(await waitStates(tp, 0, [[slow.port, ReadState.Loading]], 3000), `the check sees it loading (${describeStates(tp, 0)})`);
      const first = await arrivals(slow.port, "get");
      const repliesBefore = load.replies;
      await sleep(600);
      const last = await arrivals(slow.port, "get");
      assert.ok(await loading(), "still loading at the end of the window (raise BULK or the delay if not)");
      during = [first, last];
      assert.ok(load.replies - repliesBefore > 100, `reads kept being answered meanwhile (${load.replies - repliesBefore})`);
      assert.equal(await reload, "OK\n", "DEBUG RELOAD finished");
      reload = null;
    } finally {
      await reload?.catch(() => "");
      await redisCli(slow.port, "CONFIG", "SET", "key-load-delay", "0").catch(() => "");
      result = await load.stop();
    }
    assert.equal(result.errors + result.wrong, 0, `every read answered correctly, none -LOADING: ${describeLoad(result)}`);
    // GETs routed there just before the mark may still be read by the loading server after it
    // (it serves events between chunks): at most what the load keeps in flight, 2 clients x 10.
    assert.ok(during[1] - during[0] <= 20, `no GET routed to the replica once it was marked loading (${during[1] - during[0]} arrived)`);
    assert.ok(await waitStates(tp, 0, [[slow.port, ReadState.Eligible]], 5000), `eligible again (${describeStates(tp, 0)})`);
    const again = startReadLoad(tp.port(), { prefix: PREFIX, keys: KEYS, clients: 1, batch: 10, maxMs: 10000 });
    const start = await getCounts([slow]);
    assert.ok(await waitFor(async () => (await getCounts([slow]))[0] > start[0], 5000, 50), "it serves reads again");
    const later = await again.stop();
    assert.equal(later.errors + later.wrong, 0, describeLoad(later));
  });
});
