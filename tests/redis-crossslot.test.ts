/**
 * Commands naming several keys, forwarded whole, are sent only when all their keys live on
 * one server; otherwise the client gets Redis Cluster's -CROSSSLOT and keeps its connection
 * (twemproxy routes them by the first key, so they read or write the wrong server). First
 * the key positions: the table's key specs equal a live redis-server's (COMMAND), and
 * keyPositions() finds what COMMAND GETKEYS finds. Then every such command through a proxy
 * of three redis-servers: keys on different servers get -CROSSSLOT and change nothing;
 * hash-tagged keys on one server get the same replies as from one plain redis-server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { latin1Bytes } from "../core/bytes.ts";
import { COMMANDS, type CommandSpec, lookupCommand } from "../core/redis/commands.ts";
import { keyPositions, type KeySpec } from "../core/redis/keys.ts";
import { parseRequest, RequestSlots } from "../core/redis/request.ts";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, encodeCommand, RespClient, show } from "./helpers/resp.ts";
import { keysOn, ownerOf } from "./helpers/soak.ts";

const decoder = new TextDecoder();
const CROSSSLOT = "-CROSSSLOT Keys in request don't hash to the same slot\\r\\n";

function spec(name: string): CommandSpec {
  const found = lookupCommand(latin1Bytes(name), 0, name.length);
  assert.ok(found, `${name} is in the table`);
  return found;
}

/** The keys keyPositions finds in argv, as text. */
function keysOf(argv: readonly string[]): string[] | null {
  const wire = encodeCommand(argv);
  const slots = new RequestSlots();
  parseRequest(wire, 0, slots);
  const out: number[] = [];
  const n = keyPositions(spec(argv[0].toLowerCase()).keys, wire, slots, out);
  return n < 0 ? null : out.map((i) => decoder.decode(wire.subarray(slots.argStart[i], slots.argEnd[i])));
}

/** A key spec as "begin find", in the words of COMMAND's key specs. */
function mine(k: KeySpec): string {
  const begin = k.keyword === null ? `index:${k.index}` : `keyword:${decoder.decode(k.keyword)}@${k.startFrom}`;
  const find = k.keynum ? "keynum:0,1,1" : `range:${k.lastKey},${k.step},${k.limit}`;
  return `${begin} ${find}`;
}

interface RedisKeySpec {
  flags: string[];
  begin_search: { type: string; spec: { index?: number; keyword?: string; startfrom?: number } };
  find_keys: { type: string; spec: { lastkey?: number; keystep?: number; limit?: number; keynumidx?: number; firstkey?: number } };
}

function theirs(k: RedisKeySpec): string | null {
  const b = k.begin_search;
  const f = k.find_keys;
  if (b.type === "unknown" || k.flags.includes("not_key")) return null;
  const begin = b.type === "index" ? `index:${b.spec.index}` : `keyword:${b.spec.keyword!.toLowerCase()}@${b.spec.startfrom}`;
  const find = f.type === "keynum"
    ? `keynum:${f.spec.keynumidx},${f.spec.firstkey},${f.spec.keystep}`
    : `range:${f.spec.lastkey},${f.spec.keystep},${f.spec.limit}`;
  return `${begin} ${find}`;
}

/** Example requests of every shape, for COMMAND GETKEYS. */
const EXAMPLES = `rename a b|renamenx a b|rpoplpush a b|smove a b m|lmove a b left right|copy a b|copy a b db 0 replace
  |zrangestore d s 0 -1|geosearchstore d s frommember m byradius 1 m|brpoplpush a b 0|blmove a b left right 0|lcs a b
  |mget a b c|del a b c|unlink a b|exists a b|touch a b|watch a b|sdiff a b c|sinter a b|sunion a b|pfcount a b
  |sdiffstore d a b|sinterstore d a b|sunionstore d a b|pfmerge d a b|bitop and d a b|bitop not d a|mset a 1 b 2
  |msetnx a 1 b 2 c 3|blpop a b 0|brpop a b 0|bzpopmin a b 0|bzpopmax a 0|zdiff 2 a b|zinter 2 a b weights 1 2
  |zunion 3 a b c|sintercard 2 a b limit 1|zintercard 2 a b|lmpop 2 a b left count 1|zmpop 1 a min|zdiffstore d 2 a b
  |zinterstore d 2 a b|zunionstore d 2 a b aggregate sum|blmpop 0 2 a b left|bzmpop 0 2 a b min|eval s 2 a b x
  |evalsha s 1 a|eval_ro s 2 a b|evalsha_ro s 0|fcall f 2 a b|fcall_ro f 1 a|georadius a 0 0 1 m store d
  |georadius a 0 0 1 m storedist e|georadius a 0 0 1 m withdist|georadiusbymember a m 1 km store d storedist e
  |sort a by w get # limit 0 1 store d|sort a store x store d|sort a get store|sort a|sort_ro a by w
  |xread count 1 streams a b 0 0|xreadgroup group g c streams a 0|migrate h 1 k 0 5|get a|set a 1|object encoding a
  |memory usage a|xinfo stream a|xgroup create a g $|pfdebug getreg a|restore-asking a 0 x`
  .split("|").map((line) => line.trim().split(" "));

describe("the key specs against redis-server's COMMAND and COMMAND GETKEYS", () => {
  let redis: ServerProcess;
  let client: RespClient;
  const info = new Map<string, unknown[]>();

  before(async () => {
    redis = await startRedis();
    client = await RespClient.connect(redis.port);
    const all = JSON.parse(await redisCli(redis.port, "--json", "command")) as unknown[][];
    for (const c of all) info.set(c[0] as string, c);
  });
  after(async () => {
    client?.close();
    await redis?.stop();
  });

  it("gives every command redis-server's key specs (of its subcommands, for a container), SORT's STORE aside", () => {
    const wrong: string[] = [];
    for (const c of COMMANDS) {
      const r = info.get(c.name);
      if (r === undefined) continue;
      const subs = (r[9] as unknown[][] | undefined) ?? [];
      const specs = [(r[8] as RedisKeySpec[]) ?? [], ...subs.map((s) => (s[8] as RedisKeySpec[]) ?? [])].flat();
      const want = [...new Set(specs.map(theirs).filter((s) => s !== null))];
      const got = c.keys.filter((k) => !k.sortStore).map(mine);
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${c.name}: table [${got}], redis [${want}]`);
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual(spec("sort").keys.map((k) => k.sortStore), [false, true], "SORT's STORE: Redis's spec says unknown");
  });

  it("finds in every example request the keys COMMAND GETKEYS finds", async () => {
    const replies = await client.pipeline(EXAMPLES.map((argv) => ["COMMAND", "GETKEYS", ...argv]));
    EXAMPLES.forEach((argv, i) => {
      const r = replies[i].reply;
      const want = r.type === "array" ? r.items!.map((item) => decoder.decode((item as { value: Uint8Array }).value)) : [];
      assert.deepEqual(keysOf(argv), want, `${argv.join(" ")}: GETKEYS said ${show(replies[i].raw)}`);
    });
  });

  it("marks as naming several keys exactly the commands whose specs can find more than one", () => {
    for (const name of ["get", "set", "hset", "object", "xinfo", "georadius_ro", "sort_ro", "lolwut", "ping"]) {
      assert.equal(spec(name).several, false, name);
    }
    for (const name of ["rename", "msetnx", "bitop", "sinterstore", "zunionstore", "georadius", "sort", "eval", "lcs", "lmpop", "pfmerge"]) {
      assert.equal(spec(name).several, true, name);
    }
  });

  it("leaves a bad numkeys to the server: -1 when numkeys is not a count that fits", () => {
    assert.equal(keysOf(["eval", "s", "3", "a", "b"]), null);
    assert.equal(keysOf(["zunion", "x", "a"]), null);
    assert.deepEqual(keysOf(["eval", "s", "0"]), []);
  });
});

/** One command naming several keys: `setup` then `cmd`, with keys written @A @B @C @D. */
interface Case {
  setup: string[][];
  cmd: string[];
  /** Read afterwards, to see what the command changed. */
  check?: string[][];
}

const CASES: Case[] = [
  { setup: [["SET", "@A", "1"]], cmd: ["RENAME", "@A", "@B"], check: [["GET", "@A"], ["GET", "@B"]] },
  { setup: [["SET", "@A", "1"]], cmd: ["RENAMENX", "@A", "@B"], check: [["GET", "@A"], ["GET", "@B"]] },
  { setup: [["SADD", "@A", "m"]], cmd: ["SMOVE", "@A", "@B", "m"], check: [["SMEMBERS", "@B"]] },
  { setup: [["RPUSH", "@A", "x", "y"]], cmd: ["LMOVE", "@A", "@B", "LEFT", "RIGHT"], check: [["LRANGE", "@B", "0", "-1"]] },
  { setup: [["RPUSH", "@A", "x"]], cmd: ["RPOPLPUSH", "@A", "@B"], check: [["LRANGE", "@A", "0", "-1"]] },
  { setup: [], cmd: ["MSETNX", "@A", "1", "@B", "2"], check: [["GET", "@A"], ["GET", "@B"]] },
  { setup: [["SET", "@A", "ab"], ["SET", "@B", "cd"]], cmd: ["BITOP", "AND", "@D", "@A", "@B"], check: [["GET", "@D"]] },
  { setup: [["SADD", "@A", "1", "2"], ["SADD", "@B", "2", "3"]], cmd: ["SINTERSTORE", "@D", "@A", "@B"], check: [["SMEMBERS", "@D"]] },
  { setup: [["SADD", "@A", "1", "2"], ["SADD", "@B", "2", "3"]], cmd: ["SUNIONSTORE", "@D", "@A", "@B"], check: [["SCARD", "@D"]] },
  { setup: [["SADD", "@A", "1", "2"], ["SADD", "@B", "2", "3"]], cmd: ["SDIFFSTORE", "@D", "@A", "@B"], check: [["SMEMBERS", "@D"]] },
  { setup: [["SADD", "@A", "1", "2"], ["SADD", "@B", "2", "3"]], cmd: ["SINTER", "@A", "@B"] },
  { setup: [["SADD", "@A", "1"], ["SADD", "@B", "2"]], cmd: ["SUNION", "@A", "@B", "@C"] },
  { setup: [["SADD", "@A", "1", "2"], ["SADD", "@B", "2"]], cmd: ["SDIFF", "@A", "@B"] },
  { setup: [["SADD", "@A", "1", "2"], ["SADD", "@B", "2"]], cmd: ["SINTERCARD", "2", "@A", "@B"] },
  { setup: [["ZADD", "@A", "1", "a"], ["ZADD", "@B", "2", "a", "3", "b"]], cmd: ["ZUNIONSTORE", "@D", "2", "@A", "@B"], check: [["ZRANGE", "@D", "0", "-1", "WITHSCORES"]] },
  { setup: [["ZADD", "@A", "1", "a"], ["ZADD", "@B", "2", "a"]], cmd: ["ZINTERSTORE", "@D", "2", "@A", "@B"], check: [["ZRANGE", "@D", "0", "-1", "WITHSCORES"]] },
  { setup: [["ZADD", "@A", "1", "a", "2", "b"], ["ZADD", "@B", "2", "a"]], cmd: ["ZDIFFSTORE", "@D", "2", "@A", "@B"], check: [["ZRANGE", "@D", "0", "-1"]] },
  { setup: [["ZADD", "@A", "1", "a"], ["ZADD", "@B", "2", "b"]], cmd: ["ZUNION", "2", "@A", "@B", "WITHSCORES"] },
  { setup: [["ZADD", "@A", "1", "a"], ["ZADD", "@B", "2", "a"]], cmd: ["ZINTER", "2", "@A", "@B"] },
  { setup: [["ZADD", "@A", "1", "a", "2", "b"], ["ZADD", "@B", "2", "a"]], cmd: ["ZDIFF", "2", "@A", "@B"] },
  { setup: [["ZADD", "@A", "1", "a"], ["ZADD", "@B", "2", "a"]], cmd: ["ZINTERCARD", "2", "@A", "@B"] },
  { setup: [["RPUSH", "@B", "x"]], cmd: ["LMPOP", "2", "@A", "@B", "LEFT"] },
  { setup: [["ZADD", "@B", "1", "b"]], cmd: ["ZMPOP", "2", "@A", "@B", "MIN"] },
  { setup: [["GEOADD", "@A", "13.361389", "38.115556", "p"]], cmd: ["GEORADIUS", "@A", "15", "37", "200", "km", "STORE", "@D"], check: [["ZCARD", "@D"]] },
  { setup: [["GEOADD", "@A", "13.361389", "38.115556", "p"]], cmd: ["GEORADIUSBYMEMBER", "@A", "p", "100", "km", "STOREDIST", "@D"], check: [["ZCARD", "@D"]] },
  { setup: [["GEOADD", "@A", "13.361389", "38.115556", "p"]], cmd: ["GEOSEARCHSTORE", "@D", "@A", "FROMMEMBER", "p", "BYRADIUS", "100", "km"], check: [["ZCARD", "@D"]] },
  { setup: [["RPUSH", "@A", "3", "1", "2"]], cmd: ["SORT", "@A", "LIMIT", "0", "2", "STORE", "@D"], check: [["LRANGE", "@D", "0", "-1"]] },
  { setup: [["SET", "@A", "1"]], cmd: ["EVAL", "return redis.call('SET', KEYS[2], redis.call('GET', KEYS[1]))", "2", "@A", "@B"], check: [["GET", "@B"]] },
  { setup: [["PFADD", "@A", "a"], ["PFADD", "@B", "b"]], cmd: ["PFCOUNT", "@A", "@B"] },
  { setup: [["PFADD", "@A", "a"], ["PFADD", "@B", "b"]], cmd: ["PFMERGE", "@D", "@A", "@B"], check: [["PFCOUNT", "@D"]] },
  { setup: [["SET", "@A", "ohmytext"], ["SET", "@B", "mynewtext"]], cmd: ["LCS", "@A", "@B"] },
  { setup: [["SET", "@A", "1"]], cmd: ["COPY", "@A", "@B"], check: [["GET", "@B"]] },
  { setup: [["ZADD", "@A", "1", "a"]], cmd: ["ZRANGESTORE", "@D", "@A", "0", "-1"], check: [["ZRANGE", "@D", "0", "-1"]] },
];

/** The case's commands with its placeholders replaced by `keys`. */
function bind(cmds: string[][], keys: Record<string, string>): string[][] {
  return cmds.map((cmd) => cmd.map((arg) => keys[arg] ?? arg));
}

describe("commands naming several keys, through a proxy of three redis-servers (hash_tag {})", () => {
  const backends: ServerProcess[] = [];
  let plain: ServerProcess;
  let tp: TestProxy;
  let viaProxy: RespClient;
  let direct: RespClient;
  /** @A @B @C @D on servers 0, 1, 2 and 1: every case has two of its keys apart. */
  const apart: Record<string, string> = {};

  before(async () => {
    const started = await Promise.all([0, 1, 2, 3].map(() => startRedis()));
    plain = started.pop()!;
    backends.push(...started);
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), '  hash_tag: "{}"\n'));
    const pool = tp.proxy.pools[0];
    [apart["@A"], apart["@D"]] = [keysOn(pool, 0, "x")[0], keysOn(pool, 1, "d")[0]];
    [apart["@B"], apart["@C"]] = [keysOn(pool, 1, "x")[0], keysOn(pool, 2, "x")[0]];
    [viaProxy, direct] = await Promise.all([RespClient.connect(tp.port()), RespClient.connect(plain.port)]);
  });
  after(async () => {
    viaProxy?.close();
    direct?.close();
    await tp?.close();
    await Promise.all([...backends, plain].filter(Boolean).map((s) => s.stop()));
  });

  it("answers -CROSSSLOT to each when its keys live on different servers, changes nothing, and keeps the connection", async () => {
    const pool = tp.proxy.pools[0];
    assert.deepEqual(["@A", "@B", "@C", "@D"].map((k) => ownerOf(pool, apart[k])), [0, 1, 2, 1]);
    for (const c of CASES) {
      await viaProxy.pipeline(bind([["DEL", "@A", "@B", "@C", "@D"], ...c.setup], apart));
      const before = await viaProxy.pipeline(bind(c.check ?? [], apart));
      const [reply, pong] = await viaProxy.pipeline(bind([c.cmd, ["PING"]], apart));
      assert.equal(show(reply.raw), CROSSSLOT, c.cmd.join(" "));
      assert.equal(show(pong.raw), "+PONG\\r\\n", `${c.cmd[0]}: the connection stays usable`);
      const afterwards = await viaProxy.pipeline(bind(c.check ?? [], apart));
      assert.deepEqual(afterwards.map((r) => show(r.raw)), before.map((r) => show(r.raw)), `${c.cmd[0]} changed nothing`);
    }
    // No server saw any of them (PFCOUNT aside: the PFMERGE case reads with it).
    const names = CASES.map((c) => c.cmd[0].toLowerCase()).filter((name) => name !== "pfcount");
    for (const backend of backends) {
      const stats = await redisCli(backend.port, "INFO", "commandstats");
      assert.deepEqual(names.filter((name) => stats.includes(`cmdstat_${name}:`)), [], `server ${backend.port} ran none`);
    }
  });

  it("forwards each when its keys share a hash tag, with the same replies as a plain redis-server", async () => {
    const tagged = { "@A": "{t}a", "@B": "{t}b", "@C": "{t}c", "@D": "{t}d" };
    for (const c of CASES) {
      const cmds = bind([["DEL", "@A", "@B", "@C", "@D"], ...c.setup, c.cmd, ...(c.check ?? [])], tagged);
      const [got, want] = await Promise.all([viaProxy.pipeline(cmds), direct.pipeline(cmds)]);
      assert.deepEqual(got.map((r) => show(r.raw)), want.map((r) => show(r.raw)), c.cmd.join(" "));
    }
  });

  it("leaves the split commands (MGET, MSET, DEL, EXISTS...) split across servers, not refused", async () => {
    const keys = [apart["@A"], apart["@B"], apart["@C"]];
    const replies = await viaProxy.pipeline([["MSET", keys[0], "1", keys[1], "2", keys[2], "3"], ["MGET", ...keys], ["EXISTS", ...keys], ["DEL", ...keys]]);
    assert.deepEqual(replies.map((r) => show(r.raw)), ["+OK\\r\\n", "*3\\r\\n$1\\r\\n1\\r\\n$1\\r\\n2\\r\\n$1\\r\\n3\\r\\n", ":3\\r\\n", ":3\\r\\n"]);
  });

  it("RENAME across servers: -CROSSSLOT through raw RESP, redis-cli and ioredis; on one server it renames", async () => {
    const [a, b] = [apart["@A"], apart["@B"]];
    await viaProxy.call(["SET", a, "v"]);
    const raw = await viaProxy.pipeline([["RENAME", a, b], ["GET", a]]);
    assert.deepEqual(raw.map((r) => show(r.raw)), [CROSSSLOT, "$1\\r\\nv\\r\\n"]);
    assert.equal(await redisCli(tp.port(), "RENAME", a, b), "CROSSSLOT Keys in request don't hash to the same slot\n\n");
    const io = new Redis({ host: "127.0.0.1", port: tp.port(), enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await io.connect();
      await assert.rejects(io.rename(a, b), /CROSSSLOT Keys in request/);
      assert.equal(await io.get(a), "v", "the key was not moved and the connection stays");
      const [sameA, sameB] = keysOn(tp.proxy.pools[0], 2, "same", 2);
      await io.set(sameA, "w");
      assert.equal(await io.rename(sameA, sameB), "OK");
      assert.deepEqual([await io.get(sameA), await io.get(sameB)], [null, "w"]);
      assert.equal(await redisCli(tp.port(), "RENAME", sameB, sameA), "OK\n");
      assert.equal(await io.get(sameA), "w");
    } finally {
      io.disconnect();
    }
  });
});

describe("an EVAL that names keys on two servers, inline", () => {
  const backends: ServerProcess[] = [];
  let tp: TestProxy;

  before(async () => {
    backends.push(...await Promise.all([0, 1, 2].map(() => startRedis())));
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port)));
  });
  after(async () => {
    await tp?.close();
    await Promise.all(backends.map((s) => s.stop()));
  });

  it("gets -CROSSSLOT, also as an inline command, and EVAL with keys on one server runs", async () => {
    const pool = tp.proxy.pools[0];
    const [a, b] = [keysOn(pool, 0, "e")[0], keysOn(pool, 2, "e")[0]];
    const client = await RespClient.connect(tp.port());
    try {
      const inline = new TextEncoder().encode(`EVAL "return 1" 2 ${a} ${b}\r\nPING\r\n`);
      const replies = await client.send(inline, 2);
      assert.deepEqual(replies.map((r) => show(r.raw)), [CROSSSLOT, "+PONG\\r\\n"]);
      const [c, d] = keysOn(pool, 1, "same", 2);
      const args: Arg[] = ["EVAL", "return #KEYS", "2", c, d];
      assert.equal(show(await client.callRaw(args)), ":2\\r\\n");
    } finally {
      client.close();
    }
  });
});
