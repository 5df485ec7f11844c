/**
 * Pipelining through the proxy: a 10,000-command pipeline over four servers, replies
 * kept in request order when big and small values from different servers interleave,
 * and 200 clients pipelining at once. Every reply is compared with the reply a plain
 * redis-server gives to the same commands.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, type RawReply, RespClient, show } from "./helpers/resp.ts";

/** Asserts the two reply lists are equal, naming the first difference. */
function assertSameReplies(got: RawReply[], want: RawReply[], cmds: readonly (readonly Arg[])[]): void {
  assert.equal(got.length, want.length, "reply count");
  for (let i = 0; i < got.length; i++) {
    if (got[i].raw.length === want[i].raw.length && got[i].raw.every((b, k) => b === want[i].raw[k])) continue;
    assert.fail(`reply ${i} to ${cmds[i].map(String).join(" ").slice(0, 60)}: got ${show(got[i].raw)}, want ${show(want[i].raw)}`);
  }
}

/** A value of `size` bytes that tells which key and size it belongs to. */
function valueFor(tag: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  const head = new TextEncoder().encode(tag);
  for (let i = 0; i < size; i++) out[i] = i < head.length ? head[i] : (i * 131 + tag.length) & 0xff;
  return out;
}

/** Polls cond every 20 ms until it holds (true) or ms pass (false). */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/**
 * md5 rather than the default fnv1a_64: twemproxy's fnv1a_64 keeps only the low 32 bits,
 * which mix poorly, so short keys that differ in one digit cluster on a few servers.
 * md5 spreads them, so the commands here really touch all four servers.
 */
const MD5 = "  hash: md5\n";

describe("pipelined requests through the proxy", () => {
  const backends: ServerProcess[] = [];
  let plain: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    const started = await Promise.all([0, 1, 2, 3, 4].map(() => startRedis()));
    plain = started.pop()!;
    backends.push(...started);
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), MD5));
  });

  after(async () => {
    await tp?.close();
    await Promise.all([...backends, plain].filter(Boolean).map((s) => s.stop()));
  });

  /** Sends the same pipeline on a fresh connection to the proxy and to the plain redis. */
  async function both(cmds: Arg[][], timeoutMs = 25000): Promise<[RawReply[], RawReply[]]> {
    const [a, b] = await Promise.all([RespClient.connect(tp.port()), RespClient.connect(plain.port)]);
    try {
      return await Promise.all([a.pipeline(cmds, timeoutMs), b.pipeline(cmds, timeoutMs)]);
    } finally {
      a.close();
      b.close();
    }
  }

  it("a 10,000-command pipeline of SET, GET and INCR gets every reply, in order, as from a plain redis", async () => {
    const cmds: Arg[][] = [];
    for (let i = 0; i < 10000; i++) {
      const op = i % 3;
      if (op === 0) cmds.push(["SET", `pk:${i % 997}`, `v${i}`]);
      else if (op === 1) cmds.push(["GET", `pk:${(i * 7) % 997}`]);
      else cmds.push(["INCR", `pc:${i % 211}`]);
    }
    const servers = tp.proxy.pools[0].servers;
    const before = servers.map((s) => s.stats.requests);
    const [got, want] = await both(cmds);
    assertSameReplies(got, want, cmds);
    const sent = servers.map((s, i) => s.stats.requests - before[i]);
    assert.equal(sent.reduce((a, b) => a + b, 0), 10000, `requests per server ${JSON.stringify(sent)}`);
    assert.ok(sent.every((n) => n > 0), `every server got requests: ${JSON.stringify(sent)}`);
  });

  it("replies stay in request order when big and small values from different servers interleave", async () => {
    const setup: Arg[][] = [];
    for (let j = 0; j < 24; j++) {
      setup.push(["SET", `big:${j}`, valueFor(`big:${j}`, 64 * 1024 * (1 + (j % 8)))]);
      setup.push(["SET", `small:${j}`, `s${j}`]);
    }
    const [setGot, setWant] = await both(setup);
    assertSameReplies(setGot, setWant, setup);
    const reads: Arg[][] = [];
    for (let round = 0; round < 3; round++) {
      for (let j = 0; j < 24; j++) reads.push(["GET", `big:${(j + round) % 24}`], ["GET", `small:${j}`], ["PING"]);
    }
    const [got, want] = await both(reads);
    assertSameReplies(got, want, reads);
    const owners = new Set<number>();
    for (let j = 0; j < 24; j++) owners.add(await ownerOf(`big:${j}`));
    assert.ok(owners.size > 1, "the big values are spread over several servers");
  });

  it("200 concurrent clients each pipelining 60 commands all get their own correct replies", async () => {
    const pipelineOf = (c: number): Arg[][] => {
      const cmds: Arg[][] = [];
      for (let j = 0; j < 20; j++) cmds.push(["SET", `cc:${c}:${j}`, `val-${c}-${j}`]);
      for (let j = 0; j < 20; j++) cmds.push(["GET", `cc:${c}:${19 - j}`]);
      for (let j = 0; j < 20; j++) cmds.push(["INCR", `cc:${c}:n`]);
      return cmds;
    };
    const stats = tp.proxy.pools[0].stats;
    assert.ok(await waitFor(() => stats.client_connections === 0, 5000), "earlier clients are gone");
    const connectAll = (port: number) => Promise.all(Array.from({ length: 200 }, () => RespClient.connect(port)));
    const [viaProxy, direct] = await Promise.all([connectAll(tp.port()), connectAll(plain.port)]);
    try {
      const run = (clients: RespClient[]) => Promise.all(clients.map((cl, c) => cl.pipeline(pipelineOf(c), 25000)));
      const [got, want] = await Promise.all([run(viaProxy), run(direct)]);
      for (let c = 0; c < 200; c++) assertSameReplies(got[c], want[c], pipelineOf(c));
      assert.equal(stats.client_connections, 200, "200 client connections open on the pool");
    } finally {
      for (const cl of [...viaProxy, ...direct]) cl.close();
    }
  });

  /** The index of the one backend holding key. */
  async function ownerOf(key: string): Promise<number> {
    const found: number[] = [];
    for (let b = 0; b < backends.length; b++) {
      const client = await RespClient.connect(backends[b].port);
      const reply = await client.call(["EXISTS", key]).finally(() => client.close());
      if (reply.type === "int" && reply.value === 1) found.push(b);
    }
    assert.equal(found.length, 1, `${key} is on exactly one backend`);
    return found[0];
  }
});
