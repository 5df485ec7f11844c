/**
 * Keyspace-wide commands through a proxy of three real redis-servers: SCAN walks every
 * server under one composite cursor (each of 10,000 keys exactly once, also while keys are
 * added, through raw RESP, redis-cli --scan and ioredis' scanStream), DBSIZE sums, KEYS
 * concatenates, RANDOMKEY draws from a non-empty server, SCRIPT LOAD/EXISTS/FLUSH reach every
 * server so EVALSHA works on any shard, and FLUSHDB/FLUSHALL run only with allow_flush.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { ConfError, loadConf } from "../core/conf/mod.ts";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Reply, RespClient, show } from "./helpers/resp.ts";
import { keysOn, ownerOf } from "./helpers/soak.ts";

const decoder = new TextDecoder();
const text = (r: Reply): string => decoder.decode((r as { value: Uint8Array }).value);
const items = (r: Reply): Reply[] => (r as { items: Reply[] }).items;
const SEEDED = 10_000;
const seeded = Array.from({ length: SEEDED }, (_, i) => `scan:${i}`);

/** One SCAN page: [next cursor, keys]. */
async function scanPage(client: RespClient, cursor: string, ...options: string[]): Promise<[string, string[]]> {
  const reply = await client.call(["SCAN", cursor, ...options]);
  assert.equal(reply.type, "array", `SCAN ${cursor} got ${JSON.stringify(reply)}`);
  const [next, keys] = items(reply);
  return [text(next), items(keys).map(text)];
}

/** A full SCAN; `between` runs after each page. Returns every key seen, with repeats. */
async function scanAll(client: RespClient, options: string[] = [], between?: (page: number) => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  let cursor = "0";
  for (let page = 0; page < 100_000; page++) {
    const [next, keys] = await scanPage(client, cursor, ...options);
    assert.match(next, /^\d+$/, "the cursor is an unsigned decimal");
    assert.ok(BigInt(next) < 1n << 64n, "the cursor fits 64 bits");
    seen.push(...keys);
    if (next === "0") return seen;
    cursor = next;
    await between?.(page);
  }
  throw new Error("SCAN did not end");
}

function counts(keys: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

async function seed(client: RespClient, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500).flatMap((k) => [k, "v"]);
    assert.deepEqual(await client.call(["MSET", ...batch]), { type: "status", text: "OK" });
  }
}

async function dbsizes(servers: readonly ServerProcess[]): Promise<number[]> {
  return await Promise.all(servers.map(async (s) => Number(await redisCli(s.port, "DBSIZE"))));
}

function ioredis(port: number): Redis {
  return new Redis({ host: "127.0.0.1", port, enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

describe("fan-out commands through a proxy of three redis-servers", () => {
  const servers: ServerProcess[] = [];
  let tp: TestProxy;
  let client: RespClient;

  before(async () => {
    servers.push(...await Promise.all([0, 1, 2].map(() => startRedis())));
    tp = await startTestProxy(redisPoolYaml(servers.map((s) => s.port)));
    client = await RespClient.connect(tp.port());
    await seed(client, seeded);
  });
  after(async () => {
    client?.close();
    await tp?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("SCAN returns each of 10,000 keys spread over three servers exactly once, under one cursor", async () => {
    const sizes = await dbsizes(servers);
    assert.ok(sizes.every((n) => n > 1000), `every server holds some: ${sizes}`);
    const seen = await scanAll(client, ["COUNT", "1000"]);
    const n = counts(seen);
    assert.equal(n.size, SEEDED);
    assert.deepEqual([...n.values()].filter((c) => c !== 1), [], "no key twice");
    for (const key of seeded) assert.ok(n.has(key), key);
  });

  it("SCAN while keys are added returns every key present throughout exactly once, and a new one at most once", async () => {
    const writer = await RespClient.connect(tp.port());
    const added: string[] = [];
    try {
      const seen = await scanAll(client, ["COUNT", "200"], async (page) => {
        const batch = Array.from({ length: 100 }, (_, i) => `added:${page}:${i}`);
        added.push(...batch);
        await seed(writer, batch);
      });
      const n = counts(seen);
      assert.deepEqual(seeded.filter((k) => n.get(k) !== 1), [], "each key present throughout, exactly once");
      assert.deepEqual(added.filter((k) => (n.get(k) ?? 0) > 1), [], "no added key twice");
      assert.ok(added.length > 1000, `keys were added meanwhile: ${added.length}`);
      assert.deepEqual([...n.keys()].filter((k) => !k.startsWith("scan:") && !k.startsWith("added:")), []);
    } finally {
      writer.close();
      await client.call(["DEL", ...added]);
    }
  });

  it("SCAN passes MATCH, COUNT and TYPE to the servers", async () => {
    const hashes = Array.from({ length: 30 }, (_, i) => `h:${i}`);
    for (const h of hashes) await client.call(["HSET", h, "f", "v"]);
    try {
      const byType = await scanAll(client, ["TYPE", "hash", "COUNT", "100"]);
      assert.deepEqual(byType.sort(), [...hashes].sort());
      const byPattern = await scanAll(client, ["MATCH", "scan:1*", "COUNT", "500"]);
      assert.deepEqual(byPattern.sort(), seeded.filter((k) => k.startsWith("scan:1")).sort());
      assert.equal(byPattern.length, 1111);
    } finally {
      await client.call(["DEL", ...hashes]);
    }
  });

  it("redis-cli --scan and ioredis' scanStream see every key once", async () => {
    const cli = (await redisCli(tp.port(), "--scan", "--pattern", "scan:*")).trim().split("\n");
    assert.equal(cli.length, SEEDED);
    assert.equal(new Set(cli).size, SEEDED);
    const io = ioredis(tp.port());
    try {
      await io.connect();
      const keys: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = io.scanStream({ match: "scan:*", count: 1000 });
        stream.on("data", (batch: string[]) => keys.push(...batch));
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      assert.equal(keys.length, SEEDED);
      assert.equal(new Set(keys).size, SEEDED);
    } finally {
      io.disconnect();
    }
  });

  it("a cursor that is not one gets -ERR invalid cursor, and the connection stays usable", async () => {
    const pastLastServer = String(3n << 48n);
    const bad = ["abc", "-1", "18446744073709551616", "1.5", pastLastServer];
    const replies = await client.pipeline([...bad.map((c) => ["SCAN", c]), ["PING"]]);
    assert.deepEqual(replies.map((r) => show(r.raw)), [...bad.map(() => "-ERR invalid cursor\\r\\n"), "+PONG\\r\\n"]);
    const [next] = await scanPage(client, String(2n << 48n), "COUNT", "10");
    assert.ok(next === "0" || BigInt(next) >> 48n === 2n, `the last server's cursor: ${next}`);
  });

  it("DBSIZE is the sum of every server's", async () => {
    const sizes = await dbsizes(servers);
    assert.deepEqual(await client.call(["DBSIZE"]), { type: "int", value: sizes[0] + sizes[1] + sizes[2] });
    assert.equal(sizes[0] + sizes[1] + sizes[2], SEEDED);
    assert.equal(await redisCli(tp.port(), "DBSIZE"), `${SEEDED}\n`);
  });

  it("KEYS is every server's KEYS, one after the other", async () => {
    const reply = await client.call(["KEYS", "scan:2*"]);
    const keys = items(reply).map(text);
    assert.deepEqual([...keys].sort(), seeded.filter((k) => k.startsWith("scan:2")).sort());
    const perServer = await Promise.all(servers.map(async (s) => (await redisCli(s.port, "KEYS", "scan:2*")).trim().split("\n").sort()));
    assert.deepEqual(keys.slice(0, perServer[0].length).sort(), perServer[0], "the first server's keys come first");
    assert.deepEqual(items(await client.call(["KEYS", "nothing:*"])), []);
  });

  it("RANDOMKEY returns an existing key, drawn from more than one server", async () => {
    const pool = tp.proxy.pools[0];
    const owners = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const key = text(await client.call(["RANDOMKEY"]));
      assert.ok(key.startsWith("scan:"), key);
      owners.add(ownerOf(pool, key));
    }
    assert.ok(owners.size >= 2, `keys from servers ${[...owners]}`);
  });

  it("SCRIPT LOAD reaches every server, so EVALSHA runs on a key of each; EXISTS is true only where all have it", async () => {
    const pool = tp.proxy.pools[0];
    const body = "return redis.call('INCR', KEYS[1])";
    const sha = text(await client.call(["SCRIPT", "LOAD", body]));
    assert.match(sha, /^[0-9a-f]{40}$/);
    for (let s = 0; s < 3; s++) {
      const [key] = keysOn(pool, s, "sha");
      assert.deepEqual(await client.call(["EVALSHA", sha, "1", key]), { type: "int", value: 1 }, `a key on server ${s}`);
      assert.equal(await redisCli(servers[s].port, "SCRIPT", "EXISTS", sha), "1\n");
    }
    const onlyOne = (await redisCli(servers[1].port, "SCRIPT", "LOAD", "return 7")).trim();
    const exists = await client.call(["SCRIPT", "EXISTS", sha, onlyOne, "0000000000000000000000000000000000000000"]);
    assert.deepEqual(items(exists), [{ type: "int", value: 1 }, { type: "int", value: 0 }, { type: "int", value: 0 }]);
    const io = ioredis(tp.port());
    try {
      await io.connect();
      const sha2 = await io.script("LOAD", "return KEYS[1]") as string;
      for (let s = 0; s < 3; s++) {
        const [key] = keysOn(pool, s, "io");
        assert.equal(await io.evalsha(sha2, 1, key), key);
      }
    } finally {
      io.disconnect();
    }
    assert.deepEqual(await client.call(["SCRIPT", "FLUSH"]), { type: "status", text: "OK" });
    assert.deepEqual(items(await client.call(["SCRIPT", "EXISTS", sha])), [{ type: "int", value: 0 }]);
    const [key] = keysOn(pool, 2, "sha");
    const gone = await client.call(["EVALSHA", sha, "1", key]);
    assert.equal(gone.type, "error");
    assert.match((gone as { text: string }).text, /^NOSCRIPT/);
  });

  it("other SCRIPT subcommands get -ERR, and the connection stays usable", async () => {
    const replies = await client.pipeline([["SCRIPT", "KILL"], ["SCRIPT", "HELP"], ["PING"]]);
    assert.match(show(replies[0].raw), /^-ERR only SCRIPT LOAD, SCRIPT EXISTS and SCRIPT FLUSH/);
    assert.match(show(replies[1].raw), /^-ERR only SCRIPT LOAD/);
    assert.equal(show(replies[2].raw), "+PONG\\r\\n");
  });

  it("FLUSHDB and FLUSHALL are refused without allow_flush: nothing is flushed and the connection stays", async () => {
    const before = await dbsizes(servers);
    const replies = await client.pipeline([["FLUSHDB"], ["FLUSHALL", "ASYNC"], ["DBSIZE"]]);
    assert.match(show(replies[0].raw), /^-ERR 'flushdb' would empty every server of the pool; it is refused unless the pool sets allow_flush: true/);
    assert.match(show(replies[1].raw), /^-ERR 'flushall' would empty/);
    assert.equal(show(replies[2].raw), `:${before[0] + before[1] + before[2]}\\r\\n`);
    assert.ok(before.every((n) => n > 1000));
    assert.deepEqual(await dbsizes(servers), before);
  });
});

describe("a pool with allow_flush: true", () => {
  const servers: ServerProcess[] = [];
  let tp: TestProxy;
  let client: RespClient;

  before(async () => {
    servers.push(...await Promise.all([0, 1, 2].map(() => startRedis())));
    tp = await startTestProxy(redisPoolYaml(servers.map((s) => s.port), "  allow_flush: true\n"));
    client = await RespClient.connect(tp.port());
  });
  after(async () => {
    client?.close();
    await tp?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("sends FLUSHDB and FLUSHALL to every server", async () => {
    const keys = [0, 1, 2].flatMap((s) => keysOn(tp.proxy.pools[0], s, "f", 50));
    await seed(client, keys);
    assert.deepEqual(await dbsizes(servers), [50, 50, 50]);
    assert.deepEqual(await client.call(["FLUSHDB"]), { type: "status", text: "OK" });
    assert.deepEqual(await dbsizes(servers), [0, 0, 0]);
    await seed(client, keys);
    assert.equal(await redisCli(tp.port(), "FLUSHALL", "SYNC"), "OK\n");
    assert.deepEqual(await dbsizes(servers), [0, 0, 0]);
  });

  it("RANDOMKEY answers nil when every server is empty, and the one key when only one server holds a key", async () => {
    assert.deepEqual(await client.call(["FLUSHALL"]), { type: "status", text: "OK" });
    assert.deepEqual(await client.call(["RANDOMKEY"]), { type: "bulk", value: null });
    const [key] = keysOn(tp.proxy.pools[0], 2, "only");
    await client.call(["SET", key, "1"]);
    for (let i = 0; i < 10; i++) assert.equal(text(await client.call(["RANDOMKEY"])), key);
  });

  it("SCAN of an empty pool ends at once; of one key on the last server, finds it", async () => {
    assert.deepEqual(await client.call(["FLUSHDB"]), { type: "status", text: "OK" });
    assert.deepEqual(await scanAll(client), []);
    const [key] = keysOn(tp.proxy.pools[0], 2, "last");
    await client.call(["SET", key, "1"]);
    assert.deepEqual(await scanAll(client), [key]);
  });
});

describe("allow_flush in nutcracker.yml", () => {
  const pool = (line: string, redis = true) =>
    `alpha:\n  listen: 127.0.0.1:22121\n  redis: ${redis}\n  servers:\n   - 127.0.0.1:6379:1\n${line}`;
  const rejects = (yml: string, message: string) => {
    assert.throws(() => loadConf(yml, "f.yml"), (err: unknown) => err instanceof ConfError && err.message === message);
  };

  it("is off unless set to true", () => {
    assert.equal(loadConf(pool(""), "f.yml").pools[0].allowFlush, false);
    assert.equal(loadConf(pool("  allow_flush: true\n"), "f.yml").pools[0].allowFlush, true);
    assert.equal(loadConf(pool("  allow_flush: false\n"), "f.yml").pools[0].allowFlush, false);
  });

  it("takes only true or false, and only in a redis pool", () => {
    for (const bad of ["yes", "1", "True"]) {
      rejects(pool(`  allow_flush: ${bad}\n`), `nutcracker: f.yml:6: pool 'alpha': "allow_flush" "${bad}" is not "true" or "false"`);
    }
    rejects(pool("  allow_flush: true\n", false), `nutcracker: f.yml:6: pool 'alpha': "allow_flush" is only valid for a redis pool`);
  });
});
