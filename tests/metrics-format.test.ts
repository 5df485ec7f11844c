/**
 * The Prometheus exposition checked by a strict text-format 0.0.4 parser written here:
 * HELP/TYPE before samples, one contiguous block per family, valid names, label syntax
 * and escapes, and histograms whose buckets are cumulative and agree with _count.
 * The registry is populated with real Pool/Server objects and real Req objects.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeClock, MemNet } from "./helpers/memnet.ts";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { Flusher } from "../core/proxy/flusher.ts";
import { Pool } from "../core/proxy/pool.ts";
import { Req } from "../core/proxy/req.ts";
import { redisProtocol } from "../core/proxy/redis.ts";
import {
  createMetrics,
  Histogram,
  LATENCY_BUCKETS_SECONDS,
  type Metrics,
  POOL_STAT_FIELDS,
  renderPrometheus,
  SERVER_STAT_FIELDS,
  SIZE_BUCKETS_BYTES,
} from "../core/stats/mod.ts";
import { checkHistogram, type Family, parseExposition, parseValue } from "./helpers/prometheus.ts";

// ---- a populated registry ----

const enc = new TextEncoder();
const WEIRD_COMMAND = 'we"ird\\cmd\nx';

/** Two redis pools built from real config, with counters set and requests observed. */
function populated(): { pools: Pool[]; metrics: Metrics; observed: Map<string, number[]>; clock: FakeClock } {
  const conf = loadConf(
    "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n    - 127.0.0.1:7001:1 n10\n    - 127.0.0.1:7002:1 n9\n" +
      "beta:\n  listen: 127.0.0.1:22122\n  redis: true\n  servers:\n    - 127.0.0.1:7003:1\n",
    "format.yml",
  );
  const clock = new FakeClock();
  const env = {
    net: new MemNet(),
    clock,
    log: createLogger(() => {}, 0),
    flusher: new Flusher(queueMicrotask),
    protocol: redisProtocol,
    observe: () => {},
    limitOverrides: {},
  };
  const pools = conf.pools.map((p) => new Pool(p, env));
  const metrics = createMetrics();
  const observed = new Map<string, number[]>();
  const latenciesMs = [0, 0.05, 0.1, 1, 2, 2, 30, 250, 999, 20000];
  pools.forEach((pool, p) => {
    pool.stats.client_eof = 3 + p;
    pool.stats.client_connections++;
    pool.stats.fragments = 7;
    pool.servers.forEach((server, s) => {
      server.stats.requests = 10 * (s + 1);
      server.stats.server_ejected_at = 1_700_000_000_000_000;
      latenciesMs.forEach((ms, i) => {
        const command = i % 3 === 0 ? "get" : i % 3 === 1 ? "set" : WEIRD_COMMAND;
        const req = new Req(null, enc.encode("x".repeat(10 * i + 1)));
        req.command = command;
        req.sentAt = clock.now();
        const answeredAt = clock.now() + ms;
        metrics.observe(pool, server, req, new Uint8Array(i * 100), answeredAt);
        const key = `${pool.conf.name}/${server.conf.id}/${command}`;
        observed.set(key, [...(observed.get(key) ?? []), (answeredAt - req.sentAt) / 1000]);
      });
    });
  });
  return { pools, metrics, observed, clock };
}

function render(): { text: string; families: Map<string, Family>; observed: Map<string, number[]>; pools: Pool[] } {
  const { pools, metrics, observed, clock } = populated();
  const text = renderPrometheus({ pools, metrics, version: "0.5.0", source: "host\"a", uptimeSeconds: 12, now: clock.now() });
  return { text, families: parseExposition(text), observed, pools };
}

describe("Prometheus exposition", () => {
  it("renderPrometheus() output passes the strict text-format parser", () => {
    const { families } = render();
    assert.ok(families.size > POOL_STAT_FIELDS.length + SERVER_STAT_FIELDS.length);
    for (const family of families.values()) {
      assert.notEqual(family.type, null, `${family.name} has a TYPE`);
      assert.notEqual(family.help, null, `${family.name} has a HELP`);
    }
  });

  it("every twemproxy field is a family of the right type, with the -D description as HELP (timestamps in seconds)", () => {
    const { families } = render();
    for (const field of [...POOL_STAT_FIELDS, ...SERVER_STAT_FIELDS]) {
      const name = field.kind === "counter"
        ? `nutcracker_${field.name}_total`
        : field.kind === "timestamp"
        ? `nutcracker_${field.name}_seconds`
        : `nutcracker_${field.name}`;
      const family = families.get(name);
      assert.ok(family, `family ${name}`);
      assert.equal(family.type, field.kind === "counter" ? "counter" : "gauge", name);
      const help = field.kind === "timestamp" ? field.description.replace("usec", "seconds") : field.description;
      assert.equal(family.help, help, name);
      assert.equal(family.help.includes("usec"), false, name);
    }
  });

  it("pool samples carry a pool label and server samples carry pool and server labels with their values", () => {
    const { families, pools } = render();
    const eof = families.get("nutcracker_client_eof_total")!.samples;
    assert.deepEqual(eof.map((s) => [s.labels.get("pool"), s.value]), [["alpha", 3], ["beta", 4]]);
    const requests = families.get("nutcracker_requests_total")!.samples;
    const expected = pools.flatMap((pool) =>
      pool.servers.map((server, s) => [pool.conf.name, server.conf.id, 10 * (s + 1)] as const)
    );
    const got = requests.map((s) => [s.labels.get("pool"), s.labels.get("server"), s.value] as const);
    assert.deepEqual(new Set(got.map((g) => JSON.stringify(g))), new Set(expected.map((e) => JSON.stringify(e))));
    const ejected = families.get("nutcracker_server_ejected_at_seconds")!.samples;
    assert.ok(ejected.every((s) => s.value === 1_700_000_000));
  });

  it("histogram buckets equal the number of observations at or below each bound, and _sum the total", () => {
    const { families, observed } = render();
    const latency = families.get("nutcracker_request_duration_seconds")!;
    assert.equal(latency.type, "histogram");
    for (const [key, values] of observed) {
      const [pool, server, command] = key.split("/");
      const mine = latency.samples.filter((s) =>
        s.labels.get("pool") === pool && s.labels.get("server") === server && s.labels.get("command") === command
      );
      for (const bucket of mine.filter((s) => s.name.endsWith("_bucket"))) {
        const le = parseValue(bucket.labels.get("le")!, "le");
        assert.equal(bucket.value, values.filter((v) => v <= le).length, `${key} le=${le}`);
      }
      const sum = mine.find((s) => s.name.endsWith("_sum"))!.value;
      assert.ok(Math.abs(sum - values.reduce((a, b) => a + b, 0)) < 1e-9, `${key} sum`);
      assert.equal(mine.find((s) => s.name.endsWith("_count"))!.value, values.length);
    }
  });

  it("label values with quotes, backslashes and newlines are escaped and parse back unchanged", () => {
    const { text, families } = render();
    assert.ok(text.includes('command="we\\"ird\\\\cmd\\nx"'));
    const commands = new Set(families.get("nutcracker_request_size_bytes")!.samples.map((s) => s.labels.get("command")));
    assert.ok(commands.has(WEIRD_COMMAND));
    assert.equal(families.get("nutcracker_info")!.samples[0].labels.get("source"), 'host"a');
  });

  it("the strict parser rejects a sample before its TYPE", () => {
    assert.throws(() => parseExposition("x_total 1\n# TYPE x_total counter\n"), /before its TYPE/);
  });

  it("the strict parser rejects non-cumulative buckets and a +Inf bucket that differs from _count", () => {
    const head = "# HELP h help\n# TYPE h histogram\n";
    assert.throws(
      () => parseExposition(head + 'h_bucket{le="1"} 5\nh_bucket{le="2"} 4\nh_bucket{le="+Inf"} 5\nh_sum 1\nh_count 5\n'),
      /not cumulative/,
    );
    assert.throws(
      () => parseExposition(head + 'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'),
      /!= _count/,
    );
  });

  it("the strict parser rejects bad escapes, bad names and interleaved families", () => {
    assert.throws(() => parseExposition('# TYPE g gauge\ng{a="\\t"} 1\n'), /bad escape/);
    assert.throws(() => parseExposition("# TYPE 1g gauge\n"), /bad metric name/);
    assert.throws(() => parseExposition("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n"), /not contiguous/);
  });
});

describe("Histogram", () => {
  it("observe() counts a value equal to a bound in that bound's bucket, and larger ones in +Inf", () => {
    const h = new Histogram([1, 2, 4]);
    for (const v of [0, 1, 1.5, 2, 4, 4.0001, 100]) h.observe(v);
    assert.deepEqual([...h.counts], [2, 2, 1, 2]);
    assert.deepEqual(h.cumulative(), [2, 4, 5, 7]);
    assert.equal(h.count, 7);
  });

  it("the default buckets are strictly ascending and span 100 µs to 10 s and 16 B to 64 MiB", () => {
    for (const bounds of [LATENCY_BUCKETS_SECONDS, SIZE_BUCKETS_BYTES]) {
      for (let i = 1; i < bounds.length; i++) assert.ok(bounds[i] > bounds[i - 1]);
    }
    assert.deepEqual([LATENCY_BUCKETS_SECONDS[0], LATENCY_BUCKETS_SECONDS.at(-1)], [0.0001, 10]);
    assert.deepEqual([SIZE_BUCKETS_BYTES[0], SIZE_BUCKETS_BYTES.at(-1)], [16, 64 * 1024 * 1024]);
  });

  it("a histogram agrees with a linear count of the same random values", () => {
    const h = new Histogram(LATENCY_BUCKETS_SECONDS);
    const values: number[] = [];
    let seed = 12345;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const v = (seed / 2 ** 32) ** 4 * 20;
      values.push(v);
      h.observe(v);
    }
    const cumulative = h.cumulative();
    LATENCY_BUCKETS_SECONDS.forEach((le, i) => assert.equal(cumulative[i], values.filter((v) => v <= le).length));
    assert.equal(cumulative.at(-1), values.length);
  });

  it("rejects bounds that are not strictly ascending", () => {
    assert.throws(() => new Histogram([1, 1, 2]), /ascending/);
  });
});
