/**
 * Reload through the real CLI (mod.ts on the runtime running the tests) in front of two
 * real redis-servers: edit the config file, trigger a reload by SIGUSR1 (Node and Bun;
 * on Deno the startup warning instead), by POST /reload (with --admin-token) and by
 * --watch, and check that a pool added by the reload serves keys on its backend and that
 * /metrics and /pools follow. A dry run changes nothing; a broken file is refused with
 * file:line while the old pools keep serving; a bad --admin-token file stops the start.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { kill, killStarted, read, runCli, startCli, waitUntil } from "./helpers/cli.ts";
import type { Child } from "./helpers/cli.ts";
import { canConnect, freePort, waitForPort } from "./helpers/ports.ts";
import { parseExposition } from "./helpers/prometheus.ts";
import { rawText, redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { runtimeName } from "./helpers/runtime.ts";

const DENO_WARNING = "never send SIGUSR1 to this process on Deno: it opens a V8 inspector on 127.0.0.1:9229; " +
  "reload with POST /reload or --watch";
const TOKEN = "cli-reload-token-7f3a";

let tmp = "";
let redisA: ServerProcess;
let redisB: ServerProcess;

const resp = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");

/** Pool alpha on `alphaPort` -> redis A; with `betaPort`, pool beta -> redis B too. */
function confText(alphaPort: number, betaPort: number | null): string {
  let yml = `alpha:\n  listen: 127.0.0.1:${alphaPort}\n  redis: true\n  servers:\n    - 127.0.0.1:${redisA.port}:1\n`;
  if (betaPort !== null) yml += `beta:\n  listen: 127.0.0.1:${betaPort}\n  redis: true\n  servers:\n    - 127.0.0.1:${redisB.port}:1\n`;
  return yml;
}

/** Line 3 holds the bad value. */
const BROKEN = (alphaPort: number) => `alpha:\n  listen: 127.0.0.1:${alphaPort}\n  hash: nope\n  redis: true\n` +
  `  servers:\n    - 127.0.0.1:${redisA.port}:1\n`;

/** SET through the proxy port, then read the key straight from the backend it must be on. */
async function servesOn(port: number, backend: ServerProcess, key: string): Promise<void> {
  const value = `v-${key}-${Date.now()}`;
  assert.equal(await rawText(port, resp("SET", key, value), { untilEnds: "\r\n", timeoutMs: 5000 }), "+OK\r\n");
  assert.equal((await redisCli(backend.port, "GET", key)).trim(), value);
}

interface Running {
  child: Child;
  conf: string;
  log: string;
  alphaPort: number;
  betaPort: number;
  admin: string;
}

/** Start the CLI on a one-pool config with the admin API; wait until pool alpha listens. */
async function startWithOnePool(tag: string, extra: string[] = []): Promise<Running> {
  const alphaPort = await freePort();
  const betaPort = await freePort();
  const adminPort = await freePort();
  const conf = path.join(tmp, `${tag}.yml`);
  const log = path.join(tmp, `${tag}.log`);
  fs.writeFileSync(conf, confText(alphaPort, null));
  const child = startCli(["-c", conf, "-o", log, "-s", String(await freePort()), "--admin", `127.0.0.1:${adminPort}`, ...extra]);
  await waitForPort(alphaPort, 30_000);
  await waitForPort(adminPort, 30_000);
  return { child, conf, log, alphaPort, betaPort, admin: `http://127.0.0.1:${adminPort}` };
}

async function stop(run: Running): Promise<void> {
  kill(run.child.pid, "SIGTERM");
  assert.equal((await run.child.done).code, 0, read(run.log));
}

/** The config metrics from /metrics. */
async function configMetrics(admin: string): Promise<{ generation: number; ok: number; error: number; at: number }> {
  const families = parseExposition(await (await fetch(`${admin}/metrics`)).text());
  const one = (name: string, result?: string) => {
    const samples = families.get(name)?.samples.filter((s) => result === undefined || s.labels.get("result") === result) ?? [];
    assert.equal(samples.length, 1, `${name} ${result ?? ""}`);
    return samples[0].value;
  };
  return {
    generation: one("nutcracker_config_generation"),
    ok: one("nutcracker_config_reloads_total", "ok"),
    error: one("nutcracker_config_reloads_total", "error"),
    at: one("nutcracker_config_last_reload_timestamp_seconds"),
  };
}

async function postReload(admin: string, query = "", authorization: string | null = `Bearer ${TOKEN}`) {
  const headers: Record<string, string> = authorization === null ? {} : { authorization };
  const res = await fetch(`${admin}/reload${query}`, { method: "POST", headers });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

describe("reloading the CLI's configuration", () => {
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nc-cli-reload-"));
    redisA = await startRedis();
    redisB = await startRedis();
  });

  after(async () => {
    killStarted();
    await redisA?.stop();
    await redisB?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("SIGUSR1 reloads on Node and Bun; on Deno the startup log warns never to send it", async () => {
    const run = await startWithOnePool("usr1");
    await waitUntil(() => read(run.log).includes("started on pid"), "the start line");
    if (runtimeName() === "deno") {
      // No SIGUSR1 here: it would open a V8 inspector on 127.0.0.1:9229.
      assert.ok(read(run.log).includes(DENO_WARNING), read(run.log));
      assert.match(read(run.log), /\] .*never send SIGUSR1/);
      await stop(run);
      return;
    }
    assert.equal(read(run.log).includes("never send SIGUSR1"), false);
    fs.writeFileSync(run.conf, confText(run.alphaPort, run.betaPort));
    kill(run.child.pid, "SIGUSR1");
    await waitUntil(() => canConnect(run.betaPort), "pool beta to listen after SIGUSR1");
    await servesOn(run.betaPort, redisB, "usr1:beta");
    await servesOn(run.alphaPort, redisA, "usr1:alpha");
    const m = await configMetrics(run.admin);
    assert.deepEqual([m.generation, m.ok, m.error], [2, 1, 0]);
    assert.ok(Math.abs(m.at - Date.now() / 1000) < 60, `last reload at ${m.at}`);
    assert.ok(read(run.log).includes("signal 10 (SIGUSR1) received"), read(run.log));
    await stop(run);
  });

  it("POST /reload needs the --admin-token; a dry run changes nothing; a reload adds the pool", async () => {
    const tokenFile = path.join(tmp, "token");
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    const run = await startWithOnePool("post", ["--admin-token", tokenFile]);
    assert.equal((await postReload(run.admin, "", null)).status, 401);
    assert.equal((await postReload(run.admin, "", "Bearer wrong")).status, 403);

    fs.writeFileSync(run.conf, confText(run.alphaPort, run.betaPort));
    const dry = await postReload(run.admin, "?dry_run=1");
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dryRun, true);
    const actions = (dry.body.changes as { pool: string; action: string }[]).map((c) => `${c.pool} ${c.action}`);
    assert.deepEqual(actions.sort(), ["alpha unchanged", "beta added"]);
    assert.equal(await canConnect(run.betaPort), false, "a dry run binds nothing");
    assert.deepEqual(await configMetrics(run.admin), { generation: 1, ok: 0, error: 0, at: 0 });

    const applied = await postReload(run.admin);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    assert.deepEqual([applied.body.result, applied.body.dryRun, applied.body.generation], ["ok", false, 2]);
    await servesOn(run.betaPort, redisB, "post:beta");
    const m = await configMetrics(run.admin);
    assert.deepEqual([m.generation, m.ok, m.error], [2, 1, 0]);
    const pools = await (await fetch(`${run.admin}/pools`)).json() as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(pools), ["alpha", "beta"]);
    assert.deepEqual([pools.beta.generation, pools.beta.last_reload_error], [2, null]);
    assert.ok(read(run.log).includes("POST /reload: reloading the configuration"), read(run.log));
    await stop(run);
  });

  it("a broken file: POST /reload answers 400 with file:line, and the old pools keep serving", async () => {
    const tokenFile = path.join(tmp, "token2");
    fs.writeFileSync(tokenFile, TOKEN);
    const run = await startWithOnePool("broken", ["--admin-token", tokenFile]);
    fs.writeFileSync(run.conf, confText(run.alphaPort, run.betaPort));
    assert.equal((await postReload(run.admin)).status, 200);
    fs.writeFileSync(run.conf, BROKEN(run.alphaPort));
    const refused = await postReload(run.admin);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.result, "error");
    assert.ok(String(refused.body.error).includes(`${run.conf}:3`), String(refused.body.error));
    await servesOn(run.alphaPort, redisA, "broken:alpha");
    await servesOn(run.betaPort, redisB, "broken:beta");
    const m = await configMetrics(run.admin);
    assert.deepEqual([m.generation, m.ok, m.error], [2, 1, 1]);
    const pools = await (await fetch(`${run.admin}/pools`)).json() as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(pools), ["alpha", "beta"]);
    assert.equal(pools.alpha.last_reload_error, refused.body.error);
    await stop(run);
  });

  it("--watch reloads when the config file changes", async () => {
    const run = await startWithOnePool("watch", ["--watch"]);
    await waitUntil(() => read(run.log).includes("for changes"), "the watch to start");
    fs.writeFileSync(run.conf, confText(run.alphaPort, run.betaPort));
    await waitUntil(() => canConnect(run.betaPort), "pool beta to listen after the file changed", 15_000);
    await servesOn(run.betaPort, redisB, "watch:beta");
    const m = await configMetrics(run.admin);
    assert.deepEqual([m.generation, m.ok, m.error], [2, 1, 0]);
    assert.ok(read(run.log).includes("configuration file changed"), read(run.log));
    await stop(run);
  });

  it("a missing or empty --admin-token file stops the start with an error naming the file", async () => {
    const conf = path.join(tmp, "token-bad.yml");
    fs.writeFileSync(conf, confText(await freePort(), null));
    const missing = path.join(tmp, "no-such-token");
    const empty = path.join(tmp, "empty-token");
    fs.writeFileSync(empty, "\n");
    for (const [file, why] of [[missing, /failed to read/], [empty, /is empty/]] as const) {
      const r = await runCli(["-c", conf, "-s", String(await freePort()), "--admin", `127.0.0.1:${await freePort()}`, "--admin-token", file]);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.stderr.includes(`'${file}'`), r.stderr);
      assert.match(r.stderr, why);
    }
  });
});
