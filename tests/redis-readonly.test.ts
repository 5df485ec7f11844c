/**
 * The `readonly` flag of the Redis command table (which commands a replica may serve),
 * checked against a real redis-server's COMMAND INFO: for every command the server knows,
 * the table's flag is exactly the presence of Redis's `readonly` flag. Commands this server
 * lacks are listed with the reason they are skipped.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { latin1Bytes } from "../core/bytes.ts";
import { COMMANDS, type CommandSpec, isReadOnly, Kind, lookupCommand } from "../core/redis/commands.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";

function spec(name: string): CommandSpec {
  const found = lookupCommand(latin1Bytes(name), 0, name.length);
  assert.ok(found, `${name} is in the table`);
  return found;
}

/**
 * Table commands newer than the redis-server these tests run (7.0), with the flag the Redis
 * version that added them gives (from its COMMAND INFO), so they are still checked.
 */
const NEWER: Readonly<Record<string, { since: string; readonly: boolean }>> = {
  waitaof: { since: "7.2", readonly: false },
};

describe("the readonly flag against redis-server's COMMAND INFO", () => {
  let redis: ServerProcess;
  /** name -> Redis's flags, for every table command the server knows. */
  const flags = new Map<string, string[]>();
  const missing: string[] = [];

  before(async () => {
    redis = await startRedis();
    const names = COMMANDS.map((c) => c.name);
    const infos = JSON.parse(await redisCli(redis.port, "--json", "command", "info", ...names)) as (unknown[] | null)[];
    assert.equal(infos.length, names.length, "COMMAND INFO answers once per name");
    names.forEach((name, i) => {
      const info = infos[i];
      if (info === null) missing.push(name);
      else flags.set(name, info[2] as string[]);
    });
  });
  after(async () => {
    await redis?.stop();
  });

  it("gives every command redis-server knows the flag redis-server gives it", () => {
    const wrong: string[] = [];
    for (const c of COMMANDS) {
      const f = flags.get(c.name);
      if (f === undefined) continue;
      if (c.readonly !== f.includes("readonly")) wrong.push(`${c.name}: table ${c.readonly}, redis [${f.join(" ")}]`);
    }
    assert.deepEqual(wrong, []);
    assert.ok(flags.size >= 230, `COMMAND INFO described ${flags.size} commands`);
  });

  it("skips only the commands this redis-server lacks, each newer than it, and checks their documented flag", () => {
    for (const name of missing) {
      const newer = NEWER[name];
      assert.ok(newer !== undefined, `${name} is not known to this redis-server and not listed as newer`);
      console.log(`skipped ${name}: added in Redis ${newer.since}, not in this redis-server; flag checked as documented`);
      assert.equal(spec(name).readonly, newer.readonly, name);
    }
  });

  it("counts as reads exactly the commands redis-server flags readonly", () => {
    const reads = COMMANDS.filter((c) => c.readonly).map((c) => c.name).sort();
    const redisReads = [...flags].filter(([, f]) => f.includes("readonly")).map(([name]) => name).sort();
    assert.deepEqual(reads, redisReads);
  });
});

describe("the readonly flag", () => {
  it("makes scripts and functions writes and their _ro forms reads", () => {
    for (const name of ["eval", "evalsha", "fcall"]) assert.equal(spec(name).readonly, false, name);
    for (const name of ["eval_ro", "evalsha_ro", "fcall_ro"]) assert.equal(spec(name).readonly, true, name);
    for (const name of ["eval", "evalsha", "fcall", "eval_ro", "evalsha_ro", "fcall_ro"]) {
      assert.deepEqual([spec(name).kind, spec(name).arity, spec(name).firstKey, spec(name).eval], [Kind.Forward, -3, 3, true], name);
    }
  });

  it("makes split reads (MGET, EXISTS, TOUCH) reads and split writes (MSET, DEL, UNLINK) writes", () => {
    for (const name of ["mget", "exists", "touch"]) assert.equal(spec(name).readonly, true, name);
    for (const name of ["mset", "del", "unlink"]) assert.equal(spec(name).readonly, false, name);
  });

  it("makes plain reads reads and plain writes writes", () => {
    for (const name of ["get", "hgetall", "lrange", "zrange", "xrange", "sort_ro", "getrange", "strlen"]) {
      assert.equal(spec(name).readonly, true, name);
    }
    for (const name of ["set", "getdel", "getex", "getset", "sort", "incr", "hset", "lpop", "xadd", "pfadd"]) {
      assert.equal(spec(name).readonly, false, name);
    }
  });

  it("follows Redis's top-level flag for container commands: OBJECT and XINFO are writes, though their key subcommands read", () => {
    for (const name of ["object", "xinfo", "xgroup", "config", "command"]) assert.equal(spec(name).readonly, false, name);
  });

  it("treats an unknown command as a write", () => {
    assert.equal(isReadOnly(undefined), false);
    assert.equal(isReadOnly(lookupCommand(latin1Bytes("frobnicate"), 0, 10)), false);
    assert.equal(isReadOnly(lookupCommand(latin1Bytes("GET"), 0, 3)), true);
    assert.equal(isReadOnly(spec("set")), false);
  });
});
