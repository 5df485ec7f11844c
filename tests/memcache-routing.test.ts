/**
 * Memcache pools place keys as twemproxy 0.5.0 did (the recorded vectors): 200 sampled
 * keys set through the proxy are found on exactly the recorded memcached, named pools
 * on free ports and unnamed/mixed pools on the recorded ports (their ring identity is
 * "host:port"). Then a multi-get of 1,000 keys over four servers: split per server and
 * merged in key order with one END, as one plain memcached answers it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { takeFixedPorts } from "./helpers/ports.ts";
import { type ServerProcess, startMemcached } from "./helpers/servers.ts";
import { loadKeys, loadPlacementCases, type PlacementCase } from "./helpers/vectors.ts";
import { concat, show } from "./helpers/resp.ts";
import { Rng } from "./helpers/soak.ts";
import { latin1, type McPiece, type McRig, runScript, same, startRig, storageCmd } from "./helpers/memcache-wire.ts";

const RECORDED_PORTS = [26101, 26102, 26103, 26104];
/** On the recorded ports: ketama and modula, unnamed and mixed (with hash_tag). */
const RECORDED_CASES = ["unnamed-ketama-md5", "mixed-ketama-fnv1a_64", "unnamed-modula-hsieh"];
/** Named pools are placed by name, so any ports do. */
const NAMED_CASES = ["named-ketama-jenkins", "named-ketama-crc32", "named-modula-one_at_a_time"];

const encoder = new TextEncoder();
const KEYS = loadKeys();
const CASES = new Map(loadPlacementCases().map((c) => [c.id, c]));

/** Keys memcached's ASCII protocol can carry: 1..250 bytes, no space, CR, LF or NUL. */
const USABLE = KEYS.map((_, i) => i).filter((i) => {
  const k = KEYS[i];
  return k.length >= 1 && k.length <= 250 && !k.some((b) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0);
});
/** 200 of them, spread evenly over the vector file (binary, UTF-8 and hash-tag keys included). */
const SAMPLE = Array.from({ length: 200 }, (_, j) => USABLE[Math.floor((j * USABLE.length) / 200)]);

function placementCase(id: string): PlacementCase {
  const found = CASES.get(id);
  if (found === undefined) throw new Error(`no placement case ${id}`);
  return found;
}

/** The case's yml as a memcache pool on a free listen port, backends moved to `ports`. */
function caseYaml(c: PlacementCase, ports: readonly number[]): string {
  let yml = c.yml.replace(/listen: 127\.0\.0\.1:\d+/, "listen: 127.0.0.1:0").replace(/^\s*redis: true\n/m, "");
  c.servers.forEach((s, i) => {
    yml = yml.replace(`127.0.0.1:${s.port}:`, `127.0.0.1:${ports[i]}:`);
  });
  return yml;
}


const line = (...parts: (string | Uint8Array)[]) => concat([...parts.map((p) => typeof p === "string" ? encoder.encode(p) : p), encoder.encode("\r\n")]);

/** For each sampled key: the indexes of the backends holding it with this case's value. */
async function holders(backends: readonly ServerProcess[], valueOf: (i: number) => string): Promise<number[][]> {
  const found: number[][] = SAMPLE.map(() => []);
  for (let b = 0; b < backends.length; b++) {
    const run = await runScript(backends[b].port, SAMPLE.map((i) => line("get ", KEYS[i])));
    run.replies.forEach((reply, s) => {
      const value = valueOf(SAMPLE[s]);
      const want = concat([encoder.encode("VALUE "), KEYS[SAMPLE[s]], encoder.encode(` 0 ${value.length}\r\n${value}\r\nEND\r\n`)]);
      if (latin1(reply) === latin1(want)) found[s].push(b);
    });
  }
  return found;
}

/**
 * Sets the sample through the proxy, checks every key sits on exactly its recorded
 * backend and each server got as many requests as it owns keys, then reads the whole
 * sample back through the proxy in one multi-get.
 */
async function checkPlacement(c: PlacementCase, tp: TestProxy, backends: readonly ServerProcess[]): Promise<void> {
  const valueOf = (i: number) => `${c.id}:${i}`;
  const servers = tp.proxy.pools[0].servers;
  const before = servers.map((s) => s.stats.requests);
  const stored = await runScript(tp.port(), SAMPLE.map((i) => storageCmd("set", KEYS[i], valueOf(i))));
  assert.deepEqual(stored.replies.map(latin1).filter((r) => r !== "STORED\r\n"), [], "every set answers STORED");
  const found = await holders(backends, valueOf);
  const wrong = SAMPLE.flatMap((i, s) => {
    const want = Number(c.assign[i]);
    return found[s].length === 1 && found[s][0] === want ? [] : [`key #${i}: want server ${want}, on ${JSON.stringify(found[s])}`];
  });
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${SAMPLE.length} keys misplaced for ${c.id}`);
  const owned = c.servers.map((_, b) => SAMPLE.filter((i) => Number(c.assign[i]) === b).length);
  assert.deepEqual(servers.map((s, b) => s.stats.requests - before[b]), owned, "requests per server");
  const items = SAMPLE.map((i) => concat([encoder.encode("VALUE "), KEYS[i], encoder.encode(` 0 ${valueOf(i).length}\r\n${valueOf(i)}\r\n`)]));
  const got = await runScript(tp.port(), [concat([encoder.encode("get"), ...SAMPLE.flatMap((i) => [encoder.encode(" "), KEYS[i]]), encoder.encode("\r\n")])]);
  assert.ok(latin1(got.replies[0]) === latin1(concat([...items, encoder.encode("END\r\n")])), `multi-get: ${show(got.replies[0], 200)}`);
}

function routingSuite(title: string, ids: readonly string[], ports: () => Promise<ServerProcess[]>, fixedPorts: number[] = []): void {
  describe(title, () => {
    const backends: ServerProcess[] = [];
    const proxies = new Map<string, TestProxy>();
    let releasePorts = () => {};

    before(async () => {
      if (fixedPorts.length > 0) releasePorts = await takeFixedPorts(fixedPorts);
      backends.push(...await ports());
      for (const id of ids) proxies.set(id, await startTestProxy(caseYaml(placementCase(id), backends.map((b) => b.port))));
    });

    after(async () => {
      for (const tp of proxies.values()) await tp.close();
      await Promise.all(backends.map((b) => b.stop()));
      releasePorts();
    });

    for (const id of ids) {
      it(`${id}: 200 sampled keys land on the memcached twemproxy chose and read back in one multi-get`, async () => {
        await checkPlacement(placementCase(id), proxies.get(id)!, backends);
      });
    }
  });
}

routingSuite(
  "memcache routing on the recorded ports (unnamed and mixed pools)",
  RECORDED_CASES,
  () => Promise.all(RECORDED_PORTS.map((port) => startMemcached({ port }))),
  RECORDED_PORTS,
);

routingSuite("memcache routing for named pools (on free ports)", NAMED_CASES, () =>
  Promise.all(RECORDED_PORTS.map(() => startMemcached())));

describe("a multi-get of 1,000 keys over four memcached servers", () => {
  let rig: McRig;
  const keys = Array.from({ length: 1000 }, (_, i) => `mget:${i}`);
  const stored = keys.filter((_, i) => i % 10 < 7);
  const valueOf = (key: string) => `value of ${key}`;
  /** 1,000 requested keys in a seeded order: some never stored, every 25th a repeat of an earlier one. */
  const requested = (() => {
    const rng = new Rng(42);
    const order = keys.slice();
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order.map((k, i) => (i % 25 === 24 ? order[rng.int(i)] : k));
  })();

  before(async () => {
    rig = await startRig();
    const sets = stored.map((k) => storageCmd("set", k, valueOf(k)));
    await Promise.all([rig.tp.port(), rig.plain.port].map((port) => runScript(port, sets, { timeoutMs: 20000 })));
  });

  after(async () => {
    await rig?.stop();
  });

  it("get answers every stored key in request order (repeats included) with a single END, as one memcached does", async () => {
    const pool = rig.tp.proxy.pools[0];
    const fragmentsBefore = pool.stats.fragments;
    const run = await same(rig, [`get ${requested.join(" ")}\r\n`]);
    const want = requested.filter((k) => stored.includes(k)).map((k) => `VALUE ${k} 0 ${valueOf(k).length}\r\n${valueOf(k)}\r\n`).join("") + "END\r\n";
    assert.ok(latin1(run.replies[0]) === want, `merged reply: ${show(run.replies[0], 300)}`);
    assert.equal(run.replies.length, 1);
    assert.equal(pool.stats.fragments - fragmentsBefore, 4, "one fragment per server");
    const owners = new Set(requested.map((k) => pool.serverIndexFor(encoder.encode(k), 0, k.length)));
    assert.equal(owners.size, 4, "the keys span all four servers");
  });

  it("gets answers the same items with the cas unique each owning server holds", async () => {
    const pool = rig.tp.proxy.pools[0];
    const run = await same(rig, [`gets ${requested.join(" ")}\r\n`]);
    const items = [...latin1(run.replies[0]).matchAll(/^VALUE (\S+) 0 \d+ (\d+)\r\n/gm)].map((m) => [m[1], m[2]]);
    assert.equal(items.length, requested.filter((k) => stored.includes(k)).length);
    const direct = new Map<string, string>();
    for (let b = 0; b < rig.backends.length; b++) {
      const mine = stored.filter((k) => pool.serverIndexFor(encoder.encode(k), 0, k.length) === b);
      const reply = await runScript(rig.backends[b].port, [`gets ${mine.join(" ")}\r\n`] as McPiece[]);
      for (const m of latin1(reply.replies[0]).matchAll(/^VALUE (\S+) 0 \d+ (\d+)\r\n/gm)) direct.set(m[1], m[2]);
    }
    const wrong = items.filter(([k, cas]) => direct.get(k) !== cas);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} cas values differ from the owning server's`);
  });
});
