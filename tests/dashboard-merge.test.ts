/**
 * The dashboard over several processes (`--workers N`), on plain parts and a fake clock:
 * mergeParts sums counts, counters and latency buckets, shows a node's worst state and
 * largest lag and the cluster view's summed counters; WorkersDashboard keeps sums from going
 * backwards when a worker stops answering or exits, and samples its History once a second.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mergeParts, type NodePart, type PoolPart } from "../core/admin/dashboard/mod.ts";
import { WorkersDashboard } from "../core/workers/dashboard.ts";
import { NEVER_RELOADED } from "../core/admin/reload.ts";
import type { ClusterState } from "../core/admin/pools.ts";
import type { WorkerInfo } from "../core/workers/proc.ts";
import { FakeClock } from "./helpers/memnet.ts";

const node = (over: Partial<NodePart> = {}): NodePart => ({
  name: "s1", address: "127.0.0.1:6379", shard: "s1", role: "master", state: "up", reason: null, retry_at: null,
  stale: false, lag_bytes: null, outstanding: 1, connections: 1, requests: 10, latency: [1, 2], ...over,
});

const part = (over: Partial<PoolPart> = {}): PoolPart => ({
  name: "alpha", listen: "127.0.0.1:22121", bound: "127.0.0.1:22121", protocol: "redis", clients: 2, outstanding: 1,
  auto_eject_hosts: true, sentinel: null, cluster: null, migration: null, client_requests: 100, forward_error: 1, nodes: [node()],
  ...over,
});

const cluster = (over: Partial<ClusterState> = {}): ClusterState => ({
  slots: { "127.0.0.1:7000": "0-16383" }, refreshes: 2, last_refresh_at: "2030-01-01T00:00:01.000Z", refresh_errors: 0,
  last_error_at: null, last_error: null, refresh_interval_ms: 5000, redirects: { moved: 1, ask: 0 }, ...over,
});

describe("mergeParts", () => {
  it("sums clients, outstanding, client requests, errors and each node's counters and latency buckets", () => {
    const [merged] = mergeParts([[part()], [part({ clients: 3, client_requests: 50, nodes: [node({ requests: 5, latency: [0, 1, 4] })] })]]);
    assert.equal(merged.clients, 5);
    assert.equal(merged.outstanding, 2);
    assert.equal(merged.client_requests, 150);
    assert.equal(merged.forward_error, 2);
    assert.equal(merged.nodes[0].requests, 15);
    assert.deepEqual(merged.nodes[0].latency, [1, 3, 4]);
  });

  it("shows a node as the worst any process sees it (ejection is per process), with the largest lag", () => {
    const ejected = node({ state: "ejected", reason: "ejected", retry_at: 5000, lag_bytes: 3 });
    const [merged] = mergeParts([[part()], [part({ nodes: [ejected] })], [part({ nodes: [node({ lag_bytes: 7 })] })]]);
    assert.equal(merged.nodes[0].state, "ejected");
    assert.equal(merged.nodes[0].reason, "ejected");
    assert.equal(merged.nodes[0].retry_at, 5000);
    assert.equal(merged.nodes[0].lag_bytes, 7);
  });

  it("keeps pools and nodes in first-seen order, and takes the newest slot map with summed redirects", () => {
    const newer = cluster({ slots: { "127.0.0.1:7001": "0-16383" }, last_refresh_at: "2030-01-01T00:00:09.000Z", redirects: { moved: 2, ask: 3 } });
    const merged = mergeParts([
      [part({ cluster: cluster() })],
      [part({ cluster: newer, nodes: [node(), node({ name: "s2" })] }), part({ name: "beta" })],
    ]);
    assert.deepEqual(merged.map((p) => p.name), ["alpha", "beta"]);
    assert.deepEqual(merged[0].nodes.map((n) => n.name), ["s1", "s2"]);
    assert.deepEqual(merged[0].cluster?.slots, { "127.0.0.1:7001": "0-16383" });
    assert.deepEqual(merged[0].cluster?.redirects, { moved: 3, ask: 3 });
    assert.equal(merged[0].cluster?.refreshes, 4);
  });
});

/** A supervisor whose workers answer what the test sets. */
class FakeSupervisor {
  answers = new Map<number, PoolPart[]>();
  alive = new Set<number>();
  ask() {
    return Promise.resolve([...this.answers].map(([pid, body], slot) => ({ slot, pid, body })));
  }
  workers(): WorkerInfo[] {
    return [...this.alive].map((pid, slot) => ({ slot, generation: 1, pid, state: "ready", startedAt: 0 }));
  }
  status() {
    return NEVER_RELOADED;
  }
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("WorkersDashboard", () => {
  it("samples once a second and keeps counting a worker that stops answering or exits", async () => {
    const clock = new FakeClock();
    const sup = new FakeSupervisor();
    sup.alive = new Set([11, 12]);
    sup.answers.set(11, [part({ client_requests: 100 })]);
    sup.answers.set(12, [part({ client_requests: 200 })]);
    const dash = new WorkersDashboard(sup, { clock, startedAt: 0, version: "0.5.0", source: "h" });
    dash.start();
    await flush();
    const step = async (worker11: number | null, worker12: number | null) => {
      if (worker11 === null) sup.answers.delete(11);
      else sup.answers.set(11, [part({ client_requests: worker11 })]);
      if (worker12 === null) sup.answers.delete(12);
      else sup.answers.set(12, [part({ client_requests: worker12 })]);
      clock.advance(1000);
      await flush();
    };
    await step(110, 220); // +30
    await step(120, null); // 12 slow: its last counters stand in: +10
    sup.alive.delete(12); // 12 exited: its counters are kept
    await step(130, null); // +10
    const state = await dash.state(null);
    assert.deepEqual(state.history.pools.alpha.rate, [null, 30, 10, 10]);
    assert.equal(state.workers, 1);
    assert.equal(state.pools[0].clients, 2, "clients of the workers that answered");
    dash.stop();
  });
});
