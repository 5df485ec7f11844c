/**
 * Reloads that must change nothing: a broken YAML file, an unknown key, a listen address
 * another socket holds (result "error", the error named, the old config serving, the
 * generation kept, status().lastError set); an identical file (every pool unchanged, no
 * connection opened or closed); and a dry run (the diff returned, nothing applied).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { loadConf } from "../core/conf/mod.ts";
import type { Pool } from "../core/proxy/pool.ts";
import type { PoolConf } from "../core/conf/mod.ts";
import type { ReloadReport } from "../core/reload/types.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, encodePipeline } from "./helpers/resp.ts";
import { PipeClient } from "./helpers/soak.ts";
import { canConnect } from "./helpers/ports.ts";
import {
  freePorts,
  poolYaml,
  proxyConnIds,
  redisInfoNumber,
  RELOAD_FILE,
  type ReloadRig,
  startReloadProxy,
} from "./helpers/reload.ts";

const pipe = (...cmds: Arg[][]) => encodePipeline(cmds);
const bulk = (v: string) => `$${v.length}\r\n${v}\r\n`;

/** The message loadConf throws for `text` (what a reload must report). */
function confErrorOf(text: string): string {
  try {
    loadConf(text, RELOAD_FILE);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("the text was meant to be rejected");
}

/** 1-based number of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  return text.split("\n").findIndex((l) => l.includes(needle)) + 1;
}

/** Bind 127.0.0.1:port with a plain node:net server (the address "already in use"). */
function occupy(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => sock.destroy());
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("reload: bad files, a busy address, an identical file, a dry run", () => {
  let r1: ServerProcess, r2: ServerProcess;
  let pa = 0, pb = 0, pc = 0, busyPort = 0;
  let rig: ReloadRig;
  let ca: PipeClient, cb: PipeClient;
  let good = "";
  let n = 0;
  /** What must not move when a reload changes nothing. */
  let frozen: { pools: Pool[]; confs: PoolConf[]; ids: number[][] };

  /** One SET/GET on each client with a fresh value: both pools still serve, on the same sockets. */
  async function bothServe(): Promise<void> {
    n++;
    for (const [c, name] of [[ca, "a"], [cb, "b"]] as const) {
      const got = await c.exchange(pipe(["SET", `${name}:k`, `v${n}`], ["GET", `${name}:k`]), 2, 3000);
      assert.deepEqual(got, ["+OK\r\n", bulk(`v${n}`)], `pool ${name} serves`);
      assert.equal(c.closed, false);
    }
  }

  async function snapshot() {
    return {
      pools: [...rig.proxy.pools],
      confs: rig.proxy.pools.map((p) => p.conf),
      ids: [await proxyConnIds(r1.port), await proxyConnIds(r2.port)],
    };
  }

  /** Nothing changed since `frozen`: same pools, confs, ports and backend connections. */
  async function assertNothingChanged(): Promise<void> {
    assert.deepEqual(rig.proxy.pools.map((p) => p.conf.name), ["a", "b"]);
    rig.proxy.pools.forEach((p, i) => {
      assert.equal(p, frozen.pools[i], `pool ${p.conf.name} is the same object`);
      assert.equal(p.conf, frozen.confs[i], `pool ${p.conf.name} keeps its config`);
    });
    assert.equal(rig.port("a"), pa);
    assert.equal(rig.port("b"), pb);
    await bothServe();
    assert.deepEqual([await proxyConnIds(r1.port), await proxyConnIds(r2.port)], frozen.ids, "the same backend connections");
  }

  function assertError(report: ReloadReport, generation: number): void {
    assert.equal(report.result, "error");
    assert.equal(report.dryRun, false);
    assert.deepEqual([...report.changes], []);
    assert.equal(report.generation, generation);
    assert.equal(typeof report.error, "string");
    const status = rig.reloader.status();
    assert.equal(status.generation, generation);
    assert.equal(status.lastError, report.error);
    assert.notEqual(status.lastReloadAt, null);
  }

  before(async () => {
    [r1, r2] = await Promise.all([startRedis(), startRedis()]);
    [pa, pb, pc, busyPort] = await freePorts(4);
    good = poolYaml("a", pa, [r1.port], { hash: "fnv1a_64" }) + poolYaml("b", pb, [r2.port], { hash: "fnv1a_64" });
    rig = await startReloadProxy(good);
    ca = await PipeClient.connect(pa);
    cb = await PipeClient.connect(pb);
    await bothServe();
    frozen = await snapshot();
  });

  after(async () => {
    ca?.destroy();
    cb?.destroy();
    await rig?.close();
    await Promise.all([r1, r2].map((s) => s?.stop()));
  });

  it("rejects a broken YAML file with file and line; nothing changes", async () => {
    const broken = good + `c:\n  listen: "127.0.0.1:${pc}\n  servers:\n    - 127.0.0.1:${r2.port}:1\n`;
    const report = await rig.reload(broken);
    assertError(report, 1);
    assert.ok(report.error!.includes(confErrorOf(broken)), `error: ${report.error}`);
    assert.match(report.error!, new RegExp(`${RELOAD_FILE.replace(".", "\\.")}:\\d+: `));
    assert.deepEqual(rig.reloader.status().reloads, { ok: 0, error: 1 });
    assert.equal(await canConnect(pc), false);
    await assertNothingChanged();
  });

  it("rejects an unknown key naming file, line, pool and key; nothing changes, not even the valid edits", async () => {
    const text = poolYaml("a", pa, [r1.port], { hash: "md5" }) + poolYaml("b", pb, [r2.port], { hash: "fnv1a_64", hash_tagz: "\"{}\"" });
    const report = await rig.reload(text);
    assertError(report, 1);
    const want = `${RELOAD_FILE}:${lineOf(text, "hash_tagz")}: pool 'b': "hash_tagz" is unknown`;
    assert.ok(report.error!.includes(want), `error ${JSON.stringify(report.error)} names ${want}`);
    assert.equal(rig.pool("a").conf.hash, "fnv1a_64");
    assert.deepEqual(rig.reloader.status().reloads, { ok: 0, error: 2 });
    await assertNothingChanged();
  });

  it("rejects a listen address already in use (moved or added pool); nothing changes", async () => {
    const busy = await occupy(busyPort);
    try {
      // Pool a moves onto the busy port while pool b's hash changes: neither may happen.
      const moved = poolYaml("a", busyPort, [r1.port], { hash: "fnv1a_64" }) + poolYaml("b", pb, [r2.port], { hash: "md5" });
      const report = await rig.reload(moved);
      assertError(report, 1);
      assert.match(report.error!, /in use/i);
      assert.equal(rig.pool("b").conf.hash, "fnv1a_64");
      await assertNothingChanged();
      // A new pool c binds pc, then pool d fails on the busy port: c must not stay bound.
      const added = good + poolYaml("c", pc, [r1.port]) + poolYaml("d", busyPort, [r2.port]);
      const again = await rig.reload(added);
      assertError(again, 1);
      assert.match(again.error!, /in use/i);
      assert.equal(await canConnect(pc), false, "the pool bound before the failure was let go");
      assert.deepEqual(rig.reloader.status().reloads, { ok: 0, error: 4 });
      await assertNothingChanged();
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it("treats an identical file as a no-op: every pool unchanged, no connection opened or closed", async () => {
    // Each probe is one connection the backend counts; two happen between the INFO reads.
    const t0 = [await redisInfoNumber(r1.port, "total_connections_received"), await redisInfoNumber(r2.port, "total_connections_received")];
    const report = await rig.reload(good);
    assert.equal(report.result, "ok", `error: ${report.error}`);
    assert.equal(report.generation, 2);
    assert.deepEqual(report.changes.map((c) => [c.pool, c.action, c.details.length]), [["a", "unchanged", 0], ["b", "unchanged", 0]]);
    const status = rig.reloader.status();
    assert.equal(status.lastError, null, "a successful reload clears the last error");
    assert.deepEqual(status.reloads, { ok: 1, error: 4 });
    await bothServe(); // requests after the reload open nothing either
    const t1 = [await redisInfoNumber(r1.port, "total_connections_received"), await redisInfoNumber(r2.port, "total_connections_received")];
    assert.deepEqual(t1.map((t, i) => t - t0[i]), [1, 1], "only the second INFO probe connected to each backend");
    await assertNothingChanged();
    for (const pool of rig.proxy.pools) assert.equal(pool.servers[0].stats.server_connections_opened, 1);

    // A comment and blank lines change nothing either.
    const commented = `# reloaded\n\n${good}`;
    const second = await rig.reload(commented);
    assert.equal(second.result, "ok", `error: ${second.error}`);
    assert.deepEqual(second.changes.map((c) => c.action), ["unchanged", "unchanged"]);
    await assertNothingChanged();
  });

  it("dry run: returns the diff and applies nothing (generation, counters, listeners, clients)", async () => {
    const before = rig.reloader.status();
    const text = poolYaml("a", pa, [r1.port], { hash: "md5" }) + poolYaml("c", pc, [r2.port]);
    const report = await rig.reload(text, { dryRun: true });
    assert.equal(report.result, "ok", `error: ${report.error}`);
    assert.equal(report.dryRun, true);
    assert.equal(report.generation, before.generation);
    const actions = Object.fromEntries(report.changes.map((c) => [c.pool, c.action]));
    assert.deepEqual(actions, { a: "changed", b: "removed", c: "added" });
    assert.ok(report.changes.find((c) => c.pool === "a")!.details.some((d) => d.includes("md5")));
    assert.deepEqual(rig.reloader.status(), before, "a dry run is not counted");
    assert.equal(rig.pool("a").conf.hash, "fnv1a_64");
    assert.equal(await canConnect(pc), false, "the added pool is not bound");
    await assertNothingChanged();

    const broken = await rig.reload(`${text}  bogus_key: 1\n`, { dryRun: true });
    assert.equal(broken.result, "error");
    assert.equal(broken.dryRun, true);
    assert.match(broken.error ?? "", /"bogus_key" is unknown/);
    assert.deepEqual(rig.reloader.status(), before, "a failed dry run is not counted either");
    await assertNothingChanged();
  });
});
