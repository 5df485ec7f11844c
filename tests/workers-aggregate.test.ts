/**
 * The one stats view over several workers (core/stats/aggregate.ts): twemproxy JSON values
 * summed per pool and server (timestamps: the latest), Prometheus families merged (counters,
 * histograms and counting gauges summed, state gauges the largest), and the counters of
 * exited workers kept so sums never go back.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mergePrometheus, parsePrometheus, Retired, type SnapshotPart, sumSnapshots } from "../core/stats/aggregate.ts";
import { POOL_STAT_FIELDS, SERVER_STAT_FIELDS } from "../core/stats/fields.ts";
import { parseExposition } from "./helpers/prometheus.ts";

/** A worker's part: pool `alpha` with one server, every pool field `p`, every server field `s` (ejected_at `at`). */
function part(p: number, s: number, at = 0, total = 10, curr = 3): SnapshotPart {
  const serverValues = SERVER_STAT_FIELDS.map((f) => (f.name === "server_ejected_at" ? at : s));
  return {
    pools: [{ name: "alpha", values: POOL_STAT_FIELDS.map(() => p), servers: [{ name: "s1", values: serverValues }] }],
    totals: { total, curr },
  };
}

const field = (fields: readonly { name: string }[], values: readonly number[], name: string) =>
  values[fields.findIndex((f) => f.name === name)];

const WORKER_1 = `# HELP nutcracker_info constant 1
# TYPE nutcracker_info gauge
nutcracker_info{version="0.5.0",source="h"} 1
# HELP nutcracker_requests_total requests sent to the server
# TYPE nutcracker_requests_total counter
nutcracker_requests_total{pool="alpha",server="s1"} 5
# HELP nutcracker_server_connections server connections open now
# TYPE nutcracker_server_connections gauge
nutcracker_server_connections{pool="alpha",server="s1"} 1
# HELP nutcracker_server_ejected 1 while the server is ejected from its pool, else 0
# TYPE nutcracker_server_ejected gauge
nutcracker_server_ejected{pool="alpha",server="s1"} 0
# HELP nutcracker_request_duration_seconds latency
# TYPE nutcracker_request_duration_seconds histogram
nutcracker_request_duration_seconds_bucket{pool="alpha",server="s1",command="get",le="0.001"} 2
nutcracker_request_duration_seconds_bucket{pool="alpha",server="s1",command="get",le="+Inf"} 3
nutcracker_request_duration_seconds_sum{pool="alpha",server="s1",command="get"} 0.5
nutcracker_request_duration_seconds_count{pool="alpha",server="s1",command="get"} 3
# HELP nutcracker_uptime_seconds seconds since the proxy started
# TYPE nutcracker_uptime_seconds gauge
nutcracker_uptime_seconds 7
`;

const WORKER_2 = WORKER_1
  .replace('nutcracker_requests_total{pool="alpha",server="s1"} 5', 'nutcracker_requests_total{pool="alpha",server="s1"} 7')
  .replace('nutcracker_server_ejected{pool="alpha",server="s1"} 0', 'nutcracker_server_ejected{pool="alpha",server="s1"} 1')
  .replace('command="get",le="0.001"} 2', 'command="get",le="0.001"} 1')
  .replace(
    'nutcracker_request_duration_seconds_count{pool="alpha",server="s1",command="get"} 3',
    'nutcracker_request_duration_seconds_count{pool="alpha",server="s1",command="get"} 3\n' +
      'nutcracker_request_duration_seconds_bucket{pool="alpha",server="s1",command="set",le="0.001"} 4\n' +
      'nutcracker_request_duration_seconds_bucket{pool="alpha",server="s1",command="set",le="+Inf"} 4\n' +
      'nutcracker_request_duration_seconds_sum{pool="alpha",server="s1",command="set"} 0.002\n' +
      'nutcracker_request_duration_seconds_count{pool="alpha",server="s1",command="set"} 4',
  );

const sample = (text: string, name: string, labels: Record<string, string> = {}) => {
  const family = parseExposition(text).get(name.replace(/_(bucket|sum|count)$/, "")) ?? parseExposition(text).get(name);
  const found = family?.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels.get(k) === v));
  assert.equal(found?.length, 1, `${name} ${JSON.stringify(labels)}`);
  return found![0].value;
};

describe("sumSnapshots", () => {
  it("sums every counter and gauge of each pool and server; the last ejection is the latest", () => {
    const sum = sumSnapshots([part(1, 2, 100), part(10, 20, 300)], new Retired());
    assert.equal(sum.pools.length, 1);
    const pool = sum.pools[0];
    assert.deepEqual(pool.values, POOL_STAT_FIELDS.map(() => 11));
    const server = pool.servers[0];
    assert.equal(field(SERVER_STAT_FIELDS, server.values, "requests"), 22);
    assert.equal(field(SERVER_STAT_FIELDS, server.values, "server_connections"), 22);
    assert.equal(field(SERVER_STAT_FIELDS, server.values, "server_ejected_at"), 300);
    assert.deepEqual(sum.totals, { total: 20, curr: 6 });
  });

  it("keeps an exited worker's counters (not its gauges) in the sums", () => {
    const retired = new Retired();
    retired.add(part(5, 5, 900, 40, 9), null);
    const sum = sumSnapshots([part(1, 1)], retired);
    const pool = sum.pools[0];
    assert.equal(field(POOL_STAT_FIELDS, pool.values, "client_eof"), 6);
    assert.equal(field(POOL_STAT_FIELDS, pool.values, "client_connections"), 1, "a gauge of a gone process counts nothing");
    const server = pool.servers[0];
    assert.equal(field(SERVER_STAT_FIELDS, server.values, "requests"), 6);
    assert.equal(field(SERVER_STAT_FIELDS, server.values, "out_queue"), 1);
    assert.equal(field(SERVER_STAT_FIELDS, server.values, "server_ejected_at"), 0);
    assert.deepEqual(sum.totals, { total: 50, curr: 3 });
  });

  it("lists only pools a live worker reports (a pool a reload removed is gone from the view)", () => {
    const retired = new Retired();
    retired.add({ pools: [{ name: "old", values: POOL_STAT_FIELDS.map(() => 1), servers: [] }], totals: { total: 0, curr: 0 } }, null);
    assert.deepEqual(sumSnapshots([part(1, 1)], retired).pools.map((p) => p.name), ["alpha"]);
  });
});

describe("mergePrometheus", () => {
  it("sums counters, histograms and counting gauges, takes the largest state gauge, keeps families in order", () => {
    const text = mergePrometheus([WORKER_1, WORKER_2], new Retired());
    const labels = { pool: "alpha", server: "s1" };
    assert.equal(sample(text, "nutcracker_requests_total", labels), 12);
    assert.equal(sample(text, "nutcracker_server_connections", labels), 2);
    assert.equal(sample(text, "nutcracker_server_ejected", labels), 1);
    assert.equal(sample(text, "nutcracker_info", { version: "0.5.0" }), 1);
    assert.equal(sample(text, "nutcracker_request_duration_seconds_bucket", { command: "get", le: "0.001" }), 3);
    assert.equal(sample(text, "nutcracker_request_duration_seconds_count", { command: "get" }), 6);
    assert.equal(sample(text, "nutcracker_request_duration_seconds_count", { command: "set" }), 4);
    assert.deepEqual([...parsePrometheus(text).keys()], [...parsePrometheus(WORKER_1).keys()]);
  });

  it("adds an exited worker's counter series, and leaves out the families the supervisor writes", () => {
    const retired = new Retired();
    retired.add({ pools: [], totals: { total: 0, curr: 0 } }, WORKER_2);
    const text = mergePrometheus([WORKER_1], retired, new Set(["nutcracker_uptime_seconds"]));
    assert.equal(sample(text, "nutcracker_requests_total", { pool: "alpha" }), 12);
    assert.equal(sample(text, "nutcracker_server_connections", { pool: "alpha" }), 1, "gauges of a gone worker count nothing");
    assert.equal(sample(text, "nutcracker_request_duration_seconds_count", { command: "get" }), 6);
    assert.equal(parseExposition(text).has("nutcracker_uptime_seconds"), false);
  });
});
