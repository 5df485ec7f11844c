/**
 * Unit tests of the proxy engine on an in-memory network with a fake clock: ordering,
 * timeouts, ejection and retry, fragmentation — deterministic, no real sockets.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeClock, MemNet, settle } from "./helpers/memnet.ts";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import type { Conn } from "../core/net.ts";
import { type Proxy, startProxy } from "../core/proxy/mod.ts";
import { parseRequest, RequestSlots } from "../core/redis/mod.ts";
import { concat } from "./helpers/resp.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A tiny in-memory Redis: GET/SET/DEL/MGET on a Map; can hold its replies until released. */
class FakeRedis {
  readonly data = new Map<string, string>();
  readonly received: string[] = [];
  /** Every chunk as it arrived: one per write the proxy made on a connection to this server. */
  readonly chunks: Uint8Array[] = [];
  held = false;
  private backlog: (() => void)[] = [];
  conns: Conn[] = [];

  attach(conn: Conn): void {
    this.conns.push(conn);
    const slots = new RequestSlots();
    let pending = new Uint8Array(0);
    conn.onData = (chunk) => {
      this.chunks.push(chunk.slice());
      const buf = new Uint8Array(pending.length + chunk.length);
      buf.set(pending);
      buf.set(chunk, pending.length);
      let pos = 0;
      for (let end = parseRequest(buf, pos, slots); end > 0; end = parseRequest(buf, pos, slots)) {
        const args = [];
        for (let i = 0; i < slots.argc; i++) args.push(dec.decode(buf.subarray(slots.argStart[i], slots.argEnd[i])));
        this.received.push(args.join(" "));
        const reply = this.execute(args);
        if (this.held) this.backlog.push(() => conn.write(enc.encode(reply)));
        else conn.write(enc.encode(reply));
        pos = end;
      }
      pending = buf.slice(pos);
    };
  }

  release(): void {
    this.held = false;
    for (const send of this.backlog.splice(0)) send();
  }

  private execute(args: string[]): string {
    const [name, ...rest] = args;
    const cmd = name.toLowerCase();
    if (cmd === "set") {
      this.data.set(rest[0], rest[1]);
      return "+OK\r\n";
    }
    if (cmd === "get") return bulk(this.data.get(rest[0]));
    if (cmd === "mget") return `*${rest.length}\r\n` + rest.map((k) => bulk(this.data.get(k))).join("");
    if (cmd === "del") return `:${rest.filter((k) => this.data.delete(k)).length}\r\n`;
    return "-ERR fake redis does not know " + cmd + "\r\n";
  }
}

function bulk(value: string | undefined): string {
  return value === undefined ? "$-1\r\n" : `$${enc.encode(value).length}\r\n${value}\r\n`;
}

const YAML = (extra: string) => `
alpha:
  listen: 127.0.0.1:22121
  redis: true
  hash: fnv1a_64
  distribution: modula
${extra}
  servers:
    - 127.0.0.1:7001:1 one
    - 127.0.0.1:7002:1 two
`;

interface Rig {
  net: MemNet;
  clock: FakeClock;
  proxy: Proxy;
  backends: FakeRedis[];
  /** Send raw bytes as a client; returns a function that reads what arrived so far. */
  client(): RigClient;
}

interface RigClient {
  send(text: string): void;
  sendBytes(bytes: Uint8Array): void;
  received(): string;
  closed(): boolean;
  /** Chunks received so far: one per write the proxy made on this client's connection. */
  chunks(): number;
}

async function rig(extra = ""): Promise<Rig> {
  const net = new MemNet();
  const clock = new FakeClock();
  const backends = [new FakeRedis(), new FakeRedis()];
  await net.listen({ kind: "tcp", host: "127.0.0.1", port: 7001 }, (c) => backends[0].attach(c));
  await net.listen({ kind: "tcp", host: "127.0.0.1", port: 7002 }, (c) => backends[1].attach(c));
  const log = createLogger(() => {}, 0);
  const proxy = await startProxy(loadConf(YAML(extra), "engine.yml"), { net, clock, log });
  const client = (): RigClient => {
    const conn = net.connect({ kind: "tcp", host: "127.0.0.1", port: 22121 });
    let text = "";
    let closed = false;
    let chunks = 0;
    conn.onData = (chunk) => {
      chunks++;
      text += dec.decode(chunk);
    };
    conn.onClose = () => void (closed = true);
    return {
      send: (s: string) => void conn.write(enc.encode(s)),
      sendBytes: (bytes: Uint8Array) => void conn.write(bytes),
      received: () => text,
      closed: () => closed,
      chunks: () => chunks,
    };
  };
  return { net, clock, proxy, backends, client };
}

/** Keys known (by the modula ring above) to land on server one and server two. */
function keyOn(r: Rig, server: number, prefix = "k"): string {
  for (let i = 0; i < 1000; i++) {
    const key = `${prefix}${i}`;
    const bytes = enc.encode(key);
    if (r.proxy.pools[0].serverIndexFor(bytes, 0, bytes.length) === server) return key;
  }
  throw new Error("no key found");
}

function cmd(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("");
}

describe("engine on an in-memory network", () => {
  let r: Rig;
  before(async () => {
    r = await rig("  timeout: 500\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 10000");
  });
  after(async () => {
    await r.proxy.close(0);
  });

  it("returns replies in request order when the first server answers last", async () => {
    const a = keyOn(r, 0);
    const b = keyOn(r, 1);
    r.backends[0].data.set(a, "first");
    r.backends[1].data.set(b, "second");
    r.backends[0].held = true;
    const c = r.client();
    c.send(cmd("GET", a) + cmd("GET", b));
    await settle();
    assert.equal(c.received(), "", "the second reply must wait for the first");
    r.backends[0].release();
    await settle();
    assert.equal(c.received(), "$5\r\nfirst\r\n$6\r\nsecond\r\n");
  });

  it("merges a fragmented MGET in key order", async () => {
    const a = keyOn(r, 0);
    const b = keyOn(r, 1);
    r.backends[0].data.set(a, "A");
    r.backends[1].data.set(b, "B");
    const c = r.client();
    c.send(cmd("MGET", b, "missing-key", a, b));
    await settle();
    const missing = r.proxy.pools[0].serverIndexFor(enc.encode("missing-key"), 0, 11);
    assert.ok(missing === 0 || missing === 1);
    assert.equal(c.received(), "*4\r\n$1\r\nB\r\n$-1\r\n$1\r\nA\r\n$1\r\nB\r\n");
  });

  it("times out a request, closes that server connection and never delivers the late reply", async () => {
    const a = keyOn(r, 0);
    r.backends[0].data.set(a, "late");
    r.backends[0].held = true;
    const c = r.client();
    c.send(cmd("GET", a));
    await settle();
    r.clock.advance(600);
    await settle();
    assert.equal(c.received(), "-ERR Connection timed out\r\n");
    assert.equal(r.proxy.pools[0].servers[0].stats.server_timedout, 1);
    r.backends[0].release();
    r.backends[0].held = false;
    c.send(cmd("SET", a, "fresh") + cmd("GET", a));
    await settle();
    assert.equal(c.received(), "-ERR Connection timed out\r\n+OK\r\n$5\r\nfresh\r\n");
  });
});

describe("engine local commands", () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(async () => {
    await r.proxy.close(0);
  });

  it("answers HELLO 3 with NOPROTO so RESP3-first clients fall back to RESP2", async () => {
    const c = r.client();
    c.send(cmd("HELLO", "3") + cmd("HELLO", "2"));
    await settle();
    const text = c.received();
    assert.ok(text.startsWith("-NOPROTO sorry, this protocol version is not supported\r\n*14\r\n"), text);
    assert.ok(text.includes("$5\r\nproto\r\n:2\r\n"));
  });

  it("answers PING, ECHO and SELECT 0 itself and refuses other databases", async () => {
    const c = r.client();
    c.send(cmd("PING") + cmd("ECHO", "hi") + cmd("SELECT", "0") + cmd("SELECT", "1"));
    await settle();
    assert.equal(
      c.received(),
      "+PONG\r\n$2\r\nhi\r\n+OK\r\n-ERR SELECT is not allowed through the proxy: only db 0 is available\r\n",
    );
    assert.equal(r.backends[0].received.length + r.backends[1].received.length, 0, "nothing reached a server");
  });
});

describe("engine failure policy", () => {
  let r: Rig;
  before(async () => {
    r = await rig("  timeout: 100\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 5000");
  });
  after(async () => {
    await r.proxy.close(0);
  });

  it("ejects a server after the failure limit and routes its keys to the others until the retry time", async () => {
    const a = keyOn(r, 0);
    r.backends[0].held = true;
    const c = r.client();
    for (let i = 0; i < 2; i++) {
      c.send(cmd("GET", a));
      await settle();
      r.clock.advance(150);
      await settle();
    }
    assert.equal(r.proxy.pools[0].stats.server_ejects, 1);
    assert.equal(r.proxy.pools[0].serverIndexFor(enc.encode(a), 0, a.length), 1);
    r.backends[0].release();
    r.clock.advance(5000);
    assert.equal(r.proxy.pools[0].serverIndexFor(enc.encode(a), 0, a.length), 0, "back after the retry timeout");
  });
});

/** Bytes as readable text (CR, LF and non-printable bytes escaped), for assertion messages. */
function visible(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`).join("");
}

describe("engine zero copy and write coalescing", () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(async () => {
    await r.proxy.close(0);
  });

  it("forwards requests that need no change as the client's exact bytes: mixed case, odd but valid RESP, binary", async () => {
    const pool = r.proxy.pools[0];
    const ownerOf = (key: Uint8Array) => pool.serverIndexFor(key, 0, key.length);
    const a = keyOn(r, 0, "we\r\nird*1$0 ");
    const b = keyOn(r, 1);
    const binary = new Uint8Array([0x2a, 0x31, 13, 10, 0, 0xff, 0x80, 0x24, 0x2d, 1, 13, 10, 0x2b]);
    const len = (text: string) => enc.encode(text).length;
    // Each request and the server it must reach byte for byte. Redis (and the proxy) skip the
    // byte after each CR and the two bytes after bulk data without looking at them, so the
    // GET of b is valid RESP that re-encoding would turn into something else.
    const requests: [Uint8Array, number][] = [
      [enc.encode(`*2\r\n$3\r\ngEt\r\n$${len(a)}\r\n${a}\r\n`), 0],
      [enc.encode(`*3\r\n$3\r\nsEt\r\n$${len(a)}\r\n${a}\r\n$14\r\n*1\r\n$4\r\nPING\r\n\r\n`), 0],
      [enc.encode(`*2\r?$3\r!GeTzz$${len(b)}\rx${b}--`), 1],
      [enc.encode("*2\r\n$3\r\nget\r\n$0\r\n\r\n"), ownerOf(new Uint8Array(0))],
      [concat([enc.encode(`*3\r\n$3\r\nSET\r\n$${binary.length}\r\n`), binary, enc.encode("\r\n$2\r\n\r\n\r\n")]), ownerOf(binary)],
    ];
    // "*0" and an empty inline line are valid and mean nothing: they must not reach a server.
    const input = concat([enc.encode("*0\r\n"), requests[0][0], enc.encode("\r\n"), ...requests.slice(1).map(([bytes]) => bytes)]);
    const before = r.backends.map((s) => s.chunks.length);
    const c = r.client();
    c.sendBytes(input);
    await settle();
    assert.equal(c.received(), "$-1\r\n+OK\r\n$-1\r\n$-1\r\n+OK\r\n");
    for (const server of [0, 1]) {
      const want = concat(requests.filter(([, s]) => s === server).map(([bytes]) => bytes));
      const got = concat(r.backends[server].chunks.slice(before[server]));
      assert.equal(visible(got), visible(want), `server ${server} received exactly the client's bytes`);
    }
    assert.equal(r.backends[0].data.get(a), "*1\r\n$4\r\nPING\r\n", "the SET reached the server intact");
  });

  it("a pipeline of 200 GETs in one chunk costs one write per server connection and at most two to the client", async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `p${i}`);
    keys.forEach((k, i) => r.backends[r.proxy.pools[0].serverIndexFor(enc.encode(k), 0, k.length)].data.set(k, `v${i}`));
    const owners = keys.map((k) => r.proxy.pools[0].serverIndexFor(enc.encode(k), 0, k.length));
    assert.ok(owners.includes(0) && owners.includes(1), "the keys span both servers");
    const requests = keys.map((k) => cmd("GET", k));
    const before = r.backends.map((s) => s.chunks.length);
    const c = r.client();
    c.send(requests.join(""));
    await settle();
    assert.equal(c.received(), keys.map((_, i) => bulk(`v${i}`)).join(""), "200 replies, in request order");
    for (const server of [0, 1]) {
      const chunks = r.backends[server].chunks.slice(before[server]);
      const want = requests.filter((_, i) => owners[i] === server).join("");
      assert.equal(dec.decode(concat(chunks)), want, `server ${server} got its requests, unchanged and in order`);
      assert.equal(chunks.length, 1, `server ${server}: ${owners.filter((o) => o === server).length} requests in one write`);
    }
    // The fake servers answer each request with its own write (200 chunks in); the proxy coalesces.
    assert.ok(c.chunks() <= 2, `200 replies took ${c.chunks()} writes to the client`);
  });
});

describe("swapping a pool's servers at runtime (Pool.apply, what a reload does)", () => {
  it("routes new requests to the new servers, delivers what the old ones owe in order, then closes them", async () => {
    const r = await rig();
    const third = new FakeRedis();
    await r.net.listen({ kind: "tcp", host: "127.0.0.1", port: 7003 }, (c) => third.attach(c));
    const pool = r.proxy.pools[0];
    const key = keyOn(r, 0);
    r.backends[0].data.set(key, "old");
    r.backends[0].held = true;
    const c = r.client();
    c.send(cmd("GET", key));
    await settle();
    const retired = pool.servers[0];
    assert.equal(retired.stats.server_connections, 1);

    const next = loadConf(YAML("").replace("127.0.0.1:7001:1 one", "127.0.0.1:7003:1 three"), "next.yml").pools[0];
    pool.apply(next);
    assert.deepEqual(pool.conf.shards.map((s) => s.primary.id), ["three", "two"]);
    for (const backend of [third, r.backends[1]]) backend.data.set(key, "new");
    c.send(cmd("GET", key));
    await settle();
    assert.equal(c.received(), "", "the new server's reply waits for the one the old server owes");
    assert.equal(retired.stats.server_connections, 1, "the old connection stays until it has answered");

    r.backends[0].release();
    await settle();
    assert.equal(c.received(), "$3\r\nold\r\n$3\r\nnew\r\n");
    assert.equal(retired.stats.server_connections, 0, "the old connection closed once it owed nothing");
    assert.equal(r.backends[0].received.length, 1, "nothing new went to the old server");
    await r.proxy.close(0);
  });
});
