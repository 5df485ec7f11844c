/**
 * End-to-end routing: keys SET through the running proxy land on the same backend
 * redis-server that twemproxy 0.5.0 chose when the vectors were recorded. Unnamed and
 * mixed pools need the recorded ports (a server's ring identity is "host:port"); named
 * pools are placed by name, so they run on any free ports.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { takeFixedPorts } from "./helpers/ports.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { loadKeys, loadPlacementCases, type PlacementCase } from "./helpers/vectors.ts";
import { type Arg, RespClient, sameBytes } from "./helpers/resp.ts";

const RECORDED_PORTS = [26101, 26102, 26103, 26104];
/** Cases on the recorded ports: ketama and modula, with and without names and hash_tag. */
const RECORDED_CASES = ["unnamed-ketama-fnv1a_64", "unnamed-modula-md5", "mixed-ketama-murmur", "mixed-modula-crc32a"];
/** Named cases: identity is the name, so the ports may be anything. */
const NAMED_CASES = ["named-ketama-fnv1_64", "named-modula-crc16", "named-ketama-md5"];

const encoder = new TextEncoder();
const KEYS = loadKeys();
/** Every fifth key: 200 keys including the empty key, binary keys and keys of up to 8,000 bytes. */
const SAMPLE = KEYS.map((_, i) => i).filter((i) => i % 5 === 0);
const CASES = new Map(loadPlacementCases().map((c) => [c.id, c]));

function placementCase(id: string): PlacementCase {
  const found = CASES.get(id);
  if (found === undefined) throw new Error(`no placement case ${id}`);
  return found;
}

/** The case's yml listening on a free port, with backend ports mapped to the given ones. */
function caseYaml(c: PlacementCase, ports: readonly number[]): string {
  let yml = c.yml.replace(/listen: 127\.0\.0\.1:\d+/, "listen: 127.0.0.1:0");
  c.servers.forEach((s, i) => {
    yml = yml.replace(`127.0.0.1:${s.port}:`, `127.0.0.1:${ports[i]}:`);
  });
  return yml;
}

function valueOf(i: number): Uint8Array {
  return encoder.encode(`v${i}`);
}

/** For each sampled key: the indexes of the backends holding it with its value. */
async function holders(backends: readonly ServerProcess[]): Promise<number[][]> {
  const found: number[][] = SAMPLE.map(() => []);
  for (let b = 0; b < backends.length; b++) {
    const client = await RespClient.connect(backends[b].port);
    try {
      const replies = await client.pipeline(SAMPLE.map((i) => ["GET", KEYS[i]]));
      replies.forEach(({ reply }, s) => {
        if (reply.type === "bulk" && sameBytes(reply.value, valueOf(SAMPLE[s]))) found[s].push(b);
      });
    } finally {
      client.close();
    }
  }
  return found;
}

async function flushAll(backends: readonly ServerProcess[]): Promise<void> {
  for (const b of backends) {
    const client = await RespClient.connect(b.port);
    try {
      assert.deepEqual(await client.call(["FLUSHALL"]), { type: "status", text: "OK" });
    } finally {
      client.close();
    }
  }
}

/**
 * SETs the sample through the proxy, then checks each key sits on exactly the recorded
 * backend and each server's request counter grew by the number of keys it owns.
 */
async function checkPlacement(c: PlacementCase, tp: TestProxy, backends: readonly ServerProcess[]): Promise<void> {
  await flushAll(backends);
  const servers = tp.proxy.pools[0].servers;
  const before = servers.map((s) => s.stats.requests);
  const client = await RespClient.connect(tp.port());
  try {
    const cmds: Arg[][] = SAMPLE.map((i) => ["SET", KEYS[i], valueOf(i)]);
    const replies = await client.pipeline(cmds);
    assert.deepEqual(replies.filter((r) => r.reply.type !== "status"), [], "every SET answers +OK");
  } finally {
    client.close();
  }
  const found = await holders(backends);
  const wrong = SAMPLE.flatMap((i, s) => {
    const want = Number(c.assign[i]);
    return found[s].length === 1 && found[s][0] === want ? [] : [`key #${i}: want server ${want}, on ${JSON.stringify(found[s])}`];
  });
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${SAMPLE.length} keys misplaced for ${c.id}`);
  const owned = c.servers.map((_, b) => SAMPLE.filter((i) => Number(c.assign[i]) === b).length);
  assert.deepEqual(servers.map((s, b) => s.stats.requests - before[b]), owned, "requests per server");
}

describe("routing through the proxy on the recorded ports (unnamed and mixed pools)", () => {
  const backends: ServerProcess[] = [];
  const proxies = new Map<string, TestProxy>();
  let releasePorts = () => {};

  before(async () => {
    releasePorts = await takeFixedPorts(RECORDED_PORTS);
    backends.push(...await Promise.all(RECORDED_PORTS.map((port) => startRedis({ port }))));
    for (const id of RECORDED_CASES) proxies.set(id, await startTestProxy(caseYaml(placementCase(id), RECORDED_PORTS)));
  });

  after(async () => {
    for (const tp of proxies.values()) await tp.close();
    await Promise.all(backends.map((b) => b.stop()));
    releasePorts();
  });

  for (const id of RECORDED_CASES) {
    it(`${id}: 200 sampled keys land on the backends twemproxy chose`, async () => {
      await checkPlacement(placementCase(id), proxies.get(id)!, backends);
    });
  }

  it("a key read back through the proxy returns the value on its recorded backend", async () => {
    const tp = proxies.get(RECORDED_CASES[0])!;
    await checkPlacement(placementCase(RECORDED_CASES[0]), tp, backends);
    const client = await RespClient.connect(tp.port());
    try {
      const replies = await client.pipeline(SAMPLE.map((i) => ["GET", KEYS[i]]));
      const bad = replies.filter(({ reply }, s) => !(reply.type === "bulk" && sameBytes(reply.value, valueOf(SAMPLE[s]))));
      assert.equal(bad.length, 0, `${bad.length} keys read back wrong`);
    } finally {
      client.close();
    }
  });
});

describe("routing through the proxy for named pools (on free ports)", () => {
  const backends: ServerProcess[] = [];
  const proxies = new Map<string, TestProxy>();

  before(async () => {
    backends.push(...await Promise.all(RECORDED_PORTS.map(() => startRedis())));
    const ports = backends.map((b) => b.port);
    for (const id of NAMED_CASES) proxies.set(id, await startTestProxy(caseYaml(placementCase(id), ports)));
  });

  after(async () => {
    for (const tp of proxies.values()) await tp.close();
    await Promise.all(backends.map((b) => b.stop()));
  });

  for (const id of NAMED_CASES) {
    it(`${id}: 200 sampled keys land on the backends twemproxy chose`, async () => {
      await checkPlacement(placementCase(id), proxies.get(id)!, backends);
    });
  }
});
