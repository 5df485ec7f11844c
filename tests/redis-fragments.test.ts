/**
 * Multi-key commands split across four servers (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH)
 * reply exactly as one plain redis-server does, including missing and duplicate keys;
 * each server gets one fragment; a single-key MGET is forwarded whole.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, type RawReply, RespClient, sameBytes, show } from "./helpers/resp.ts";

const range = (n: number, f: (i: number) => string): string[] => Array.from({ length: n }, (_, i) => f(i));

/**
 * md5 rather than the default fnv1a_64: twemproxy's fnv1a_64 keeps only the low 32 bits,
 * which mix poorly, so short keys that differ in one digit cluster on a few servers.
 * md5 spreads them, so the commands here really touch all four servers.
 */
const MD5 = "  hash: md5\n";

describe("multi-key commands across four servers match a plain redis-server", () => {
  const backends: ServerProcess[] = [];
  let plain: ServerProcess;
  let tp: TestProxy;
  let viaProxy: RespClient;
  let direct: RespClient;

  before(async () => {
    const started = await Promise.all([0, 1, 2, 3, 4].map(() => startRedis()));
    plain = started.pop()!;
    backends.push(...started);
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), MD5));
    [viaProxy, direct] = await Promise.all([RespClient.connect(tp.port()), RespClient.connect(plain.port)]);
  });

  after(async () => {
    viaProxy?.close();
    direct?.close();
    await tp?.close();
    await Promise.all([...backends, plain].filter(Boolean).map((s) => s.stop()));
  });

  /** Sends each command to both, in order, and asserts byte-equal replies. */
  async function same(cmds: Arg[][]): Promise<RawReply[]> {
    const [got, want] = await Promise.all([viaProxy.pipeline(cmds), direct.pipeline(cmds)]);
    cmds.forEach((cmd, i) => {
      assert.equal(show(got[i].raw, Infinity), show(want[i].raw, Infinity), `reply ${i} to ${String(cmd[0])} (${cmd.length - 1} args)`);
    });
    return got;
  }

  /** For each key: the indexes of the backends where it exists. */
  async function placement(keys: readonly Arg[]): Promise<number[][]> {
    const found: number[][] = keys.map(() => []);
    for (let b = 0; b < backends.length; b++) {
      const client = await RespClient.connect(backends[b].port);
      const replies = await client.pipeline(keys.map((k) => ["EXISTS", k])).finally(() => client.close());
      replies.forEach(({ reply }, k) => {
        if (reply.type === "int" && reply.value === 1) found[k].push(b);
      });
    }
    return found;
  }

  /** Runs fn and returns how the pool's fragments and each server's requests moved. */
  async function counted(fn: () => Promise<unknown>): Promise<{ fragments: number; requests: number[] }> {
    const pool = tp.proxy.pools[0];
    const fragments = pool.stats.fragments;
    const requests = pool.servers.map((s) => s.stats.requests);
    await fn();
    return {
      fragments: pool.stats.fragments - fragments,
      requests: pool.servers.map((s, i) => s.stats.requests - requests[i]),
    };
  }

  it("MSET over 60 keys stores each key once, on one backend, and every backend gets one fragment", async () => {
    const keys = range(60, (i) => `fm:${i}`);
    const moved = await counted(() => same([["MSET", ...keys.flatMap((k, i) => [k, `value-${i}`])]]));
    const where = await placement(keys);
    assert.deepEqual(where.filter((w) => w.length !== 1), [], "every key on exactly one backend");
    const owners = new Set(where.map((w) => w[0]));
    assert.equal(owners.size, 4, "the keys spread over all four backends");
    assert.equal(moved.fragments, 4, "one fragment per server");
    assert.deepEqual(moved.requests, [1, 1, 1, 1], "one request per server");
    await same([["GET", keys[0]], ["GET", keys[59]]]);
  });

  it("MGET with missing and duplicate keys returns values in key order as a plain redis does", async () => {
    const keys = range(30, (i) => `fg:${i}`);
    await same([["MSET", ...keys.flatMap((k, i) => [k, `g${i}`])]]);
    await same([
      ["MGET", "fg:3", "fg:none", "fg:3", "fg:10", "fg:29", "fg:none2", "fg:0", "fg:3"],
      ["MGET", ...keys],
      ["MGET", ...keys.slice().reverse(), ...keys],
      ["MGET", "fg:none", "fg:none2", "fg:none3"],
    ]);
  });

  it("MGET of 1,000 keys, half of them missing, matches a plain redis", async () => {
    const keys = range(1000, (i) => `fb:${i}`);
    await same([["MSET", ...keys.filter((_, i) => i % 2 === 0).flatMap((k) => [k, `val:${k}`])]]);
    const [reply] = await same([["MGET", ...keys]]);
    assert.ok(reply.reply.type === "array" && reply.reply.items?.length === 1000);
  });

  it("DEL and UNLINK count deleted keys across servers as a plain redis does, duplicates included", async () => {
    const keys = range(24, (i) => `fd:${i}`);
    await same([
      ["MSET", ...keys.flatMap((k) => [k, "x"])],
      ["DEL", "fd:0", "fd:1", "fd:1", "fd:none", "fd:5", "fd:9"],
      ["DEL", "fd:0", "fd:1"],
      ["UNLINK", "fd:2", "fd:3", "fd:3", "fd:none", "fd:10", "fd:11", "fd:12"],
      ["MGET", ...keys],
      ["DEL", ...keys],
      ["UNLINK", ...keys],
    ]);
  });

  it("EXISTS and TOUCH count every key, duplicates each time, as a plain redis does", async () => {
    const keys = range(16, (i) => `fe:${i}`);
    await same([
      ["MSET", ...keys.flatMap((k) => [k, "y"])],
      ["EXISTS", "fe:0", "fe:0", "fe:1", "fe:none", "fe:7", "fe:7", "fe:7"],
      ["EXISTS", ...keys, ...keys],
      ["TOUCH", "fe:2", "fe:2", "fe:none", "fe:15", "fe:9"],
      ["TOUCH", ...keys],
      ["EXISTS", "fe:none", "fe:none2"],
    ]);
  });

  it("a single-key MGET is forwarded whole, not fragmented", async () => {
    await same([["SET", "fs:1", "one"]]);
    const moved = await counted(() => same([["MGET", "fs:1"], ["MGET", "fs:none"]]));
    assert.equal(moved.fragments, 0, "no fragments");
    assert.equal(moved.requests.reduce((a, b) => a + b, 0), 2, `two requests in all: ${JSON.stringify(moved.requests)}`);
  });

  it("a multi-key MGET sends one fragment to each server that owns one of its keys", async () => {
    const keys = range(6, (i) => `fo:${i}`);
    await same([["MSET", ...keys.flatMap((k) => [k, k])]]);
    const owners = (await placement(keys)).map((w) => w[0]);
    const expected = backends.map((_, b) => owners.includes(b) ? 1 : 0);
    const moved = await counted(() => same([["MGET", ...keys]]));
    assert.equal(moved.fragments, new Set(owners).size, "fragments = servers owning a key");
    assert.deepEqual(moved.requests, expected, "one request to each owner, none to the others");
  });

  it("binary keys and values survive MSET and MGET across servers", async () => {
    const keys = Array.from({ length: 12 }, (_, i) => new Uint8Array([i, 0, 13, 10, 255 - i, 36, 42]));
    const values = keys.map((k, i) => new Uint8Array(300 + i).map((_, j) => (j * (i + 3)) & 0xff));
    await same([["MSET", ...keys.flatMap((k, i) => [k, values[i]])]]);
    const [reply] = await same([["MGET", ...keys]]);
    const items = reply.reply.type === "array" ? reply.reply.items ?? [] : [];
    assert.ok(items.every((item, i) => item.type === "bulk" && sameBytes(item.value, values[i])), "each value comes back intact");
    assert.ok(new Set((await placement(keys)).map((w) => w[0])).size > 1, "the binary keys span several servers");
  });

  it("MSET with an odd number of arguments gets the arity error and the connection stays usable", async () => {
    const moved = await counted(() => same([["MSET", "fx:a", "1", "fx:b"], ["MSET", "fx:a"], ["GET", "fx:a"], ["PING"]]));
    assert.equal(moved.requests.reduce((a, b) => a + b, 0), 1, "only the GET reached a server");
    assert.deepEqual(await viaProxy.call(["EXISTS", "fx:a", "fx:b"]), { type: "int", value: 0 });
  });
});
