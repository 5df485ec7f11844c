/**
 * A real JS client library, ioredis, talks to the proxy (four redis-servers behind it)
 * and gets the same results as from one plain redis-server: commands, Buffer values,
 * pipelines, multi-key commands across servers and scripts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

/**
 * RESP2, no INFO ready check and no CLIENT SETINFO, as for twemproxy, which refuses HELLO,
 * INFO and CLIENT (the proxy answers INFO and CLIENT: tests/redis-info.test.ts connects with
 * ioredis' defaults). No reconnects, so a failure shows at once.
 */
function client(port: number): Redis {
  return new Redis({
    host: "127.0.0.1",
    port,
    protocol: 2,
    enableReadyCheck: false,
    disableClientInfo: true,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 5000,
    commandTimeout: 20000,
  });
}

describe("ioredis through the proxy gets what it gets from a plain redis-server", () => {
  const backends: ServerProcess[] = [];
  let plain: ServerProcess;
  let tp: TestProxy;
  let viaProxy: Redis;
  let direct: Redis;

  before(async () => {
    const started = await Promise.all([0, 1, 2, 3, 4].map(() => startRedis()));
    plain = started.pop()!;
    backends.push(...started);
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port)));
    viaProxy = client(tp.port());
    direct = client(plain.port);
    await Promise.all([viaProxy.connect(), direct.connect()]);
  });

  after(async () => {
    viaProxy?.disconnect();
    direct?.disconnect();
    await tp?.close();
    await Promise.all([...backends, plain].filter(Boolean).map((s) => s.stop()));
  });

  /** Runs the same operations on both clients and compares the results. */
  async function same<T>(name: string, op: (r: Redis) => Promise<T>): Promise<T> {
    const got = await op(viaProxy);
    const want = await op(direct);
    assert.deepEqual(got, want, name);
    return got;
  }

  it("strings, hashes, lists, sets and sorted sets give the same results", async () => {
    await same("strings", async (r) => [await r.set("io:s", "v"), await r.get("io:s"), await r.incrby("io:n", 5), await r.append("io:s", "w")]);
    await same("hashes", async (r) => [await r.hset("io:h", { a: "1", b: "2" }), await r.hgetall("io:h"), await r.hincrby("io:h", "a", 2)]);
    await same("lists", async (r) => [await r.rpush("io:l", "a", "b", "c"), await r.lrange("io:l", 0, -1), await r.lpos("io:l", "b")]);
    await same("sets", async (r) => [await r.sadd("io:t", "x", "y"), (await r.smembers("io:t")).sort(), await r.sismember("io:t", "x")]);
    await same("zsets", async (r) => [await r.zadd("io:z", 1, "a", 2, "b"), await r.zrange("io:z", "0", "-1", "WITHSCORES")]);
  });

  it("binary Buffer values round-trip through getBuffer", async () => {
    const value = new Uint8Array(1024).map((_, i) => (i * 7) & 0xff);
    const key = new Uint8Array([0, 255, 13, 10, 42]);
    const got = await same("binary", async (r) => {
      await r.set(Buffer.from(key), Buffer.from(value));
      return new Uint8Array(await r.getBuffer(Buffer.from(key)) ?? []);
    });
    assert.deepEqual(got, value);
  });

  it("a 1,000-command ioredis pipeline returns the same results in order", async () => {
    const results = await same("pipeline", async (r) => {
      const p = r.pipeline();
      for (let i = 0; i < 1000; i++) {
        if (i % 2 === 0) p.set(`io:p:${i % 97}`, String(i));
        else p.get(`io:p:${(i * 13) % 97}`);
      }
      return await p.exec();
    });
    assert.equal(results?.length, 1000);
  });

  it("MGET, MSET, DEL and EXISTS across servers give the same results", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `io:m:${i}`);
    await same("mset", (r) => r.mset(Object.fromEntries(keys.map((k, i) => [k, `val${i}`]))));
    const values = await same("mget", (r) => r.mget(...keys, "io:m:none", keys[3]));
    assert.equal(values[3], "val3");
    await same("exists", (r) => r.exists(...keys.slice(0, 10), keys[0], "io:m:none"));
    await same("del", (r) => r.del(...keys.slice(0, 20), "io:m:none"));
    await same("mget after del", (r) => r.mget(...keys));
  });

  it("EVAL with a key gives the same result", async () => {
    await same("eval", (r) => r.eval("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])", 1, "io:e", "42"));
  });

  it("an error reply rejects only its own command", async () => {
    await viaProxy.set("io:str", "text");
    await assert.rejects(viaProxy.incr("io:str"), /ERR value is not an integer/);
    assert.equal(await viaProxy.get("io:str"), "text");
  });
});
