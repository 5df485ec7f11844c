/**
 * The dashboard's memory (core/stats/history.ts) on a fake clock and plain pool objects:
 * per-second rates (a pool's from its client requests, a node's from what it was sent) and p99
 * from counters and latency buckets, the 15-minute ring, `since`,
 * series following reloads (removed nodes dropped, counter resets not negative), live rates
 * over the newest sample at least 250 ms old; and bucketQuantile against Prometheus'
 * histogram_quantile.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bucketQuantile, LATENCY_BUCKETS_SECONDS } from "../core/stats/histogram.ts";
import { History, HISTORY_POINTS, HISTORY_STEP_MS, type HistoryNode, type HistoryPool } from "../core/stats/history.ts";
import { FakeClock } from "./helpers/memnet.ts";

interface FakeNode extends HistoryNode {
  conf: { id: string };
  stats: { requests: number };
  /** Latency bucket counts (seconds buckets, +Inf last), cumulative over time. */
  latency: Float64Array;
}

interface FakePool extends HistoryPool {
  conf: { name: string };
  stats: { forward_error: number; client_requests: number };
  servers: FakeNode[];
}

const node = (id: string): FakeNode => ({
  conf: { id },
  stats: { requests: 0 },
  latency: new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1),
});
const pool = (name: string, ...nodes: FakeNode[]): FakePool => ({ conf: { name }, stats: { forward_error: 0, client_requests: 0 }, servers: nodes });

/** A History over `pools` (mutable: a test swaps pools as a reload would). */
function historyOf(pools: { list: FakePool[] }): History {
  return new History(() => pools.list, (n, out) => {
    const counts = (n as FakeNode).latency;
    for (let i = 0; i < out.length; i++) out[i] += counts[i];
  });
}

/** The bucket index whose upper bound is `seconds`. */
const bucket = (seconds: number) => LATENCY_BUCKETS_SECONDS.indexOf(seconds);

describe("bucketQuantile", () => {
  it("interpolates inside the bucket the rank falls in, as histogram_quantile does", () => {
    assert.equal(bucketQuantile([1, 2, 4], Float64Array.of(0, 4, 0, 0), 0.5), 1.5);
    assert.equal(bucketQuantile([1, 2, 4], Float64Array.of(2, 2, 0, 0), 0.5), 1);
    assert.equal(bucketQuantile([1, 2, 4], Float64Array.of(2, 2, 0, 0), 0.75), 1.5);
    assert.equal(bucketQuantile([1, 2, 4], Float64Array.of(10, 0, 0, 0), 0.5), 0.5);
  });

  it("answers the highest finite bound for a rank in +Inf, and NaN without observations", () => {
    assert.equal(bucketQuantile([1, 2, 4], Float64Array.of(0, 0, 0, 3), 0.99), 4);
    assert.ok(Number.isNaN(bucketQuantile([1, 2, 4], new Float64Array(4), 0.5)));
  });
});

describe("History", () => {
  it("records each second's request rate and p99 per node and per pool; the first point has none", () => {
    const [a, b] = [node("a"), node("b")];
    const alpha = pool("alpha", a, b);
    const pools = { list: [alpha] };
    const h = historyOf(pools);
    h.sample(10_000);
    a.stats.requests += 100;
    b.stats.requests += 300;
    alpha.stats.client_requests += 250; // some of them multi-key requests, sent as fragments
    a.latency[bucket(0.001)] += 100;
    b.latency[bucket(0.01)] += 300;
    h.sample(11_000);
    const at = h.indexesSince(-Infinity);
    assert.equal(at.length, 2);
    assert.deepEqual(h.nodePoints("alpha", "a", at)?.rate, [NaN, 100]);
    assert.deepEqual(h.nodePoints("alpha", "b", at)?.rate, [NaN, 300]);
    assert.deepEqual(h.poolPoints("alpha", at)?.rate, [NaN, 250], "a pool counts client requests, not fragments");
    const p99 = h.poolPoints("alpha", at)!.p99;
    assert.ok(Number.isNaN(p99[0]));
    assert.ok(p99[1] > 5 && p99[1] <= 10, `pool p99 ${p99[1]} ms falls in b's 5-10 ms bucket`);
    assert.ok(h.nodePoints("alpha", "a", at)!.p99[1] <= 1);
  });

  it("keeps 15 minutes of points and answers only those newer than `since`", () => {
    const n = node("a");
    const h = historyOf({ list: [pool("alpha", n)] });
    for (let s = 0; s < HISTORY_POINTS + 100; s++) {
      n.stats.requests += s;
      h.sample(s * HISTORY_STEP_MS);
    }
    const all = h.indexesSince(-Infinity);
    assert.equal(all.length, HISTORY_POINTS);
    assert.equal(h.times[all[0]], 100 * HISTORY_STEP_MS);
    assert.equal(h.newest, (HISTORY_POINTS + 99) * HISTORY_STEP_MS);
    const recent = h.indexesSince((HISTORY_POINTS + 97) * HISTORY_STEP_MS);
    assert.deepEqual(recent.map((i) => h.times[i]), [(HISTORY_POINTS + 98) * HISTORY_STEP_MS, (HISTORY_POINTS + 99) * HISTORY_STEP_MS]);
    assert.deepEqual(h.nodePoints("alpha", "a", recent)?.rate, [HISTORY_POINTS + 98, HISTORY_POINTS + 99]);
  });

  it("drops the series of a node or pool a reload removed, and reads a counter reset as 0, not negative", () => {
    const [a, b] = [node("a"), node("b")];
    const pools = { list: [pool("alpha", a, b)] };
    const h = historyOf(pools);
    a.stats.requests = 500;
    h.sample(0);
    const fresh = node("a"); // a reload built a new Server for "a": its counters start at 0
    pools.list = [pool("alpha", fresh), pool("beta", b)];
    h.sample(1000);
    const at = h.indexesSince(-Infinity);
    assert.equal(h.nodePoints("alpha", "b", at), null);
    assert.deepEqual(h.nodePoints("alpha", "a", at)?.rate, [NaN, 0]);
    assert.deepEqual(h.nodePoints("beta", "b", at)?.rate, [NaN, NaN], "a series new to the pool starts empty");
  });

  it("gives live rates over the newest sample at least 250 ms old, and p50/p99 over the last 10 s", () => {
    const n = node("a");
    const p = pool("alpha", n);
    p.stats.forward_error = 0;
    const h = historyOf({ list: [p] });
    h.sample(0);
    p.stats.client_requests = 100;
    h.sample(1000);
    p.stats.client_requests = 110;
    p.stats.forward_error = 11;
    n.latency[bucket(0.0025)] += 10;
    const live = h.livePool(p, 1100);
    assert.equal(live.rate, 100, "(110 - 0) over 1.1 s: the sample 100 ms old is too recent");
    assert.equal(live.errors, 10);
    assert.ok(live.p50 > 1 && live.p50 <= 2.5, `p50 ${live.p50}`);
    assert.ok(Number.isNaN(h.liveNode(pool("other"), n, 1100).rate), "no series, no rate");
  });

  it("samples once a second on the clock from start() until stop(), and tick() only when a step is due", () => {
    const clock = new FakeClock();
    const h = historyOf({ list: [pool("alpha", node("a"))] });
    h.start(clock);
    clock.advance(5 * HISTORY_STEP_MS);
    assert.equal(h.indexesSince(-Infinity).length, 6);
    h.tick(clock.now() + 10);
    assert.equal(h.indexesSince(-Infinity).length, 6);
    h.stop();
    clock.advance(5 * HISTORY_STEP_MS);
    assert.equal(h.indexesSince(-Infinity).length, 6);
    h.tick(clock.now());
    assert.equal(h.indexesSince(-Infinity).length, 7);
  });
});
