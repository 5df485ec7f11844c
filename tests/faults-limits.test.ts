/**
 * Client faults, limits and lifecycle with real redis-servers: clients that vanish
 * mid-pipeline or send garbage, 1,000 clients at once, a client that never reads (memory
 * stays bounded, others still served), the per-client output and request limits, a
 * stopped server holding back a pipelining client, client_connections, server_connections
 * with preconnect, and graceful shutdown with a request in flight (in process, and the
 * real CLI on SIGTERM).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { redisPoolYaml, startTestProxy } from "./helpers/proxy.ts";
import { rawExchange, rawText, type ServerProcess, signal, startRedis } from "./helpers/servers.ts";
import { canConnect, freePort, sleep, waitForPort } from "./helpers/ports.ts";
import { cliCommand, ROOT } from "./helpers/runtime.ts";
import { type Arg, encodePipeline } from "./helpers/resp.ts";
import { freeze, PipeClient, rig, Rng, text, waitFor } from "./helpers/soak.ts";

const decoder = new TextDecoder();
const pipe = (...cmds: Arg[][]) => encodePipeline(cmds);
const bulk = (v: string) => `$${v.length}\r\n${v}\r\n`;
const MB = 1024 * 1024;


/** CLIENT LIST of one backend, minus the connection asking. */
async function backendClients(server: ServerProcess): Promise<string[]> {
  const reply = await rawText(server.port, pipe(["CLIENT", "LIST"]), { until: (d) => d.length > 4 && d[d.length - 1] === 10 });
  return reply.split("\n").filter((line) => line.startsWith("id=") && !line.includes("cmd=client|list"));
}

describe("many clients and clients that do not read", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  hash: md5\n"), 2);

  it("serves 1,000 clients connecting at once, every reply correct", async () => {
    const one = async (i: number) => {
      const c = await PipeClient.connect(r.tp.port(), undefined, 15000);
      try {
        const got = await c.exchange(pipe(["SET", `many:${i}`, `v${i}`], ["GET", `many:${i}`], ["INCR", `many:n:${i}`], ["DEL", `many:${i}`]), 4, 20000);
        assert.deepEqual(got, ["+OK\r\n", bulk(`v${i}`), ":1\r\n", ":1\r\n"], `client ${i}`);
      } finally {
        c.destroy();
      }
    };
    await Promise.all(Array.from({ length: 1000 }, (_, i) => one(i)));
    assert.ok(await waitFor(() => r.tp.proxy.pools[0].stats.client_connections === 0, 5000), "all 1,000 clients closed");
  });

  it("stops reading from a client that never reads its replies; memory stays bounded and other clients are served", async () => {
    const pool = r.tp.proxy.pools[0];
    const setup = await PipeClient.connect(r.tp.port());
    assert.deepEqual(await setup.exchange(pipe(["SET", "kb", "k".repeat(1024)]), 1), ["+OK\r\n"]);
    setup.destroy();
    const forwarded = () => pool.servers.reduce((n, s) => n + s.stats.requests, 0);
    const before = forwarded();
    const base = process.memoryUsage().rss;
    const hog = await PipeClient.connect(r.tp.port());
    hog.stopReading();
    const count = 200000;
    hog.write(encodePipeline(Array.from({ length: count }, () => ["GET", "kb"])));
    let peak = base;
    const other = await PipeClient.connect(r.tp.port());
    for (let round = 0; round < 30; round++) {
      const started = Date.now();
      assert.deepEqual(await other.exchange(pipe(["SET", "other", `o${round}`], ["GET", "other"]), 2, 3000), ["+OK\r\n", bulk(`o${round}`)]);
      assert.ok(Date.now() - started < 1000, `the other client waited ${Date.now() - started} ms`);
      peak = Math.max(peak, process.memoryUsage().rss);
      await sleep(100);
    }
    const sent = forwarded() - before - 60;
    assert.ok(sent < count / 2, `the proxy kept forwarding for the stalled client: ${sent} of ${count}`);
    assert.ok(hog.unsentBytes > 0 || sent < count / 4, "the proxy stopped reading the stalled client");
    assert.ok(peak - base < 300 * MB, `rss grew by ${Math.round((peak - base) / MB)} MB`);
    hog.destroy();
    const gone = () => pool.stats.client_connections === 1 && pool.servers.every((s) => s.stats.out_queue === 0);
    assert.ok(await waitFor(gone, 5000), `the stalled client is released (clients ${pool.stats.client_connections})`);
    assert.deepEqual(await other.exchange(pipe(["GET", "other"]), 1), [bulk("o29")]);
    other.destroy();
  });
});

describe("per-client output and request limits", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, ""), 1, { maxOutputBytes: 16 * MB, maxRequestBytes: 2 * MB, pauseOutputBytes: 64 * MB });

  it("closes a client whose unread replies exceed maxOutputBytes, logging it, and keeps serving others", async () => {
    const setup = await PipeClient.connect(r.tp.port());
    assert.deepEqual(await setup.exchange(pipe(["SET", "huge", "h".repeat(MB)]), 1), ["+OK\r\n"]);
    const base = process.memoryUsage().rss;
    const hog = await PipeClient.connect(r.tp.port());
    hog.stopReading();
    hog.write(encodePipeline(Array.from({ length: 200 }, () => ["GET", "huge"])));
    const logged = () => r.tp.logs.some((l) => l.includes("exceeded the output limit"));
    assert.ok(await waitFor(logged, 10000), "the proxy logs closing the client over its output limit");
    assert.ok(process.memoryUsage().rss - base < 300 * MB, "memory stayed bounded");
    // The stalled client only notices the close once it reads again.
    assert.ok(await waitFor(() => r.tp.proxy.pools[0].stats.client_connections === 1, 3000), "the proxy dropped the client");
    hog.destroy();
    assert.deepEqual(await setup.exchange(pipe(["GET", "small"], ["SET", "small", "s"], ["GET", "small"]), 3), ["$-1\r\n", "+OK\r\n", bulk("s")]);
    setup.destroy();
  });

  it("closes a client sending one request larger than maxRequestBytes", async () => {
    const head = new TextEncoder().encode(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${4 * MB}\r\n`);
    const body = new Uint8Array(3 * MB).fill(0x61);
    const reply = await rawExchange(r.tp.port(), new Uint8Array([...head, ...body]), { timeoutMs: 15_000 });
    assert.equal(reply.closed, true, "the client was closed");
    assert.ok(r.tp.logs.some((l) => l.includes("exceeded the request limit")), "the close is logged");
    // A generous bound: right after 3 MiB through the proxy a busy machine took over 2 s (the default) to answer.
    const next = await rawText(r.tp.port(), pipe(["SET", "k", "ok"], ["GET", "k"]), { untilEnds: "ok\r\n", timeoutMs: 15_000 });
    assert.equal(next, "+OK\r\n$2\r\nok\r\n");
  });
});

describe("a stopped server and a client pipelining to it", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, ""), 1, { maxInflight: 256 });

  it("holds at most maxInflight requests for the client, then delivers every reply in order after SIGCONT", async () => {
    const server = r.tp.proxy.pools[0].servers[0];
    await freeze(r.servers[0]);
    const client = await PipeClient.connect(r.tp.port());
    const count = 50000;
    const cmds = Array.from({ length: count }, () => ["INCR", "ctr"]);
    client.write(encodePipeline(cmds));
    await sleep(500);
    assert.ok(server.stats.out_queue > 0 && server.stats.out_queue <= 256, `out_queue ${server.stats.out_queue}`);
    r.servers[0].kill("SIGCONT");
    const replies = await client.waitReplies(count, 30000);
    client.destroy();
    const bad = replies.findIndex((reply, i) => new TextDecoder().decode(reply) !== `:${i + 1}\r\n`);
    assert.equal(bad, -1, `reply ${bad} out of order`);
  });
});

describe("a stopped server and a client sending large requests to it", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, ""), 1);

  it("holds a bounded number of request bytes for the stopped server, not maxInflight requests of any size", async () => {
    const server = r.tp.proxy.pools[0].servers[0];
    await freeze(r.servers[0]);
    const client = await PipeClient.connect(r.tp.port());
    const count = 256;
    const value = (i: number) => new Uint8Array(MB).fill(0x61 + (i % 26));
    for (let i = 0; i < count; i++) client.write(pipe(["SET", "big", value(i)]));
    let held = 0;
    await waitFor(() => {
      held = Math.max(held, server.stats.out_queue_bytes);
      return false;
    }, 1500, 50);
    r.servers[0].kill("SIGCONT");
    const replies = await client.waitReplies(count, 30000);
    assert.ok(replies.every((reply) => decoder.decode(reply) === "+OK\r\n"), "every SET answered +OK after SIGCONT");
    const [last] = await client.exchange(pipe(["GET", "big"]), 1, 10000);
    client.destroy();
    assert.equal(last, `$${MB}\r\n${String.fromCharCode(0x61 + ((count - 1) % 26)).repeat(MB)}\r\n`, "the last SET won");
    assert.ok(held < 64 * MB, `the proxy held ${Math.round(held / MB)} MB of requests for a stopped server`);
  });
});

describe("a stopped server and many clients sending to it (maxServerQueueBytes: 2 MiB)", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, ""), 1, { maxServerQueueBytes: 2 * MB });

  it("holds about the server's mark in total, not each client's limit times the clients, and answers everything after SIGCONT", async () => {
    const server = r.tp.proxy.pools[0].servers[0];
    await freeze(r.servers[0]);
    const clients = await Promise.all(Array.from({ length: 8 }, () => PipeClient.connect(r.tp.port())));
    const perClient = 32;
    const value = new Uint8Array(64 * 1024).fill(0x62);
    clients.forEach((c, k) => {
      for (let i = 0; i < perClient; i++) c.write(pipe(["SET", `q:${k}`, value]));
    });
    let held = 0;
    await waitFor(() => {
      held = Math.max(held, server.stats.out_queue_bytes + server.stats.in_queue_bytes);
      return false;
    }, 1500, 25);
    r.servers[0].kill("SIGCONT");
    const replies = await Promise.all(clients.map((c) => c.waitReplies(perClient, 30000)));
    for (const c of clients) c.destroy();
    assert.ok(replies.flat().every((reply) => decoder.decode(reply) === "+OK\r\n"), "every SET answered +OK after SIGCONT");
    // 8 clients x 2 MiB were sent; the mark plus one request per client may be held.
    assert.ok(held <= 2 * MB + 8 * (64 * 1024 + 100), `the proxy held ${(held / MB).toFixed(1)} MiB for a stopped server`);
    assert.ok(held >= MB, `requests reached the server's queue (${held} bytes)`);
  });
});

describe("clients that disconnect with requests in flight", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  hash: md5\n"));

  it("leave other clients' replies and every later reply correct", async () => {
    const pool = r.tp.proxy.pools[0];
    const big = "b".repeat(4096);
    const setup = await PipeClient.connect(r.tp.port());
    const bigKeys = Array.from({ length: 20 }, (_, i) => `big:${i}`);
    assert.ok((await setup.exchange(encodePipeline(bigKeys.map((k) => ["SET", k, big])), 20)).every((x) => x === "+OK\r\n"));
    setup.destroy();
    // Small pipelines fit in the proxy's read buffers; large ones leave it paused with input still unread.
    const abandoned = [3000, 30000].map((n) => encodePipeline(Array.from({ length: n }, (_, i) => ["GET", bigKeys[i % 20]])));

    const vanishing = async () => {
      for (let i = 0; i < 20; i++) {
        const c = await PipeClient.connect(r.tp.port());
        c.write(abandoned[i % 2]);
        if (i % 4 < 2) await sleep(5);
        c.destroy();
      }
    };
    const healthy = async (name: string) => {
      const c = await PipeClient.connect(r.tp.port());
      for (let round = 0; round < 15; round++) {
        const cmds: Arg[][] = [];
        const want: string[] = [];
        for (let i = 0; i < 200; i++) {
          const v = `${name}-${round}-${i}`;
          cmds.push(["SET", `h:${name}:${i}`, v], ["GET", `h:${name}:${i}`], ["INCR", `n:${name}:${i}`]);
          want.push("+OK\r\n", bulk(v), `:${round + 1}\r\n`);
        }
        assert.deepEqual(await c.exchange(encodePipeline(cmds), cmds.length, 15000), want, `${name} round ${round}`);
      }
      c.destroy();
    };
    await Promise.all([vanishing(), healthy("one"), healthy("two")]);

    const later = await PipeClient.connect(r.tp.port());
    const check = bigKeys.flatMap((k, i) => [["SET", `after:${i}`, `a${i}`], ["GET", k], ["GET", `after:${i}`]]);
    const want = bigKeys.flatMap((_, i) => ["+OK\r\n", bulk(big), bulk(`a${i}`)]);
    assert.deepEqual(await later.exchange(encodePipeline(check), check.length), want);
    later.destroy();
    const idle = () => pool.stats.client_connections === 0 && pool.servers.every((s) => s.conns.every((c) => c.outstanding === 0));
    const state = () => `clients ${pool.stats.client_connections}, outstanding ${pool.servers.map((s) => s.conns.map((c) => c.outstanding).join("/")).join(" ")}`;
    assert.ok(await waitFor(idle, 5000), `all clients gone and no request left outstanding: ${state()}`);
    assert.equal(pool.stats.server_ejects, 0);
  });
});

describe("clients sending garbage next to healthy clients", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, ""));

  it("answers each malformed request with an error and closes that client; healthy clients get every reply right", async () => {
    const rng = new Rng(7);
    const junk = new Uint8Array(70000).map(() => 32 + rng.int(90)); // no line end: an over-long inline request
    const garbage: (string | Uint8Array)[] = [
      "*x\r\n",
      "*1\r\n$abc\r\n",
      "*2\r\n$3\r\nGET\r\n:5\r\n",
      new Uint8Array([0x2a, 0xff, 0xfe, 0x00, 0x13, 0x0d, 0x0a]),
      junk,
    ];
    const bad = async () => {
      for (const g of garbage) {
        const reply = await rawExchange(r.tp.port(), g, { timeoutMs: 3000 });
        const shown = decoder.decode(reply.data);
        assert.ok(shown.startsWith("-ERR"), `garbage ${text(typeof g === "string" ? new TextEncoder().encode(g) : g, 20)} got ${JSON.stringify(shown)}`);
        assert.equal(reply.closed, true, "the garbage client is closed");
      }
    };
    const healthy = async (name: string) => {
      const c = await PipeClient.connect(r.tp.port());
      for (let round = 0; round < 20; round++) {
        const cmds: Arg[][] = [];
        const want: string[] = [];
        for (let i = 0; i < 50; i++) {
          const v = `${name}:${round}:${i}`;
          cmds.push(["SET", `g:${name}:${i}`, v], ["GET", `g:${name}:${i}`]);
          want.push("+OK\r\n", bulk(v));
        }
        assert.deepEqual(await c.exchange(encodePipeline(cmds), cmds.length), want);
      }
      c.destroy();
    };
    await Promise.all([bad(), healthy("p"), healthy("q"), healthy("r")]);
  });
});

describe("client_connections: 5", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  client_connections: 5\n"), 1);

  it("rejects the sixth client with an error and accepts a new one after another leaves", async () => {
    const pool = r.tp.proxy.pools[0];
    const five = await Promise.all(Array.from({ length: 5 }, () => PipeClient.connect(r.tp.port())));
    for (const c of five) assert.deepEqual(await c.exchange(pipe(["PING"]), 1), ["+PONG\r\n"]);
    const sixth = await rawExchange(r.tp.port(), pipe(["PING"]), { timeoutMs: 3000 });
    assert.equal(new TextDecoder().decode(sixth.data), "-ERR max number of clients reached\r\n");
    assert.equal(sixth.closed, true);
    five[0].destroy();
    assert.ok(await waitFor(() => pool.stats.client_connections === 4, 3000), "the proxy saw the client leave");
    const next = await PipeClient.connect(r.tp.port());
    assert.deepEqual(await next.exchange(pipe(["SET", "cc", "1"], ["GET", "cc"]), 2), ["+OK\r\n", bulk("1")]);
    for (const c of [next, ...five]) c.destroy();
  });
});

describe("server_connections: 3", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  server_connections: 3\n"), 1);
  const pre = rig(startRedis, (ports) => redisPoolYaml(ports, "  server_connections: 3\n  preconnect: true\n"), 1);

  it("spreads clients over three connections to the server", async () => {
    const clients = await Promise.all(Array.from({ length: 9 }, () => PipeClient.connect(r.tp.port())));
    await Promise.all(clients.map(async (c, i) => {
      assert.deepEqual(await c.exchange(pipe(["SET", `sc:${i}`, `v${i}`], ["GET", `sc:${i}`]), 2), ["+OK\r\n", bulk(`v${i}`)]);
    }));
    const used = (await backendClients(r.servers[0])).filter((l) => / cmd=(get|set) /.test(l));
    assert.equal(used.length, 3, `backend connections:\n${used.join("\n")}`);
    for (const c of clients) c.destroy();
  });

  it("opens all three connections at start with preconnect: true", async () => {
    const opened = await waitFor(async () => (await backendClients(pre.servers[0])).length === 3, 3000, 50);
    assert.ok(opened, `backend sees ${(await backendClients(pre.servers[0])).length} connections`);
  });
});

describe("graceful shutdown", () => {
  let server: ServerProcess;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    server?.kill("SIGCONT");
    await server?.stop();
  });

  it("refuses new connections at once and still delivers an in-flight reply that arrives within the grace time", async () => {
    const tp = await startTestProxy(redisPoolYaml([server.port]));
    try {
      const client = await PipeClient.connect(tp.port());
      assert.deepEqual(await client.exchange(pipe(["SET", "slow", "answer"]), 1), ["+OK\r\n"]);
      await freeze(server);
      client.write(pipe(["GET", "slow"]));
      await sleep(50);
      const start = Date.now();
      const closing = tp.proxy.close(2000);
      await sleep(100);
      assert.equal(await canConnect(tp.port(), 500), false, "new connections are refused once close starts");
      server.kill("SIGCONT");
      const replies = await client.waitReplies(2, 2000);
      assert.equal(new TextDecoder().decode(replies[1]), bulk("answer"));
      await closing;
      assert.ok(Date.now() - start < 1900, `close waited ${Date.now() - start} ms though nothing was left in flight`);
      assert.ok(await waitFor(() => client.closed, 1000), "the client connection is closed after its reply");
    } finally {
      server.kill("SIGCONT");
      await tp.close();
    }
  });

  it("closes a client whose request is still in flight when the grace time ends", async () => {
    const tp = await startTestProxy(redisPoolYaml([server.port]));
    try {
      const client = await PipeClient.connect(tp.port());
      assert.deepEqual(await client.exchange(pipe(["PING"]), 1), ["+PONG\r\n"]);
      await freeze(server);
      client.write(pipe(["GET", "slow"]));
      await sleep(50);
      const start = Date.now();
      await tp.proxy.close(500);
      const took = Date.now() - start;
      assert.ok(took >= 400 && took < 1500, `close took ${took} ms with a 500 ms grace`);
      assert.ok(await waitFor(() => client.closed, 1000), "the client was closed");
      assert.equal(client.replies.length, 1, "no reply for the abandoned request");
    } finally {
      server.kill("SIGCONT");
      await tp.close();
    }
  });
});

describe("the nutcracker CLI on SIGTERM", () => {
  let server: ServerProcess;
  let dir = "";
  let pid = -1;

  before(async () => {
    server = await startRedis();
    dir = mkdtempSync(path.join(tmpdir(), "faults-cli-"));
  });
  after(async () => {
    if (pid > 0) signal(pid, "SIGKILL");
    server?.kill("SIGCONT");
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stops accepting, delivers the reply still in flight, then exits 0", async () => {
    const port = await freePort();
    const conf = path.join(dir, "term.yml");
    writeFileSync(conf, redisPoolYaml([server.port]).replace("127.0.0.1:0", `127.0.0.1:${port}`));
    const [cmd, args] = cliCommand("-c", conf, "-s", String(await freePort()));
    const child = spawn(cmd, args, { cwd: ROOT, stdio: "ignore" });
    pid = child.pid ?? -1;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await waitForPort(port, 30000);
    const client = await PipeClient.connect(port);
    assert.deepEqual(await client.exchange(pipe(["SET", "term", "late"]), 1), ["+OK\r\n"]);
    await freeze(server);
    client.write(pipe(["GET", "term"]));
    await sleep(100);
    signal(pid, "SIGTERM");
    assert.ok(await waitFor(async () => !(await canConnect(port, 200)), 3000), "the listener closes on SIGTERM");
    server.kill("SIGCONT");
    const replies = await client.waitReplies(2, 3000);
    assert.equal(new TextDecoder().decode(replies[1]), bulk("late"));
    // The grace time is 5 s; with nothing left in flight the CLI exits well before it.
    const code = await Promise.race([exited, sleep(3000).then(() => "still running 3 s after the last reply")]);
    assert.equal(code, 0);
    pid = -1;
    client.destroy();
  });
});
