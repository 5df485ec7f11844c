/**
 * Transactions and blocking commands through the proxy, with real redis-servers: each runs
 * on a server connection of the client's own, when its keys live on one server; a key on
 * another server gets -CROSSSLOT (and EXEC -EXECABORT), as Redis Cluster answers.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { keysOn, PipeClient, waitFor } from "./helpers/soak.ts";
import { redisCli } from "./helpers/servers.ts";

const CROSSSLOT = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
const EXECABORT = "-EXECABORT Transaction discarded because of previous errors.\r\n";

describe("transactions and blocking commands on two redis-servers", () => {
  let servers: ServerProcess[] = [];
  let tp: TestProxy;
  /** The same servers behind a pool with room for only 5 dedicated connections. */
  let capped: TestProxy;
  let onA: string[];
  let onB: string[];
  before(async () => {
    servers = await Promise.all([startRedis(), startRedis()]);
    const lines = servers.map((s, i) => `    - 127.0.0.1:${s.port}:1 s${i}\n`).join("");
    tp = await startTestProxy(`alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  hash: md5\n  timeout: 300\n  servers:\n${lines}`);
    capped = await startTestProxy(`capped:\n  listen: 127.0.0.1:0\n  redis: true\n  hash: md5\n  max_dedicated_connections: 5\n  servers:\n${lines}`);
    onA = keysOn(tp.proxy.pools[0], 0, "ta", 4);
    onB = keysOn(tp.proxy.pools[0], 1, "tb", 2);
  });
  after(async () => {
    await tp?.close();
    await capped?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  async function client(): Promise<PipeClient> {
    return await PipeClient.connect(tp.port());
  }

  it("MULTI ... EXEC on one server returns every result in EXEC's array", async () => {
    const c = await client();
    const got = await c.exchange(encodePipeline([["MULTI"], ["SET", onA[0], "1"], ["INCR", onA[0]], ["PING"], ["EXEC"]]), 5);
    assert.deepEqual(got, ["+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*3\r\n+OK\r\n:2\r\n+PONG\r\n"]);
    c.destroy();
  });

  it("a key on another server inside MULTI gets CROSSSLOT, EXEC aborts, nothing ran, the connection stays", async () => {
    const c = await client();
    const got = await c.exchange(
      encodePipeline([["MULTI"], ["SET", onA[1], "x"], ["SET", onB[0], "y"], ["EXEC"], ["GET", onA[1]], ["GET", onB[0]]]),
      6,
    );
    assert.deepEqual(got, ["+OK\r\n", "+QUEUED\r\n", CROSSSLOT, EXECABORT, "$-1\r\n", "$-1\r\n"]);
    assert.equal(c.closed, false);
    c.destroy();
  });

  it("a command whose second key is on another server (RENAME) gets CROSSSLOT inside MULTI too", async () => {
    const c = await client();
    const got = await c.exchange(encodePipeline([["MULTI"], ["SET", onA[1], "v"], ["RENAME", onA[1], onB[1]], ["EXEC"]]), 4);
    assert.deepEqual(got, ["+OK\r\n", "+QUEUED\r\n", CROSSSLOT, EXECABORT]);
    c.destroy();
  });

  it("WATCH: a second client's write to the watched key makes EXEC return nil", async () => {
    const c = await client();
    const other = await client();
    assert.deepEqual(await c.exchange(encodePipeline([["WATCH", onA[2]], ["GET", onA[2]]]), 2), ["+OK\r\n", "$-1\r\n"]);
    assert.deepEqual(await other.exchange(encodePipeline([["SET", onA[2], "theirs"]]), 1), ["+OK\r\n"]);
    const got = await c.exchange(encodePipeline([["MULTI"], ["SET", onA[2], "mine"], ["EXEC"], ["GET", onA[2]]]), 4);
    assert.deepEqual(got, ["+OK\r\n", "+QUEUED\r\n", "*-1\r\n", "$6\r\ntheirs\r\n"]);
    c.destroy();
    other.destroy();
  });

  it("EXEC and DISCARD without MULTI, and nested MULTI, get Redis's errors", async () => {
    const c = await client();
    const got = await c.exchange(encodePipeline([["EXEC"], ["DISCARD"], ["MULTI"], ["MULTI"], ["DISCARD"]]), 5);
    assert.deepEqual(got, [
      "-ERR EXEC without MULTI\r\n", "-ERR DISCARD without MULTI\r\n", "+OK\r\n", "-ERR MULTI calls can not be nested\r\n", "+OK\r\n",
    ]);
    c.destroy();
  });

  it("100 concurrent transactions each add 1 to two counters on one server: both end at 100", async () => {
    const key1 = onA[3];
    const key2 = keysOn(tp.proxy.pools[0], 0, "tc", 1)[0];
    const one = async () => {
      const c = await client();
      const got = await c.exchange(encodePipeline([["MULTI"], ["INCR", key1], ["INCR", key2], ["EXEC"]]), 4, 15000);
      c.destroy();
      const [a, b] = /^\*2\r\n:(\d+)\r\n:(\d+)\r\n$/.exec(got[3])!.slice(1).map(Number);
      assert.equal(a, b, "the two INCRs ran together, with no other transaction between them");
    };
    await Promise.all(Array.from({ length: 100 }, one));
    const c = await client();
    assert.deepEqual(await c.exchange(encodePipeline([["GET", key1], ["GET", key2]]), 2), ["$3\r\n100\r\n", "$3\r\n100\r\n"]);
    c.destroy();
  });

  it("BLPOP waits past the pool timeout and is woken by another client's LPUSH", async () => {
    const blocked = await client();
    const pusher = await client();
    blocked.write(encodePipeline([["BLPOP", "bq{1}", "5"]]));
    await new Promise((r) => setTimeout(r, 600)); // twice the pool timeout
    assert.equal(blocked.replies.length, 0, "still blocked");
    assert.deepEqual(await pusher.exchange(encodePipeline([["LPUSH", "bq{1}", "job"]]), 1), [":1\r\n"]);
    const [reply] = await blocked.waitReplies(1, 5000);
    assert.equal(new TextDecoder().decode(reply), "*2\r\n$5\r\nbq{1}\r\n$3\r\njob\r\n");
    blocked.destroy();
    pusher.destroy();
  });

  it("BLPOP times out with nil, and keys on two servers get CROSSSLOT", async () => {
    const c = await client();
    assert.deepEqual(await c.exchange(encodePipeline([["BLPOP", onA[0] + "q", "1"]]), 1, 5000), ["*-1\r\n"]);
    assert.deepEqual(await c.exchange(encodePipeline([["BLPOP", onA[0], onB[0], "1"]]), 1), [CROSSSLOT]);
    c.destroy();
  });

  it("200 clients blocked in BLPOP do not delay another client, and are all woken", async () => {
    const blockers = await Promise.all(Array.from({ length: 200 }, () => client()));
    for (const b of blockers) b.write(encodePipeline([["BLPOP", "many{q}", "10"]]));
    const other = await client();
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(await other.exchange(encodePipeline([["SET", "free", String(i)], ["GET", "free"]]), 2), ["+OK\r\n", `$${String(i).length}\r\n${i}\r\n`]);
    }
    assert.ok(blockers.every((b) => b.replies.length === 0), "the blockers are still waiting");
    await other.exchange(encodePipeline([["RPUSH", "many{q}", ...Array.from({ length: 200 }, (_, i) => `v${i}`)]]), 1);
    await Promise.all(blockers.map((b) => b.waitReplies(1, 5000)));
    for (const b of blockers) b.destroy();
    other.destroy();
  });

  it("over max_dedicated_connections a blocking command gets a clear error at once; a client that leaves frees its connection", async () => {
    const connect = () => PipeClient.connect(capped.port());
    const blockers = await Promise.all(Array.from({ length: 5 }, connect));
    for (const b of blockers) b.write(encodePipeline([["BLPOP", "cap{q}", "10"]]));
    const used = () => capped.proxy.pools[0].servers.reduce((n, s) => n + s.stats.server_connections, 0);
    assert.ok(await waitFor(() => used() >= 5, 5000), "5 dedicated connections open");
    const late = await connect();
    const [reply] = await late.exchange(encodePipeline([["BLPOP", "cap{q}", "10"]]), 1, 2000);
    assert.match(reply, /^-ERR max_dedicated_connections reached/);
    for (const b of blockers) b.destroy();
    const port = servers[tp.proxy.pools[0].serverIndexFor(new TextEncoder().encode("cap{q}"), 0, 6)].port;
    const blockedOnServer = async () => (await redisCli(port, "CLIENT", "LIST")).split("\n").filter((l) => l.includes("flags=b ")).length;
    assert.ok(await waitFor(async () => (await blockedOnServer()) === 0, 5000), "the server no longer holds the departed clients' BLPOPs");
    const [again] = await late.exchange(encodePipeline([["BLPOP", "cap{q}", "1"]]), 1, 5000);
    assert.equal(again, "*-1\r\n", "a dedicated connection is free again");
    late.destroy();
  });
});
