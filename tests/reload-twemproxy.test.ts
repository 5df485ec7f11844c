/**
 * twemproxy's own reload scenarios (tests/test_system/test_reload.py in twitter/twemproxy:
 * test_reload_with_old_conf, test_new_port, test_pool_add_del), run against the in-process
 * reloader: a reload with the same file keeps the connected client serving; a pool moved to a
 * new port is refused on the old one and serves the same keys on the new one; a pool added
 * and then removed leaves exactly the TCP sockets expected, counted from /proc.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { bulkText, callOnce, RespClient } from "./helpers/resp.ts";
import { waitFor } from "./helpers/soak.ts";
import { freePorts, ownListeningPorts, ownTcpSockets, poolYaml, type ReloadRig, startReloadProxy } from "./helpers/reload.ts";

/** Resolves true when connecting to 127.0.0.1:port is refused (ECONNREFUSED), false otherwise. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => done(false), 1000);
    const done = (yes: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(yes);
    };
    sock.once("connect", () => done(false));
    sock.once("error", (err: Error & { code?: string }) => done(err.code === "ECONNREFUSED"));
  });
}

describe("twemproxy's reload scenarios (test_reload.py)", () => {
  let r1: ServerProcess, r2: ServerProcess;
  let p0 = 0, p1 = 0, p2 = 0;
  let rig: ReloadRig | null = null;
  const clients: RespClient[] = [];
  const connect = async (port: number) => {
    const c = await RespClient.connect(port);
    clients.push(c);
    return c;
  };
  /** The pool of test_reload.py: fnv1a_64, modula, two named servers. */
  const reloadTest = (name: string, listen: number, extra: Record<string, string | number | boolean> = {}) =>
    poolYaml(name, listen, [`127.0.0.1:${r1.port}:1 redis-2100`, `127.0.0.1:${r2.port}:1 redis-2101`], {
      hash: "fnv1a_64",
      distribution: "modula",
      ...extra,
    });

  before(async () => {
    [r1, r2] = await Promise.all([startRedis(), startRedis()]);
    [p0, p1, p2] = await freePorts(3);
  });

  /** Each scenario starts its own proxy from reload_test on p0, as the suite's setup does. */
  const start = async () => {
    await stop();
    rig = await startReloadProxy(reloadTest("reload_test", p0));
  };
  const stop = async () => {
    for (const c of clients.splice(0)) c.close();
    await rig?.close();
    rig = null;
  };

  after(async () => {
    await stop();
    await Promise.all([r1, r2].map((s) => s?.stop()));
  });

  it("test_reload_with_old_conf: after a reload with the same file the connected client keeps serving, and a new one is served", async () => {
    await start();
    assert.deepEqual(await callOnce(p0, ["SET", "k", "v"]), { type: "status", text: "OK" });
    const conn = await connect(p0);
    assert.equal(bulkText(await conn.call(["GET", "k"])), "v");
    const report = await rig!.reload(rig!.yaml);
    assert.equal(report.result, "ok", `error: ${report.error}`);
    assert.equal(bulkText(await conn.call(["GET", "k"])), "v");
    const conn2 = await connect(p0);
    assert.equal(bulkText(await conn2.call(["GET", "k"])), "v");
    assert.equal(bulkText(await conn.call(["GET", "k"])), "v");
    assert.equal(conn.closed, false);
  });

  it("test_new_port: the old port refuses connections and the new one serves the keys written before", async () => {
    await start();
    const keys = Array.from({ length: 20 }, (_, i) => `np:${i}`);
    const writer = await connect(p0);
    for (const k of keys) assert.deepEqual(await writer.call(["SET", k, `v-${k}`]), { type: "status", text: "OK" });
    const report = await rig!.reload(reloadTest("reload_test", p1, { timeout: 400 }));
    assert.equal(report.result, "ok", `error: ${report.error}`);
    assert.equal(report.changes[0].action, "moved");
    assert.equal(await refused(p0), true, "the old port refuses connections");
    const reader = await connect(p1);
    for (const k of keys) assert.equal(bulkText(await reader.call(["GET", k])), `v-${k}`);
    assert.ok(await waitFor(() => writer.closed, 3000), "the old port's client is closed");
  });

  it("test_pool_add_del: add a second pool, then drop it and move the first: exactly the expected TCP sockets remain", async () => {
    await start();
    assert.deepEqual(await callOnce(p0, ["SET", "k", "v"]), { type: "status", text: "OK" });
    const added = await rig!.reload(reloadTest("reload_test", p0) + "\n" + reloadTest("reload_test2", p1));
    assert.equal(added.result, "ok", `error: ${added.error}`);
    const c1 = await connect(p0);
    const c2 = await connect(p1);
    assert.equal(bulkText(await c1.call(["GET", "k"])), "v");
    assert.equal(bulkText(await c2.call(["GET", "k"])), "v");
    assert.deepEqual(ownListeningPorts([p0, p1, p2]), [p0, p1].sort((a, b) => a - b));

    const moved = await rig!.reload(reloadTest("reload_test", p2, { preconnect: true }));
    assert.equal(moved.result, "ok", `error: ${moved.error}`);
    assert.deepEqual(moved.changes.map((c) => [c.pool, c.action]), [["reload_test", "moved"], ["reload_test2", "removed"]]);
    assert.equal(await refused(p0), true, "the first pool's old port refuses");
    assert.equal(await refused(p1), true, "the removed pool's port refuses");
    const c3 = await connect(p2);
    assert.equal(bulkText(await c3.call(["GET", "k"])), "v");
    assert.ok(await waitFor(() => c1.closed && c2.closed, 3000), "the clients of the old ports are closed");

    // twemproxy counts pool + stats + 2 backend + 1 client = 5 sockets; in process there is no
    // stats socket, and the proxy's side of each socket is what counts: the listener on p2, the
    // accepted client, and one preconnected connection to each server.
    const proxySide = () =>
      ownTcpSockets()
        .filter((s) => [p0, p1, p2].includes(s.localPort) || [r1.port, r2.port].includes(s.remotePort))
        .map((s) => `${s.state} ${s.localPort === p2 ? "p2" : s.localPort === p0 ? "p0" : s.localPort === p1 ? "p1" : "->"}${s.remotePort === r1.port ? "r1" : s.remotePort === r2.port ? "r2" : ""}`)
        .sort();
    const want = ["ESTABLISHED ->r1", "ESTABLISHED ->r2", "ESTABLISHED p2", "LISTEN p2"];
    await waitFor(() => JSON.stringify(proxySide()) === JSON.stringify(want), 3000);
    assert.deepEqual(proxySide(), want);
  });
});
