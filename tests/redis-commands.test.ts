/**
 * The Redis command table: case-insensitive lookup, kinds, and arity and key positions
 * checked against a real redis-server's COMMAND output; error replies checked byte for
 * byte against what redis-server sends.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { latin1Bytes, latin1String } from "../core/bytes.ts";
import {
  checkArity,
  COMMANDS,
  type CommandSpec,
  Kind,
  lookupCommand,
  SUPPORTED_COMMANDS,
  UNSUPPORTED_COMMANDS,
  unknownCommandError,
  unknownCommandErrorFor,
  unsupportedCommandError,
  wrongArityError,
} from "../core/redis/commands.ts";
import { parseRequest, RequestSlots } from "../core/redis/request.ts";
import { REFERENCE_CLASSES, renderCommandReference } from "../scripts/command-reference.ts";
import { encodeCommand, NEED_MORE, ReplyScanner } from "../core/redis/reply.ts";
import { rawExchange, redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";

const b = latin1Bytes;
const s = (u: Uint8Array) => latin1String(u);

function spec(name: string): CommandSpec {
  const found = lookupCommand(b(name), 0, name.length);
  assert.ok(found, `${name} is in the table`);
  return found;
}

/**
 * Request types of twemproxy's Redis codec (MSG_REQ_REDIS_* in nc_message.h): every one
 * must be served, not refused.
 */
const TWEMPROXY = `copy del exists expire expireat move pexpire pexpireat persist pttl sort touch ttl type unlink
  append bitcount bitfield bitpos decr decrby dump get getbit getdel getex getrange getset incr incrby incrbyfloat
  mget mset psetex restore set setbit setex setnx setrange strlen hdel hexists hget hgetall hincrby hincrbyfloat
  hkeys hlen hmget hmset hrandfield hset hsetnx hscan hstrlen hvals lindex linsert llen lmove lpop lpos lpush lpushx
  lrange lrem lset ltrim pfadd pfcount pfmerge rpop rpoplpush rpush rpushx sadd scard sdiff sdiffstore sinter
  sinterstore sismember smismember smembers smove spop srandmember srem sunion sunionstore sscan zadd zcard zcount
  zdiff zdiffstore zincrby zinter zinterstore zlexcount zmscore zpopmin zpopmax zrandmember zrange zrangebylex
  zrangebyscore zrangestore zrank zrem zremrangebyrank zremrangebylex zremrangebyscore zrevrange zrevrangebylex
  zrevrangebyscore zrevrank zunion zscan zscore zunionstore geoadd geodist geohash georadius georadiusbymember
  geopos geosearch geosearchstore eval evalsha ping quit auth select command lolwut`.split(/\s+/);

describe("lookupCommand", () => {
  it("finds every command in any letter case, anywhere in a buffer", () => {
    for (const c of COMMANDS) {
      for (const name of [c.name, c.name.toUpperCase(), c.name.replace(/./g, (ch, i) => i % 2 ? ch.toUpperCase() : ch)]) {
        const buf = b("xx" + name + "yy");
        assert.equal(lookupCommand(buf, 2, 2 + name.length), c, name);
      }
    }
  });

  it("returns undefined for unknown names, prefixes, extensions and long names", () => {
    for (const name of ["", "foo", "ge", "gett", "get\0", "mget ", "x".repeat(40), "g\xc5t", "{}"]) {
      assert.equal(lookupCommand(b(name), 0, name.length), undefined, JSON.stringify(name));
    }
  });

  it("gives single-key commands of every shape their key at argv[1]", () => {
    for (const name of ["get", "set", "expire", "hset", "linsert", "zadd", "geoadd", "georadius", "geosearch", "xadd"]) {
      const c = spec(name);
      assert.equal(c.kind, Kind.Forward, name);
      assert.equal(c.firstKey, 1, name);
    }
  });

  it("routes multi-key commands twemproxy supports by their first key", () => {
    for (const name of ["rpoplpush", "smove", "sdiff", "sunionstore", "zinterstore", "zunionstore", "pfmerge", "lmove"]) {
      assert.deepEqual([spec(name).kind, spec(name).firstKey], [Kind.Forward, 1], name);
    }
  });

  it("routes numkeys and subcommand forms by argv[2] and scripts by argv[3]", () => {
    for (const name of ["zdiff", "zinter", "zunion", "object", "xinfo"]) assert.equal(spec(name).firstKey, 2, name);
    for (const name of ["eval", "evalsha", "fcall"]) {
      assert.equal(spec(name).firstKey, 3, name);
      assert.equal(spec(name).eval, true, name);
    }
  });

  it("marks MGET, DEL, UNLINK, EXISTS, TOUCH and MSET as split across servers", () => {
    for (const name of ["mget", "del", "unlink", "exists", "touch"]) {
      assert.deepEqual([spec(name).kind, spec(name).keyStep], [Kind.MultiKey, 1], name);
    }
    assert.deepEqual([spec("mset").kind, spec("mset").keyStep], [Kind.MultiKey, 2]);
  });

  it("marks the commands the proxy answers itself as local", () => {
    for (const name of ["ping", "quit", "auth", "select", "echo", "command", "config"]) {
      assert.equal(spec(name).kind, Kind.Local, name);
    }
  });

  it("has the Redis 6.2 additions", () => {
    const added = `getdel getex lmove lpos zrandmember geosearch geosearchstore hrandfield smismember zmscore
      zrangestore copy zinter zunion zdiff zdiffstore`.split(/\s+/);
    for (const name of added) assert.notEqual(spec(name).kind, Kind.Unsupported, name);
  });

  it("serves every command twemproxy serves", () => {
    for (const name of TWEMPROXY) {
      assert.notEqual(spec(name).kind, Kind.Unsupported, name);
      assert.ok(SUPPORTED_COMMANDS.includes(name), name);
    }
  });

  it("refuses server administration", () => {
    const refused = "shutdown save bgsave slaveof replicaof monitor debug cluster acl module swapdb".split(" ");
    for (const name of refused) {
      assert.equal(spec(name).kind, Kind.Unsupported, name);
      assert.ok(UNSUPPORTED_COMMANDS.includes(name), name);
    }
    for (const name of ["object", "dump", "restore"]) assert.equal(spec(name).kind, Kind.Forward, name);
  });

  it("sends the keyspace-wide commands to every server, and answers INFO and CLIENT itself", () => {
    for (const name of "scan keys dbsize randomkey script flushdb flushall".split(" ")) {
      assert.equal(spec(name).kind, Kind.FanOut, name);
      assert.ok(SUPPORTED_COMMANDS.includes(name), name);
    }
    for (const name of ["info", "client"]) assert.equal(spec(name).kind, Kind.Local, name);
  });

  it("forwards RENAME, RENAMENX, MSETNX and BITOP, whose keys must share a server", () => {
    for (const name of ["rename", "renamenx", "msetnx", "bitop"]) {
      assert.deepEqual([spec(name).kind, spec(name).several], [Kind.Forward, true], name);
    }
    assert.equal(spec("bitop").firstKey, 2);
    assert.equal(checkArity(spec("msetnx"), 4), false, "MSETNX takes whole pairs");
  });

  it("lists every command exactly once, as supported or unsupported", () => {
    const all = [...SUPPORTED_COMMANDS, ...UNSUPPORTED_COMMANDS];
    assert.equal(new Set(all).size, COMMANDS.length);
    assert.equal(all.length, COMMANDS.length);
  });
});

describe("checkArity", () => {
  it("accepts exact and minimum argument counts", () => {
    assert.equal(checkArity(spec("get"), 2), true);
    assert.equal(checkArity(spec("get"), 1), false);
    assert.equal(checkArity(spec("get"), 3), false);
    assert.equal(checkArity(spec("mget"), 2), true);
    assert.equal(checkArity(spec("mget"), 9), true);
    assert.equal(checkArity(spec("mget"), 1), false);
    assert.equal(checkArity(spec("ping"), 1), true);
  });

  it("requires complete key/value pairs for MSET", () => {
    assert.equal(checkArity(spec("mset"), 3), true);
    assert.equal(checkArity(spec("mset"), 5), true);
    assert.equal(checkArity(spec("mset"), 4), false);
  });
});

describe("the command table against redis-server", () => {
  let redis: ServerProcess;
  // name -> [arity, flags, first, last, step, acl, tips, keyspecs, subcommands]
  const info = new Map<string, unknown[]>();

  before(async () => {
    redis = await startRedis();
    const all = JSON.parse(await redisCli(redis.port, "--json", "command")) as unknown[][];
    for (const c of all) info.set(c[0] as string, c);
  });
  after(async () => {
    await redis?.stop();
  });

  // Arities this table relaxes on purpose: Redis 7.2 added WITHSCORE to these.
  const LENIENT = new Set(["zrank", "zrevrank"]);
  // In the table but newer than the redis-server used here (7.0).
  const NEWER = new Set(["waitaof"]);

  it("knows every command redis-server has, so none is mistaken for an unknown one", () => {
    for (const name of info.keys()) assert.ok(lookupCommand(b(name), 0, name.length), name);
    for (const c of COMMANDS) assert.ok(info.has(c.name) || NEWER.has(c.name), `${c.name} is a real command`);
  });

  it("has redis-server's arity for every command", () => {
    for (const c of COMMANDS) {
      const r = info.get(c.name);
      if (r === undefined || LENIENT.has(c.name)) continue;
      assert.equal(c.arity, r[1], c.name);
    }
    for (const name of LENIENT) assert.equal(spec(name).arity, -(info.get(name)![1] as number));
  });

  /** First key position from COMMAND's key specs (begin_search + find_keys), or 0. */
  function firstKeyOf(keyspecs: unknown): number {
    const ks = keyspecs as { begin_search: { type: string; spec: { index?: number } }; find_keys: { type: string; spec: { firstkey?: number } } }[];
    if (!Array.isArray(ks) || ks.length === 0) return 0;
    const { begin_search: begin, find_keys: find } = ks[0];
    if (begin.type !== "index") return -1;
    return begin.spec.index! + (find.type === "keynum" ? find.spec.firstkey! : 0);
  }

  // Only the kinds routed by firstKey; every command's key specs: tests/redis-crossslot.test.ts.
  it("routes every served command by the first key redis-server's key specs name", () => {
    for (const c of COMMANDS) {
      const r = info.get(c.name);
      if (r === undefined || (c.kind !== Kind.Forward && c.kind !== Kind.MultiKey)) continue;
      // PUBLISH names a channel, not a key (Redis gives it no key spec): it is routed by it all the same.
      if (c.name === "publish") {
        assert.equal(c.firstKey, 1, "publish is routed by its channel");
        continue;
      }
      const subs = (r[9] as unknown[][]) ?? [];
      const fromSubs = new Set(subs.map((sub) => firstKeyOf(sub[8])).filter((k) => k > 0));
      const expected = subs.length > 0 ? [...fromSubs] : [firstKeyOf(r[8])];
      assert.deepEqual(expected, [c.firstKey], c.name);
      if (c.kind === Kind.MultiKey) assert.equal(c.keyStep, r[5], `${c.name} key step`);
    }
  });

  it("answers wrong argument counts with redis-server's exact error", async () => {
    const tried: CommandSpec[] = [];
    const wire: Uint8Array[] = [];
    for (const c of COMMANDS) {
      // EXEC reports arity errors as "-EXECABORT ..." (the proxy refuses EXEC anyway).
      if (c.arity === -1 || !info.has(c.name) || c.name === "exec") continue;
      const argc = c.arity === 1 ? 2 : Math.abs(c.arity) - 1;
      assert.equal(checkArity(c, argc), false, c.name);
      tried.push(c);
      wire.push(encodeCommand([b(c.name), ...Array.from({ length: argc - 1 }, () => b("x"))]));
    }
    tried.push(spec("mset"));
    wire.push(encodeCommand(["mset", "a", "b", "c"].map(b)));
    const replies = await pipeline(wire);
    assert.equal(replies.length, tried.length);
    tried.forEach((c, i) => assert.equal(replies[i], s(wrongArityError(c)), c.name));
  });

  it("formats unknown-command errors exactly like redis-server", async () => {
    const cases: string[][] = [
      ["foo"],
      ["foo", "bar", "baz"],
      ["n".repeat(200), "a"],
      ["foo", "a".repeat(100), "b".repeat(50), "c"],
      ["foo", "line\r\nbreak", "x"],
      ["foo", "nul\0cut", "\xff\x01"],
      ["foo", ...Array.from({ length: 70 }, (_, i) => String(i))],
    ];
    const replies = await pipeline(cases.map((c) => encodeCommand(c.map(b))));
    cases.forEach((c, i) => {
      const [name, ...args] = c.map(b);
      assert.equal(s(unknownCommandError(name, args)), replies[i], c[0].slice(0, 10));
      const wire = encodeCommand(c.map(b));
      const req = new RequestSlots();
      parseRequest(wire, 0, req);
      assert.equal(s(unknownCommandErrorFor(wire, req)), replies[i]);
    });
  });

  /** Sends requests in one write and returns each reply as latin1 text. */
  async function pipeline(requests: Uint8Array[]): Promise<string[]> {
    const end = "$7\r\n__end__\r\n";
    const wire = [...requests, encodeCommand(["ECHO", "__end__"].map(b))];
    let total = 0;
    for (const r of wire) total += r.length;
    const joined = new Uint8Array(total);
    let o = 0;
    for (const r of wire) {
      joined.set(r, o);
      o += r.length;
    }
    const got = await rawExchange(redis.port, joined, { untilEnds: end, timeoutMs: 5000 });
    assert.ok(got.done, "all replies arrived");
    const sc = new ReplyScanner();
    const out: string[] = [];
    let p = 0;
    while (p < got.data.length) {
      const e = sc.scan(got.data, p);
      assert.ok(e > p && e !== NEED_MORE);
      out.push(s(got.data.subarray(p, e)));
      p = e;
    }
    assert.equal(out.pop(), end);
    return out;
  }
});

describe("proxy error replies", () => {
  it("names the refused command", () => {
    assert.equal(s(unsupportedCommandError(spec("KEYS"))), "-ERR unsupported command 'keys'\r\n");
  });

  it("uses the canonical lower-case name in arity errors", () => {
    assert.equal(s(wrongArityError(spec("GET"))), "-ERR wrong number of arguments for 'get' command\r\n");
  });
});

describe("README's command reference", () => {
  it("puts every command of the table in exactly one class", () => {
    for (const c of COMMANDS) {
      const classes = REFERENCE_CLASSES.filter((k) => k.holds(c)).map((k) => k.title);
      assert.equal(classes.length, 1, `${c.name}: ${classes.join(", ") || "no class"}`);
    }
  });

  it("is the reference scripts/command-reference.ts renders from the table, word for word", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const heading = readme.indexOf("### Command reference");
    const start = readme.indexOf("\n- **", heading) + 1;
    const end = readme.indexOf("\n## ", start);
    assert.ok(heading >= 0 && start > heading && end > start, "README has the reference");
    assert.equal(readme.slice(start, end).trimEnd() + "\n", renderCommandReference(),
      "regenerate with: node --import tsx scripts/command-reference.ts");
  });
});
