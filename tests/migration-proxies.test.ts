/**
 * Store-mode migration with two proxy processes (the CLI) serving one pool, as in production:
 * one reloads first and must not move a key while the other still routes by the old ring;
 * once both reloaded, one drives the mover and both end on the new ring. Increments from
 * clients of both proxies are all counted. A proxy started on the old ring afterwards is
 * refused by the servers instead of writing where keys no longer are. A driver killed half
 * way is replaced (the lease expires) and, restarted on the new config, joins the migration.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { PipeClient, waitFor } from "./helpers/soak.ts";
import { poolYaml } from "./helpers/reload.ts";
import { freePort, waitForPort } from "./helpers/ports.ts";
import { type Child, kill, killStarted, startCli } from "./helpers/cli.ts";
import { checkKeys, createKeys, misplacedKeys, Tally, userKeysOn } from "./helpers/migration.ts";

const KEYS = 20_000;

interface ProxyProc {
  readonly name: string;
  readonly conf: string;
  readonly port: number;
  readonly admin: string;
  child: Child;
}

describe("migration: store mode with two proxy processes", () => {
  let r: ServerProcess[];
  let tmp = "";
  let a: ProxyProc;
  let b: ProxyProc;
  let client: PipeClient;
  const tally = new Tally();
  const yaml = (proc: ProxyProc, servers: ServerProcess[], extra: Record<string, string | number> = {}) =>
    poolYaml("st", proc.port, servers.map((s) => s.port), { migration: "store", ...extra });

  async function startProc(name: string, servers: ServerProcess[], extra: Record<string, string | number> = {}): Promise<ProxyProc> {
    const proc = { name, conf: path.join(tmp, `${name}.yml`), port: await freePort(), admin: "", child: null as unknown as Child };
    const adminPort = await freePort();
    proc.admin = `http://127.0.0.1:${adminPort}`;
    fs.writeFileSync(proc.conf, yaml(proc, servers, extra));
    return restart(proc, adminPort);
  }

  async function restart(proc: ProxyProc, adminPort = Number(new URL(proc.admin).port)): Promise<ProxyProc> {
    proc.child = startCli(["-c", proc.conf, "-o", path.join(tmp, `${proc.name}.log`), "-s", String(await freePort()), "--admin", `127.0.0.1:${adminPort}`], 300_000);
    await waitForPort(proc.port, 30_000);
    await waitForPort(adminPort, 30_000);
    return proc;
  }

  async function reload(proc: ProxyProc, servers: ServerProcess[], extra: Record<string, string | number> = {}): Promise<void> {
    fs.writeFileSync(proc.conf, yaml(proc, servers, extra));
    const res = await fetch(`${proc.admin}/reload`, { method: "POST", headers: { "content-type": "application/json" } });
    assert.equal(res.status, 200, await res.text());
  }

  async function migration(proc: ProxyProc): Promise<{ running: boolean; migration: Record<string, unknown> | null }> {
    return await (await fetch(`${proc.admin}/pools/st/migration`)).json();
  }

  function control(proc: ProxyProc, action: string): Promise<Response> {
    return fetch(`${proc.admin}/pools/st/migration/${action}`, { method: "POST", headers: { "content-type": "application/json" } });
  }

  before(async () => {
    r = await Promise.all([startRedis(), startRedis(), startRedis()]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "migration-proxies-"));
    a = await startProc("a", [r[0], r[1]]);
    b = await startProc("b", [r[0], r[1]]);
    client = await PipeClient.connect(a.port);
    await createKeys(client, "pk", KEYS);
  });

  after(async () => {
    client?.destroy();
    killStarted();
    await Promise.all((r ?? []).map((s) => s?.stop()));
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("2 -> 3: nothing moves until both proxies reloaded; then all keys move, every increment from both is counted", async () => {
    let done = false;
    const loads = [a, a, b, b].map((proc, i) => tally.run(proc.port, `${proc.name}${i}`, () => done, 100_000));
    await reload(a, [r[0], r[1], r[2]]);
    assert.ok(await waitFor(async () => (await migration(a)).migration?.phase === "waiting_for_proxies", 10000, 50),
      "the proxy that reloaded first drives, and waits for the other");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const waiting = await migration(a);
    assert.equal(waiting.migration?.phase, "waiting_for_proxies");
    assert.ok((waiting.migration?.waiting_for as string[]).some((c) => c.includes(".r.")), JSON.stringify(waiting.migration?.waiting_for));
    assert.deepEqual(await userKeysOn(r[2]), [], "no key moved while a proxy still routes by the old ring");
    // Control: refused without the admin's rules (loopback needs Content-Type: application/json), then pause and resume.
    assert.ok((await fetch(`${a.admin}/pools/st/migration/pause`, { method: "POST" })).status >= 400);
    assert.equal((await control(a, "pause")).status, 200);
    assert.equal((await migration(a)).migration?.phase, "paused");
    assert.equal((await control(a, "resume")).status, 200);

    await reload(b, [r[0], r[1], r[2]]);
    const finished = await waitFor(async () => !(await migration(a)).running && !(await migration(b)).running, 60000, 100);
    done = true;
    assert.ok(finished, `both proxies finish: ${JSON.stringify([await migration(a), await migration(b)])}\n${fs.readFileSync(path.join(tmp, "a.log"), "utf8").slice(-3000)}`);
    await Promise.all(loads);
    assert.deepEqual((await misplacedKeys([r[0], r[1], r[2]], r)).slice(0, 5), []);
    assert.ok((await userKeysOn(r[2])).length > KEYS / 5);
    await tally.check(client);
    await checkKeys(client, "pk", KEYS);
    const metrics = (await (await fetch(`${a.admin}/metrics`)).text()) + (await (await fetch(`${b.admin}/metrics`)).text());
    assert.match(metrics, /^nutcracker_migration_running\{pool="st"\} 0$/m);
    const moved = [...metrics.matchAll(/^nutcracker_migration_keys_moved_total\{pool="st",server="[^"]+"\} (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(moved.reduce((x, y) => x + y, 0) > KEYS / 5, `the driver's metrics count the moved keys: ${moved}`);
  });

  it("a proxy started with the old ring is refused by the servers instead of writing to the old owners", async () => {
    const stale = await startProc("stale", [r[0], r[1]]);
    const conn = await PipeClient.connect(stale.port);
    const [reply] = await conn.exchange(encodePipeline([["SET", "stale-write", "x"]]), 1);
    conn.destroy();
    assert.match(reply, /^-/, "an error, not a write");
    for (const server of r) assert.ok(!(await userKeysOn(server)).includes("stale-write"));
    kill(stale.child.pid, "SIGTERM");
    await stale.child.done;
  });

  it("3 -> 2 with the driver killed half way: the other proxy takes over; the driver restarted on the new config joins", async () => {
    await reload(a, [r[0], r[2]], { migration_rate: 500 });
    await reload(b, [r[0], r[2]], { migration_rate: 500 });
    assert.ok(await waitFor(async () => {
      const [ma, mb] = [await migration(a), await migration(b)];
      return [ma, mb].some((m) => m.migration?.phase === "moving" && Number(m.migration?.keys_moved) > 100);
    }, 30000, 100), "the mover is moving");
    const driver = (await migration(a)).migration?.driver === true ? a : b;
    const other = driver === a ? b : a;
    kill(driver.child.pid, "SIGKILL");
    await driver.child.done;
    let done = false;
    const loads = [0, 1].map((i) => tally.run(other.port, `${other.name}k${i}`, () => done, 100_000));
    await restart(driver);
    const joined = await migration(driver);
    assert.equal(joined.running, true, "the restarted proxy joins the recorded migration");
    assert.ok(await waitFor(async () => !(await migration(a)).running && !(await migration(b)).running, 90000, 200), "both finish");
    done = true;
    await Promise.all(loads);
    assert.deepEqual((await misplacedKeys([r[0], r[2]], r)).slice(0, 5), []);
    assert.deepEqual(await userKeysOn(r[1]), []);
    client.destroy();
    client = await PipeClient.connect(other.port);
    await tally.check(client);
    await checkKeys(client, "pk", KEYS);
  });
});
