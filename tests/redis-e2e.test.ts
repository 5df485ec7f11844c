/**
 * End-to-end Redis commands through the proxy (a pool of four real redis-servers),
 * compared reply for reply, byte for byte, with the same commands sent to one plain
 * redis-server: every data type, expiry, scripts, binary-safe keys and values, a 16 MB
 * value, inline commands, the commands the proxy answers or refuses, and bad input.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { rawExchange, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, concat, type RawReply, RespClient, sameBytes, show } from "./helpers/resp.ts";

const encoder = new TextEncoder();

/** Sorts the members of an array reply (for replies whose order Redis leaves undefined). */
function unordered(r: RawReply): string {
  const items = r.reply.type === "array" && r.reply.items !== null ? r.reply.items : null;
  if (items === null) return show(r.raw, Infinity);
  return JSON.stringify(items.map((i) => i.type === "bulk" && i.value !== null ? show(i.value) : JSON.stringify(i)).sort());
}

describe("redis commands through the proxy match a plain redis-server", () => {
  const backends: ServerProcess[] = [];
  let plain: ServerProcess;
  let tp: TestProxy;
  let viaProxy: RespClient;
  let direct: RespClient;

  before(async () => {
    const started = await Promise.all([0, 1, 2, 3, 4].map(() => startRedis()));
    plain = started.pop()!;
    backends.push(...started);
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port)));
    [viaProxy, direct] = await Promise.all([RespClient.connect(tp.port()), RespClient.connect(plain.port)]);
  });

  after(async () => {
    viaProxy?.close();
    direct?.close();
    await tp?.close();
    await Promise.all([...backends, plain].filter(Boolean).map((s) => s.stop()));
  });

  /** Runs the commands as one pipeline on both and asserts equal replies; `loose` names commands compared as sets. */
  async function same(cmds: Arg[][], loose: readonly string[] = []): Promise<RawReply[]> {
    const [got, want] = await Promise.all([viaProxy.pipeline(cmds), direct.pipeline(cmds)]);
    cmds.forEach((cmd, i) => {
      const name = String(cmd[0]).toUpperCase();
      const view = loose.includes(name) ? unordered : (r: RawReply) => show(r.raw, Infinity);
      assert.equal(view(got[i]), view(want[i]), `reply ${i} to ${name} ${String(cmd[1] ?? "")}`);
    });
    return got;
  }

  /** The indexes of the backends whose GET of key returns exactly value. */
  async function holdersOf(key: Arg, value: Uint8Array): Promise<number[]> {
    const found: number[] = [];
    for (let b = 0; b < backends.length; b++) {
      const client = await RespClient.connect(backends[b].port);
      const reply = await client.call(["GET", key]).finally(() => client.close());
      if (reply.type === "bulk" && sameBytes(reply.value, value)) found.push(b);
    }
    return found;
  }

  it("string commands reply as a plain redis does", async () => {
    await same([
      ["SET", "s:1", "hello"], ["GET", "s:1"], ["APPEND", "s:1", " world"], ["STRLEN", "s:1"],
      ["GETRANGE", "s:1", "0", "4"], ["SETRANGE", "s:1", "6", "WORLD"], ["GET", "s:1"], ["SETNX", "s:1", "x"],
      ["SETNX", "s:2", "x"], ["GETSET", "s:2", "y"], ["SET", "s:2", "z", "XX", "GET"], ["SET", "s:3", "n", "XX"],
      ["INCR", "s:n"], ["INCRBY", "s:n", "41"], ["DECR", "s:n"], ["DECRBY", "s:n", "10"], ["INCRBYFLOAT", "s:f", "2.5"],
      ["INCR", "s:1"], ["GET", "s:missing"], ["SETBIT", "s:b", "7", "1"], ["GETBIT", "s:b", "7"], ["BITCOUNT", "s:b"],
      ["TYPE", "s:1"], ["PSETEX", "s:p", "100000", "v"], ["GET", "s:p"],
    ]);
  });

  it("hash commands reply as a plain redis does", async () => {
    await same([
      ["HSET", "h:1", "f1", "v1", "f2", "v2"], ["HGET", "h:1", "f1"], ["HGETALL", "h:1"], ["HMGET", "h:1", "f1", "nope", "f2"],
      ["HINCRBY", "h:1", "n", "5"], ["HINCRBYFLOAT", "h:1", "x", "1.5"], ["HDEL", "h:1", "f2", "nope"], ["HLEN", "h:1"],
      ["HEXISTS", "h:1", "f1"], ["HKEYS", "h:1"], ["HVALS", "h:1"], ["HSTRLEN", "h:1", "f1"], ["HSETNX", "h:1", "f1", "z"],
      ["HMSET", "h:2", "a", "1"], ["HGETALL", "h:missing"], ["GET", "h:1"],
    ]);
  });

  it("list commands reply as a plain redis does", async () => {
    await same([
      ["RPUSH", "l:1", "a", "b", "c", "b"], ["LPUSH", "l:1", "z"], ["LRANGE", "l:1", "0", "-1"], ["LLEN", "l:1"],
      ["LINDEX", "l:1", "2"], ["LSET", "l:1", "0", "y"], ["LINSERT", "l:1", "BEFORE", "c", "q"], ["LREM", "l:1", "1", "b"],
      ["LPOP", "l:1"], ["RPOP", "l:1", "2"], ["LRANGE", "l:1", "0", "-1"], ["LTRIM", "l:1", "0", "0"], ["LRANGE", "l:1", "0", "-1"],
      ["RPUSHX", "l:none", "a"], ["LPOP", "l:none"],
    ]);
  });

  it("set commands reply as a plain redis does (members compared as sets)", async () => {
    await same([
      ["SADD", "t:1", "a", "b", "c", "a"], ["SCARD", "t:1"], ["SISMEMBER", "t:1", "b"], ["SMISMEMBER", "t:1", "a", "x"],
      ["SMEMBERS", "t:1"], ["SREM", "t:1", "a", "x"], ["SMEMBERS", "t:1"], ["SADD", "t:i", "3", "1", "2"], ["SMEMBERS", "t:i"],
    ], ["SMEMBERS"]);
  });

  it("sorted set commands reply as a plain redis does", async () => {
    await same([
      ["ZADD", "z:1", "1", "a", "2", "b", "3", "c"], ["ZRANGE", "z:1", "0", "-1", "WITHSCORES"], ["ZSCORE", "z:1", "b"],
      ["ZINCRBY", "z:1", "5", "a"], ["ZRANK", "z:1", "a"], ["ZREVRANGE", "z:1", "0", "1"], ["ZCOUNT", "z:1", "2", "10"],
      ["ZRANGEBYSCORE", "z:1", "-inf", "+inf", "LIMIT", "0", "2"], ["ZREM", "z:1", "c"], ["ZCARD", "z:1"],
      ["ZPOPMIN", "z:1"], ["ZMSCORE", "z:1", "a", "nope"], ["ZADD", "z:1", "XX", "CH", "9", "a"], ["ZRANGE", "z:1", "0", "-1"],
    ]);
  });

  it("EXPIRE, TTL, PTTL and PERSIST report expiry as a plain redis does", async () => {
    const cmds: Arg[][] = [["SET", "e:1", "v"], ["EXPIRE", "e:1", "1000"], ["TTL", "e:1"], ["PTTL", "e:1"],
      ["PERSIST", "e:1"], ["TTL", "e:1"], ["TTL", "e:missing"], ["SET", "e:2", "v", "EX", "1"], ["PEXPIRE", "e:2", "500000"]];
    const [got, want] = await Promise.all([viaProxy.pipeline(cmds), direct.pipeline(cmds)]);
    const ints = (rs: RawReply[]) => rs.map((r) => r.reply.type === "int" ? r.reply.value : show(r.raw));
    const [g, w] = [ints(got), ints(want)];
    assert.ok(typeof g[2] === "number" && g[2] >= 999 && g[2] <= 1000, `TTL after EXPIRE 1000 is ${g[2]}`);
    assert.ok(typeof g[3] === "number" && g[3] > 990_000 && g[3] <= 1_000_000, `PTTL is ${g[3]}`);
    for (const i of [0, 1, 4, 5, 6, 7, 8]) assert.equal(g[i], w[i], `reply ${i}`);
  });

  it("GETDEL, GETEX, LPOS and LMOVE (Redis 6.2 commands) reply as a plain redis does", async () => {
    await same([
      ["SET", "n:1", "v1"], ["GETDEL", "n:1"], ["GETDEL", "n:1"], ["EXISTS", "n:1"],
      ["SET", "n:2", "v2"], ["GETEX", "n:2", "PERSIST"], ["GETEX", "n:2", "EX", "3600"], ["GETEX", "n:missing"],
      ["RPUSH", "n:l", "a", "b", "c", "b", "d"], ["LPOS", "n:l", "b"], ["LPOS", "n:l", "b", "RANK", "2"],
      ["LPOS", "n:l", "b", "COUNT", "0"], ["LPOS", "n:l", "x"],
      ["LMOVE", "n:l", "n:l", "LEFT", "RIGHT"], ["LRANGE", "n:l", "0", "-1"], ["LMOVE", "n:none", "n:none", "LEFT", "LEFT"],
    ]);
    const ttl = await viaProxy.call(["TTL", "n:2"]);
    assert.ok(ttl.type === "int" && ttl.value > 3500 && ttl.value <= 3600, `TTL after GETEX EX 3600 is ${JSON.stringify(ttl)}`);
  });

  it("EVAL is routed by its first key and replies as a plain redis does", async () => {
    const setScript = "return redis.call('SET', KEYS[1], ARGV[1])";
    const getScript = "return {redis.call('GET', KEYS[1]), ARGV[1], 42}";
    await same([
      ["EVAL", setScript, "1", "ev:1", "scripted"], ["GET", "ev:1"], ["EVAL", getScript, "1", "ev:1", "x"],
      ["EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", "ev:n", "7"],
    ]);
    assert.equal((await holdersOf("ev:1", encoder.encode("scripted"))).length, 1, "the key is on one backend");
  });

  it("EVAL with no keys cannot be routed and gets -ERR; the connection stays usable", async () => {
    const reply = await viaProxy.call(["EVAL", "return 1", "0"]);
    assert.equal(reply.type, "error");
    assert.match((reply as { text: string }).text, /^ERR /);
    assert.deepEqual(await viaProxy.call(["PING"]), { type: "status", text: "PONG" });
  });

  it("keys and values made of all 256 byte values, CR LF included, round-trip unchanged", async () => {
    const key = new Uint8Array(256).map((_, i) => i);
    const value = concat([key.slice().reverse(), encoder.encode("\r\n$3\r\n*1\r\n"), key, key]);
    const got = await same([["SET", key, value], ["GET", key], ["STRLEN", key], ["EXISTS", key]]);
    const reply = got[1].reply;
    assert.ok(reply.type === "bulk" && sameBytes(reply.value, value), "GET returns the very bytes");
    assert.equal((await holdersOf(key, value)).length, 1, "exactly one backend holds the key with these bytes");
  });

  it("a 16 MB value is stored and read back intact", async () => {
    const value = new Uint8Array(16 << 20);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31 + (i >>> 16)) & 0xff;
    assert.deepEqual(await viaProxy.call(["SET", "big:16m", value], 30000), { type: "status", text: "OK" });
    const reply = await viaProxy.call(["GET", "big:16m"], 30000);
    assert.ok(reply.type === "bulk" && reply.value !== null, "GET returns a bulk string");
    assert.equal(reply.value.length, value.length);
    assert.ok(sameBytes(reply.value, value), "the 16 MB value comes back byte for byte");
    assert.deepEqual(await viaProxy.call(["STRLEN", "big:16m"]), { type: "int", value: 16 << 20 });
  });

  it("inline commands get the same replies as from a plain redis", async () => {
    const input = encoder.encode("PING\r\nset inl:a b\r\nget inl:a\r\nPING hello\r\nEXISTS inl:a inl:b\r\n");
    const [got, want] = await Promise.all([viaProxy.send(input, 5), direct.send(input, 5)]);
    assert.deepEqual(got.map((r) => show(r.raw)), want.map((r) => show(r.raw)));
    assert.deepEqual(got.map((r) => show(r.raw)).slice(0, 3), ["+PONG\\r\\n", "+OK\\r\\n", "$1\\r\\nb\\r\\n"]);
  });

  it("PING and ECHO are answered as a plain redis answers them", async () => {
    await same([["PING"], ["PING", "hello there"], ["ECHO", "echo me"], ["ECHO", new Uint8Array([0, 13, 10, 255])], ["ping"]]);
  });

  it("SELECT 0 answers +OK, SELECT 1 is an error, and the connection stays usable", async () => {
    assert.deepEqual(await viaProxy.call(["SELECT", "0"]), { type: "status", text: "OK" });
    const reply = await viaProxy.call(["SELECT", "1"]);
    assert.equal(reply.type, "error", `SELECT 1 got ${JSON.stringify(reply)}`);
    assert.match((reply as { text: string }).text, /^ERR /);
    await same([["SET", "sel:k", "v"], ["GET", "sel:k"]]);
  });

  it("QUIT answers +OK and the proxy closes the connection", async () => {
    const client = await RespClient.connect(tp.port());
    try {
      assert.deepEqual(await client.call(["QUIT"]), { type: "status", text: "OK" });
      const closed = await Promise.race([client.whenClosed.then(() => true), sleep(3000).then(() => false)]);
      assert.ok(closed, "the connection is closed within 3 s of QUIT");
    } finally {
      client.close();
    }
  });

  it("an unknown command gets redis's own error and the connection stays usable", async () => {
    await same([["NOSUCHCMD", "a", "b"], ["nosuchcmd"], ["PING"], ["SET", "unk:k", "1"], ["GET", "unk:k"]]);
  });

  it("commands the proxy cannot serve get -ERR naming the command; the connection stays usable", async () => {
    await viaProxy.call(["SET", "keep:k", "still here"]);
    const refused: Arg[][] = [["SAVE"], ["MONITOR"], ["DEBUG", "sleep", "0"], ["CLUSTER", "info"], ["SLOWLOG", "get"], ["FLUSHALL"]];
    const replies = await viaProxy.pipeline([...refused, ["GET", "keep:k"]]);
    refused.forEach((cmd, i) => {
      const r = replies[i].reply;
      assert.equal(r.type, "error", `${cmd[0]} got ${show(replies[i].raw)}`);
      const text = (r as { text: string }).text;
      assert.match(text, /^ERR /, `${cmd[0]}: ${text}`);
      assert.ok(text.toLowerCase().includes(String(cmd[0]).toLowerCase()), `the error names ${cmd[0]}: ${text}`);
    });
    assert.equal(show(replies[refused.length].raw), "$10\\r\\nstill here\\r\\n", "FLUSHALL was not forwarded; GET still works");
  });

  it("a wrong number of arguments gets redis's arity error; the connection stays usable", async () => {
    await same([["GET"], ["SET", "ar:k"], ["HSET", "ar:h", "f"], ["GET", "a", "b"], ["MGET"], ["DEL"], ["PING"]]);
  });

  it("malformed protocol gets -ERR and the proxy keeps serving other clients", async () => {
    const bystander = await RespClient.connect(tp.port());
    try {
      assert.deepEqual(await bystander.call(["SET", "bys:k", "1"]), { type: "status", text: "OK" });
      const malformed = ["*2\r\n$x\r\n", "*1\r\n$600000000\r\n", "*2\r\n$3\r\nGET\r\n:1\r\n"];
      for (const [n, bad] of malformed.entries()) {
        const victim = await RespClient.connect(tp.port());
        try {
          const [{ reply, raw }] = await victim.send(encoder.encode(bad), 1, 5000);
          assert.equal(reply.type, "error", `${JSON.stringify(bad)} got ${show(raw)}`);
          assert.match((reply as { text: string }).text, /^ERR /, JSON.stringify(bad));
        } finally {
          victim.close();
        }
        assert.deepEqual(await bystander.call(["INCR", "bys:k"]), { type: "int", value: 2 + n }, "the other client is served");
      }
      const fresh = await RespClient.connect(tp.port());
      assert.deepEqual(await fresh.call(["GET", "bys:k"]).finally(() => fresh.close()), { type: "bulk", value: encoder.encode("4") });
    } finally {
      bystander.close();
    }
  });

  it("an unrecoverable protocol error gets redis's -ERR Protocol error, then the connection is closed", async () => {
    // A bad length leaves no way to find where the next request starts: what follows is not read.
    const unrecoverable = ["*1\r\n$x\r\n", "*2\r\n$x\r\n", "*1\r\n$600000000\r\n", "*2\r\n$3\r\nGET\r\n:1\r\n", "*x\r\n"];
    for (const bad of unrecoverable) {
      const input = `${bad}PING\r\n`;
      const [got, want] = await Promise.all([
        rawExchange(tp.port(), input, { timeoutMs: 3000 }),
        rawExchange(plain.port, input, { timeoutMs: 3000 }),
      ]);
      const text = show(got.data);
      assert.match(text, /^-ERR Protocol error: [^\\]*\\r\\n$/, `${JSON.stringify(bad)}: one error line and no PONG`);
      assert.equal(text, show(want.data), `${JSON.stringify(bad)}: the same reply as a plain redis`);
      assert.ok(got.closed, `${JSON.stringify(bad)}: the proxy closed the connection`);
    }
  });

  it("unbalanced quotes in an inline command get -ERR Protocol error and the connection stays usable", async () => {
    const client = await RespClient.connect(tp.port());
    try {
      const replies = await client.send(encoder.encode('get "a\r\nPING\r\n'), 2, 5000);
      assert.deepEqual(replies.map((r) => show(r.raw)), [
        "-ERR Protocol error: unbalanced quotes in request\\r\\n",
        "+PONG\\r\\n",
      ]);
      assert.deepEqual(await client.call(["SET", "quote:k", "v"]), { type: "status", text: "OK" });
      assert.deepEqual(await client.call(["GET", "quote:k"]), { type: "bulk", value: encoder.encode("v") });
      assert.equal(client.closed, false);
    } finally {
      client.close();
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
