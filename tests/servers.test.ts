/**
 * The real-server test helpers work the same on Node, Deno and Bun: servers start on free
 * ports, answer raw protocol bytes, take signals, restart, and leave no process behind.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { canConnect, freePort, waitForPort } from "./helpers/ports.ts";
import {
  isAlive,
  rawExchange,
  rawRequest,
  rawText,
  redisCli,
  type ServerProcess,
  signal,
  startMemcached,
  startRedis,
} from "./helpers/servers.ts";

const line = { untilEnds: "\r\n", timeoutMs: 3000 };

describe("test server helpers", () => {
  let redisA: ServerProcess;
  let redisB: ServerProcess;
  let mc: ServerProcess;
  const pids: number[] = [];

  before(async () => {
    [redisA, redisB, mc] = await Promise.all([startRedis(), startRedis(), startMemcached()]);
  });

  after(async () => {
    await Promise.all([redisA, redisB, mc].filter(Boolean).map((s) => s.stop()));
  });

  it("startRedis() and startMemcached() give three distinct ports and live PIDs", () => {
    assert.equal(new Set([redisA.port, redisB.port, mc.port]).size, 3);
    for (const s of [redisA, redisB, mc]) {
      assert.ok(s.running);
      assert.ok(isAlive(s.pid), `pid ${s.pid} should be alive`);
    }
  });

  it("rawText() gets +PONG from each redis server", async () => {
    assert.equal(await rawText(redisA.port, "PING\r\n", line), "+PONG\r\n");
    assert.equal(await rawText(redisB.port, "PING\r\n", line), "+PONG\r\n");
  });

  it("the two redis servers keep separate data", async () => {
    assert.equal(await rawText(redisA.port, "SET helper:k 1\r\n", line), "+OK\r\n");
    assert.equal(await rawText(redisA.port, "GET helper:k\r\n", { ...line, untilEnds: "1\r\n" }), "$1\r\n1\r\n");
    assert.equal(await rawText(redisB.port, "GET helper:k\r\n", line), "$-1\r\n");
  });

  it("memcached stores and returns a value over the ASCII protocol", async () => {
    assert.equal(await rawText(mc.port, "set hk 5 0 3\r\nabc\r\n", line), "STORED\r\n");
    const got = await rawText(mc.port, "get hk\r\n", { untilEnds: "END\r\n", timeoutMs: 3000 });
    assert.equal(got, "VALUE hk 5 3\r\nabc\r\nEND\r\n");
  });

  it("rawRequest() returns plain Uint8Array bytes and honours expectBytes", async () => {
    const bytes = await rawRequest(redisA.port, new TextEncoder().encode("PING\r\n"), { expectBytes: 7 });
    assert.deepEqual(bytes, new TextEncoder().encode("+PONG\r\n"));
  });

  it("rawExchange() reports that the peer closed after QUIT", async () => {
    const reply = await rawExchange(redisA.port, "QUIT\r\n", { timeoutMs: 3000 });
    assert.equal(new TextDecoder().decode(reply.data), "+OK\r\n");
    assert.equal(reply.closed, true);
  });

  it("redisCli() runs the real redis-cli and returns its output", async () => {
    assert.equal(await redisCli(redisB.port, "PING"), "PONG\n");
    await redisCli(redisB.port, "SET", "cli:k", "v1");
    assert.equal(await redisCli(redisB.port, "GET", "cli:k"), "v1\n");
  });

  it("a SIGSTOPped server makes rawRequest() time out until SIGCONT", async () => {
    signal(redisB.pid, "SIGSTOP");
    try {
      await assert.rejects(rawRequest(redisB.port, "PING\r\n", { ...line, timeoutMs: 300 }), /no complete reply/);
    } finally {
      signal(redisB.pid, "SIGCONT");
    }
    assert.equal(await rawText(redisB.port, "PING\r\n", line), "+PONG\r\n");
  });

  it("restart() after kill(SIGKILL) brings redis back on the same port with a new PID", async () => {
    const oldPid = redisB.pid;
    redisB.kill("SIGKILL");
    const deadline = Date.now() + 3000;
    while (redisB.running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(redisB.running, false);
    assert.equal(await canConnect(redisB.port), false);
    await redisB.restart();
    assert.notEqual(redisB.pid, oldPid);
    assert.equal(await rawText(redisB.port, "PING\r\n", line), "+PONG\r\n");
  });

  it("rawRequest() rejects when nothing listens on the port", async () => {
    const port = await freePort();
    await assert.rejects(rawRequest(port, "PING\r\n", line));
    await assert.rejects(waitForPort(port, 200), /nothing listening/);
  });

  it("stop() ends every server and their PIDs are gone", async () => {
    for (const s of [redisA, redisB, mc]) pids.push(s.pid);
    await Promise.all([redisA.stop(), redisB.stop(), mc.stop()]);
    for (const pid of pids) {
      assert.throws(() => process.kill(pid, 0), `pid ${pid} should be gone`);
    }
    for (const s of [redisA, redisB, mc]) assert.equal(s.running, false);
  });
});
