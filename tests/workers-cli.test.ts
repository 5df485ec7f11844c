/**
 * `--workers N` through the real CLI on the runtime running the tests: a supervisor and two
 * worker processes share the pool's address (node:cluster on Node and Bun, SO_REUSEPORT on
 * Deno), both serve, the stats port and /metrics sum them, a killed worker is replaced, a
 * reload reaches every worker, SIGTERM stops them all, and -d/-p name the supervisor.
 * One redis-server for the file; every process is killed by PID in `after`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FLAG_DEFAULTS, MAX_WORKERS, parseFlags } from "../adapters/flags.ts";
import { kill, killStarted, read, runCli, startCli, track, untrack, waitUntil } from "./helpers/cli.ts";
import { runtimeName } from "./helpers/runtime.ts";
import { callOnce } from "./helpers/resp.ts";
import { isAlive, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { freePort } from "./helpers/ports.ts";
import {
  killWorkers, metrics, poolConf, sampleValue, servingPid, servingPidAt, serverStats, startSupervised, statsJson, type Supervised, workers,
} from "./helpers/workers.ts";

let tmp = "";
let redis: ServerProcess;
let sup: Supervised;

/** `n` SETs, each on a new connection; returns the pids that served them. */
async function setOnNewConnections(port: number, n: number, tag: string): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) {
    const reply = await callOnce(port, ["SET", `${tag}:${i}`, "v"]);
    assert.deepEqual(reply, { type: "status", text: "OK" });
  }
  for (let i = 0; i < 12; i++) pids.add(await servingPid(port));
  return pids;
}

const requestsOf = async (s: Supervised) => serverStats(await statsJson(s.statsPort), "alpha", `127.0.0.1:${redis.port}`).requests;

/** The summed requests once the workers' reports (every 100 ms) have caught up: equal twice, 300 ms apart. */
async function settledRequests(s: Supervised): Promise<number> {
  let last = await requestsOf(s);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const now = await requestsOf(s);
    if (now === last) return now;
    last = now;
  }
}

describe("--workers through the CLI", () => {
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nc-workers-"));
    redis = await startRedis();
    sup = await startSupervised(tmp, "main", redis.port);
  });

  after(async () => {
    killStarted();
    killWorkers();
    await redis?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("parses --workers N|auto and --drain-timeout; refuses 0, too many and words", () => {
    const flags = (argv: string[]) => {
      const r = parseFlags(argv);
      assert.ok(r.ok, r.ok ? "" : r.error);
      return r.flags;
    };
    assert.equal(flags([]).workers, null);
    assert.equal(flags([]).drainTimeout, FLAG_DEFAULTS.drainTimeout);
    assert.equal(flags(["--workers", "3"]).workers, 3);
    assert.equal(flags(["--workers=auto"]).workers, "auto");
    assert.equal(flags(["--drain-timeout", "500"]).drainTimeout, 500);
    for (const bad of ["0", String(MAX_WORKERS + 1), "two", ""]) {
      const r = parseFlags(["--workers", bad]);
      assert.ok(!r.ok, bad);
    }
    const r = parseFlags(["--drain-timeout", "-1"]);
    assert.ok(!r.ok);
  });

  it("the pid file holds the supervisor; new connections are served by both workers", async () => {
    assert.equal(sup.pid, sup.child.pid);
    const view = await workers(sup);
    assert.equal(view.generation, 1);
    assert.deepEqual(view.workers.map((w) => [w.slot, w.state]), [[0, "ready"], [1, "ready"]]);
    const pids = await setOnNewConnections(sup.port, 10, "spread");
    assert.deepEqual([...pids].sort(), view.workers.map((w) => w.pid).sort(), `served by ${[...pids]}`);
    assert.ok(!pids.has(sup.pid));
    assert.match(read(sup.log), /supervisor of 2 workers/);
  });

  it("the stats port and /metrics sum the workers' counters in twemproxy's JSON shape and Prometheus names", async () => {
    const before = await settledRequests(sup);
    const pids = await setOnNewConnections(sup.port, 30, "sum");
    assert.equal(pids.size, 2);
    // 30 SETs and 12 INFOs (answered by the proxy itself: not sent to the server).
    await waitUntil(async () => await requestsOf(sup) === before + 30, "the summed requests", 10_000);
    const json = await statsJson(sup.statsPort);
    assert.equal(json.service, "nutcracker");
    const server = serverStats(json, "alpha", `127.0.0.1:${redis.port}`);
    assert.equal(server.responses, server.requests);
    assert.equal(server.server_connections, 2, "one server connection per worker");
    const families = await metrics(sup.admin);
    const labels = { pool: "alpha", server: `127.0.0.1:${redis.port}` };
    assert.equal(sampleValue(families, "nutcracker_requests_total", labels), server.requests);
    assert.equal(sampleValue(families, "nutcracker_server_connections", labels), 2);
    assert.equal(sampleValue(families, "nutcracker_workers", { state: "ready" }), 2);
    assert.equal(sampleValue(families, "nutcracker_worker_generation"), 1);
    const set = sampleValue(families, "nutcracker_request_duration_seconds_count", { ...labels, command: "set" });
    assert.ok(set >= 30, `set latency count ${set}`);
  });

  it("a killed worker is replaced in its slot, and the sums keep its counters", async () => {
    const view = await workers(sup);
    const victim = view.workers[0];
    const counted = await requestsOf(sup);
    await new Promise((resolve) => setTimeout(resolve, 300));
    kill(victim.pid, "SIGKILL");
    await waitUntil(async () => {
      const now = await workers(sup);
      return now.workers.length === 2 && now.workers.every((w) => w.state === "ready" && w.pid !== victim.pid);
    }, "a new worker 0", 30_000);
    const now = await workers(sup);
    assert.equal(now.replaced, 1);
    assert.equal(now.workers[0].slot, 0);
    assert.match(read(sup.log), new RegExp(`pid ${victim.pid}.*exited unexpectedly \\(signal SIGKILL\\); starting a new worker 0`));
    assert.ok(await requestsOf(sup) >= counted, "the summed requests never go back");
    const pids = await setOnNewConnections(sup.port, 4, "after-kill");
    assert.ok(pids.has(now.workers[0].pid), `the new worker serves: ${[...pids]}`);
  });

  it("POST /reload applies a new config in every worker; a bad file changes none", async () => {
    fs.writeFileSync(sup.conf, poolConf(sup.port, redis.port, "  timeout: 400\n"));
    const post = () => fetch(`${sup.admin}/reload`, { method: "POST", headers: { "content-type": "application/json" } });
    const ok = await post();
    const body = await ok.json() as { result: string; generation: number };
    assert.equal(ok.status, 200, JSON.stringify(body));
    assert.equal(body.generation, 2);
    for (const slot of ["0", "1"]) {
      const pools = await (await fetch(`${sup.admin}/pools?worker=${slot}`)).json() as Record<string, { timeout: number }>;
      assert.equal(pools.alpha.timeout, 400, `worker ${slot}`);
    }
    fs.writeFileSync(sup.conf, poolConf(sup.port, redis.port, "  hash: nope\n"));
    const bad = await post();
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /is not a valid hash/);
    const pools = await (await fetch(`${sup.admin}/pools?worker=1`)).json() as Record<string, { timeout: number }>;
    assert.equal(pools.alpha.timeout, 400);
    assert.deepEqual(await callOnce(sup.port, ["PING"]), { type: "status", text: "PONG" });
  });

  it("SIGTERM stops the supervisor and every worker, removes the pid file and exits 0", async () => {
    const pids = (await workers(sup)).workers.map((w) => w.pid);
    kill(sup.pid, "SIGTERM");
    const result = await sup.child.done;
    assert.equal(result.code, 0, read(sup.log));
    assert.equal(fs.existsSync(sup.pidFile), false);
    await waitUntil(() => pids.every((pid) => !isAlive(pid)), "every worker to exit", 10_000);
    assert.match(read(sup.log), /stopping the workers and exiting[\s\S]*stopped/);
  });

  it("a unix socket address is shared by the workers on Node and Bun; Deno refuses it by name", async () => {
    const sock = path.join(tmp, "w.sock");
    const conf = path.join(tmp, "unix.yml");
    const log = path.join(tmp, "unix.log");
    const pidFile = path.join(tmp, "unix.pid");
    fs.writeFileSync(conf, `alpha:\n  listen: ${sock} 0666\n  redis: true\n  servers:\n   - 127.0.0.1:${redis.port}:1\n`);
    const flags = ["--workers", "2", "-c", conf, "-p", pidFile, "-o", log, "-s", String(await freePort())];
    if (runtimeName() === "deno") {
      const result = await runCli(flags);
      assert.equal(result.code, 1);
      assert.match(read(log), /workers on Deno cannot share a unix socket/);
      return;
    }
    const child = startCli(flags);
    await waitUntil(() => read(pidFile) !== "", `the pid file (log: ${read(log)})`, 60_000);
    const pids = new Set<number>();
    for (let i = 0; i < 8; i++) {
      pids.add(await servingPidAt(sock));
    }
    assert.equal(pids.size, 2, [...pids].join(" "));
    assert.equal(fs.statSync(sock).mode & 0o777, 0o666);
    kill(child.pid, "SIGTERM");
    assert.equal((await child.done).code, 0, read(log));
    assert.equal(fs.existsSync(sock), false, "the socket file is removed with the last listener");
  });

  it("without --workers, SIGUSR2 is logged and ignored, as nutcracker does", async () => {
    const port = await freePort();
    const conf = path.join(tmp, "single.yml");
    const log = path.join(tmp, "single.log");
    fs.writeFileSync(conf, poolConf(port, redis.port));
    const child = startCli(["-c", conf, "-o", log, "-s", String(await freePort())]);
    await waitUntil(() => read(log).includes("listening on"), `the proxy to listen (log: ${read(log)})`, 30_000);
    kill(child.pid, "SIGUSR2");
    await waitUntil(() => read(log).includes("signal 12 (SIGUSR2) received, ignored"), "the SIGUSR2 line", 10_000);
    assert.deepEqual(await callOnce(port, ["PING"]), { type: "status", text: "PONG" });
    kill(child.pid, "SIGTERM");
    assert.equal((await child.done).code, 0, read(log));
  });

  it("-d with --workers: the foreground exits 0 once all listen, the pid file names the serving supervisor", async () => {
    const port = await freePort();
    const conf = path.join(tmp, "daemon.yml");
    const pidFile = path.join(tmp, "daemon.pid");
    const log = path.join(tmp, "daemon.log");
    fs.writeFileSync(conf, poolConf(port, redis.port));
    const result = await runCli(["-d", "--workers", "2", "-c", conf, "-p", pidFile, "-o", log, "-s", String(await freePort())]);
    assert.equal(result.code, 0, result.stderr + read(log));
    const pid = Number(read(pidFile));
    track(pid);
    assert.ok(isAlive(pid));
    const served = await servingPid(port);
    assert.notEqual(served, pid, "a worker serves, not the supervisor");
    kill(pid, "SIGTERM");
    await waitUntil(() => !isAlive(pid) && !isAlive(served), "the daemon and its workers to exit", 20_000);
    untrack(pid);
    assert.equal(fs.existsSync(pidFile), false);
  });
});
