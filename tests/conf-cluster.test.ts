/**
 * The Redis Cluster keys of a pool (issue 15): `distribution: redis_cluster` (the servers are
 * seed nodes) and `cluster_refresh_interval` (ms, default 5000). A cluster fixes the hash, the
 * hash tag and the db, so `hash`, `hash_tag` or a `redis_db` other than 0 next to it is an error,
 * as is the distribution in a memcached pool and a bad refresh interval; every error names
 * file, line, pool and key.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { type ConfError, DEFAULTS, loadConf } from "../core/conf/mod.ts";
import { confErrorOf } from "./helpers/conf.ts";
import type { PoolConf } from "../core/conf/mod.ts";
import { ReadPolicy } from "../core/conf/types.ts";

const FILE = "conf/cluster.yml";

/** A pool with two seed servers; `lines` (pool keys) start at line 4, the servers follow them. */
function pool(lines: string[], redis: boolean | null = true): string {
  return [
    "alpha:", //                                        1
    "  listen: 127.0.0.1:22121", //                     2
    redis === null ? "  timeout: 400" : `  redis: ${redis}`, // 3
    ...lines.map((l) => `  ${l}`), //                   4 onwards
    "  servers:",
    "   - 127.0.0.1:7000:1",
    "   - 127.0.0.1:7001:1",
    "",
  ].join("\n");
}

/** `pool()` with `distribution: redis_cluster` on line 4 and `more` from line 5. */
function cluster(more: string[] = [], redis: boolean | null = true): string {
  return pool(["distribution: redis_cluster", ...more], redis);
}

function only(text: string): PoolConf {
  return loadConf(text, FILE).pools[0];
}

/**
 * loadConf must throw a ConfError at `line` about `key` of pool alpha, whose message starts
 * with the file, line, pool and key prefix and whose phrase matches `phrase`.
 */
function rejects(text: string, line: number, key: string, phrase: RegExp | string): ConfError {
  const caught = confErrorOf(text, FILE);
  const prefix = `nutcracker: ${FILE}:${line}: pool 'alpha': "${key}"`;
  assert.ok(caught.message.startsWith(prefix), `"${caught.message}" starts with ${prefix}`);
  assert.deepEqual([caught.file, caught.line, caught.pool, caught.key], [FILE, line, "alpha", key]);
  if (typeof phrase === "string") assert.equal(caught.message, `${prefix} ${phrase}`);
  else assert.match(caught.message.slice(prefix.length), phrase);
  return caught;
}

describe("redis_cluster keys: accepted", () => {
  it("reads distribution redis_cluster and keeps the servers, in order, as the seeds", () => {
    const p = only(cluster());
    assert.equal(p.distribution, "redis_cluster");
    assert.deepEqual(p.shards.map((s) => s.primary.id), ["127.0.0.1:7000", "127.0.0.1:7001"]);
    assert.equal(p.redisDb, 0);
  });

  it("refreshes every 5000 ms unless cluster_refresh_interval says otherwise", () => {
    assert.equal(DEFAULTS.cluster_refresh_interval, 5000);
    assert.equal(only(cluster()).clusterRefreshInterval, 5000);
    assert.equal(only(cluster(["cluster_refresh_interval: 250"])).clusterRefreshInterval, 250);
    assert.equal(only(cluster(["cluster_refresh_interval: 1"])).clusterRefreshInterval, 1);
  });

  it("accepts read_policy, timeout, redis_auth and an explicit redis_db 0 next to it", () => {
    const p = only(cluster(["read_policy: prefer_replica", "timeout: 1000", "redis_auth: s3cret", "redis_db: 0"]));
    assert.deepEqual([p.readPolicy, p.timeout, p.redisAuth, p.redisDb], [ReadPolicy.PreferReplica, 1000, "s3cret", 0]);
  });

  it("reads the key in any place in the pool: distribution after servers", () => {
    const text = ["alpha:", "  listen: 127.0.0.1:22121", "  servers:", "   - 127.0.0.1:7000:1", "  redis: true",
      "  distribution: redis_cluster", "  cluster_refresh_interval: 1500", ""].join("\n");
    const p = only(text);
    assert.deepEqual([p.distribution, p.clusterRefreshInterval], ["redis_cluster", 1500]);
  });

  it("reads the issue's and the test contract's example whole", () => {
    const text = [
      "alpha:", "  listen: 127.0.0.1:22121", "  redis: true", "  distribution: redis_cluster", "  timeout: 1000",
      "  read_policy: prefer_replica", "  cluster_refresh_interval: 5000", "  servers:", "   - 127.0.0.1:7000:1",
      "   - 127.0.0.1:7001:1", "",
    ].join("\n");
    const p = only(text);
    assert.deepEqual([p.distribution, p.readPolicy, p.clusterRefreshInterval, p.shards.length], ["redis_cluster", ReadPolicy.PreferReplica, 5000, 2]);
  });

  it("leaves every other pool as it was: ketama, the default hash, the refresh default unused", () => {
    const p = only(pool([]));
    assert.deepEqual([p.distribution, p.hash, p.hashTag], ["ketama", "fnv1a_64", null]);
  });

  it("loads the README's 'Moving a pool to Redis Cluster' example", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const at = readme.search(/^#+ Moving a pool to Redis Cluster/m);
    assert.ok(at >= 0, "README has a 'Moving a pool to Redis Cluster' section (issue 15, Done when)");
    const blocks = [...readme.slice(at).matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    const yaml = blocks.find((b) => b.includes("redis_cluster"));
    assert.ok(yaml !== undefined, "the section has a yaml block with distribution: redis_cluster");
    const pools = loadConf(yaml, "README.md").pools;
    assert.ok(pools.some((p) => p.distribution === "redis_cluster"), "a pool of the example uses redis_cluster");
  });
});

describe("redis_cluster keys: rejected with file, line, pool and key", () => {
  it("hash set with redis_cluster, at the hash line, whether before or after the distribution", () => {
    rejects(cluster(["hash: fnv1a_64"]), 5, "hash", /redis_cluster/);
    rejects(pool(["hash: murmur", "distribution: redis_cluster"]), 4, "hash", /redis_cluster/);
  });

  it("hash set to crc16, the cluster's own hash, is refused all the same", () => {
    rejects(cluster(["hash: crc16"]), 5, "hash", /redis_cluster/);
  });

  it("hash_tag set with redis_cluster, even as the cluster's own {}", () => {
    rejects(cluster(['hash_tag: "{}"']), 5, "hash_tag", /redis_cluster/);
    rejects(pool(['hash_tag: "[]"', "distribution: redis_cluster"]), 4, "hash_tag", /redis_cluster/);
  });

  it("redis_db other than 0 with redis_cluster", () => {
    rejects(cluster(["redis_db: 1"]), 5, "redis_db", /redis_cluster|db 0/);
    rejects(pool(["redis_db: 15", "distribution: redis_cluster"]), 4, "redis_db", /redis_cluster|db 0/);
  });

  it("redis_cluster in a memcached pool (redis: false, or redis left out), at the distribution line", () => {
    rejects(cluster([], false), 4, "distribution", /only valid for a redis pool/);
    rejects(cluster([], null), 4, "distribution", /only valid for a redis pool/);
  });

  it("cluster_refresh_interval in a memcached pool", () => {
    rejects(pool(["cluster_refresh_interval: 1000"], false), 4, "cluster_refresh_interval", /only valid for a redis pool/);
  });

  it("a bad cluster_refresh_interval: zero, negative, fractional, with a unit, not a number, too large", () => {
    rejects(cluster(["cluster_refresh_interval: 0"]), 5, "cluster_refresh_interval", '"0" cannot be 0');
    for (const bad of ["-1", "1.5", "5s", "abc", '""']) {
      rejects(cluster([`cluster_refresh_interval: ${bad}`]), 5, "cluster_refresh_interval", /is not a number/);
    }
    rejects(cluster(["cluster_refresh_interval: 2147483648"]), 5, "cluster_refresh_interval", /greater than the maximum/);
  });

  it("a misspelt distribution is not a valid distribution", () => {
    rejects(pool(["distribution: redis-cluster"]), 4, "distribution", '"redis-cluster" is not a valid distribution');
  });
});
