/**
 * loadConf() against twemproxy 0.5.0: defaults and error phrases as in its nc_conf.c /
 * nc_conf.h, accepted configs taken from the vectors recorded with a real nutcracker,
 * and this project's message format (file, line, pool, key).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfError, loadConf } from "../core/conf/mod.ts";
import type { Conf, PoolConf } from "../core/conf/mod.ts";
import { loadPlacementCases, serverId } from "./helpers/vectors.ts";
import { expectConfError, firstPool } from "./helpers/conf.ts";

const FILE = "conf/test.yml";

/** A one-pool config; `lines` go between listen and servers. */
function pool(lines: string[] = [], servers = ["127.0.0.1:6379:1"], name = "alpha"): string {
  const body = ["  listen: 127.0.0.1:22121", ...lines.map((l) => `  ${l}`), "  servers:", ...servers.map((s) => `   - ${s}`)];
  return [`${name}:`, ...body, ""].join("\n");
}

/** 1-based line of the first line containing `needle` (from the test's own text). */
function lineOf(text: string, needle: string, from = 0): number {
  const lines = text.split("\n");
  const i = lines.findIndex((line, n) => n >= from && line.includes(needle));
  assert.ok(i >= 0, `"${needle}" not in the test config`);
  return i + 1;
}

function load(text: string): Conf {
  return loadConf(text, FILE);
}

function only(text: string): PoolConf {
  return firstPool(text, FILE);
}

/** loadConf must throw a ConfError with exactly this message. */
function rejects(text: string, message: string): ConfError {
  return expectConfError(text, FILE, message);
}

/** The message prefix for an error about pool `alpha` at `line`. */
const at = (line: number, poolName = "alpha") => `nutcracker: ${FILE}:${line}: pool '${poolName}': `;

describe("loadConf defaults", () => {
  it("applies twemproxy 0.5.0's defaults to a pool that sets only listen and servers", () => {
    const p = only(pool());
    assert.equal(p.name, "alpha");
    assert.deepEqual(p.listen, { kind: "tcp", host: "127.0.0.1", port: 22121 });
    assert.equal(p.listenText, "127.0.0.1:22121");
    assert.equal(p.hash, "fnv1a_64");
    assert.equal(p.hashTag, null);
    assert.equal(p.distribution, "ketama");
    assert.equal(p.timeout, null);
    assert.equal(p.backlog, 512);
    assert.equal(p.preconnect, false);
    assert.equal(p.redis, false);
    assert.equal(p.redisAuth, null);
    assert.equal(p.redisDb, 0);
    assert.equal(p.serverConnections, 1);
    assert.equal(p.autoEjectHosts, false);
    assert.equal(p.serverRetryTimeout, 30000);
    assert.equal(p.serverFailureLimit, 2);
    assert.equal(p.tcpkeepalive, false);
    assert.equal(p.clientConnections, 0);
  });

  it("loads every config a real nutcracker 0.5.0 accepted in the placement vectors", () => {
    const cases = loadPlacementCases();
    assert.ok(cases.length > 0);
    for (const c of cases) {
      const p = only(c.yml);
      assert.equal(p.hash, c.hash, c.id);
      assert.equal(p.distribution, c.distribution, c.id);
      assert.equal(p.hashTag, c.hash_tag, c.id);
      assert.equal(p.redis, true, c.id);
      assert.equal(p.timeout, 5000, c.id);
      assert.deepEqual(p.shards.map((s) => s.primary.id), c.servers.map(serverId), c.id);
      assert.deepEqual(p.shards.map((s) => s.primary.weight), c.servers.map((s) => s.weight), c.id);
      assert.deepEqual(p.shards.map((s) => s.primary.name), c.servers.map((s) => s.name), c.id);
    }
  });

  it("loads the example configs shipped in conf/", () => {
    for (const name of ["conf/nutcracker.yml", "conf/demo.yml"]) {
      const text = readFileSync(new URL(`../${name}`, import.meta.url), "utf8");
      const conf = loadConf(text, name);
      assert.ok(conf.pools.length > 0, name);
      assert.equal(conf.file, name);
    }
  });

  it("returns a frozen conf so nothing can change it after loading", () => {
    const conf = load(pool());
    assert.ok(Object.isFrozen(conf));
    assert.ok(Object.isFrozen(conf.pools));
    assert.ok(Object.isFrozen(conf.pools[0]));
    assert.ok(Object.isFrozen(conf.pools[0].shards[0].primary.addr));
    assert.throws(() => {
      (conf.pools[0] as { backlog: number }).backlog = 1;
    }, TypeError);
  });
});

describe("loadConf pool directives", () => {
  it("reads every numeric directive as written", () => {
    const p = only(pool([
      "timeout: 400", "backlog: 1024", "client_connections: 100", "redis_db: 3",
      "server_connections: 4", "server_retry_timeout: 2000", "server_failure_limit: 7", "redis: true",
    ]));
    assert.deepEqual(
      [p.timeout, p.backlog, p.clientConnections, p.redisDb, p.serverConnections, p.serverRetryTimeout, p.serverFailureLimit],
      [400, 1024, 100, 3, 4, 2000, 7],
    );
  });

  it("treats timeout 0 like no timeout, as twemproxy arms no timer for it", () => {
    assert.equal(only(pool(["timeout: 0"])).timeout, null);
  });

  it("reads every boolean directive from exactly true or false", () => {
    const on = only(pool(["redis: true", "tcpkeepalive: true", "preconnect: true", "auto_eject_hosts: true"]));
    assert.deepEqual([on.redis, on.tcpkeepalive, on.preconnect, on.autoEjectHosts], [true, true, true, true]);
    const off = only(pool(["redis: false", "tcpkeepalive: false", "preconnect: false", "auto_eject_hosts: false"]));
    assert.deepEqual([off.redis, off.tcpkeepalive, off.preconnect, off.autoEjectHosts], [false, false, false, false]);
  });

  it("accepts each of twemproxy's twelve hash names and three distributions", () => {
    const hashes = ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64", "fnv1_32",
      "fnv1a_32", "hsieh", "murmur", "jenkins"];
    for (const hash of hashes) assert.equal(only(pool([`hash: ${hash}`])).hash, hash);
    for (const dist of ["ketama", "modula", "random"]) assert.equal(only(pool([`distribution: ${dist}`])).distribution, dist);
  });

  it("keeps hash_tag and redis_auth as written", () => {
    const p = only(pool(['hash_tag: "{}"', "redis: true", "redis_auth: s3cret pass"]));
    assert.equal(p.hashTag, "{}");
    assert.equal(p.redisAuth, "s3cret pass");
    assert.equal(only(pool(['hash_tag: "::"'])).hashTag, "::");
  });

  it("rejects a non-number in every numeric directive with \"is not a number\"", () => {
    const keys = ["timeout", "backlog", "client_connections", "redis_db", "server_connections",
      "server_retry_timeout", "server_failure_limit"];
    for (const key of keys) {
      for (const bad of ["-1", "abc", "1.5", "1e3", "0x10", "2147483648"]) {
        const text = pool([`${key}: ${bad}`]);
        rejects(text, `${at(lineOf(text, key))}"${key}" "${bad}" is not a number`);
      }
    }
  });

  it("rejects anything but true or false in every boolean directive", () => {
    for (const key of ["redis", "tcpkeepalive", "preconnect", "auto_eject_hosts"]) {
      for (const bad of ["yes", "True", "1", "on"]) {
        const text = pool([`${key}: ${bad}`]);
        rejects(text, `${at(lineOf(text, key))}"${key}" "${bad}" is not "true" or "false"`);
      }
    }
  });

  it("rejects an unknown hash and an unknown distribution", () => {
    const h = pool(["hash: fnv2"]);
    rejects(h, `${at(3)}"hash" "fnv2" is not a valid hash`);
    const d = pool(["distribution: vnode"]);
    rejects(d, `${at(3)}"distribution" "vnode" is not a valid distribution`);
    const proto = pool(["hash: toString"]);
    rejects(proto, `${at(3)}"hash" "toString" is not a valid hash`);
  });

  it("rejects a hash_tag that is not exactly two bytes", () => {
    for (const bad of ["{", "{}}", "«»"]) {
      const text = pool([`hash_tag: "${bad}"`]);
      rejects(text, `${at(3)}"hash_tag" "${bad}" is not a valid hash tag string with two characters`);
    }
  });

  it("rejects an unknown key, naming it and its line", () => {
    const text = pool(["redis: true", "listen_backlog: 5"]);
    rejects(text, `${at(4)}"listen_backlog" is unknown`);
  });

  it("rejects a key set twice in one pool as a duplicate", () => {
    const text = pool(["hash: md5", "timeout: 4", "hash: crc16"]);
    rejects(text, `${at(5)}"hash" is a duplicate (first set on line 3)`);
  });

  it("rejects server_connections 0", () => {
    const text = pool(["server_connections: 0"]);
    rejects(text, `${at(3)}"server_connections" "0" cannot be 0`);
  });

  it("rejects redis_auth on a memcache pool but not on a redis pool", () => {
    const text = pool(["redis_auth: pw"]);
    rejects(text, `${at(3)}"redis_auth" is only valid for a redis pool`);
    const falseRedis = pool(["redis: false", "redis_auth: pw"]);
    rejects(falseRedis, `${at(4)}"redis_auth" is only valid for a redis pool`);
    assert.equal(only(pool(["redis_auth: pw", "redis: true"])).redisAuth, "pw");
  });

  it("rejects a list or mapping where one value belongs", () => {
    const text = "alpha:\n  listen:\n    - 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n";
    rejects(text, `${at(2)}"listen" is not a valid string`);
    const map = "alpha:\n  listen: 127.0.0.1:22121\n  hash:\n    name: md5\n  servers:\n   - 127.0.0.1:6379:1\n";
    rejects(map, `${at(3)}"hash" is not a valid string`);
  });

  it("rejects a pool without listen or without servers", () => {
    rejects("alpha:\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n", `${at(1)}"listen" is missing`);
    rejects("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n", `${at(1)}"servers" is missing`);
  });

  it("rejects servers given as one value instead of a list", () => {
    const text = "alpha:\n  listen: 127.0.0.1:22121\n  servers: 127.0.0.1:6379:1\n";
    rejects(text, `${at(3)}"servers" must be a list of "host:port:weight [name]" entries`);
    const empty = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n";
    rejects(empty, `${at(3)}"servers" must be a list of "host:port:weight [name]" entries`);
  });
});

describe("loadConf servers and listen", () => {
  it("parses IPv4, hostname, named, IPv6 and unix-socket server lines", () => {
    const p = only(pool([], [
      "127.0.0.1:6379:1", "cache.local:6380:2", "10.0.0.1:6381:3 redis-a", "::1:6382:1", '"[::1]:6383:1"',
      "/tmp/r.sock:4 sock-a",
    ]));
    const servers = p.shards.map((s) => s.primary);
    assert.deepEqual(servers.map((s) => s.addr), [
      { kind: "tcp", host: "127.0.0.1", port: 6379 },
      { kind: "tcp", host: "cache.local", port: 6380 },
      { kind: "tcp", host: "10.0.0.1", port: 6381 },
      { kind: "tcp", host: "::1", port: 6382 },
      { kind: "tcp", host: "::1", port: 6383 },
      { kind: "unix", path: "/tmp/r.sock" },
    ]);
    assert.deepEqual(servers.map((s) => s.weight), [1, 2, 3, 1, 1, 4]);
    assert.deepEqual(servers.map((s) => s.name), [null, null, "redis-a", null, null, "sock-a"]);
    assert.deepEqual(servers.map((s) => s.id), [
      "127.0.0.1:6379", "cache.local:6380", "redis-a", "::1:6382", "[::1]:6383", "sock-a",
    ]);
    assert.deepEqual(servers.map((s) => s.text), [
      "127.0.0.1:6379:1", "cache.local:6380:2", "10.0.0.1:6381:3 redis-a", "::1:6382:1", "[::1]:6383:1",
      "/tmp/r.sock:4 sock-a",
    ]);
  });

  it("names unnamed servers as twemproxy does: host alone on port 11211, a trailing colon for sockets", () => {
    const servers = only(pool([], ["127.0.0.1:11211:1", "127.0.0.2:11212:1", "/tmp/m.sock:1"])).shards.map((s) => s.primary);
    assert.deepEqual(servers.map((s) => s.id), ["127.0.0.1", "127.0.0.2:11212", "/tmp/m.sock:"]);
  });

  it("rejects server lines twemproxy cannot split", () => {
    const format = 'has an invalid "hostname:port:weight [name]" or "/path/unix_socket:weight [name]" format string';
    for (const bad of ["127.0.0.1:6379", "127.0.0.1", ":6379:1", "/tmp/a:b.sock:1", "/tmp/r.sock", "redis"]) {
      const text = pool([], [bad]);
      rejects(text, `${at(lineOf(text, bad, 2))}"servers" "${bad}" ${format}`);
    }
  });

  it("rejects a bad weight, a zero weight and a bad port in a server line", () => {
    const cases: Array<[string, string]> = [
      ["127.0.0.1:6379:x", 'has an invalid weight in "hostname:port:weight [name]" format string'],
      ["127.0.0.1:6379:-1", 'has an invalid weight in "hostname:port:weight [name]" format string'],
      ["127.0.0.1:6379:1 two words", 'has an invalid weight in "hostname:port:weight [name]" format string'],
      ["127.0.0.1:6379:0", 'has a zero weight in "hostname:port:weight [name]" format string'],
      ["/tmp/r.sock:0", 'has a zero weight in "hostname:port:weight [name]" format string'],
      ["127.0.0.1:0:1", 'has an invalid port in "hostname:port:weight [name]" format string'],
      ["127.0.0.1:65536:1", 'has an invalid port in "hostname:port:weight [name]" format string'],
      ["127.0.0.1:http:1", 'has an invalid port in "hostname:port:weight [name]" format string'],
    ];
    for (const [bad, phrase] of cases) {
      const text = pool([], ["127.0.0.1:7000:1", bad]);
      rejects(text, `${at(5)}"servers" "${bad}" ${phrase}`);
    }
  });

  it("rejects a server entry that is not a plain value", () => {
    const text = "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n   - host: x\n";
    rejects(text, `${at(5)}"servers" entry is not a valid string`);
  });

  it("parses TCP and unix-socket listen addresses, with and without a mode", () => {
    const text = [
      "a:\n  listen: 0.0.0.0:22121\n  servers:\n   - 127.0.0.1:6379:1",
      "b:\n  listen: localhost:22122\n  servers:\n   - 127.0.0.1:6379:1",
      "c:\n  listen: /tmp/c.sock 0666\n  servers:\n   - 127.0.0.1:6379:1",
      "d:\n  listen: /tmp/d.sock\n  servers:\n   - 127.0.0.1:6379:1",
      "e:\n  listen: ::1:22123\n  servers:\n   - 127.0.0.1:6379:1",
      "f:\n  listen: \"[::1]:22124\"\n  servers:\n   - 127.0.0.1:6379:1",
      "",
    ].join("\n");
    const pools = load(text).pools;
    assert.deepEqual(pools.map((p) => p.listen), [
      { kind: "tcp", host: "0.0.0.0", port: 22121 },
      { kind: "tcp", host: "localhost", port: 22122 },
      { kind: "unix", path: "/tmp/c.sock", mode: 0o666 },
      { kind: "unix", path: "/tmp/d.sock" },
      { kind: "tcp", host: "::1", port: 22123 },
      { kind: "tcp", host: "::1", port: 22124 },
    ]);
    assert.deepEqual(pools.map((p) => p.listenText), [
      "0.0.0.0:22121", "localhost:22122", "/tmp/c.sock 0666", "/tmp/d.sock", "::1:22123", "[::1]:22124",
    ]);
  });

  it("rejects a listen address without a port, with a bad port, or with a bad socket mode", () => {
    const cases: Array<[string, string]> = [
      ["localhost", 'has an invalid "hostname:port" format string'],
      [":22121", 'has an invalid "hostname:port" format string'],
      ["127.0.0.1:0", 'has an invalid port in "hostname:port" format string'],
      ["127.0.0.1:99999", 'has an invalid port in "hostname:port" format string'],
      ["127.0.0.1:port", 'has an invalid port in "hostname:port" format string'],
      ["/tmp/x.sock 0999", 'has an invalid file permission in "socket_path permission" format string'],
      ["/tmp/x.sock 1777", 'has an invalid file permission in "socket_path permission" format string'],
      ["/tmp/x.sock rw", 'has an invalid file permission in "socket_path permission" format string'],
    ];
    for (const [bad, phrase] of cases) {
      const text = `alpha:\n  listen: "${bad}"\n  servers:\n   - 127.0.0.1:6379:1\n`;
      rejects(text, `${at(2)}"listen" "${bad}" ${phrase}`);
    }
  });
});

describe("loadConf across pools", () => {
  it("keeps many pools in file order, each with its own settings", () => {
    const text = [
      pool(["redis: true"], ["127.0.0.1:6379:1"], "alpha").replace("22121", "22121"),
      pool(["hash: md5"], ["127.0.0.1:11211:1", "127.0.0.1:11212:1"], "beta").replace("22121", "22122"),
      pool(["distribution: modula"], ["/tmp/g.sock:1 g"], "gamma").replace("22121", "22123"),
    ].join("");
    const pools = load(text).pools;
    assert.deepEqual(pools.map((p) => p.name), ["alpha", "beta", "gamma"]);
    assert.deepEqual(pools.map((p) => p.redis), [true, false, false]);
    assert.deepEqual(pools.map((p) => p.hash), ["fnv1a_64", "md5", "fnv1a_64"]);
    assert.deepEqual(pools.map((p) => p.distribution), ["ketama", "ketama", "modula"]);
    assert.deepEqual(pools.map((p) => p.shards.length), [1, 2, 1]);
  });

  it("rejects two pools listening on the same address", () => {
    const text = pool([], ["127.0.0.1:6379:1"], "alpha") + pool([], ["127.0.0.1:6380:1"], "beta");
    const beta = lineOf(text, "beta:");
    rejects(text, `${at(beta + 1, "beta")}"listen" "127.0.0.1:22121" is a duplicate of pool 'alpha' (line 2)`);
  });

  it("rejects two pools with the same name", () => {
    const text = pool([], ["127.0.0.1:6379:1"], "alpha") + pool([], ["127.0.0.1:6380:1"], "alpha").replace("22121", "22122");
    const second = lineOf(text, "alpha:", 1);
    rejects(text, `nutcracker: ${FILE}:${second}: pool 'alpha': is a duplicate of the pool on line 1`);
  });

  it("rejects two servers with the same name, as twemproxy does", () => {
    const text = pool([], ["127.0.0.1:6379:1 a", "127.0.0.1:6380:1 b", "127.0.0.1:6381:1 a"]);
    const [first, dup] = [lineOf(text, "6379:1 a"), lineOf(text, "6381:1 a")];
    rejects(text, `${at(dup)}"servers" "127.0.0.1:6381:1 a" is a duplicate of line ${first} (same name 'a')`);
    const unnamed = pool([], ["127.0.0.1:6379:1", "127.0.0.1:6379:2"]);
    const [one, two] = [lineOf(unnamed, "6379:1"), lineOf(unnamed, "6379:2")];
    rejects(unnamed, `${at(two)}"servers" "127.0.0.1:6379:2" is a duplicate of line ${one} (same name '127.0.0.1:6379')`);
  });

  it("rejects two servers at the same address even when their names differ", () => {
    const text = pool([], ["127.0.0.1:6379:1 a", "127.0.0.1:6379:1 b"]);
    const [first, dup] = [lineOf(text, ":1 a"), lineOf(text, ":1 b")];
    rejects(text, `${at(dup)}"servers" "127.0.0.1:6379:1 b" is a duplicate of line ${first} (same address '127.0.0.1:6379')`);
  });
});

describe("loadConf YAML handling", () => {
  it("reports a YAML syntax error with its line", () => {
    const text = "alpha:\n  listen: 127.0.0.1:22121\n  servers: [127.0.0.1:6379:1\nbeta:\n";
    const err = rejects(text, `nutcracker: ${FILE}:4: yaml: Flow sequence in block collection must be sufficiently indented and end with a ]`);
    assert.equal(err.line, 4);
    assert.equal(err.pool, null);
  });

  it("reports a bad indentation and a tab with the line they are on", () => {
    const cases: Array<[string, string]> = [
      ["alpha:\n  listen: 127.0.0.1:22121\n servers:\n   - 127.0.0.1:6379:1\n", " servers:"],
      ["alpha:\n  listen: 127.0.0.1:22121\n\thash: md5\n", "\thash"],
    ];
    for (const [text, needle] of cases) {
      let caught: unknown;
      try {
        load(text);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ConfError);
      assert.equal(caught.line, lineOf(text, needle));
      assert.ok(caught.message.startsWith(`nutcracker: ${FILE}:${caught.line}: yaml: `), caught.message);
    }
  });

  it("refuses what twemproxy's parser refuses: several documents, anchors, aliases, tags, flow style", () => {
    const base = pool();
    rejects(`${base}---\n${base}`, `nutcracker: ${FILE}:${lineOf(`${base}---`, "---")}: yaml: Source contains multiple documents; please use YAML.parseAllDocuments()`);
    rejects(base.replace("  listen: 127.0.0.1:22121", "  listen: &l 127.0.0.1:22121"), `nutcracker: ${FILE}:2: yaml: anchors are not allowed`);
    // An alias needs an anchor, so a config with one fails at the anchor.
    rejects(base.replace("   - 127.0.0.1:6379:1", "   - &s 127.0.0.1:6379:1\n   - *s"), `nutcracker: ${FILE}:4: yaml: anchors are not allowed`);
    rejects(base.replace("  listen: 127.0.0.1:22121", "  listen: !!str 127.0.0.1:22121"), `nutcracker: ${FILE}:2: yaml: tags are not allowed`);
    rejects("alpha:\n  listen: 127.0.0.1:22121\n  servers: [127.0.0.1:6379:1]\n",
      `nutcracker: ${FILE}:3: yaml: flow collections ([...] and {...}) are not allowed`);
  });

  it("rejects an empty file and a file whose top level is not a mapping", () => {
    rejects("", `nutcracker: ${FILE}:1: has no pools`);
    rejects("# nothing here\n\n", `nutcracker: ${FILE}:1: has no pools`);
    rejects("- alpha\n- beta\n", `nutcracker: ${FILE}:1: the top level must map pool names to their settings`);
    rejects("alpha: 1\n", `nutcracker: ${FILE}:1: pool 'alpha': settings must be a mapping of "key: value" lines`);
  });

  it("reads scalars as text, so YAML's number and boolean forms are not rewritten", () => {
    const p = only(pool(["timeout: 0400", "redis_auth: 1e3", "redis: true"]));
    assert.equal(p.timeout, 400);
    assert.equal(p.redisAuth, "1e3");
    assert.equal(only(pool(["hash_tag: 12"])).hashTag, "12");
  });

  it("gives a ConfError the file, line, pool and key it is about", () => {
    const err = rejects(pool(["hash: nope"]), `${at(3)}"hash" "nope" is not a valid hash`);
    assert.equal(err.file, FILE);
    assert.equal(err.line, 3);
    assert.equal(err.pool, "alpha");
    assert.equal(err.key, "hash");
    assert.equal(err.detail, `pool 'alpha': "hash" "nope" is not a valid hash`);
  });
});
