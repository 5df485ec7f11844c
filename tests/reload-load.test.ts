/**
 * Reload under load: four clients pipeline SET/GET pairs with values unique to each pair
 * into a pool whose server list, hash, distribution and timeout change 20 times while two
 * clients of an unchanged pool pipeline INCRs. Every request must get exactly one reply,
 * in order: SET +OK, GET its own value (or nil only when a reload fell between the pair
 * and moved the key), INCR the next integer; no error anywhere, no client closed, the
 * unchanged pool's server connection never replaced.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, encodePipeline } from "./helpers/resp.ts";
import { PipeClient, waitFor } from "./helpers/soak.ts";
import { sleep } from "./helpers/ports.ts";
import { freePorts, type PoolKeys, poolYaml, proxyConnIds, type ReloadRig, startReloadProxy } from "./helpers/reload.ts";

const decoder = new TextDecoder();
const RELOADS = 20;
const PAIRS = 25;
const INCRS = 50;
/** Bound on the whole load phase. */
const LOAD_MS = 20_000;

/** What one load client saw. */
interface Tally {
  batches: number;
  /** Batches completed while reloads were still running. */
  during: number;
  requests: number;
  replies: number;
  /** GETs answered nil (a reload between the SET and the GET moved the key). */
  nils: number;
  /** A batch is written and not fully answered. */
  outstanding: boolean;
  problems: string[];
}

const newTally = (): Tally => ({ batches: 0, during: 0, requests: 0, replies: 0, nils: 0, outstanding: false, problems: [] });

describe("reload under load: 20 reloads while 6 clients pipeline", () => {
  let r1: ServerProcess, r2: ServerProcess, r3: ServerProcess, r4: ServerProcess;
  let pa = 0, pb = 0;
  let rig: ReloadRig;
  const clients: PipeClient[] = [];

  const yamlOf = (servers: ServerProcess[], keys: PoolKeys) =>
    poolYaml("a", pa, servers.map((s) => s.port), keys) + poolYaml("b", pb, [r4.port], { timeout: 2000 });
  const configs = () => [
    yamlOf([r1, r2, r3], { hash: "fnv1a_64", distribution: "ketama", timeout: 2000 }),
    yamlOf([r1, r3], { hash: "murmur", distribution: "ketama", timeout: 3000 }),
    yamlOf([r2, r3], { hash: "md5", distribution: "modula", timeout: 2500 }),
    yamlOf([r1, r2], { hash: "fnv1a_64", distribution: "ketama", timeout: 2000 }),
  ];

  before(async () => {
    [r1, r2, r3, r4] = await Promise.all([startRedis(), startRedis(), startRedis(), startRedis()]);
    [pa, pb] = await freePorts(2);
    rig = await startReloadProxy(configs()[3]);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await rig?.close();
    await Promise.all([r1, r2, r3, r4].map((s) => s?.stop()));
  });

  it("answers every request exactly once, in order and correctly, with no error in either pool", async () => {
    const state = { stop: false, reloading: true };
    const deadline = Date.now() + LOAD_MS;
    const setGet = await Promise.all([0, 1, 2, 3].map(() => PipeClient.connect(pa)));
    const incr = await Promise.all([0, 1].map(() => PipeClient.connect(pb)));
    clients.push(...setGet, ...incr);
    // Pool b's connection to its server exists before the first reload.
    assert.deepEqual(await incr[0].exchange(encodePipeline([["INCR", "b:warm"]]), 1), [":1\r\n"]);
    const idsB = await proxyConnIds(r4.port);
    const poolB = rig.pool("b");

    /** Pairs of SET k v; GET k with a value no other request uses. */
    const runSetGet = async (client: PipeClient, id: number, tally: Tally) => {
      let seq = 0;
      while (!state.stop && Date.now() < deadline && tally.problems.length === 0) {
        const cmds: Arg[][] = [];
        const values: string[] = [];
        const keys: string[] = [];
        for (let i = 0; i < PAIRS; i++, seq++) {
          const key = `load:${id}:${seq}`;
          const value = `v-${id}-${seq}-${Date.now()}`;
          cmds.push(["SET", key, value], ["GET", key]);
          values.push(value);
          keys.push(key);
        }
        const reloadingAtStart = state.reloading;
        const got = await exchange(client, cmds, tally);
        if (got === null) return;
        for (let i = 0; i < PAIRS; i++) {
          const [set, get] = [got[2 * i], got[2 * i + 1]];
          if (set !== "+OK\r\n") tally.problems.push(`client ${id}: SET ${keys[i]} got ${JSON.stringify(set)}`);
          if (get === "$-1\r\n") tally.nils++;
          else if (get !== `$${values[i].length}\r\n${values[i]}\r\n`) {
            tally.problems.push(`client ${id}: GET ${keys[i]} want ${values[i]}, got ${JSON.stringify(get)}`);
          }
        }
        count(tally, cmds.length, reloadingAtStart && state.reloading);
      }
    };

    /** INCR on a counter only this client touches: replies must count up by one. */
    const runIncr = async (client: PipeClient, id: number, tally: Tally) => {
      let expected = 0;
      while (!state.stop && Date.now() < deadline && tally.problems.length === 0) {
        const cmds: Arg[][] = Array.from({ length: INCRS }, () => ["INCR", `b:count:${id}`]);
        const reloadingAtStart = state.reloading;
        const got = await exchange(client, cmds, tally);
        if (got === null) return;
        for (const reply of got) {
          if (reply !== `:${++expected}\r\n`) tally.problems.push(`pool b client ${id}: want :${expected}, got ${JSON.stringify(reply)}`);
        }
        count(tally, cmds.length, reloadingAtStart && state.reloading);
      }
    };

    const tallies = [...setGet, ...incr].map(newTally);
    const loads = [
      ...setGet.map((c, i) => runSetGet(c, i, tallies[i])),
      ...incr.map((c, i) => runIncr(c, i, tallies[setGet.length + i])),
    ];
    const reports = [];
    const list = configs();
    /** Reloads that started while some client had requests in flight. */
    let busyReloads = 0;
    for (let i = 0; i < RELOADS && Date.now() < deadline; i++) {
      await sleep(40);
      if (tallies.some((t) => t.outstanding)) busyReloads++;
      reports.push(await rig.reload(list[i % list.length]));
    }
    state.reloading = false;
    await sleep(100); // one more round of batches on the final config
    state.stop = true;
    await Promise.all(loads);

    assert.equal(reports.length, RELOADS, `only ${reports.length} reloads within ${LOAD_MS} ms`);
    reports.forEach((r, i) => assert.equal(r.result, "ok", `reload ${i + 1}: ${r.error}`));
    for (const r of reports) {
      assert.deepEqual(r.changes.map((c) => [c.pool, c.action]), [["a", "changed"], ["b", "unchanged"]]);
    }
    assert.equal(rig.reloader.status().generation, RELOADS + 1);
    assert.ok(busyReloads >= RELOADS / 2, `only ${busyReloads} of ${RELOADS} reloads happened with requests in flight`);
    tallies.forEach((t, i) => {
      assert.deepEqual(t.problems, [], `client ${i}`);
      assert.equal(t.replies, t.requests, `client ${i}: one reply per request`);
      assert.ok(t.during >= 3, `client ${i} completed only ${t.during} batches while reloading`);
    });
    const clientsClosed = [...setGet, ...incr].map((c) => c.closed);
    assert.deepEqual(clientsClosed, clientsClosed.map(() => false), "no client was closed");
    for (const [i, t] of tallies.slice(0, setGet.length).entries()) {
      assert.ok(t.nils <= RELOADS, `client ${i}: ${t.nils} GETs missed their own SET (at most one per reload)`);
    }
    // Nothing extra arrived after the last batch.
    await sleep(50);
    [...setGet, ...incr].forEach((c, i) => {
      assert.equal(c.replies.length, tallies[i].replies + (i === setGet.length ? 1 : 0), `client ${i}: no extra reply`);
      assert.equal(c.leftover, 0);
    });

    const poolA = rig.pool("a");
    assert.equal(poolA.stats.forward_error, 0, "pool a: no request failed by its server");
    assert.equal(poolA.stats.client_err, 0);
    assert.equal(rig.pool("b"), poolB);
    assert.equal(poolB.stats.forward_error, 0);
    assert.equal(poolB.stats.client_err, 0);
    assert.deepEqual(await proxyConnIds(r4.port), idsB, "pool b's server connection was never replaced");
    // The last config drops r3: its connections close once they owe nothing.
    assert.deepEqual(poolA.servers.map((s) => s.conf.id), [`127.0.0.1:${r1.port}`, `127.0.0.1:${r2.port}`]);
    assert.ok(await waitFor(async () => (await proxyConnIds(r3.port)).length === 0, 3000), "r3's connections closed");
  });
});

/** Send a batch and return its replies as text; null (with the problem noted) when they do not all come. */
async function exchange(client: PipeClient, cmds: Arg[][], tally: Tally): Promise<string[] | null> {
  const first = client.replies.length;
  client.write(encodePipeline(cmds));
  tally.requests += cmds.length;
  tally.outstanding = true;
  try {
    await client.waitReplies(first + cmds.length, 5000);
    tally.outstanding = false;
  } catch (err) {
    tally.replies += client.replies.length - first;
    tally.problems.push((err as Error).message);
    return null;
  }
  return client.replies.slice(first, first + cmds.length).map((r) => decoder.decode(r));
}

function count(tally: Tally, replies: number, during: boolean): void {
  tally.replies += replies;
  tally.batches++;
  if (during) tally.during++;
}
