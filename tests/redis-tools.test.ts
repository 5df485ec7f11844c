/**
 * The real redis tools work through the proxy: redis-cli commands, and redis-benchmark
 * running the test list (plain and pipelined with -P 16) to the end with no
 * error, each test printing its result line.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";

const TESTS = "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,mset";
/** The result line names redis-benchmark prints for TESTS, in its order. */
const RESULT_NAMES = [
  "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "SADD", "HSET", "SPOP", "ZADD",
  "LPUSH (needed to benchmark LRANGE)", "LRANGE_100 (first 100 elements)", "MSET (10 keys)",
];
const REQUESTS = 2000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs redis-benchmark against the port; kills it by PID after timeoutMs. */
function benchmark(port: number, extra: string[], timeoutMs = 30000, tests = TESTS): Promise<Run> {
  const args = ["-h", "127.0.0.1", "-p", String(port), "-t", tests, "-n", String(REQUESTS), "-c", "10", "-q", ...extra];
  return run("redis-benchmark", args, null, timeoutMs);
}

/** Runs redis-cli against the port with `input` on its stdin (as in `printf ... | redis-cli`). */
function redisCliStdin(port: number, input: string, ...args: string[]): Promise<Run> {
  return run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], input, 10000);
}

/** Spawns a program, feeds it stdin (or none), collects its output; kills it by PID after timeoutMs. */
function run(program: string, args: string[], input: string | null, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: [input === null ? "ignore" : "pipe", "pipe", "pipe"] });
    if (input !== null) child.stdin?.end(input);
    const decoder = new TextDecoder();
    const result: Run = { code: null, stdout: "", stderr: "" };
    child.stdout?.on("data", (c: Uint8Array) => (result.stdout += decoder.decode(c)));
    child.stderr?.on("data", (c: Uint8Array) => (result.stderr += decoder.decode(c)));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      result.stderr += `\nkilled after ${timeoutMs} ms`;
    }, timeoutMs);
    child.once("error", (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code: number | null) => {
      clearTimeout(timer);
      result.code = code;
      resolve(result);
    });
  });
}

/** The final result line of each test: "NAME: 12345.67 requests per second, ...". */
function resultNames(stdout: string): string[] {
  return stdout.split(/[\r\n]+/).map((line) => /^\s*(.+?): [\d.]+ requests per second/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

describe("redis-cli and redis-benchmark through the proxy", () => {
  const backends: ServerProcess[] = [];
  let tp: TestProxy;

  before(async () => {
    backends.push(...await Promise.all([0, 1, 2, 3].map(() => startRedis())));
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port)));
  });

  after(async () => {
    await tp?.close();
    await Promise.all(backends.map((s) => s.stop()));
  });

  it("redis-cli PING, SET, GET, INCR, ECHO and DEL work through the proxy", async () => {
    const port = tp.port();
    assert.equal(await redisCli(port, "ping"), "PONG\n");
    assert.equal(await redisCli(port, "set", "cli:k", "hello world"), "OK\n");
    assert.equal(await redisCli(port, "get", "cli:k"), "hello world\n");
    assert.equal(await redisCli(port, "incr", "cli:n"), "1\n");
    assert.equal(await redisCli(port, "echo", "hi"), "hi\n");
    assert.equal(await redisCli(port, "mset", "cli:a", "1", "cli:b", "2"), "OK\n");
    assert.equal(await redisCli(port, "mget", "cli:a", "cli:none", "cli:b"), "1\n\n2\n");
    assert.equal(await redisCli(port, "del", "cli:k", "cli:n", "cli:a", "cli:none"), "3\n");
    assert.equal(await redisCli(port, "--no-raw", "get", "cli:k"), "(nil)\n");
  });

  it("redis-cli shows the proxy's own COMMAND, COMMAND COUNT, COMMAND DOCS and CONFIG GET save answers", async () => {
    const port = tp.port();
    const pool = tp.proxy.pools[0];
    const before = pool.servers.map((s) => s.stats.requests);
    assert.equal(await redisCli(port, "--no-raw", "command"), "(empty array)\n");
    assert.equal(await redisCli(port, "--no-raw", "command", "count"), "(integer) 0\n");
    assert.equal(await redisCli(port, "--no-raw", "command", "docs"), "(empty array)\n");
    assert.equal(await redisCli(port, "--no-raw", "command", "docs", "get"), "(empty array)\n");
    assert.equal(await redisCli(port, "--no-raw", "config", "get", "save"), '1) "save"\n2) ""\n');
    // Piped through stdin, one command a line, as scripts feed it (raw output: not a terminal).
    const piped = await redisCliStdin(port, "COMMAND\nCOMMAND COUNT\nCOMMAND DOCS\nCONFIG GET save\nPING\n");
    assert.equal(piped.code, 0, `exit code; stderr: ${piped.stderr}`);
    assert.equal(piped.stdout, "\n0\n\nsave\n\nPONG\n");
    assert.equal(piped.stderr, "");
    assert.deepEqual(pool.servers.map((s, i) => s.stats.requests - before[i]), [0, 0, 0, 0], "all answered by the proxy");
  });

  it("redis-cli prints the proxy's error for a command it refuses", async () => {
    const out = await redisCli(tp.port(), "slowlog", "get");
    assert.match(out, /ERR .*slowlog/i);
  });

  /** Runs the benchmark and checks it finished clean, with every request forwarded once. */
  async function cleanRun(extra: string[]): Promise<void> {
    const pool = tp.proxy.pools[0];
    const before = pool.servers.map((s) => s.stats.requests);
    const run = await benchmark(tp.port(), extra);
    assert.equal(run.code, 0, `exit code; stderr: ${run.stderr.slice(0, 500)}`);
    assert.doesNotMatch(run.stderr + run.stdout, /error/i);
    assert.deepEqual(resultNames(run.stdout), RESULT_NAMES);
    // A plain redis-server counts exactly 2000 commands per result line (plus two CONFIG GETs,
    // which the proxy answers); MSET's ten equal keys make one fragment.
    const sent = pool.servers.reduce((sum, s, i) => sum + s.stats.requests - before[i], 0);
    assert.equal(sent, RESULT_NAMES.length * REQUESTS, "requests forwarded to the servers");
    assert.equal(pool.stats.forward_error, 0, "no forward errors");
    const failures = pool.servers.map((s) => s.stats.server_err + s.stats.server_eof + s.stats.server_timedout);
    assert.deepEqual(failures, [0, 0, 0, 0], "no server failures");
  }

  it(`redis-benchmark -t ${TESTS} runs clean through the proxy`, async () => {
    await cleanRun([]);
  });

  it("redis-benchmark -P 16 (pipelined) runs the same tests clean through the proxy", async () => {
    await cleanRun(["-P", "16"]);
  });

  it("redis-benchmark -r 100000 -t mset,set,get runs clean with MSET's random keys spread over every server", async () => {
    const pool = tp.proxy.pools[0];
    const keyCount = async () => Promise.all(backends.map(async (b) => Number((await redisCli(b.port, "dbsize")).trim())));
    const keysBefore = await keyCount();
    const fragments = pool.stats.fragments;
    const before = pool.servers.map((s) => s.stats.requests);
    const run = await benchmark(tp.port(), ["-r", "100000"], 30000, "mset,set,get");
    assert.equal(run.code, 0, `exit code; stderr: ${run.stderr.slice(0, 500)}`);
    assert.doesNotMatch(run.stderr + run.stdout, /error/i);
    assert.deepEqual(resultNames(run.stdout), ["SET", "GET", "MSET (10 keys)"]);
    // Ten random keys out of 100,000 fall on one of four servers only by rare chance, so
    // (nearly) every MSET is split: well over one fragment per MSET on average.
    const made = pool.stats.fragments - fragments;
    assert.ok(made > 2 * REQUESTS, `${made} fragments for ${REQUESTS} MSETs`);
    const sent = pool.servers.map((s, i) => s.stats.requests - before[i]);
    assert.equal(sent.reduce((a, b) => a + b, 0), 2 * REQUESTS + made, "SETs and GETs once each, MSETs once per fragment");
    const keysAfter = await keyCount();
    const added = keysAfter.map((n, i) => n - keysBefore[i]);
    assert.ok(added.every((n) => n > 100), `every backend received new keys: ${added.join(", ")}`);
    assert.equal(pool.stats.forward_error, 0, "no forward errors");
    const failures = pool.servers.map((s) => s.stats.server_err + s.stats.server_eof + s.stats.server_timedout);
    assert.deepEqual(failures, [0, 0, 0, 0], "no server failures");
  });
});
