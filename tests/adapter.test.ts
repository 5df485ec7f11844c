/**
 * The adapter contract (core/net.ts), run against whichever adapter loadNet() picks,
 * so each runtime tests its own: echo, large and partial writes, backpressure,
 * half-close, onClose exactly once on every path, connect failure and timeout,
 * many connections, unix sockets, IPv6 and hostnames, and HTTP.
 */
import { afterEach, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { END_TIMEOUT_MS } from "../adapters/common.ts";
import { loadNet } from "../adapters/mod.ts";
import { type Addr, CloseReason, closeReasonOf, type Conn, type Net } from "../core/net.ts";
import {
  firstDifference,
  leaveStaleSocket,
  LOOPBACK,
  pattern,
  record,
  Scope,
  sleep,
  startEcho,
  startStalledListener,
  unusedPort,
  until,
  waitFor,
  within,
  writeAll,
} from "./helpers/contract.ts";
import type { Recorder } from "./helpers/contract.ts";

const MIB = 1024 * 1024;
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const portOf = (addr: Addr) => (addr.kind === "tcp" ? addr.port : -1);

/** Give a duplicate onClose the chance to show up (also via late destroy/end), then check there was one. */
async function assertClosedOnce(rec: Recorder): Promise<Error | undefined> {
  const err = await within(rec.closed, 5_000, "onClose");
  rec.conn.destroy();
  rec.conn.end();
  await sleep(50);
  assert.equal(rec.closes, 1);
  return err;
}

/** Listen on loopback and record every accepted conn, optionally setting it up further. */
async function listenRecorded(net: Net, scope: Scope, setup: (rec: Recorder) => void = () => {}) {
  const accepted: Recorder[] = [];
  const listener = await net.listen(LOOPBACK, (conn: Conn) => {
    const rec = record(scope.conn(conn));
    accepted.push(rec);
    setup(rec);
  });
  scope.listeners.push(listener);
  return { listener, accepted };
}

function socketPath(): string {
  return join(tmpdir(), `twemproxy-ts-adapter-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
}

describe("net adapter contract", () => {
  let net: Net;
  let scope: Scope;

  before(async () => {
    net = await loadNet();
  });
  beforeEach(() => {
    scope = new Scope();
  });
  afterEach(async () => {
    await scope.close();
  });

  it("echoes bytes written before the connection opened, as plain Uint8Arrays", async () => {
    const echo = await startEcho(net, scope);
    const port = portOf(echo.addr);
    assert.ok(port > 0, "listener reports the kernel's port");
    const client = record(scope.conn(net.connect(echo.addr, { keepAlive: true, connectTimeoutMs: 100 })));
    assert.equal(client.conn.write(encode("hello ")), true);
    assert.equal(client.conn.write(encode("world")), true);
    await within(client.received(11), 5_000, "the echo");
    assert.equal(decode(client.data()), "hello world");
    assert.ok(client.chunks.every((chunk) => chunk.constructor === Uint8Array));
    assert.equal(client.conn.remote, `127.0.0.1:${port}`);
    assert.match(echo.accepted[0].conn.remote, /^127\.0\.0\.1:\d+$/);
    await sleep(150); // past connectTimeoutMs: the timer must be gone once connected
    assert.equal(client.closes, 0);
    assert.equal(client.connects, 1);
    assert.equal(echo.accepted[0].connects, 0, "accepted conns never report onConnect");
  });

  it("moves 32 MiB each way at the same time, byte for byte", { timeout: 60_000 }, async () => {
    const size = 32 * MIB;
    const up = pattern(size, 11);
    const down = pattern(size, 22);
    const writes: Promise<number>[] = [];
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      writes.push(writeAll(rec.conn, down, 100_003));
    });
    const client = record(scope.conn(net.connect(listener.addr)));
    writes.push(writeAll(client.conn, up, 77_777));
    await within(client.received(size), 40_000, "32 MiB at the client");
    await until(() => (accepted[0]?.bytes ?? 0) >= size, 40_000, "32 MiB at the server");
    await within(Promise.all(writes), 5_000, "both writers");
    assert.equal(firstDifference(client.data(), down), -1);
    assert.equal(firstDifference(accepted[0].data(), up), -1);
  });

  it("write() returns false against a paused peer, onDrain follows resume(), and every byte arrives", {
    timeout: 30_000,
  }, async () => {
    const data = pattern(32 * MIB, 33);
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => rec.conn.pause());
    const client = record(scope.conn(net.connect(listener.addr)));
    await within(client.connected, 5_000, "connect");
    await until(() => accepted.length > 0, 5_000, "the accept");
    // Write until write() says false and no onDrain follows: the kernel buffers are full.
    let sent = 0;
    let stuck = false;
    let refusals = 0;
    while (sent < data.length && !stuck) {
      const taken = client.conn.write(data.subarray(sent, sent + 256 * 1024));
      sent += 256 * 1024;
      if (taken) {
        await sleep(0); // let the runtime push bytes into the kernel
        continue;
      }
      refusals++;
      const drains = client.drains;
      stuck = !(await waitFor(() => client.drains > drains, 300));
    }
    assert.equal(stuck, true, "the writer got stuck before 32 MiB were sent");
    assert.ok(refusals > 0);
    assert.ok(client.conn.bufferedBytes > 0);
    assert.equal(accepted[0].bytes, 0, "a paused conn delivers nothing");
    const drains = client.drains;
    accepted[0].conn.resume();
    await until(() => client.drains > drains, 10_000, "onDrain");
    await writeAll(client.conn, data.subarray(sent), 256 * 1024);
    await within(accepted[0].received(data.length), 20_000, "all bytes at the server");
    assert.equal(firstDifference(accepted[0].data(), data), -1);
  });

  it("pause() stops onData mid-stream until resume(), even with a read in flight", { timeout: 30_000 }, async () => {
    const data = pattern(8 * MIB, 44);
    let bytesAtPause = -1;
    let pauseScheduled = false;
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      const recordData = rec.conn.onData;
      rec.conn.onData = (chunk) => {
        recordData(chunk);
        if (pauseScheduled || rec.bytes < 2 * MIB) return;
        pauseScheduled = true;
        // Pause from outside a data callback, while the runtime is busy reading.
        setTimeout(() => {
          bytesAtPause = rec.bytes;
          rec.conn.pause();
        }, 0);
      };
    });
    const client = record(scope.conn(net.connect(listener.addr)));
    const writing = writeAll(client.conn, data, 64 * 1024);
    await until(() => bytesAtPause >= 0, 10_000, "the server to pause");
    await sleep(150);
    assert.equal(accepted[0].bytes, bytesAtPause, "no onData while paused");
    accepted[0].conn.resume();
    await within(accepted[0].received(data.length), 20_000, "the rest after resume");
    await within(writing, 5_000, "the writer");
    assert.equal(firstDifference(accepted[0].data(), data), -1);
  });

  it("a paused conn still reports the peer's FIN when no data is held", async () => {
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      const recordData = rec.conn.onData;
      rec.conn.onData = (chunk) => {
        recordData(chunk);
        rec.conn.pause(); // paused from here on, with nothing held
      };
    });
    const client = record(scope.conn(net.connect(listener.addr)));
    client.conn.write(encode("hi"));
    await until(() => (accepted[0]?.bytes ?? 0) >= 2, 5_000, "the first bytes");
    client.conn.end();
    await within(accepted[0].ended, 5_000, "onEnd while paused");
    accepted[0].conn.end();
    assert.equal(await assertClosedOnce(accepted[0]), undefined);
    assert.equal(await assertClosedOnce(client), undefined);
  });

  it("a paused conn holds data and the FIN behind it, and hands both over in order after resume()", async () => {
    const data = pattern(10_000, 88);
    let bytesAtEnd = -1;
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      rec.conn.pause();
      const recordEnd = rec.conn.onEnd;
      rec.conn.onEnd = () => {
        bytesAtEnd = rec.bytes;
        recordEnd();
      };
    });
    const client = record(scope.conn(net.connect(listener.addr)));
    client.conn.write(data);
    client.conn.end();
    await until(() => accepted.length > 0, 5_000, "the accept");
    await sleep(200);
    assert.equal(accepted[0].bytes, 0);
    assert.equal(accepted[0].ends, 0, "the FIN waits behind the held data");
    accepted[0].conn.resume();
    await within(accepted[0].ended, 5_000, "onEnd after resume");
    assert.equal(bytesAtEnd, data.length, "all data came before onEnd");
    assert.equal(firstDifference(accepted[0].data(), data), -1);
    accepted[0].conn.end();
    assert.equal(await assertClosedOnce(client), undefined);
  });

  it("a paused conn delivers no onData even when the peer goes away abruptly", async () => {
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      rec.conn.pause();
      rec.conn.write(pattern(MIB, 99));
    });
    const client = record(scope.conn(net.connect(listener.addr)));
    client.conn.pause(); // leave the server's bytes unread, so closing resets on Linux
    client.conn.write(pattern(100_000, 98));
    await until(() => accepted.length > 0, 5_000, "the accept");
    await sleep(50);
    client.conn.destroy();
    await within(client.closed, 5_000, "the client's close");
    await sleep(300);
    assert.equal(accepted[0].bytes, 0);
  });

  it("a paused conn that keeps writing notices a peer that went away, and closes once with an error", {
    timeout: 20_000,
  }, async () => {
    const chunk = pattern(4096, 97);
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      const recordData = rec.conn.onData;
      rec.conn.onData = (data) => {
        recordData(data);
        rec.conn.pause();
      };
      // Keep writing small replies, as the proxy does while they arrive; at most 8 MiB.
      let sent = 0;
      const timer = setInterval(() => {
        if (rec.closes > 0 || sent >= 8 * MIB) return clearInterval(timer);
        for (let i = 0; i < 16; i++) rec.conn.write(chunk);
        sent += 16 * chunk.length;
      }, 1);
    });
    // The client reads everything, so its close is a plain FIN that the paused server
    // does not read; only the server's later writes can find out that the peer is gone.
    const client = record(scope.conn(net.connect(listener.addr)));
    client.conn.write(pattern(300_000, 96)); // more than the server holds while paused
    await until(() => accepted.length > 0, 5_000, "the accept");
    await sleep(30);
    client.conn.destroy();
    const err = await assertClosedOnce(accepted[0]);
    assert.match(err?.message ?? "no error", /^(Broken pipe|Connection reset by peer)$/);
    assert.equal(closeReasonOf(err), CloseReason.Reset, "the adapter sets the Reset code");
  });

  it("large writes made without waiting arrive complete and in order", { timeout: 30_000 }, async () => {
    const sizes = [3 * MIB, 1, 5 * MIB + 7, 65_536, 65_537, 2 * MIB - 3, 17];
    const total = sizes.reduce((a, b) => a + b, 0);
    const data = pattern(total, 55);
    const { listener, accepted } = await listenRecorded(net, scope);
    const client = record(scope.conn(net.connect(listener.addr)));
    let offset = 0;
    for (const size of sizes) {
      client.conn.write(data.subarray(offset, offset + size)); // ignore backpressure on purpose
      offset += size;
    }
    assert.ok(client.conn.bufferedBytes > 0, "bytes wait in user space right after the writes");
    await until(() => (accepted[0]?.bytes ?? 0) >= total, 20_000, "all bytes");
    assert.equal(firstDifference(accepted[0].data(), data), -1);
    await until(() => client.conn.bufferedBytes === 0, 5_000, "an empty queue");
  });

  it("after the client's end(), the server sees onEnd and its reply still reaches the client", async () => {
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      rec.conn.onEnd = () => {
        rec.ends++;
        rec.conn.write(encode(`reply to ${decode(rec.data())}`));
        rec.conn.end();
      };
    });
    const client = record(scope.conn(net.connect(listener.addr)));
    client.conn.write(encode("question"));
    client.conn.end();
    assert.equal(client.conn.write(encode("late")), false, "write() after end() is refused");
    assert.equal(await assertClosedOnce(client), undefined);
    assert.equal(decode(client.data()), "reply to question");
    assert.equal(client.ends, 1);
    assert.equal(await assertClosedOnce(accepted[0]), undefined);
    assert.equal(accepted[0].ends, 1);
  });

  it("a peer's end() arrives as onEnd; the conn stays writable until end() closes it once", async () => {
    const { listener, accepted } = await listenRecorded(net, scope, (rec) => {
      rec.conn.write(encode("bye"));
      rec.conn.end();
    });
    const client = record(scope.conn(net.connect(listener.addr)));
    await within(client.ended, 5_000, "onEnd");
    await sleep(50);
    assert.equal(client.closes, 0, "half-closed, not closed");
    assert.equal(client.conn.write(encode("still here")), true);
    await within(accepted[0].received(10), 5_000, "the late write at the server");
    client.conn.end();
    assert.equal(await assertClosedOnce(client), undefined);
    assert.equal(decode(client.data()), "bye");
    assert.equal(decode(accepted[0].data()), "still here");
    assert.equal(await assertClosedOnce(accepted[0]), undefined);
  });

  it("end() closes within END_TIMEOUT_MS when the peer never closes its side", { timeout: 20_000 }, async () => {
    const { listener, accepted } = await listenRecorded(net, scope);
    const client = record(scope.conn(net.connect(listener.addr)));
    client.conn.write(encode("x"));
    await until(() => accepted.length > 0, 5_000, "the accept");
    const startedAt = Date.now();
    client.conn.end();
    await within(accepted[0].ended, 5_000, "the FIN at the server");
    assert.equal(client.closes, 0, "still waiting for the peer's FIN");
    assert.equal(await within(client.closed, END_TIMEOUT_MS + 5_000, "the end timeout"), undefined);
    assert.ok(Date.now() - startedAt >= END_TIMEOUT_MS - 50);
    assert.equal(await assertClosedOnce(client), undefined);
    assert.equal(accepted[0].closes, 0, "the peer that never ended is still open");
  });

  it("writing to a peer that destroyed its side ends in one onClose with a strerror message", async () => {
    const { listener } = await listenRecorded(net, scope, (rec) => rec.conn.destroy());
    const client = record(scope.conn(net.connect(listener.addr)));
    await within(client.ended, 5_000, "onEnd");
    const chunk = pattern(64 * 1024, 66);
    for (let i = 0; i < 200 && client.closes === 0; i++) {
      client.conn.write(chunk);
      await sleep(10);
    }
    const err = await assertClosedOnce(client);
    assert.ok(err, "onClose carries an error");
    assert.match(err.message, /^(Broken pipe|Connection reset by peer)$/);
    assert.equal(closeReasonOf(err), CloseReason.Reset, "the adapter sets the Reset code");
  });

  it("destroy() closes once; a second destroy() or end() changes nothing", async () => {
    const echo = await startEcho(net, scope);
    const client = record(scope.conn(net.connect(echo.addr)));
    client.conn.write(encode("x"));
    await within(client.received(1), 5_000, "the echo");
    client.conn.destroy();
    client.conn.destroy();
    client.conn.end();
    assert.equal(client.conn.write(encode("y")), false);
    assert.equal(await assertClosedOnce(client), undefined);
    await within(echo.accepted[0].ended, 5_000, "the server's onEnd");
    assert.equal(await assertClosedOnce(echo.accepted[0]), undefined);
  });

  it("destroy(err) hands that same error to onClose, even before the connect finished", async () => {
    const echo = await startEcho(net, scope);
    const client = record(scope.conn(net.connect(echo.addr)));
    const mine = new Error("mine");
    client.conn.destroy(mine);
    assert.equal(await assertClosedOnce(client), mine);
    assert.equal(client.connects, 0);
  });

  it("end() flushes what was queued and closes once after the peer ends too", async () => {
    const echo = await startEcho(net, scope);
    const client = record(scope.conn(net.connect(echo.addr)));
    const data = pattern(MIB, 77);
    client.conn.write(data);
    client.conn.end();
    assert.equal(await assertClosedOnce(client), undefined);
    assert.equal(firstDifference(client.data(), data), -1);
    assert.equal(await assertClosedOnce(echo.accepted[0]), undefined);
  });

  it("a refused connect closes once with Connection refused and never reports onConnect", async () => {
    const port = await unusedPort(net);
    const client = record(scope.conn(net.connect({ kind: "tcp", host: "127.0.0.1", port })));
    client.conn.write(encode("queued"));
    const err = await assertClosedOnce(client);
    assert.ok(err);
    assert.match(err.message, /Connection refused/);
    assert.equal(closeReasonOf(err), CloseReason.Refused, "the adapter sets the Refused code");
    assert.equal(client.connects, 0);
  });

  it("a connect that does not finish within connectTimeoutMs closes once with Connection timed out", {
    timeout: 30_000,
  }, async () => {
    const port = await startStalledListener(net, scope);
    // Fill the stalled listener's accept queue; the first connect that hangs is the one under test.
    let rec: Recorder | undefined;
    let startedAt = 0;
    for (let attempt = 0; attempt < 1200 && rec === undefined; attempt++) {
      startedAt = Date.now();
      const candidate = record(scope.conn(net.connect({ kind: "tcp", host: "127.0.0.1", port }, { connectTimeoutMs: 300 })));
      const outcome = await within(
        Promise.race([candidate.connected.then(() => "connected"), candidate.closed.then(() => "closed")]),
        5_000,
        "connect or close",
      );
      if (outcome === "closed") rec = candidate;
    }
    const elapsed = Date.now() - startedAt;
    assert.ok(rec, "a connect eventually hung");
    const err = await assertClosedOnce(rec);
    assert.ok(elapsed >= 250, "the timer, not a refusal, closed it");
    assert.equal(err?.message, "Connection timed out");
    assert.equal(closeReasonOf(err), CloseReason.Timeout, "the adapter sets the Timeout code");
    assert.equal(rec.connects, 0);
  });

  it("serves 500 concurrent connections, each getting its own bytes back", { timeout: 60_000 }, async () => {
    const echo = await startEcho(net, scope);
    const clients = Array.from({ length: 500 }, () => record(scope.conn(net.connect(echo.addr))));
    const messages = clients.map((_, i) => pattern(1000 + i, 1000 + i));
    clients.forEach((client, i) => client.conn.write(messages[i]));
    await within(Promise.all(clients.map((c, i) => c.received(messages[i].length))), 30_000, "500 echoes");
    clients.forEach((client, i) => assert.equal(firstDifference(client.data(), messages[i]), -1));
    assert.equal(echo.accepted.length, 500);
    for (const client of clients) client.conn.destroy();
    await within(Promise.all(clients.map((c) => c.closed)), 10_000, "500 client closes");
    await within(Promise.all(echo.accepted.map((s) => s.closed)), 10_000, "500 server closes");
    await sleep(50);
    assert.ok([...clients, ...echo.accepted].every((rec) => rec.closes === 1));
  });

  it("a unix socket echoes, gets the requested mode, and is removed on close", async () => {
    const path = socketPath();
    const echo = await startEcho(net, scope, { kind: "unix", path, mode: 0o640 });
    assert.equal(statSync(path).mode & 0o777, 0o640);
    assert.deepEqual(echo.addr, { kind: "unix", path, mode: 0o640 });
    const client = record(scope.conn(net.connect({ kind: "unix", path })));
    client.conn.write(encode("over unix"));
    await within(client.received(9), 5_000, "the echo");
    assert.equal(decode(client.data()), "over unix");
    assert.equal(client.conn.remote, path);
    assert.equal(client.connects, 1);
    await scope.close();
    assert.equal(existsSync(path), false);
  });

  it("listen() replaces a stale unix socket file left by a dead process", async () => {
    const path = socketPath();
    await leaveStaleSocket(net, scope, path);
    assert.ok(lstatSync(path).isSocket(), "the stale socket file exists");
    const echo = await startEcho(net, scope, { kind: "unix", path });
    const client = record(scope.conn(net.connect(echo.addr)));
    client.conn.write(encode("fresh"));
    await within(client.received(5), 5_000, "the echo");
    assert.equal(decode(client.data()), "fresh");
  });

  it("listens and connects on IPv6 ::1", async () => {
    const echo = await startEcho(net, scope, { kind: "tcp", host: "::1", port: 0 });
    assert.equal(echo.addr.kind === "tcp" && echo.addr.host, "::1");
    const port = portOf(echo.addr);
    const client = record(scope.conn(net.connect({ kind: "tcp", host: "::1", port })));
    client.conn.write(encode("six"));
    await within(client.received(3), 5_000, "the echo");
    assert.equal(decode(client.data()), "six");
    assert.equal(client.conn.remote, `[::1]:${port}`);
    assert.match(echo.accepted[0].conn.remote, /^\[::1\]:\d+$/);
  });

  it("listens and connects by the hostname localhost", async () => {
    const echo = await startEcho(net, scope, { kind: "tcp", host: "localhost", port: 0 });
    const port = portOf(echo.addr);
    assert.ok(port > 0);
    const client = record(scope.conn(net.connect({ kind: "tcp", host: "localhost", port })));
    client.conn.write(encode("by name"));
    await within(client.received(7), 5_000, "the echo");
    assert.equal(decode(client.data()), "by name");
    assert.equal(client.conn.remote, `localhost:${port}`);
  });

  it("closing a listener refuses new connections and leaves existing ones working", async () => {
    const echo = await startEcho(net, scope);
    const first = record(scope.conn(net.connect(echo.addr)));
    first.conn.write(encode("a"));
    await within(first.received(1), 5_000, "the first echo");
    await scope.listeners[0].close();
    const second = record(scope.conn(net.connect(echo.addr)));
    const err = await assertClosedOnce(second);
    assert.match(err?.message ?? "", /Connection refused/);
    first.conn.write(encode("b"));
    await within(first.received(2), 5_000, "the second echo");
    assert.equal(decode(first.data()), "ab");
  });

  it("serveHttp() answers requests with the handler's Response", async () => {
    const seen: string[] = [];
    const listener = await net.serveHttp(LOOPBACK, (req) => {
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      return new Response(JSON.stringify({ ok: true }), { headers: { "content-type": "application/json" } });
    });
    scope.listeners.push(listener);
    const port = portOf(listener.addr);
    assert.ok(port > 0);
    const res = await within(fetch(`http://127.0.0.1:${port}/stats`), 5_000, "the HTTP response");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.deepEqual(await res.json(), { ok: true });
    assert.deepEqual(seen, ["GET /stats"]);
  });
});
