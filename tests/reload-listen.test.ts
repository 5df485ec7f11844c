/**
 * Hot reload of listen addresses with clients connected: a pool moved to a new port
 * (the new one serves, the old one refuses, its client gets the in-flight reply and is
 * then closed), a removed pool (listener and idle client closed), an added pool (served
 * at once), a pool renamed on the same address and two pools swapping addresses (the
 * listener is handed over: no "address in use").
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ReloadReport } from "../core/reload/types.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, bulkText, callOnce, encodePipeline } from "./helpers/resp.ts";
import { freeze, PipeClient, waitFor } from "./helpers/soak.ts";
import { canConnect, sleep } from "./helpers/ports.ts";
import { backendGet, freePorts, poolYaml, proxyConnIds, type ReloadRig, startReloadProxy } from "./helpers/reload.ts";

const pipe = (...cmds: Arg[][]) => encodePipeline(cmds);
const bulk = (v: string) => `$${v.length}\r\n${v}\r\n`;

function changeOf(report: ReloadReport, pool: string) {
  const found = report.changes.find((c) => c.pool === pool);
  assert.ok(found !== undefined, `no change listed for pool '${pool}': ${JSON.stringify(report.changes)}`);
  return found;
}

function assertOk(report: ReloadReport): void {
  assert.equal(report.error, null, `reload failed: ${report.error}`);
  assert.equal(report.result, "ok");
}

/** Resolves true once the client's socket has closed, false after ms. */
async function closedWithin(client: PipeClient, ms: number): Promise<boolean> {
  return await waitFor(() => client.closed, ms, 10);
}

describe("reload: listen addresses, removed, added, renamed and swapped pools (redis)", () => {
  let r1: ServerProcess, r2: ServerProcess;
  let p1 = 0, p2 = 0, p3 = 0, p4 = 0;
  let rig: ReloadRig;
  const clients: PipeClient[] = [];
  const connect = async (port: number) => {
    const c = await PipeClient.connect(port);
    clients.push(c);
    return c;
  };

  before(async () => {
    [r1, r2] = await Promise.all([startRedis(), startRedis()]);
    [p1, p2, p3, p4] = await freePorts(4);
    rig = await startReloadProxy(poolYaml("a", p1, [r1.port]) + poolYaml("b", p2, [r2.port]));
  });

  after(async () => {
    for (const s of [r1, r2]) s?.kill("SIGCONT");
    for (const c of clients) c.destroy();
    await rig?.close();
    await Promise.all([r1, r2].map((s) => s?.stop()));
  });

  it("moves pool a to a new port: the new port serves, the old refuses, the old port's client gets its in-flight reply, then is closed", async () => {
    const ca = await connect(p1);
    const idle = await connect(p1);
    assert.deepEqual(await ca.exchange(pipe(["SET", "mv:k", "moved-value"]), 1), ["+OK\r\n"]);
    assert.deepEqual(await idle.exchange(pipe(["PING"]), 1), ["+PONG\r\n"]);

    await freeze(r1);
    ca.write(pipe(["GET", "mv:k"])); // in flight while the pool moves
    await sleep(50);
    const pending = rig.reload(poolYaml("a", p3, [r1.port]) + poolYaml("b", p2, [r2.port]));
    await sleep(150);
    r1.kill("SIGCONT");
    const report = await pending;
    assertOk(report);
    assert.equal(changeOf(report, "a").action, "moved");
    assert.equal(changeOf(report, "b").action, "unchanged");
    assert.equal(rig.port("a"), p3);

    const replies = await ca.waitReplies(2, 3000);
    assert.equal(new TextDecoder().decode(replies[1]), bulk("moved-value"), "the in-flight request is answered");
    assert.ok(await closedWithin(ca, 3000), "the old port's client is closed after its reply");
    assert.equal(ca.replies.length, 2, "and gets nothing else");
    assert.ok(await closedWithin(idle, 3000), "the old port's idle client is closed");
    assert.equal(await canConnect(p1), false, "the old port refuses connections");
    assert.equal(bulkText(await callOnce(p3, ["GET", "mv:k"])), "moved-value", "the new port serves the same keys");
  });

  it("removes pool b: its listener closes, its idle client is closed, a busy one after its in-flight reply", async () => {
    const cb = await connect(p2);
    const busy = await connect(p2);
    assert.deepEqual(await cb.exchange(pipe(["SET", "rm:k", "b-value"]), 1), ["+OK\r\n"]);
    assert.equal((await proxyConnIds(r2.port)).length, 1);
    await freeze(r2);
    busy.write(pipe(["GET", "rm:k"])); // in flight while the pool goes away
    await sleep(50);
    const pending = rig.reload(poolYaml("a", p3, [r1.port]));
    await sleep(150);
    r2.kill("SIGCONT");
    const report = await pending;
    assertOk(report);
    const [reply] = await busy.waitReplies(1, 3000);
    assert.equal(new TextDecoder().decode(reply), bulk("b-value"), "the in-flight request is answered");
    assert.ok(await closedWithin(busy, 3000), "then its client is closed");
    assert.equal(busy.replies.length, 1);
    assert.equal(changeOf(report, "b").action, "removed");
    assert.equal(changeOf(report, "a").action, "unchanged");
    assert.deepEqual(rig.proxy.pools.map((p) => p.conf.name), ["a"]);
    assert.equal(rig.proxy.listeners.length, 1);
    assert.ok(await closedWithin(cb, 3000), "pool b's idle client is closed");
    assert.equal(await canConnect(p2), false, "pool b's port refuses connections");
    assert.ok(await waitFor(async () => (await proxyConnIds(r2.port)).length === 0, 3000), "pool b's server connection closes");
  });

  it("adds pool c: it serves at once", async () => {
    const report = await rig.reload(poolYaml("a", p3, [r1.port]) + poolYaml("c", p4, [r2.port]));
    assertOk(report);
    assert.equal(changeOf(report, "c").action, "added");
    assert.equal(changeOf(report, "a").action, "unchanged");
    assert.equal(rig.port("c"), p4);
    // No wait for the port: it is bound before reload() resolves.
    const cc = await connect(p4);
    assert.deepEqual(await cc.exchange(pipe(["SET", "add:k", "c-value"], ["GET", "rm:k"]), 2), ["+OK\r\n", bulk("b-value")]);
    assert.equal(await backendGet(r2.port, "add:k"), "c-value");
  });

  it("renames pool c to d on the same address: the listener is handed over, not bound again", async () => {
    const report = await rig.reload(poolYaml("a", p3, [r1.port]) + poolYaml("d", p4, [r2.port]));
    assertOk(report);
    const d = changeOf(report, "d");
    assert.equal(d.action, "handed_over");
    assert.equal(d.from, "c");
    assert.deepEqual(rig.proxy.pools.map((p) => p.conf.name), ["a", "d"]);
    assert.equal(rig.port("d"), p4);
    assert.equal(bulkText(await callOnce(p4, ["GET", "add:k"])), "c-value");
    assert.equal(bulkText(await callOnce(p3, ["GET", "mv:k"])), "moved-value");
  });

  it("swaps the addresses of pools a and d: no 'address in use', each port now serves its new pool", async () => {
    const report = await rig.reload(poolYaml("a", p4, [r1.port]) + poolYaml("d", p3, [r2.port]));
    assertOk(report);
    assert.equal(rig.port("a"), p4);
    assert.equal(rig.port("d"), p3);
    const c4 = await connect(p4);
    const c3 = await connect(p3);
    assert.deepEqual(await c4.exchange(pipe(["SET", "swap:4", "to-r1"], ["GET", "mv:k"]), 2), ["+OK\r\n", bulk("moved-value")]);
    assert.deepEqual(await c3.exchange(pipe(["SET", "swap:3", "to-r2"], ["GET", "add:k"]), 2), ["+OK\r\n", bulk("c-value")]);
    assert.equal(await backendGet(r1.port, "swap:4"), "to-r1");
    assert.equal(await backendGet(r2.port, "swap:4"), null);
    assert.equal(await backendGet(r2.port, "swap:3"), "to-r2");
    assert.equal(await backendGet(r1.port, "swap:3"), null);
  });
});
