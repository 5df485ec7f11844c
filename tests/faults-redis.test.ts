/**
 * Server faults with real redis-servers behind the proxy: a stopped server (timeout),
 * a killed server (ejection and retry, or fail-fast without ejection), a kill in the
 * middle of a pipeline, a refused port, a reply cut off halfway, a restart that needs
 * AUTH and SELECT again. The invariant checked throughout: every request gets exactly one
 * reply, in request order, and a fault on one server never corrupts another's replies.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { rawText, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { freePort, sleep } from "./helpers/ports.ts";
import { systemClock } from "../core/net.ts";
import { type Arg, encodePipeline } from "./helpers/resp.ts";
import { type FakeBackend, freeze, keysOn, ownerOf, PipeClient, rig, startFakeBackend, text, waitFor } from "./helpers/soak.ts";

const decoder = new TextDecoder();
const pipe = (...cmds: Arg[][]) => encodePipeline(cmds);
const bulk = (v: string) => `$${v.length}\r\n${v}\r\n`;
/** What a request to a dead server may get, as twemproxy words errno (refused on connect; reset or EPIPE on a live connection). */
const CONN_ERROR = /^-ERR (Connection refused|Connection reset by peer|Broken pipe)\r\n$/;

/** The value stored under `key` on one backend, read directly (not through the proxy). */
async function backendGet(server: ServerProcess, key: string): Promise<string> {
  return await rawText(server.port, pipe(["GET", key]), { until: (d) => d.length > 4 && d[d.length - 1] === 10 });
}

describe("a redis server that stops answering, with timeout: 1000", () => {
  // 1 s, not 300 ms: a busy machine stalled the proxy past 300 ms between the SIGCONT and the
  // late server's answer, so requests sent after the timeout timed out too.
  const TIMEOUT = 1000;
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, `  timeout: ${TIMEOUT}\n`));
  let client: PipeClient;
  let ka = "", kb = "", kx = "";

  after(() => client?.destroy());

  it("answers requests to the stopped server with -ERR Connection timed out after about the timeout, the other server's in order", async () => {
    const pool = r.tp.proxy.pools[0];
    [ka, kx] = keysOn(pool, 0, "t-a", 2);
    [kb] = keysOn(pool, 1, "t-b");
    client = await PipeClient.connect(r.tp.port());
    assert.deepEqual(await client.exchange(pipe(["SET", ka, "old-a"], ["SET", kb, "vb"]), 2), ["+OK\r\n", "+OK\r\n"]);
    await freeze(r.servers[0]);
    const start = Date.now();
    const pending = client.exchange(pipe(["GET", kb], ["GET", ka], ["GET", ka], ["GET", kb]), 4, 3 * TIMEOUT + 2000);
    // Meanwhile another client's request to the other server is not held up.
    const other = await PipeClient.connect(r.tp.port());
    assert.deepEqual(await other.exchange(pipe(["GET", kb]), 1, 3000), [bulk("vb")]);
    assert.ok(Date.now() - start < TIMEOUT / 2, `the other client waited ${Date.now() - start} ms, not held up until the timeout`);
    other.destroy();
    const got = await pending;
    const elapsed = Date.now() - start;
    const timedOut = "-ERR Connection timed out\r\n";
    assert.deepEqual(got, [bulk("vb"), timedOut, timedOut, bulk("vb")]);
    assert.ok(elapsed >= TIMEOUT - 50 && elapsed < 3 * TIMEOUT, `timed out after ${elapsed} ms, want about ${TIMEOUT}`);
    assert.ok(pool.servers[0].stats.server_timedout >= 1, "server_timedout counted");
  });

  it("never delivers the stopped server's late reply to a request sent after the timeout", async () => {
    // Sent while the server is still stopped, so its late "old-a" replies would come first.
    client.write(pipe(["GET", kx], ["GET", kb], ["SET", ka, "new-a"], ["GET", ka]));
    await sleep(50);
    r.servers[0].kill("SIGCONT");
    const got = (await client.waitReplies(10, 3000)).slice(6).map((x) => decoder.decode(x));
    assert.deepEqual(got, ["$-1\r\n", bulk("vb"), "+OK\r\n", bulk("new-a")]);
    await sleep(100);
    assert.equal(client.replies.length, 10, "no extra reply arrived");
    assert.equal(client.leftover, 0);
  });
});

describe("auto_eject_hosts with server_failure_limit 2 and server_retry_timeout 1000", () => {
  const RETRY = 1000;
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, `  timeout: 1000\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: ${RETRY}\n`));
  let client: PipeClient;
  let ka = "", kb = "";

  after(() => client?.destroy());

  it("ejects a killed server after two failures and serves its keys from the other server", async () => {
    const pool = r.tp.proxy.pools[0];
    [ka] = keysOn(pool, 0, "e-a");
    [kb] = keysOn(pool, 1, "e-b");
    client = await PipeClient.connect(r.tp.port());
    assert.deepEqual(await client.exchange(pipe(["SET", ka, "before"]), 1), ["+OK\r\n"]);
    r.servers[0].kill("SIGKILL");
    assert.ok(await waitFor(() => !r.servers[0].running, 3000), "server 0 exited");
    const errors: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [reply] = await client.exchange(pipe(["GET", ka]), 1, 3000);
      if (!reply.startsWith("-")) break;
      errors.push(reply);
    }
    assert.equal(errors.length, 2, `errors before ejection: ${JSON.stringify(errors)}`);
    for (const e of errors) assert.match(e, CONN_ERROR);
    assert.equal(pool.stats.server_ejects, 1);
    // Ejected during the last exchange, for the retry timeout (the proxy's clock is systemClock).
    const left = pool.servers[0].ejectedUntil - systemClock.now();
    assert.ok(left > RETRY - 500 && left <= RETRY, `server 0 is ejected for ${left} more ms, want about ${RETRY}`);
    assert.equal(ownerOf(pool, ka), 1);
    assert.deepEqual(await client.exchange(pipe(["SET", ka, "moved"], ["GET", ka], ["GET", kb]), 3), ["+OK\r\n", bulk("moved"), "$-1\r\n"]);
    assert.equal(await backendGet(r.servers[1], ka), bulk("moved"), "the key now lives on server 1");
  });

  it("routes the keys back once the server restarts and the retry timeout has passed", async () => {
    const pool = r.tp.proxy.pools[0];
    const until = pool.servers[0].ejectedUntil;
    assert.ok(until > systemClock.now(), "server 0 is still ejected");
    await r.servers[0].restart();
    // About 45% into the retry timeout, server 0 answers again but must stay out: its key still goes to server 1.
    await sleep(Math.max(0, until - RETRY * 0.55 - systemClock.now()));
    const sentAt = systemClock.now();
    assert.ok(sentAt < until - 200, `the restart took until ${Math.round(until - sentAt)} ms before the retry time`);
    const before = pool.servers.map((s) => s.stats.requests);
    assert.deepEqual(await client.exchange(pipe(["SET", ka, "mid-retry"]), 1, 3000), ["+OK\r\n"]);
    const sent = pool.servers.map((s, i) => s.stats.requests - before[i]);
    assert.deepEqual(sent, [0, 1], `requests per server for a SET ${Math.round(until - sentAt)} ms before the retry time`);
    assert.equal(await backendGet(r.servers[1], ka), bulk("mid-retry"), "server 1 holds the write");
    assert.equal(await backendGet(r.servers[0], ka), "$-1\r\n", "the restarted server 0 got nothing");
    // Then, and only once the retry time has passed, the key goes back to server 0.
    let n = 0;
    let repliedAt = 0;
    const back = await waitFor(async () => {
      const value = `home-${n++}`;
      const [reply] = await client.exchange(pipe(["SET", ka, value]), 1, 3000);
      repliedAt = systemClock.now();
      return reply === "+OK\r\n" && (await backendGet(r.servers[0], ka)) === bulk(value);
    }, 4000, 100);
    assert.ok(back, "writes to the key reach server 0 again");
    assert.ok(repliedAt >= until, `server 0 got the key back ${Math.round(until - repliedAt)} ms before the retry time`);
    assert.equal(pool.servers[0].ejectedUntil, 0);
    assert.equal(ownerOf(pool, ka), 0);
  });

  it("answers at once with an error, never hanging, when every server is dead and ejected", async () => {
    const pool = r.tp.proxy.pools[0];
    for (const s of r.servers) s.kill("SIGKILL");
    assert.ok(await waitFor(() => r.servers.every((s) => !s.running), 3000), "both servers exited");
    const replies: string[] = [];
    for (let i = 0; i < 8; i++) {
      const start = Date.now();
      const [reply] = await client.exchange(pipe(["GET", i % 2 ? ka : kb]), 1, 3000);
      assert.ok(Date.now() - start < 500, `reply ${i} took ${Date.now() - start} ms`);
      replies.push(reply);
    }
    for (const reply of replies) assert.match(reply, /^-ERR (Connection refused|Connection reset by peer|Broken pipe|No server available)\r\n$/);
    assert.ok(pool.servers.every((s) => s.ejectedUntil > 0), "both servers ejected");
    assert.deepEqual(await client.exchange(pipe(["GET", ka], ["SET", kb, "x"]), 2, 500), [
      "-ERR No server available\r\n",
      "-ERR No server available\r\n",
    ]);
  });
});

describe("consecutive failures with server_failure_limit 2", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  timeout: 300\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 30000\n"));

  it("a reply resets the count, so only two failures in a row eject the server", async () => {
    const pool = r.tp.proxy.pools[0];
    const [ka] = keysOn(pool, 0, "c-a");
    const client = await PipeClient.connect(r.tp.port());
    const timedOut = "-ERR Connection timed out\r\n";
    assert.deepEqual(await client.exchange(pipe(["SET", ka, "a"]), 1), ["+OK\r\n"]);
    for (let i = 0; i < 2; i++) {
      await freeze(r.servers[0]);
      assert.deepEqual(await client.exchange(pipe(["GET", ka]), 1, 3000), [timedOut], `failure ${i + 1}`);
      r.servers[0].kill("SIGCONT");
      assert.deepEqual(await client.exchange(pipe(["GET", ka]), 1, 3000), [bulk("a")], "a reply after the failure");
    }
    assert.equal(pool.stats.server_ejects, 0, "one failure between replies never ejects");
    await freeze(r.servers[0]);
    assert.deepEqual(await client.exchange(pipe(["GET", ka], ["GET", ka]), 2, 3000), [timedOut, timedOut]);
    assert.equal(pool.stats.server_ejects, 0, "two requests lost to one timeout are one failure");
    assert.deepEqual(await client.exchange(pipe(["GET", ka]), 1, 3000), [timedOut]);
    assert.equal(pool.stats.server_ejects, 1, "the second failure in a row ejects");
    const start = Date.now();
    assert.deepEqual(await client.exchange(pipe(["GET", ka]), 1, 3000), ["$-1\r\n"], "served by the other server");
    assert.ok(Date.now() - start < 250, "without waiting for the stopped server");
    r.servers[0].kill("SIGCONT");
    client.destroy();
  });
});

describe("a dead redis server with auto_eject_hosts false", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  timeout: 1000\n"));
  let client: PipeClient;
  let ka = "", kb = "";

  after(() => client?.destroy());

  it("fails its requests fast with -ERR Connection refused while the other server keeps answering", async () => {
    const pool = r.tp.proxy.pools[0];
    [ka] = keysOn(pool, 0, "f-a");
    [kb] = keysOn(pool, 1, "f-b");
    client = await PipeClient.connect(r.tp.port());
    assert.deepEqual(await client.exchange(pipe(["SET", ka, "va"], ["SET", kb, "vb"]), 2), ["+OK\r\n", "+OK\r\n"]);
    r.servers[0].kill("SIGKILL");
    assert.ok(await waitFor(() => !r.servers[0].running, 3000), "server 0 exited");
    await sleep(50);
    const rounds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const start = Date.now();
      const [a, b] = await client.exchange(pipe(["GET", ka], ["GET", kb]), 2, 3000);
      assert.ok(Date.now() - start < 500, `round ${i} took ${Date.now() - start} ms`);
      assert.match(a, CONN_ERROR);
      assert.equal(b, bulk("vb"));
      rounds.push(a);
    }
    assert.equal(rounds[rounds.length - 1], "-ERR Connection refused\r\n");
    assert.equal(pool.stats.server_ejects, 0);
    assert.equal(ownerOf(pool, ka), 0, "the key still routes to the dead server");
  });

  it("reconnects and answers again once the server restarts on the same port", async () => {
    await r.servers[0].restart();
    const back = await waitFor(async () => (await client.exchange(pipe(["GET", ka]), 1, 3000))[0] === "$-1\r\n", 3000, 50);
    assert.ok(back, "a GET reached the restarted (empty) server");
    assert.deepEqual(await client.exchange(pipe(["SET", ka, "again"], ["GET", ka], ["GET", kb]), 3), [
      "+OK\r\n",
      bulk("again"),
      bulk("vb"),
    ]);
    assert.equal(await backendGet(r.servers[0], ka), bulk("again"));
  });
});

describe("a redis server killed in the middle of a large pipeline", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  timeout: 3000\n"));

  it("gives each of 20,000 requests exactly one reply in order: errors for the dead server, values for the other", async () => {
    const pool = r.tp.proxy.pools[0];
    const ka = keysOn(pool, 0, "k-a", 50);
    const kb = keysOn(pool, 1, "k-b", 50);
    const value = (k: string) => `value-of-${k}-${"x".repeat(64)}`;
    const setup = await PipeClient.connect(r.tp.port());
    const sets = [...ka, ...kb].map((k) => ["SET", k, value(k)]);
    assert.ok((await setup.exchange(encodePipeline(sets), sets.length)).every((x) => x === "+OK\r\n"));
    setup.destroy();

    const cmds: Arg[][] = [];
    const kinds: ("a" | "b" | "m")[] = [];
    for (let i = 0; i < 20000; i++) {
      const j = i % 50;
      const kind = i % 10 === 9 ? "m" : i % 2 ? "a" : "b";
      kinds.push(kind);
      cmds.push(kind === "m" ? ["MGET", ka[j], kb[j]] : ["GET", kind === "a" ? ka[j] : kb[j]]);
    }
    const client = await PipeClient.connect(r.tp.port());
    client.onReply = (n) => n === 2000 && r.servers[0].kill("SIGKILL");
    client.write(encodePipeline(cmds));
    const replies = await client.waitReplies(cmds.length, 30000);
    await sleep(100);
    client.destroy();
    assert.equal(replies.length, cmds.length, "exactly one reply per request");
    assert.equal(client.leftover, 0);

    let aValues = 0, aErrors = 0, sawError = false;
    for (let i = 0; i < cmds.length; i++) {
      const got = decoder.decode(replies[i]);
      const j = i % 50;
      const want = kinds[i] === "m" ? `*2\r\n${bulk(value(ka[j]))}${bulk(value(kb[j]))}` : bulk(value(String(cmds[i][1])));
      if (kinds[i] === "b") {
        assert.equal(got, want, `reply ${i} (server 1)`);
        continue;
      }
      if (got === want) {
        assert.ok(!sawError, `reply ${i}: a value from the dead server after it failed: ${text(replies[i])}`);
        if (kinds[i] === "a") aValues++;
        continue;
      }
      assert.match(got, CONN_ERROR, `reply ${i}`);
      sawError = true;
      if (kinds[i] === "a") aErrors++;
    }
    assert.ok(aValues > 0 && aErrors > 0, `the kill landed mid-pipeline (${aValues} values, ${aErrors} errors)`);
  });
});

describe("a refused port in the pool with preconnect: true", () => {
  let live: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    live = await startRedis();
    tp = await startTestProxy(redisPoolYaml([live.port, await freePort()], "  preconnect: true\n  timeout: 1000\n"));
  });
  after(async () => {
    await tp?.close();
    await live?.stop();
  });

  it("starts, answers requests for the refused server with -ERR Connection refused and serves the live one", async () => {
    const pool = tp.proxy.pools[0];
    const [ka] = keysOn(pool, 0, "p-a");
    const [kd] = keysOn(pool, 1, "p-d");
    const client = await PipeClient.connect(tp.port());
    const start = Date.now();
    const got = await client.exchange(pipe(["SET", ka, "live"], ["GET", kd], ["GET", ka], ["SET", kd, "x"]), 4, 3000);
    client.destroy();
    assert.ok(Date.now() - start < 1000, "refusals are fast");
    const refused = "-ERR Connection refused\r\n";
    assert.deepEqual(got, ["+OK\r\n", refused, bulk("live"), refused]);
  });
});

describe("a redis server that fails halfway through a reply", () => {
  let fake: FakeBackend;
  let tp: TestProxy;

  before(async () => {
    // Connection 0 stalls after half a reply, connection 1 closes after half a reply, later ones answer in full.
    fake = await startFakeBackend((conn, sock, chunk) => {
      if (conn === 0) sock.write("$10\r\nhalf");
      else if (conn === 1) sock.end("$10\r\nhalf");
      else sock.write("$5\r\nwhole\r\n".repeat(decoder.decode(chunk).split("*2\r\n").length - 1));
    });
    tp = await startTestProxy(redisPoolYaml([fake.port], "  timeout: 300\n"));
  });
  after(async () => {
    await tp?.close();
    await fake?.close();
  });

  it("fails the request and drops the partial reply, so the next connection's replies parse cleanly", async () => {
    const client = await PipeClient.connect(tp.port());
    assert.deepEqual(await client.exchange(pipe(["GET", "a"]), 1, 3000), ["-ERR Connection timed out\r\n"]);
    assert.deepEqual(await client.exchange(pipe(["GET", "b"]), 1, 3000), ["-ERR Connection reset by peer\r\n"]);
    assert.deepEqual(await client.exchange(pipe(["GET", "c"], ["GET", "d"]), 2, 3000), ["$5\r\nwhole\r\n", "$5\r\nwhole\r\n"]);
    client.destroy();
    assert.equal(fake.accepted, 3);
  });
});

describe("a password-protected redis-server with redis_db that restarts", () => {
  let server: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    server = await startRedis({ args: ["--requirepass", "secret"] });
    tp = await startTestProxy(redisPoolYaml([server.port], "  redis_auth: secret\n  redis_db: 2\n  timeout: 1000\n"));
  });
  after(async () => {
    await tp?.close();
    await server?.stop();
  });

  /** GET key in database 2 of the backend, authenticating first. */
  const inDb2 = (key: string) =>
    rawText(server.port, pipe(["AUTH", "secret"], ["SELECT", "2"], ["GET", key]), { until: (d) => decoder.decode(d).split("\r\n").length >= 5 });

  it("authenticates and selects the database again on the new connection after a restart", async () => {
    const client = await PipeClient.connect(tp.port());
    assert.deepEqual(await client.exchange(pipe(["AUTH", "secret"], ["SET", "rk", "one"]), 2), ["+OK\r\n", "+OK\r\n"]);
    assert.equal(await inDb2("rk"), `+OK\r\n+OK\r\n${bulk("one")}`);
    server.kill("SIGKILL");
    assert.ok(await waitFor(() => !server.running, 3000), "server exited");
    await server.restart();
    const back = await waitFor(async () => (await client.exchange(pipe(["GET", "rk"]), 1, 3000))[0] === "$-1\r\n", 3000, 50);
    assert.ok(back, "a GET reached the restarted (empty) server");
    assert.deepEqual(await client.exchange(pipe(["SET", "rk", "two"], ["GET", "rk"]), 2), ["+OK\r\n", bulk("two")]);
    assert.equal(await inDb2("rk"), `+OK\r\n+OK\r\n${bulk("two")}`);
    client.destroy();
  });
});
