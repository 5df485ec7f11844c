/**
 * Fault injection with real memcached servers behind the proxy: a stopped server
 * (timeout), a killed server with and without ejection, a restart on the same port,
 * and a kill in the middle of a large pipeline. Failed requests must get twemproxy's
 * SERVER_ERROR text, every request exactly one reply, in order.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { memcachePoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { rawText, type ServerProcess, startMemcached } from "./helpers/servers.ts";
import { sleep } from "./helpers/ports.ts";
import { type FakeBackend, freeze, keysOn, memcacheFramer, ownerOf, PipeClient, rig, startFakeBackend, text, waitFor } from "./helpers/soak.ts";

const decoder = new TextDecoder();
const set = (k: string, v: string) => `set ${k} 0 0 ${v.length}\r\n${v}\r\n`;
const get = (...keys: string[]) => `get ${keys.join(" ")}\r\n`;
const value = (k: string, v: string) => `VALUE ${k} 0 ${v.length}\r\n${v}\r\n`;
const hit = (k: string, v: string) => `${value(k, v)}END\r\n`;
const STORED = "STORED\r\n";
const MISS = "END\r\n";
/** What a request to a dead server may get, as twemproxy words errno. */
const CONN_ERROR = /^SERVER_ERROR (Connection refused|Connection reset by peer|Broken pipe)\r\n$/;


function connect(r: { tp: TestProxy }): Promise<PipeClient> {
  return PipeClient.connect(r.tp.port(), memcacheFramer);
}

/** The reply of one backend (not the proxy) to `get key`. */
function backendGet(server: ServerProcess, key: string): Promise<string> {
  return rawText(server.port, get(key), { untilEnds: "END\r\n" });
}

describe("a memcached server that stops answering, with timeout: 1000", () => {
  // 1 s, not 300 ms: a busy machine stalled the proxy past 300 ms between the SIGCONT and the
  // late server's answer, so requests sent after the timeout timed out too.
  const TIMEOUT = 1000;
  const r = rig(startMemcached, (ports) => memcachePoolYaml(ports, `  timeout: ${TIMEOUT}\n`));
  let client: PipeClient;
  let ka = "", kx = "", kb = "";

  after(() => client?.destroy());

  it("answers requests to the stopped server with SERVER_ERROR Connection timed out, the other server's in order", async () => {
    const pool = r.tp.proxy.pools[0];
    [ka, kx] = keysOn(pool, 0, "t-a", 2);
    [kb] = keysOn(pool, 1, "t-b");
    client = await connect(r);
    assert.deepEqual(await client.exchange(set(ka, "old-a") + set(kb, "vb"), 2), [STORED, STORED]);
    await freeze(r.servers[0]);
    const start = Date.now();
    const got = await client.exchange(get(kb) + get(ka) + set(ka, "lost") + get(kb), 4, 3 * TIMEOUT + 2000);
    const elapsed = Date.now() - start;
    const timedOut = "SERVER_ERROR Connection timed out\r\n";
    assert.deepEqual(got, [hit(kb, "vb"), timedOut, timedOut, hit(kb, "vb")]);
    assert.ok(elapsed >= TIMEOUT - 50 && elapsed < 3 * TIMEOUT, `timed out after ${elapsed} ms, want about ${TIMEOUT}`);
    assert.ok(pool.servers[0].stats.server_timedout >= 1, "server_timedout counted");
  });

  it("never delivers the stopped server's late reply to a request sent after the timeout", async () => {
    // Sent while the server is still stopped, so its late replies would come first.
    client.write(get(kx) + get(kb) + set(ka, "new-a") + get(ka));
    await sleep(50);
    r.servers[0].kill("SIGCONT");
    const got = (await client.waitReplies(10, 3000)).slice(6).map((x) => decoder.decode(x));
    assert.deepEqual(got, [MISS, hit(kb, "vb"), STORED, hit(ka, "new-a")]);
    await sleep(100);
    assert.equal(client.replies.length, 10, "no extra reply arrived");
    assert.equal(client.leftover, 0);
  });
});

describe("memcached with auto_eject_hosts, server_failure_limit 2 and server_retry_timeout 1000", () => {
  const r = rig(startMemcached, (ports) => memcachePoolYaml(ports, "  timeout: 1000\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 1000\n"));
  let client: PipeClient;
  let ka = "";

  after(() => client?.destroy());

  it("ejects a killed server after two failures and serves its keys from the other server", async () => {
    const pool = r.tp.proxy.pools[0];
    [ka] = keysOn(pool, 0, "e-a");
    client = await connect(r);
    assert.deepEqual(await client.exchange(set(ka, "before"), 1), [STORED]);
    assert.equal(pool.servers[0].failures, 0, "the count starts from a reply");
    r.servers[0].kill("SIGKILL");
    assert.ok(await waitFor(() => !r.servers[0].running, 3000), "server 0 exited");
    // Let the proxy see its idle connection close (an EOF, which is no failure) before any
    // request, so each request below is one failure of its own: nothing in between resets the count.
    assert.ok(await waitFor(() => pool.servers[0].stats.server_connections === 0, 3000), "the proxy saw the close");
    assert.equal(pool.servers[0].failures, 0, "an idle close is not counted");
    const errors: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [reply] = await client.exchange(get(ka), 1, 3000);
      if (!reply.startsWith("SERVER_ERROR")) break;
      errors.push(reply);
      assert.equal(pool.stats.server_ejects, errors.length < 2 ? 0 : 1, `ejections after failure ${errors.length}`);
    }
    assert.equal(errors.length, 2, `errors before ejection: ${JSON.stringify(errors)}`);
    for (const e of errors) assert.match(e, CONN_ERROR);
    assert.equal(pool.stats.server_ejects, 1);
    assert.equal(ownerOf(pool, ka), 1);
    assert.deepEqual(await client.exchange(set(ka, "moved") + get(ka), 2), [STORED, hit(ka, "moved")]);
    assert.equal(await backendGet(r.servers[1], ka), hit(ka, "moved"), "the key now lives on server 1");
  });

  it("routes the keys back once the server restarts and the retry timeout has passed", async () => {
    const pool = r.tp.proxy.pools[0];
    await r.servers[0].restart();
    let n = 0;
    const back = await waitFor(async () => {
      const v = `home-${n++}`;
      const [reply] = await client.exchange(set(ka, v), 1, 3000);
      return reply === STORED && (await backendGet(r.servers[0], ka)) === hit(ka, v);
    }, 4000, 100);
    assert.ok(back, "writes to the key reach server 0 again");
    assert.equal(pool.servers[0].ejectedUntil, 0);
  });

  it("answers at once with SERVER_ERROR, never hanging, when every server is dead and ejected", async () => {
    const pool = r.tp.proxy.pools[0];
    for (const s of r.servers) s.kill("SIGKILL");
    assert.ok(await waitFor(() => r.servers.every((s) => !s.running), 3000), "both servers exited");
    for (let i = 0; i < 8; i++) {
      const start = Date.now();
      const [reply] = await client.exchange(get(`${ka}${i}`), 1, 3000);
      assert.ok(Date.now() - start < 500, `reply ${i} took ${Date.now() - start} ms`);
      assert.match(reply, /^SERVER_ERROR (Connection refused|Connection reset by peer|Broken pipe|No server available)\r\n$/);
    }
    assert.ok(pool.servers.every((s) => s.ejectedUntil > 0), "both servers ejected");
    assert.deepEqual(await client.exchange(get(ka) + set(ka, "x"), 2, 500), [
      "SERVER_ERROR No server available\r\n",
      "SERVER_ERROR No server available\r\n",
    ]);
  });
});

describe("a dead memcached server with auto_eject_hosts false", () => {
  const r = rig(startMemcached, (ports) => memcachePoolYaml(ports, "  timeout: 1000\n"));
  let client: PipeClient;
  let ka = "", kb = "";

  after(() => client?.destroy());

  it("fails its requests fast with SERVER_ERROR Connection refused while the other server keeps answering", async () => {
    const pool = r.tp.proxy.pools[0];
    [ka] = keysOn(pool, 0, "f-a");
    [kb] = keysOn(pool, 1, "f-b");
    client = await connect(r);
    assert.deepEqual(await client.exchange(set(ka, "va") + set(kb, "vb"), 2), [STORED, STORED]);
    r.servers[0].kill("SIGKILL");
    assert.ok(await waitFor(() => !r.servers[0].running, 3000), "server 0 exited");
    await sleep(50);
    let last = "";
    for (let i = 0; i < 4; i++) {
      const start = Date.now();
      const [a, b] = await client.exchange(get(ka) + get(kb), 2, 3000);
      assert.ok(Date.now() - start < 500, `round ${i} took ${Date.now() - start} ms`);
      assert.match(a, CONN_ERROR);
      assert.equal(b, hit(kb, "vb"));
      last = a;
    }
    assert.equal(last, "SERVER_ERROR Connection refused\r\n");
    assert.equal(pool.stats.server_ejects, 0);
  });

  it("reconnects and answers again once the server restarts on the same port", async () => {
    await r.servers[0].restart();
    const back = await waitFor(async () => (await client.exchange(get(ka), 1, 3000))[0] === MISS, 3000, 50);
    assert.ok(back, "a get reached the restarted (empty) server");
    assert.deepEqual(await client.exchange(set(ka, "again") + get(ka, kb), 2), [STORED, `${value(ka, "again")}${value(kb, "vb")}END\r\n`]);
  });
});

describe("a memcached server killed in the middle of a large pipeline", () => {
  const r = rig(startMemcached, (ports) => memcachePoolYaml(ports, "  timeout: 3000\n"));

  it("gives each of 20,000 requests exactly one reply in order: errors for the dead server, values for the other", async () => {
    const pool = r.tp.proxy.pools[0];
    const ka = keysOn(pool, 0, "k-a", 50);
    const kb = keysOn(pool, 1, "k-b", 50);
    const val = (k: string) => `value-of-${k}-${"x".repeat(64)}`;
    const setup = await connect(r);
    const all = [...ka, ...kb];
    assert.ok((await setup.exchange(all.map((k) => set(k, val(k))).join(""), all.length)).every((x) => x === STORED));
    setup.destroy();

    const reqs: string[] = [];
    const wants: string[] = [];
    const kinds: ("a" | "b" | "m")[] = [];
    for (let i = 0; i < 20000; i++) {
      const j = i % 50;
      const kind = i % 10 === 9 ? "m" : i % 2 ? "a" : "b";
      kinds.push(kind);
      if (kind === "m") {
        reqs.push(get(ka[j], kb[j]));
        wants.push(`${value(ka[j], val(ka[j]))}${value(kb[j], val(kb[j]))}END\r\n`);
      } else {
        const k = kind === "a" ? ka[j] : kb[j];
        reqs.push(get(k));
        wants.push(hit(k, val(k)));
      }
    }
    const client = await connect(r);
    client.onReply = (n) => n === 2000 && r.servers[0].kill("SIGKILL");
    client.write(reqs.join(""));
    const replies = await client.waitReplies(reqs.length, 30000);
    await sleep(100);
    client.destroy();
    assert.equal(replies.length, reqs.length, "exactly one reply per request");
    assert.equal(client.leftover, 0);

    let aValues = 0, aErrors = 0, sawError = false;
    for (let i = 0; i < reqs.length; i++) {
      const got = decoder.decode(replies[i]);
      if (kinds[i] === "b") {
        assert.equal(got, wants[i], `reply ${i} (server 1)`);
        continue;
      }
      if (got === wants[i]) {
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

describe("a memcached server that fails halfway through a reply", () => {
  let fake: FakeBackend;
  let tp: TestProxy;

  before(async () => {
    // Connection 0 stalls after half a reply, connection 1 closes after half a reply, later ones answer in full.
    fake = await startFakeBackend((conn, sock, chunk) => {
      if (conn === 0) sock.write("VALUE a 0 10\r\nhalf");
      else if (conn === 1) sock.end("VALUE b 0 10\r\nhalf");
      else for (const m of decoder.decode(chunk).matchAll(/get (\S+)\r\n/g)) sock.write(hit(m[1], "whole"));
    });
    tp = await startTestProxy(memcachePoolYaml([fake.port], "  timeout: 300\n"));
  });
  after(async () => {
    await tp?.close();
    await fake?.close();
  });

  it("fails the request and drops the partial reply, so the next connection's replies parse cleanly", async () => {
    const client = await PipeClient.connect(tp.port(), memcacheFramer);
    assert.deepEqual(await client.exchange(get("a"), 1, 3000), ["SERVER_ERROR Connection timed out\r\n"]);
    assert.deepEqual(await client.exchange(get("b"), 1, 3000), ["SERVER_ERROR Connection reset by peer\r\n"]);
    assert.deepEqual(await client.exchange(get("c") + get("d"), 2, 3000), [hit("c", "whole"), hit("d", "whole")]);
    client.destroy();
    assert.equal(fake.accepted, 3);
  });
});
