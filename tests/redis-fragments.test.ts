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

describe("a multi-key command whose part fails on one server", () => {
  // Three backends: `ok` always answers, `full` is made to refuse writes (-OOM), `dead` is stopped.
  const OK = 0, FULL = 1, DEAD = 2;
  const backends: ServerProcess[] = [];
  let tp: TestProxy;
  let client: RespClient;
  let full = false;

  before(async () => {
    backends.push(...await Promise.all([0, 1, 2].map(() => startRedis())));
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), MD5));
    client = await RespClient.connect(tp.port());
  });

  after(async () => {
    client?.close();
    await tp?.close();
    await Promise.all(backends.map((s) => s.stop()));
  });

  /** `count` keys named `prefix:N` that the proxy routes to backend `server`. */
  function keysOn(server: number, prefix: string, count: number): string[] {
    const found: string[] = [];
    const enc = new TextEncoder();
    for (let i = 0; found.length < count && i < 10000; i++) {
      const bytes = enc.encode(`${prefix}:${i}`);
      if (tp.proxy.pools[0].serverIndexFor(bytes, 0, bytes.length) === server) found.push(`${prefix}:${i}`);
    }
    assert.equal(found.length, count, `found ${count} keys on server ${server}`);
    return found;
  }

  /** Runs one command straight on a backend and returns the raw reply. */
  async function onBackend(server: number, args: Arg[]): Promise<Uint8Array> {
    const direct = await RespClient.connect(backends[server].port);
    return await direct.callRaw(args).finally(() => direct.close());
  }

  /** Makes `full` refuse every write with -OOM (it already holds a key, so used memory > 1 byte). */
  async function fillUp(): Promise<void> {
    await onBackend(FULL, ["SET", "filler", "x"]);
    await onBackend(FULL, ["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    await onBackend(FULL, ["CONFIG", "SET", "maxmemory", "1"]);
    assert.match(show(await onBackend(FULL, ["SET", "probe", "1"])), /^-OOM /, "the full server refuses writes");
    full = true;
  }

  /** Stops `dead` and waits until the proxy answers its keys with -ERR Connection refused. */
  async function killDead(): Promise<void> {
    await backends[DEAD].stop();
    const [key] = keysOn(DEAD, "probe", 1);
    let last = "";
    for (let i = 0; i < 50 && last !== "-ERR Connection refused\\r\\n"; i++) last = show(await client.callRaw(["GET", key]));
    assert.equal(last, "-ERR Connection refused\\r\\n", "the stopped server's keys get Connection refused");
  }

  it("MSET whose part on one server gets -OOM returns that server's error; the other parts are still stored", async () => {
    await fillUp();
    const good = keysOn(OK, "mo", 3);
    const bad = keysOn(FULL, "mo", 2);
    // The error the full server gives to its own fragment, read straight from it.
    const oom = show(await onBackend(FULL, ["MSET", bad[0], "b0", bad[1], "b1"]));
    assert.match(oom, /^-OOM .*\\r\\n$/);
    const orders = [[...good, ...bad], [...bad, ...good], [good[0], bad[0], good[1], bad[1], good[2]]];
    for (const keys of orders) {
      const moved = await withFragments(tp, () => client.callRaw(["MSET", ...keys.flatMap((k) => [k, `v-${k}`])]));
      assert.equal(show(moved.result), oom, `MSET ${keys.join(" ")}`);
      assert.equal(moved.fragments, 2, "one fragment per server");
    }
    for (const k of good) assert.equal(show(await onBackend(OK, ["GET", k])), show(encodeBulk(`v-${k}`)), `${k} stored on its server`);
    assert.deepEqual(await client.call(["EXISTS", ...bad]), { type: "int", value: 0 }, "nothing stored on the full server");
    assert.equal(show(await client.callRaw(["MSET", good[0], "again", good[1], "again"])), "+OK\\r\\n", "all-OK parts still give +OK");
  });

  it("MSET with parts failing on two servers returns the error of the server that owns the earliest key", async () => {
    if (!full) await fillUp();
    if (backends[DEAD].running) await killDead();
    const [good] = keysOn(OK, "m2", 1);
    const [onFull] = keysOn(FULL, "m2", 1);
    const [dead] = keysOn(DEAD, "m2", 1);
    const oom = show(await onBackend(FULL, ["MSET", onFull, "v"]));
    const mset = (keys: string[]) => client.callRaw(["MSET", ...keys.flatMap((k) => [k, "v"])]).then(show);
    assert.equal(await mset([dead, onFull, good]), "-ERR Connection refused\\r\\n");
    assert.equal(await mset([good, dead, onFull]), "-ERR Connection refused\\r\\n");
    assert.equal(await mset([onFull, dead, good]), oom);
    assert.equal(await mset([good, onFull, dead]), oom);
    assert.deepEqual(await client.call(["PING"]), { type: "status", text: "PONG" }, "the connection stays usable");
  });

  it("DEL and EXISTS with a part on a stopped server return an error, not a partial count", async () => {
    if (!backends[DEAD].running) await backends[DEAD].restart();
    const good = keysOn(OK, "sd", 3);
    const dead = keysOn(DEAD, "sd", 2);
    const keys = [good[0], dead[0], good[1], good[2], dead[1]];
    // While every server is up, the counts are summed over both servers.
    for (const k of keys) assert.equal(show(await client.callRaw(["SET", k, "1"])), "+OK\\r\\n");
    assert.deepEqual(await client.call(["EXISTS", ...keys]), { type: "int", value: 5 });
    await killDead();
    for (const command of ["EXISTS", "DEL", "UNLINK", "TOUCH"]) {
      const moved = await withFragments(tp, () => client.callRaw([command, ...keys]));
      assert.equal(show(moved.result), "-ERR Connection refused\\r\\n", `${command} gets the failed part's error`);
      assert.equal(moved.fragments, 2, `${command}: one fragment per server`);
    }
    // The live server's part of DEL still ran, as with twemproxy: its keys are gone.
    assert.equal(show(await onBackend(OK, ["EXISTS", ...good])), ":0\\r\\n");
    assert.deepEqual(await client.call(["GET", good[0]]), { type: "bulk", value: null }, "the connection stays usable");
  });
});

/** Runs fn and returns its result with how many fragments the pool made meanwhile. */
async function withFragments<T>(tp: TestProxy, fn: () => Promise<T>): Promise<{ result: T; fragments: number }> {
  const pool = tp.proxy.pools[0];
  const before = pool.stats.fragments;
  const result = await fn();
  return { result, fragments: pool.stats.fragments - before };
}

/** A RESP bulk string. */
function encodeBulk(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  return new TextEncoder().encode(`$${bytes.length}\r\n${text}\r\n`);
}
