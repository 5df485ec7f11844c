/**
 * Pub/sub through the proxy over three real redis-servers: a channel lives on the server its
 * name hashes to, so PUBLISH and SUBSCRIBE meet there; patterns are subscribed everywhere;
 * the proxy confirms with the client's own counts and relays messages in order per channel.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { keysOn, PipeClient, waitFor } from "./helpers/soak.ts";

const decoder = new TextDecoder();
const text = (r: Uint8Array) => decoder.decode(r);
const bulk = (v: string) => `$${v.length}\r\n${v}\r\n`;
const push = (...parts: (string | number)[]) =>
  `*${parts.length}\r\n` + parts.map((p) => (typeof p === "number" ? `:${p}\r\n` : bulk(p))).join("");

describe("pub/sub on three redis-servers", () => {
  let servers: ServerProcess[] = [];
  let tp: TestProxy;
  /** One channel name per server. */
  let channels: string[];
  before(async () => {
    servers = await Promise.all([0, 1, 2].map(() => startRedis()));
    const lines = servers.map((s, i) => `    - 127.0.0.1:${s.port}:1 s${i}\n`).join("");
    tp = await startTestProxy(`alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  hash: md5\n  timeout: 500\n  servers:\n${lines}`);
    channels = [0, 1, 2].map((i) => keysOn(tp.proxy.pools[0], i, "chan", 1)[0]);
  });
  after(async () => {
    await tp?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  const connect = () => PipeClient.connect(tp.port());

  it("SUBSCRIBE to channels on three servers confirms with the client's own count; PUBLISH reaches the subscriber", async () => {
    const sub = await connect();
    const confirms = await sub.exchange(encodePipeline([["SUBSCRIBE", ...channels]]), 3);
    assert.deepEqual(confirms, channels.map((c, i) => push("subscribe", c, i + 1)));
    const pub = await connect();
    // A subscriber connection may still be connecting: publish until each channel has one receiver.
    for (const c of channels) {
      assert.ok(await waitFor(async () => (await pub.exchange(encodePipeline([["PUBLISH", c, "hello"]]), 1))[0] === ":1\r\n", 3000), c);
    }
    const got = await sub.waitReplies(6, 5000);
    const messages = got.slice(3).map(text);
    for (const c of channels) assert.ok(messages.includes(push("message", c, "hello")), `a message on ${c}`);
    sub.destroy();
    pub.destroy();
  });

  it("in subscribed mode only pub/sub commands, PING and QUIT are accepted; PING answers a pong push", async () => {
    const sub = await connect();
    await sub.exchange(encodePipeline([["SUBSCRIBE", channels[0]]]), 1);
    const got = await sub.exchange(encodePipeline([["GET", "k"], ["PING"], ["PING", "hi"]]), 3);
    assert.match(got[0], /^-ERR Can't execute 'get': only \(P\|S\)SUBSCRIBE/);
    assert.deepEqual(got.slice(1), [push("pong", ""), push("pong", "hi")]);
    assert.deepEqual(await sub.exchange(encodePipeline([["UNSUBSCRIBE"]]), 1), [push("unsubscribe", channels[0], 0)]);
    assert.deepEqual(await sub.exchange(encodePipeline([["SET", "after", "1"]]), 1), ["+OK\r\n"], "normal commands again");
    sub.destroy();
  });

  it("PSUBSCRIBE on every server: a message published on any server's channel arrives once", async () => {
    const sub = await connect();
    assert.deepEqual(await sub.exchange(encodePipeline([["PSUBSCRIBE", "chan:*"]]), 1), [push("psubscribe", "chan:*", 1)]);
    const pub = await connect();
    for (const c of channels) {
      assert.ok(await waitFor(async () => (await pub.exchange(encodePipeline([["PUBLISH", c, "p"]]), 1))[0] === ":1\r\n", 3000), c);
    }
    const got = (await sub.waitReplies(4, 5000)).slice(1).map(text);
    assert.deepEqual(got.sort(), channels.map((c) => push("pmessage", "chan:*", c, "p")).sort());
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sub.replies.length, 4, "no message twice");
    sub.destroy();
    pub.destroy();
  });

  it("50 subscribers over channels on three servers each get every message of their channel, in order", async () => {
    const subs = await Promise.all(Array.from({ length: 50 }, connect));
    const channelOf = (i: number) => channels[i % 3];
    await Promise.all(subs.map((s, i) => s.exchange(encodePipeline([["SUBSCRIBE", channelOf(i)]]), 1)));
    const pub = await connect();
    for (const [k, c] of channels.entries()) {
      const want = `:${subs.filter((_, i) => i % 3 === k).length}\r\n`;
      assert.ok(await waitFor(async () => (await pub.exchange(encodePipeline([["PUBLISH", c, "warmup"]]), 1))[0] === want, 5000), c);
    }
    const publishes = Array.from({ length: 100 }, (_, i) => ["PUBLISH", channels[i % 3], `m${i}`]);
    await pub.exchange(encodePipeline(publishes), 100);
    for (const [i, s] of subs.entries()) {
      const mine = publishes.filter((p) => p[1] === channelOf(i)).map((p) => push("message", p[1], p[2]));
      const got = await waitFor(() => s.replies.filter((r) => !text(r).includes("warmup")).length >= 1 + mine.length, 5000);
      assert.ok(got, `subscriber ${i} got its ${mine.length} messages`);
      const messages = s.replies.map(text).filter((r) => r.startsWith("*3\r\n$7\r\nmessage") && !r.includes("warmup"));
      assert.deepEqual(messages, mine, `subscriber ${i}: every message of its channel, in order, nothing else`);
      s.destroy();
    }
    pub.destroy();
  });

  it("a subscriber whose server connection breaks is subscribed again without noticing", async () => {
    const sub = await connect();
    await sub.exchange(encodePipeline([["SUBSCRIBE", channels[2]]]), 1);
    const server = servers[2];
    const pub = await connect();
    assert.ok(await waitFor(async () => (await pub.exchange(encodePipeline([["PUBLISH", channels[2], "one"]]), 1))[0] === ":1\r\n", 3000));
    await server.restart();
    assert.ok(await waitFor(async () => (await pub.exchange(encodePipeline([["PUBLISH", channels[2], "two"]]), 1))[0] === ":1\r\n", 5000), "resubscribed");
    const got = (await sub.waitReplies(3, 5000)).map(text);
    assert.equal(got[2], push("message", channels[2], "two"));
    assert.equal(sub.closed, false);
    sub.destroy();
    pub.destroy();
  });
});
