/**
 * The replica keys of a pool (issue 12): `replicas` (shard identity -> "host:port[:weight]"
 * entries), `read_policy`, `replica_max_lag`, `read_your_writes`, `replica_check_interval`.
 * Each is read as written, defaulted so a file without them loads exactly as before, and
 * rejected like twemproxy's keys with file, line, pool and key in the error.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfError, DEFAULTS, loadConf, parseReplica, READ_POLICIES, ReadPolicy, readPolicyName } from "../core/conf/mod.ts";
import type { PoolConf } from "../core/conf/mod.ts";
import { expectConfError, firstPool } from "./helpers/conf.ts";

const FILE = "conf/replicas.yml";

/** A redis pool: `lines` (indented as pool keys) after the two servers. Lines 1-6 are fixed. */
function redisPool(lines: string[] = [], redis = true): string {
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

function only(text: string): PoolConf {
  return firstPool(text, FILE);
}

/** loadConf must throw a ConfError with exactly this message; returns it. */
function rejects(text: string, message: string): ConfError {
  return expectConfError(text, FILE, message);
}

const at = (line: number, name = "alpha") => `nutcracker: ${FILE}:${line}: pool '${name}': `;
const FORMAT = '"hostname:port[:weight]"';

/** What a replica's ServerConf holds, without the frozen object's identity. */
function replicaView(p: PoolConf): string[][] {
  return p.shards.map((s) => s.replicas.map((r) => `${r.id} w${r.weight} ${r.text} ${r.name}`));
}

describe("replicas: accepted", () => {
  it("attaches each shard's replicas by server name, in file order, weight 1 unless written", () => {
    const p = only(redisPool([
      "replicas:", "  shard1:", "   - 127.0.0.1:7379", "   - 127.0.0.1:7380:3", "  shard2:", "   - redis-b.local:7381:2",
    ]));
    assert.deepEqual(replicaView(p), [
      ["127.0.0.1:7379 w1 127.0.0.1:7379 null", "127.0.0.1:7380 w3 127.0.0.1:7380:3 null"],
      ["redis-b.local:7381 w2 redis-b.local:7381:2 null"],
    ]);
    assert.deepEqual(p.shards[0].replicas[1].addr, { kind: "tcp", host: "127.0.0.1", port: 7380 });
    assert.deepEqual(p.shards[1].replicas[0].addr, { kind: "tcp", host: "redis-b.local", port: 7381 });
  });

  it("leaves a shard without replicas an empty list", () => {
    const p = only(redisPool(["replicas:", "  shard2:", "   - 127.0.0.1:7381"]));
    assert.deepEqual(p.shards.map((s) => s.replicas.length), [0, 1]);
  });

  it("names an unnamed server's shard by host:port as written, its ServerConf.id", () => {
    const text = [
      "alpha:", "  listen: 127.0.0.1:22121", "  redis: true", "  servers:", "   - 127.0.0.1:6379:1", "   - localhost:6380:1",
      "  replicas:", "    127.0.0.1:6379:", "     - 127.0.0.1:7379", "    localhost:6380:", "     - 127.0.0.1:7380", "",
    ].join("\n");
    const p = only(text);
    assert.deepEqual(p.shards.map((s) => [s.primary.id, s.replicas.map((r) => r.id)]), [
      ["127.0.0.1:6379", ["127.0.0.1:7379"]],
      ["localhost:6380", ["127.0.0.1:7380"]],
    ]);
  });

  it("reads replicas written before servers, so key order in the pool does not matter", () => {
    const text = [
      "alpha:", "  listen: 127.0.0.1:22121", "  replicas:", "    shard1:", "     - 127.0.0.1:7379",
      "  redis: true", "  servers:", "   - 127.0.0.1:6379:1 shard1", "",
    ].join("\n");
    assert.deepEqual(replicaView(only(text)), [["127.0.0.1:7379 w1 127.0.0.1:7379 null"]]);
  });

  it("accepts a bracketed IPv6 replica, with and without a weight, keeping the brackets in its id", () => {
    const p = only(redisPool(["replicas:", "  shard1:", '   - "[::1]:7379"', '   - "[::1]:7380:2"']));
    assert.deepEqual(p.shards[0].replicas.map((r) => [r.addr, r.id, r.weight]), [
      [{ kind: "tcp", host: "::1", port: 7379 }, "[::1]:7379", 1],
      [{ kind: "tcp", host: "::1", port: 7380 }, "[::1]:7380", 2],
    ]);
  });

  it("accepts replicas (copies) in a memcached pool, keyed like its servers: host alone on port 11211", () => {
    const text = [
      "mc:", "  listen: 127.0.0.1:22122", "  servers:", "   - 127.0.0.1:11211:1", "   - 127.0.0.1:11212:1 b",
      "  replicas:", "    127.0.0.1:", "     - 127.0.0.2:11211", "    b:", "     - 127.0.0.2:11212:2", "",
    ].join("\n").replace("    127.0.0.1:\n", '    "127.0.0.1":\n');
    const p = only(text);
    assert.equal(p.redis, false);
    assert.deepEqual(p.shards.map((s) => [s.primary.id, s.replicas.map((r) => `${r.id}:${r.weight}`)]), [
      ["127.0.0.1", ["127.0.0.2:11211:1"]],
      ["b", ["127.0.0.2:11212:2"]],
    ]);
  });

  it("keeps the ring's input unchanged: the same primaries, in order, with or without replicas", () => {
    const plain = only(redisPool());
    const withReplicas = only(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "  shard2:", "   - 127.0.0.1:7380"]));
    assert.deepEqual(withReplicas.shards.map((s) => s.primary), plain.shards.map((s) => s.primary));
    const { shards: _a, ...rest } = withReplicas;
    const { shards: _b, ...restPlain } = plain;
    assert.deepEqual(rest, restPlain);
  });

  it("freezes replicas with the rest of the pool", () => {
    const p = only(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379"]));
    assert.ok(Object.isFrozen(p.shards[0].replicas));
    assert.ok(Object.isFrozen(p.shards[0].replicas[0]));
    assert.ok(Object.isFrozen(p.shards[0].replicas[0].addr));
  });

  it("loads the README's replicas example", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("### Replicas (config)"));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(yaml !== undefined, "the section has a yaml block");
    const p = only(yaml);
    assert.deepEqual(p.shards.map((s) => [s.primary.id, s.replicas.map((r) => `${r.id}:${r.weight}`)]), [
      ["shard1", ["127.0.0.1:7379:1", "127.0.0.1:7380:2"]],
      ["127.0.0.1:6380", ["127.0.0.1:7381:1"]],
    ]);
    assert.deepEqual([p.readPolicy, p.readYourWrites], [ReadPolicy.PreferReplica, true]);
  });

  it("parseReplica returns the ServerConf of one entry", () => {
    const parsed = parseReplica("10.0.0.5:7000:4");
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, {
      addr: { kind: "tcp", host: "10.0.0.5", port: 7000 }, weight: 4, name: null, id: "10.0.0.5:7000", text: "10.0.0.5:7000:4",
    });
  });
});

describe("read policy and replica keys: accepted", () => {
  it("reads each read_policy name into its ReadPolicy code", () => {
    const names = { master: 0, prefer_master: 1, replica: 2, prefer_replica: 3, any: 4 };
    for (const [name, code] of Object.entries(names)) {
      const p = only(redisPool([`read_policy: ${name}`]));
      assert.equal(p.readPolicy, code, name);
      assert.equal(readPolicyName(p.readPolicy), name);
    }
    assert.deepEqual(READ_POLICIES, {
      master: ReadPolicy.Master, prefer_master: ReadPolicy.PreferMaster, replica: ReadPolicy.Replica,
      prefer_replica: ReadPolicy.PreferReplica, any: ReadPolicy.Any,
    });
  });

  it("reads replica_max_lag from 0 to 2^40 bytes", () => {
    for (const n of [0, 1, 1048576, 2 ** 40]) assert.equal(only(redisPool([`replica_max_lag: ${n}`])).replicaMaxLag, n);
  });

  it("reads read_your_writes from exactly true or false", () => {
    assert.equal(only(redisPool(["read_your_writes: true"])).readYourWrites, true);
    assert.equal(only(redisPool(["read_your_writes: false"])).readYourWrites, false);
  });

  it("reads replica_check_interval from 1 to 2^31-1 ms", () => {
    for (const n of [1, 250, 2147483647]) {
      assert.equal(only(redisPool([`replica_check_interval: ${n}`])).replicaCheckInterval, n);
    }
  });

  it("reads the issue's worked example whole", () => {
    const p = only(redisPool([
      "replicas:", "  shard1:", "   - 127.0.0.1:7379:1", "   - 127.0.0.1:7380:1", "  shard2:", "   - 127.0.0.1:7381:1",
      "read_policy: prefer_replica", "replica_max_lag: 1048576", "read_your_writes: true", "replica_check_interval: 1000",
    ]));
    assert.deepEqual(
      [p.readPolicy, p.replicaMaxLag, p.readYourWrites, p.replicaCheckInterval],
      [ReadPolicy.PreferReplica, 1048576, true, 1000],
    );
    assert.deepEqual(p.shards.map((s) => s.replicas.map((r) => r.id)), [["127.0.0.1:7379", "127.0.0.1:7380"], ["127.0.0.1:7381"]]);
  });
});

describe("replica keys: defaults", () => {
  it("fills master, 1 MiB, false, 1000 ms and no replicas when the file leaves them out", () => {
    for (const redis of [true, false]) {
      const p = only(redisPool([], redis));
      assert.deepEqual(
        [p.readPolicy, p.replicaMaxLag, p.readYourWrites, p.replicaCheckInterval],
        [ReadPolicy.Master, 1048576, false, 1000],
      );
      assert.deepEqual(p.shards.map((s) => s.replicas), [[], []]);
    }
  });

  it("publishes the defaults in DEFAULTS", () => {
    assert.equal(DEFAULTS.read_policy, ReadPolicy.Master);
    assert.equal(DEFAULTS.replica_max_lag, 1048576);
    assert.equal(DEFAULTS.read_your_writes, false);
    assert.equal(DEFAULTS.replica_check_interval, 1000);
  });

  it("keeps every value plain, so a pool survives JSON (reload compares pools that way)", () => {
    const p = only(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379:2", "read_policy: any"]));
    assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
    assert.equal(typeof p.readPolicy, "number");
  });
});

describe("replicas: rejected", () => {
  it("rejects replicas that are not a mapping, at the key's line", () => {
    const phrase = 'must be a mapping of shard names to lists of "hostname:port[:weight]" entries';
    rejects(redisPool(["replicas: 127.0.0.1:7379"]), `${at(7)}"replicas" ${phrase}`);
    rejects(redisPool(["replicas:", "  - 127.0.0.1:7379"]), `${at(7)}"replicas" ${phrase}`);
    rejects(redisPool(["replicas:"]), `${at(7)}"replicas" ${phrase}`);
  });

  it("rejects a shard whose replicas are not a list, at the shard's line", () => {
    const phrase = 'must be a list of "hostname:port[:weight]" entries';
    rejects(redisPool(["replicas:", "  shard1: 127.0.0.1:7379"]), `${at(8)}"replicas" "shard1" ${phrase}`);
    rejects(redisPool(["replicas:", "  shard2:", "  shard1:", "   - 127.0.0.1:7379"]), `${at(8)}"replicas" "shard2" ${phrase}`);
    rejects(redisPool(["replicas:", "  shard1:", "    host: x"]), `${at(8)}"replicas" "shard1" ${phrase}`);
  });

  it("rejects an entry that is not a plain value, at its line", () => {
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "   - host: x"]),
      `${at(10)}"replicas" entry is not a valid string`);
  });

  it("rejects an entry with a name, saying a replica takes none", () => {
    for (const bad of ["127.0.0.1:7379:1 replica-a", "127.0.0.1:7379 replica-a", "127.0.0.1:7379:1 two words"]) {
      rejects(redisPool(["replicas:", "  shard1:", `   - ${bad}`]),
        `${at(9)}"replicas" "${bad}" has a name, but a replica takes none: write ${FORMAT}, the shard names it`);
    }
  });

  it("rejects bad addresses, ports and weights, at the entry's line", () => {
    const cases: Array<[string, string]> = [
      ["127.0.0.1", `has an invalid ${FORMAT} format string`],
      [":7379", `has an invalid ${FORMAT} format string`],
      ["/tmp/replica.sock:1", `has an invalid ${FORMAT} format string`],
      ["::1:7379:1", 'has an unbracketed IPv6 host: write "[host]:port[:weight]"'],
      ["127.0.0.1:7379:1:1", 'has an unbracketed IPv6 host: write "[host]:port[:weight]"'],
      ['"[::1]7379"', `has an invalid ${FORMAT} format string`],
      ['"[::1]:7379:1:2"', `has an invalid ${FORMAT} format string`],
      ["127.0.0.1:0", `has an invalid port in ${FORMAT} format string`],
      ["127.0.0.1:65536:1", `has an invalid port in ${FORMAT} format string`],
      ["127.0.0.1:redis", `has an invalid port in ${FORMAT} format string`],
      ['"127.0.0.1:"', `has an invalid port in ${FORMAT} format string`],
      ["127.0.0.1:7379:x", `has an invalid weight in ${FORMAT} format string`],
      ["127.0.0.1:7379:-1", `has an invalid weight in ${FORMAT} format string`],
      ['"127.0.0.1:7379:"', `has an invalid weight in ${FORMAT} format string`],
      ["127.0.0.1:7379:0", `has a zero weight in ${FORMAT} format string`],
    ];
    for (const [bad, phrase] of cases) {
      const shown = bad.replace(/^"(.*)"$/, "$1");
      rejects(redisPool(["replicas:", "  shard2:", "   - 127.0.0.1:7000", `   - ${bad}`]),
        `${at(10)}"replicas" "${shown}" ${phrase}`);
    }
  });

  it("rejects an unknown shard name, at the shard's line", () => {
    const phrase = "is not a server of this pool (a server's name, or host:port of an unnamed server)";
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "  shard3:", "   - 127.0.0.1:7380"]),
      `${at(10)}"replicas" "shard3" ${phrase}`);
    // A named server's shard is its name, not its address.
    rejects(redisPool(["replicas:", "  127.0.0.1:6379:", "   - 127.0.0.1:7379"]), `${at(8)}"replicas" "127.0.0.1:6379" ${phrase}`);
    // An unnamed server on port 11211 is identified by its host alone, as on the ring.
    const mc = "mc:\n  listen: 127.0.0.1:22122\n  servers:\n   - 127.0.0.1:11211:1\n  replicas:\n    127.0.0.1:11211:\n     - 127.0.0.2:11211\n";
    rejects(mc, `${at(6, "mc")}"replicas" "127.0.0.1:11211" ${phrase}`);
  });

  it("rejects a shard listed twice, at the second one's line", () => {
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "  shard1:", "   - 127.0.0.1:7380"]),
      `${at(10)}"replicas" "shard1" is a duplicate (first set on line 8)`);
  });

  it("rejects a replica at any master's address, naming that server and its line", () => {
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:6379"]),
      `${at(9)}"replicas" "127.0.0.1:6379" is the address of server 'shard1' (line 5)`);
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "   - 127.0.0.1:6380:2"]),
      `${at(10)}"replicas" "127.0.0.1:6380:2" is the address of server 'shard2' (line 6)`);
    const host = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - LocalHost:6379:1 s\n  replicas:\n    s:\n     - localhost:6379\n";
    rejects(host, `${at(7)}"replicas" "localhost:6379" is the address of server 's' (line 4)`);
  });

  it("rejects a replica listed twice in the pool, in one shard or across shards", () => {
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "   - 127.0.0.1:7379:2"]),
      `${at(10)}"replicas" "127.0.0.1:7379:2" is a duplicate of line 9 (same address '127.0.0.1:7379')`);
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "  shard2:", "   - 127.0.0.1:7380", "   - 127.0.0.1:7379"]),
      `${at(12)}"replicas" "127.0.0.1:7379" is a duplicate of line 9 (same address '127.0.0.1:7379')`);
  });

  it("rejects replicas set twice in one pool", () => {
    rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379", "replicas:", "  shard2:", "   - 127.0.0.1:7380"]),
      `${at(10)}"replicas" is a duplicate (first set on line 7)`);
  });

  it("gives the error the file, line, pool and key it is about", () => {
    const err = rejects(redisPool(["replicas:", "  shard1:", "   - 127.0.0.1:7379:0"]),
      `${at(9)}"replicas" "127.0.0.1:7379:0" has a zero weight in ${FORMAT} format string`);
    assert.deepEqual([err.file, err.line, err.pool, err.key], [FILE, 9, "alpha", "replicas"]);
    assert.equal(err.detail, `pool 'alpha': "replicas" "127.0.0.1:7379:0" has a zero weight in ${FORMAT} format string`);
  });
});

describe("read policy and replica keys: rejected", () => {
  it("rejects an unknown read_policy", () => {
    for (const bad of ["Master", "replicas", "prefer-replica", "random", "0", ""]) {
      const shown = bad;
      const text = redisPool([`read_policy: ${bad === "" ? "''" : bad}`]);
      rejects(text, `${at(7)}"read_policy" "${shown}" is not a valid read policy`);
    }
  });

  it("rejects a replica_max_lag that is not a whole number of bytes, or over 2^40", () => {
    for (const bad of ["-1", "1.5", "1mb", "abc", "1e6"]) {
      rejects(redisPool([`replica_max_lag: ${bad}`]), `${at(7)}"replica_max_lag" "${bad}" is not a number`);
    }
    rejects(redisPool(["replica_max_lag: 1099511627777"]),
      `${at(7)}"replica_max_lag" "1099511627777" is greater than the maximum 1099511627776`);
  });

  it("rejects a replica_check_interval of 0, a non-number, or over 2^31-1", () => {
    rejects(redisPool(["replica_check_interval: 0"]), `${at(7)}"replica_check_interval" "0" cannot be 0`);
    rejects(redisPool(["replica_check_interval: 1s"]), `${at(7)}"replica_check_interval" "1s" is not a number`);
    rejects(redisPool(["replica_check_interval: 2147483648"]),
      `${at(7)}"replica_check_interval" "2147483648" is greater than the maximum 2147483647`);
  });

  it("rejects read_your_writes other than true or false", () => {
    for (const bad of ["yes", "1", "True"]) {
      rejects(redisPool([`read_your_writes: ${bad}`]), `${at(7)}"read_your_writes" "${bad}" is not "true" or "false"`);
    }
  });

  it("rejects the read keys in a memcached pool, where reads of copies follow no policy", () => {
    const keys = ["read_policy: any", "replica_max_lag: 10", "read_your_writes: false", "replica_check_interval: 500"];
    for (const line of keys) {
      const key = line.split(":")[0];
      rejects(redisPool([line], false), `${at(7)}"${key}" is only valid for a redis pool`);
    }
  });

  it("rejects a list where one value belongs, and a misspelt key as unknown", () => {
    rejects(redisPool(["read_policy:", "  - master"]), `${at(7)}"read_policy" is not a valid string`);
    rejects(redisPool(["replica:", "  shard1:", "   - 127.0.0.1:7379"]), `${at(7)}"replica" is unknown`);
    rejects(redisPool(["read_your_write: true"]), `${at(7)}"read_your_write" is unknown`);
  });
});
