/**
 * The Sentinel keys of a pool (issue 13): `sentinels` (a list of "host:port"; a trailing
 * ":weight name", as in server lines, is accepted and ignored) and `sentinel_auth`. Both are
 * redis-only, and with `sentinels` every server must be named (the name is the Sentinel
 * master name). Read as written, defaulted so a file without them loads exactly as before,
 * and rejected like twemproxy's keys with file, line, pool and key in the error.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfError, DEFAULTS, loadConf } from "../core/conf/mod.ts";
import type { PoolConf } from "../core/conf/mod.ts";
import { formatAddr } from "../core/net.ts";
import { expectConfError, firstPool } from "./helpers/conf.ts";

const FILE = "conf/sentinels.yml";

/** A pool: `lines` (indented as pool keys) after the two named servers. Lines 1-6 are fixed. */
function pool(lines: string[] = [], redis = true): string {
  return [
    "alpha:", //                       1
    "  listen: 127.0.0.1:22121", //    2
    `  redis: ${redis}`, //            3
    "  servers:", //                   4
    "   - 127.0.0.1:6379:1 shard1", // 5
    "   - 127.0.0.1:6380:1 shard2", // 6
    ...lines.map((l) => `  ${l}`), //  7 onwards
    "",
  ].join("\n");
}

/** `pool()` with these Sentinel entries: "sentinels:" on line 7, the entries from line 8. */
function withSentinels(entries: string[], more: string[] = [], redis = true): string {
  return pool(["sentinels:", ...entries.map((e) => ` - ${e}`), ...more], redis);
}

function only(text: string): PoolConf {
  return firstPool(text, FILE);
}

/** The pool's Sentinels as "host:port" text. */
function sentinelsOf(text: string): string[] {
  return only(text).sentinels.map(formatAddr);
}

/** loadConf must throw a ConfError with exactly this message; returns it. */
function rejects(text: string, message: string): ConfError {
  return expectConfError(text, FILE, message);
}

const at = (line: number, name = "alpha") => `nutcracker: ${FILE}:${line}: pool '${name}': `;
const FORMAT = '"host:port"';

describe("sentinel keys: accepted", () => {
  it("reads each sentinels entry as a host:port address, in file order", () => {
    const p = only(withSentinels(["127.0.0.1:26379", "sentinel-b.local:26380", '"[::1]:26381"']));
    assert.deepEqual(p.sentinels, [
      { kind: "tcp", host: "127.0.0.1", port: 26379 },
      { kind: "tcp", host: "sentinel-b.local", port: 26380 },
      { kind: "tcp", host: "::1", port: 26381 },
    ]);
  });

  it("accepts a trailing :weight and name on an entry, as in server lines, and ignores them", () => {
    const text = withSentinels(["127.0.0.1:26379:1 sentinel-a", "127.0.0.1:26380:2", "127.0.0.1:26381 sentinel-c", "127.0.0.1:26382:1 a b"]);
    assert.deepEqual(sentinelsOf(text), ["127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381", "127.0.0.1:26382"]);
  });

  it("accepts a server list copied as it is: the same lines as sentinels give the same addresses", () => {
    const lines = ["127.0.0.1:26379:1 shard1", "127.0.0.1:26380:1 shard2"];
    assert.deepEqual(sentinelsOf(withSentinels(lines)), ["127.0.0.1:26379", "127.0.0.1:26380"]);
  });

  it("reads sentinel_auth as written", () => {
    const p = only(withSentinels(["127.0.0.1:26379"], ["sentinel_auth: s3cret"]));
    assert.equal(p.sentinelAuth, "s3cret");
    assert.equal(p.redisAuth, null, "sentinel_auth is not redis_auth");
  });

  it("reads sentinels written before servers, so key order in the pool does not matter", () => {
    const text = [
      "alpha:", "  listen: 127.0.0.1:22121", "  sentinel_auth: pw", "  sentinels:", "   - 127.0.0.1:26379",
      "  redis: true", "  servers:", "   - 127.0.0.1:6379:1 shard1", "",
    ].join("\n");
    const p = only(text);
    assert.deepEqual([p.sentinels.map(formatAddr), p.sentinelAuth], [["127.0.0.1:26379"], "pw"]);
  });

  it("keeps the ring's input unchanged: the same servers, in order, with or without sentinels", () => {
    const plain = only(pool());
    const followed = only(withSentinels(["127.0.0.1:26379"], ["sentinel_auth: pw"]));
    assert.deepEqual(followed.shards, plain.shards);
    const { sentinels: _a, sentinelAuth: _b, ...rest } = followed;
    const { sentinels: _c, sentinelAuth: _d, ...restPlain } = plain;
    assert.deepEqual(rest, restPlain);
  });

  it("accepts static replicas next to sentinels", () => {
    const p = only(withSentinels(["127.0.0.1:26379"], ["replicas:", "  shard1:", "   - 127.0.0.1:7379"]));
    assert.deepEqual(p.shards.map((s) => s.replicas.map((r) => r.id)), [["127.0.0.1:7379"], []]);
  });

  it("freezes the sentinels list with the rest of the pool", () => {
    const p = only(withSentinels(["127.0.0.1:26379"]));
    assert.ok(Object.isFrozen(p.sentinels));
    assert.ok(Object.isFrozen(p.sentinels[0]));
  });

  it("reads the issue's worked example whole", () => {
    const text = [
      "alpha:", "  listen: 127.0.0.1:22121", "  redis: true", "  sentinels:", "   - 127.0.0.1:26379", "   - 127.0.0.1:26380",
      "   - 127.0.0.1:26381", "  sentinel_auth: secret", "  servers:", "   - 127.0.0.1:6379:1 shard1", "   - 127.0.0.1:6380:1 shard2",
      "  read_policy: prefer_replica", "",
    ].join("\n");
    const p = only(text);
    assert.deepEqual(p.sentinels.map(formatAddr), ["127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"]);
    assert.equal(p.sentinelAuth, "secret");
    assert.deepEqual(p.shards.map((s) => s.primary.name), ["shard1", "shard2"]);
  });

  it("loads the README's Sentinel example", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("### Sentinel (config)"));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(yaml !== undefined, "the section has a yaml block");
    const p = only(yaml);
    assert.ok(p.sentinels.length > 0, "the example has sentinels");
    assert.ok(p.shards.every((s) => s.primary.name !== null), "every server of the example is named");
  });
});

describe("sentinel keys: defaults", () => {
  it("without sentinels: an empty list and no auth, in redis and memcached pools alike", () => {
    for (const redis of [true, false]) {
      const p = only(pool([], redis));
      assert.deepEqual([p.sentinels, p.sentinelAuth], [[], null], `redis: ${redis}`);
    }
    assert.equal(DEFAULTS.sentinel_auth, null);
  });

  it("without sentinels, unnamed servers load as before", () => {
    const text = ["alpha:", "  listen: 127.0.0.1:22121", "  redis: true", "  servers:", "   - 127.0.0.1:6379:1", ""].join("\n");
    assert.deepEqual(only(text).shards.map((s) => [s.primary.id, s.primary.name]), [["127.0.0.1:6379", null]]);
  });

  it("an empty sentinel_auth is no password", () => {
    assert.equal(only(withSentinels(["127.0.0.1:26379"], ['sentinel_auth: ""'])).sentinelAuth, null);
  });
});

describe("sentinel keys: rejected with file, line, pool and key", () => {
  it("an unnamed server in a pool with sentinels, at the server's line", () => {
    const text = ["alpha:", "  listen: 127.0.0.1:22121", "  redis: true", "  sentinels:", "   - 127.0.0.1:26379", "  servers:",
      "   - 127.0.0.1:6379:1 shard1", "   - 127.0.0.1:6380:1", ""].join("\n");
    rejects(text, `${at(8)}"servers" "127.0.0.1:6380:1" has no name, but a pool with sentinels needs the Sentinel master name of every server`);
  });

  it("an unnamed server before the sentinels key, still at the server's line", () => {
    const text = ["alpha:", "  listen: 127.0.0.1:22121", "  redis: true", "  servers:", "   - 127.0.0.1:6379:1", "  sentinels:",
      "   - 127.0.0.1:26379", ""].join("\n");
    rejects(text, `${at(5)}"servers" "127.0.0.1:6379:1" has no name, but a pool with sentinels needs the Sentinel master name of every server`);
  });

  it("an unnamed unix-socket server in a pool with sentinels", () => {
    const text = ["alpha:", "  listen: 127.0.0.1:22121", "  redis: true", "  sentinels:", "   - 127.0.0.1:26379", "  servers:",
      "   - /tmp/redis.sock:1", ""].join("\n");
    rejects(text, `${at(7)}"servers" "/tmp/redis.sock:1" has no name, but a pool with sentinels needs the Sentinel master name of every server`);
  });

  it("a bad sentinel address, at the entry's line", () => {
    const cases: [string, string][] = [
      ["127.0.0.1", `has an invalid ${FORMAT} format string`],
      ["127.0.0.1:99999", `has an invalid port in ${FORMAT} format string`],
      ["127.0.0.1:0", `has an invalid port in ${FORMAT} format string`],
      ["127.0.0.1:26379:x", `has an invalid weight in ${FORMAT} format string`],
      ["/tmp/sentinel.sock", `has an invalid ${FORMAT} format string`],
      ["::1:26379", 'has an unbracketed IPv6 host: write "[host]:port[:weight]"'],
    ];
    for (const [entry, phrase] of cases) {
      rejects(withSentinels(["127.0.0.1:26379", entry]), `${at(9)}"sentinels" "${entry}" ${phrase}`);
    }
  });

  it("sentinels that are not a list: a scalar, a mapping, or nothing", () => {
    const message = `${at(7)}"sentinels" must be a list of ${FORMAT} entries`;
    rejects(pool(["sentinels: 127.0.0.1:26379"]), message);
    rejects(pool(["sentinels:", "  a: 127.0.0.1:26379"]), message);
    rejects(pool(["sentinels:"]), message);
  });

  it("a sentinels entry that is not a string", () => {
    rejects(withSentinels(["127.0.0.1:26379", "- 127.0.0.1:26380"]), `${at(9)}"sentinels" entry is not a valid string`);
  });

  it("sentinels given twice in one pool", () => {
    rejects(withSentinels(["127.0.0.1:26379"], ["sentinels:", " - 127.0.0.1:26380"]), `${at(9)}"sentinels" is a duplicate (first set on line 7)`);
  });

  it("sentinels in a memcached pool, at the key's line", () => {
    rejects(withSentinels(["127.0.0.1:26379"], [], false), `${at(7)}"sentinels" is only valid for a redis pool`);
  });

  it("sentinel_auth in a memcached pool, at its line", () => {
    rejects(pool(["sentinel_auth: pw"], false), `${at(7)}"sentinel_auth" is only valid for a redis pool`);
  });
});
