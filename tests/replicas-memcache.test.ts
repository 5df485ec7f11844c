/**
 * Memcached copies (`replicas:` on a memcached pool), with real memcached processes: the
 * proxy writes every change to the master and each copy, reads from any flushed copy by
 * load, retries a copy's miss on the master, and flushes a copy that missed writes before
 * it serves reads again. Counted with each memcached's own `stats`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { rawText, type ServerProcess, startMemcached } from "./helpers/servers.ts";
import { mcFramer } from "./helpers/memcache-wire.ts";
import { PipeClient, waitFor } from "./helpers/soak.ts";

const decoder = new TextDecoder();

async function stat(port: number, name: string): Promise<number> {
  const text = await rawText(port, "stats\r\n", { untilEnds: "END\r\n" });
  return Number(new RegExp(`STAT ${name} (\\d+)`).exec(text)?.[1] ?? -1);
}

async function directGet(port: number, key: string): Promise<string> {
  return await rawText(port, `get ${key}\r\n`, { untilEnds: "END\r\n" });
}

const value = (key: string, v: string) => `VALUE ${key} 0 ${v.length}\r\n${v}\r\nEND\r\n`;

describe("memcached copies: writes to every copy, reads from any", () => {
  let master: ServerProcess;
  let copy: ServerProcess;
  let tp: TestProxy;
  let client: PipeClient;
  before(async () => {
    [master, copy] = await Promise.all([startMemcached(), startMemcached()]);
    // The copy holds something the proxy never wrote: it must be flushed before serving reads.
    await rawText(copy.port, "set stale 0 0 3\r\nold\r\n", { untilEnds: "\r\n" });
    tp = await startTestProxy(
      `beta:\n  listen: 127.0.0.1:0\n  timeout: 500\n  servers:\n    - 127.0.0.1:${master.port}:1 shard1\n` +
        `  replicas:\n    shard1:\n      - 127.0.0.1:${copy.port}:1\n`,
    );
    client = await PipeClient.connect(tp.port(), mcFramer);
    const eligible = () => tp.proxy.pools[0].servers[1].readState === 0;
    assert.ok(await waitFor(eligible, 5000), "the copy is flushed and serves reads");
  });
  after(async () => {
    client?.destroy();
    await tp?.close();
    await Promise.all([master, copy].map((s) => s?.stop()));
  });

  async function send(text: string, replies: number): Promise<string[]> {
    return await client.exchange(text, replies, 5000);
  }

  it("flushes a copy before its first read: a value only the copy had is gone", async () => {
    assert.equal(await directGet(copy.port, "stale"), "END\r\n");
  });

  it("writes every change to the master and the copy; the client gets one reply", async () => {
    const sets = Array.from({ length: 50 }, (_, i) => `set k${i} 0 0 ${`v${i}`.length}\r\nv${i}\r\n`).join("");
    const got = await send(sets, 50);
    assert.ok(got.every((r) => r === "STORED\r\n"));
    assert.deepEqual(await send("delete k49\r\nset n 0 0 1\r\n5\r\nincr n 2\r\n", 3), ["DELETED\r\n", "STORED\r\n", "7\r\n"]);
    for (const port of [master.port, copy.port]) {
      assert.equal(await directGet(port, "k7"), value("k7", "v7"), `k7 on ${port}`);
      assert.equal(await directGet(port, "n"), value("n", "7"), `n incremented on ${port}`);
      assert.equal(await directGet(port, "k49"), "END\r\n", `k49 deleted on ${port}`);
    }
  });

  it("spreads reads over the master and the copy, every value right", async () => {
    const before = await Promise.all([master.port, copy.port].map((p) => stat(p, "cmd_get")));
    const gets = Array.from({ length: 300 }, (_, i) => `get k${i % 40}\r\n`).join("");
    const got = await send(gets, 300);
    got.forEach((reply, i) => assert.equal(reply, value(`k${i % 40}`, `v${i % 40}`), `get ${i}`));
    const afterGets = await Promise.all([master.port, copy.port].map((p) => stat(p, "cmd_get")));
    const [onMaster, onCopy] = afterGets.map((n, i) => n - before[i]);
    assert.ok(onCopy > 0 && onMaster > 0, `both serve reads (master ${onMaster}, copy ${onCopy})`);
  });

  it("a miss on the copy is asked of the master before the client sees a miss", async () => {
    await rawText(copy.port, "delete k3\r\n", { untilEnds: "\r\n" }); // only the copy loses it
    const got = await send(Array.from({ length: 40 }, () => "get k3\r\n").join(""), 40);
    assert.ok(got.every((r) => r === value("k3", "v3")), "never a miss");
  });

  it("cas goes to the master only and deletes the key on the copy", async () => {
    const gets = await send("gets k5\r\n", 1);
    const cas = /VALUE k5 0 2 (\d+)/.exec(gets[0])?.[1];
    assert.ok(cas !== undefined, gets[0]);
    assert.deepEqual(await send(`cas k5 0 0 3 ${cas}\r\nnew\r\n`, 1), ["STORED\r\n"]);
    assert.equal(await directGet(master.port, "k5"), value("k5", "new"));
    assert.ok(await waitFor(async () => (await directGet(copy.port, "k5")) === "END\r\n", 2000), "the copy dropped k5");
    const got = await send(Array.from({ length: 20 }, () => "get k5\r\n").join(""), 20);
    assert.ok(got.every((r) => r === value("k5", "new")), "reads see the cas'd value");
  });

  it("a copy killed under load costs no miss; back, it is flushed before it serves reads", async () => {
    copy.kill("SIGKILL");
    const got = await send(Array.from({ length: 200 }, (_, i) => `get k${i % 40}\r\n`).join(""), 200);
    got.forEach((reply, i) => {
      const k = i % 40;
      if (k === 5) return; // cas'd above
      assert.equal(reply, value(`k${k}`, `v${k}`), `get ${i}: ${decoder.decode(new TextEncoder().encode(reply)).slice(0, 40)}`);
    });
    // A write while the copy is down: the copy misses it, so it must not serve reads until flushed.
    assert.deepEqual(await send("set k0 0 0 4\r\nnew0\r\n", 1), ["STORED\r\n"]);
    await copy.restart();
    await rawText(copy.port, "set k0 0 0 3\r\nold\r\n", { untilEnds: "\r\n" }); // what a stale copy could hold
    const flushedAgain = async () => (await directGet(copy.port, "k0")) === "END\r\n" && tp.proxy.pools[0].servers[1].readState === 0;
    assert.ok(await waitFor(flushedAgain, 5000), "the proxy flushed the copy when it came back");
    const reads = await send(Array.from({ length: 40 }, () => "get k0\r\n").join(""), 40);
    assert.ok(reads.every((r) => r === value("k0", "new0")), "reads see the master's value, never the stale one");
  });
});
