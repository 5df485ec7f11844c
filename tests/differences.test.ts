/**
 * The deliberate differences from twemproxy 0.5.0 that no other test pinned, each through
 * real sockets to real redis-server / memcached processes: an idle server close is no
 * failure, server_connections keeps a client on one connection, the limit keys bound a
 * client from nutcracker.yml, commands twemproxy does not know or routes by numkeys, HELLO,
 * AUTH's two-argument form and memcached's version answered by the proxy. Last, README's
 * "Differences from twemproxy" section is checked: every test it names exists.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { memcachePoolYaml, redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ServerProcess, startMemcached, startRedis } from "./helpers/servers.ts";
import { type Arg, encodePipeline, RespClient, show } from "./helpers/resp.ts";
import { freeze, memcacheFramer, ownerOf, PipeClient, rig, waitFor } from "./helpers/soak.ts";
import { ROOT } from "./helpers/runtime.ts";

const decoder = new TextDecoder();
const pipe = (...cmds: Arg[][]) => encodePipeline(cmds);
const bulk = (v: string) => `$${v.length}\r\n${v}\r\n`;

/** A MONITOR connection to a redis-server, collecting the commands it sees with their source address. */
class Monitor {
  private text = "";
  private constructor(private readonly sock: net.Socket) {
    sock.on("data", (chunk: Uint8Array) => (this.text += decoder.decode(chunk)));
    sock.on("error", () => {});
  }

  static async open(port: number): Promise<Monitor> {
    const sock = net.connect({ host: "127.0.0.1", port });
    const m = new Monitor(sock);
    sock.write("MONITOR\r\n");
    assert.ok(await waitFor(() => m.text.startsWith("+OK\r\n"), 3000), `MONITOR started: ${JSON.stringify(m.text)}`);
    return m;
  }

  /** [source address, command, first argument] of every command seen so far. */
  commands(): [string, string, string][] {
    const out: [string, string, string][] = [];
    for (const line of this.text.split("\r\n")) {
      const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]*)")?/.exec(line);
      if (m !== null) out.push([m[1], m[2].toUpperCase(), m[3] ?? ""]);
    }
    return out;
  }

  close(): void {
    this.sock.destroy();
  }
}

describe("a server that closes an idle connection (redis timeout 1), with auto_eject_hosts and server_failure_limit 1", () => {
  let redis: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    redis = await startRedis({ args: ["--timeout", "1"] });
    tp = await startTestProxy(redisPoolYaml([redis.port], "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 30000\n"));
  });

  after(async () => {
    await tp?.close();
    await redis?.stop();
  });

  it("does not count the idle close as a failure: the server is not ejected and the next request is served", async () => {
    const pool = tp.proxy.pools[0];
    const client = await PipeClient.connect(tp.port());
    try {
      assert.deepEqual(await client.exchange(pipe(["SET", "idle:k", "v"]), 1), ["+OK\r\n"]);
      assert.equal(pool.servers[0].stats.server_connections, 1);
      // redis-server closes a connection idle for more than `timeout` seconds.
      assert.ok(await waitFor(() => pool.servers[0].stats.server_connections === 0, 8000), "the server closed the idle connection");
      assert.equal(pool.servers[0].stats.server_eof, 1, "the close is counted as the server's eof");
      assert.equal(pool.servers[0].failures, 0, "no failure counted");
      assert.equal(pool.stats.server_ejects, 0, "not ejected (twemproxy ejects here: it counts every close)");
      assert.equal(pool.servers[0].ejectedUntil, 0);
      assert.deepEqual(await client.exchange(pipe(["GET", "idle:k"]), 1), [bulk("v")], "the next request reconnects");
      assert.equal(pool.stats.forward_error, 0);
    } finally {
      client.destroy();
    }
  });
});

describe("server_connections: 3 and six clients", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  server_connections: 3\n"), 1);

  it("keeps each client on one server connection, so it reads its own writes, and spreads the clients over all three", async () => {
    const monitor = await Monitor.open(r.servers[0].port);
    const clients: PipeClient[] = [];
    try {
      for (let i = 0; i < 6; i++) clients.push(await PipeClient.connect(r.tp.port()));
      const rounds = 40;
      await Promise.all(clients.map(async (c, i) => {
        const cmds: Arg[][] = [];
        for (let n = 0; n < rounds; n++) cmds.push(["SET", `ryw:${i}`, `${n}`], ["GET", `ryw:${i}`]);
        const want = Array.from({ length: rounds }, (_, n) => ["+OK\r\n", bulk(`${n}`)]).flat();
        assert.deepEqual(await c.exchange(pipe(...cmds), cmds.length), want, `client ${i} reads each of its writes`);
      }));
      const seen = () => monitor.commands().filter(([, , key]) => key.startsWith("ryw:"));
      assert.ok(await waitFor(() => seen().length === 6 * rounds * 2, 3000), `MONITOR saw ${seen().length} commands`);
      const sources = new Map<string, Set<string>>();
      for (const [addr, , key] of seen()) {
        if (!sources.has(key)) sources.set(key, new Set());
        sources.get(key)!.add(addr);
      }
      for (let i = 0; i < 6; i++) {
        assert.equal(sources.get(`ryw:${i}`)?.size, 1, `client ${i} used one server connection: ${[...sources.get(`ryw:${i}`) ?? []]}`);
      }
      const used = new Set([...sources.values()].flatMap((s) => [...s]));
      assert.equal(used.size, 3, `the clients are spread over the three connections: ${[...used]}`);
    } finally {
      monitor.close();
      for (const c of clients) c.destroy();
    }
  });
});

describe("client_max_inflight: 8 set in nutcracker.yml, and a stopped server", () => {
  const r = rig(startRedis, (ports) => redisPoolYaml(ports, "  client_max_inflight: 8\n"), 1);

  it("forwards at most 8 of a client's requests while they await replies, then answers all 1,000 in order", async () => {
    const server = r.tp.proxy.pools[0].servers[0];
    const client = await PipeClient.connect(r.tp.port());
    try {
      assert.deepEqual(await client.exchange(pipe(["DEL", "inflight"]), 1), [":0\r\n"]);
      await freeze(r.servers[0]);
      const count = 1000;
      client.write(encodePipeline(Array.from({ length: count }, () => ["INCR", "inflight"])));
      await new Promise((resolve) => setTimeout(resolve, 500));
      const held = server.stats.out_queue + server.stats.in_queue;
      assert.ok(held > 0 && held <= 8, `requests held for the stopped server: ${held}`);
      r.servers[0].kill("SIGCONT");
      const replies = (await client.waitReplies(count + 1, 20000)).slice(1);
      const bad = replies.findIndex((reply, i) => decoder.decode(reply) !== `:${i + 1}\r\n`);
      assert.equal(bad, -1, `reply ${bad} out of order`);
    } finally {
      r.servers[0].kill("SIGCONT");
      client.destroy();
    }
  });
});

describe("commands twemproxy routes differently or does not know, over four redis-servers (hash_tag {})", () => {
  const backends: ServerProcess[] = [];
  let plain: ServerProcess;
  let tp: TestProxy;
  let viaProxy: RespClient;
  let direct: RespClient;

  before(async () => {
    const started = await Promise.all([0, 1, 2, 3, 4].map(() => startRedis()));
    plain = started.pop()!;
    backends.push(...started);
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), '  hash_tag: "{}"\n'));
    [viaProxy, direct] = await Promise.all([RespClient.connect(tp.port()), RespClient.connect(plain.port)]);
  });

  after(async () => {
    viaProxy?.close();
    direct?.close();
    await tp?.close();
    await Promise.all([...backends, plain].filter(Boolean).map((s) => s.stop()));
  });

  /** Runs the commands as one pipeline through the proxy and on a plain redis; asserts equal replies. */
  async function same(cmds: Arg[][]): Promise<void> {
    const [got, want] = await Promise.all([viaProxy.pipeline(cmds), direct.pipeline(cmds)]);
    cmds.forEach((cmd, i) => {
      assert.equal(show(got[i].raw, Infinity), show(want[i].raw, Infinity), `reply ${i} to ${cmd.map(String).join(" ")}`);
    });
  }

  it("ZUNION, ZINTER, ZDIFF (and ZINTERCARD, SINTERCARD, LMPOP, ZMPOP) go to their first key's server, not the numkeys digit's", async () => {
    const pool = tp.proxy.pools[0];
    const digits = new Set(["1", "2"].map((d) => ownerOf(pool, d)));
    let tag = "";
    for (let n = 0; n < 1000 && tag === ""; n++) if (!digits.has(ownerOf(pool, `{nk${n}}`))) tag = `{nk${n}}`;
    assert.notEqual(tag, "", "a hash tag owned by neither the server of \"1\" nor that of \"2\"");
    const [z1, z2, s1, s2, l1] = ["z1", "z2", "s1", "s2", "l1"].map((k) => `${tag}${k}`);
    await same([
      ["ZADD", z1, "1", "a", "2", "b", "3", "c"], ["ZADD", z2, "2", "b", "3", "c", "4", "d"],
      ["SADD", s1, "x", "y", "z"], ["SADD", s2, "y", "z"], ["RPUSH", l1, "p", "q", "r"],
      ["ZUNION", "1", z1], ["ZUNION", "2", z1, z2, "WITHSCORES"], ["ZINTER", "2", z1, z2],
      ["ZDIFF", "2", z1, z2], ["ZINTERCARD", "2", z1, z2], ["SINTERCARD", "2", s1, s2],
      ["LMPOP", "1", l1, "LEFT", "COUNT", "2"], ["ZMPOP", "1", z1, "MIN"],
    ]);
    assert.equal(ownerOf(pool, z1), ownerOf(pool, z2), "the hash tag keeps the keys together");
  });

  it("streams, EXPIRETIME, LCS, SUBSTR, OBJECT, SORT_RO, BITFIELD_RO, EVAL_RO and GEORADIUS_RO are forwarded by key and reply as a plain redis does", async () => {
    const [s, k, a, b, l, g] = ["s", "k", "a", "b", "l", "g"].map((x) => `{nn}${x}`);
    await same([
      ["XADD", s, "1-1", "f", "v1"], ["XADD", s, "2-1", "f", "v2"], ["XADD", s, "3-1", "f", "v3"], ["XLEN", s],
      ["XRANGE", s, "-", "+"], ["XREVRANGE", s, "+", "-", "COUNT", "1"], ["XGROUP", "CREATE", s, "grp", "0"],
      ["XPENDING", s, "grp"], ["XACK", s, "grp", "1-1"], ["XDEL", s, "2-1"], ["XTRIM", s, "MAXLEN", "1"],
      ["XSETID", s, "9-0"], ["XRANGE", s, "-", "+"],
      ["SET", k, "hello"], ["EXPIREAT", k, "4102444800"], ["EXPIRETIME", k], ["PEXPIRETIME", k], ["SUBSTR", k, "1", "3"],
      ["OBJECT", "ENCODING", k], ["BITFIELD_RO", k, "GET", "u8", "0"],
      ["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", k],
      ["SET", a, "ohmytext"], ["SET", b, "mynewtext"], ["LCS", a, b], ["LCS", a, b, "LEN"],
      ["RPUSH", l, "3", "1", "2"], ["SORT_RO", l], ["SORT_RO", l, "DESC"],
      ["GEOADD", g, "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
      ["GEORADIUS_RO", g, "15", "37", "200", "km", "ASC"], ["GEORADIUSBYMEMBER_RO", g, "Palermo", "200", "km", "ASC"],
    ]);
  });
});

describe("HELLO and AUTH's two-argument form, with redis_auth in front of password-protected redis-servers", () => {
  const backends: ServerProcess[] = [];
  let tp: TestProxy;

  before(async () => {
    backends.push(...await Promise.all([0, 1].map(() => startRedis({ args: ["--requirepass", "secret"] }))));
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), "  redis_auth: secret\n"));
  });

  after(async () => {
    await tp?.close();
    await Promise.all(backends.map((s) => s.stop()));
  });

  it("HELLO 3 gets -NOPROTO, HELLO and HELLO 2 the RESP2 server map, all from the proxy; the connection stays usable", async () => {
    const servers = tp.proxy.pools[0].servers;
    const before = servers.map((s) => s.stats.requests);
    const client = await RespClient.connect(tp.port());
    try {
      const [v3, bare, v2] = await client.pipeline([["HELLO", "3"], ["HELLO"], ["HELLO", "2"]]);
      assert.equal(show(v3.raw), "-NOPROTO sorry, this protocol version is not supported\\r\\n");
      for (const reply of [bare, v2]) {
        const raw = decoder.decode(reply.raw);
        assert.ok(raw.startsWith("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), show(reply.raw));
        assert.ok(raw.includes("$5\r\nproto\r\n:2\r\n"), show(reply.raw));
      }
      assert.deepEqual(servers.map((s, i) => s.stats.requests - before[i]), [0, 0], "no server was asked");
      assert.deepEqual(await client.call(["AUTH", "secret"]), { type: "status", text: "OK" });
      assert.deepEqual(await client.call(["SET", "hello:k", "v"]), { type: "status", text: "OK" });
      assert.equal(client.closed, false);
    } finally {
      client.close();
    }
  });

  it("AUTH default with the password (Redis 6's form) is accepted; a wrong one is an error and the connection stays usable", async () => {
    const client = await RespClient.connect(tp.port());
    try {
      const wrong = await client.call(["AUTH", "default", "nope"]);
      assert.equal(wrong.type, "error", JSON.stringify(wrong));
      assert.match((await client.call(["GET", "auth2:k"]) as { text: string }).text, /^NOAUTH/);
      assert.deepEqual(await client.call(["AUTH", "default", "secret"]), { type: "status", text: "OK" });
      assert.deepEqual(await client.call(["SET", "auth2:k", "v"]), { type: "status", text: "OK" });
      assert.deepEqual(await client.call(["GET", "auth2:k"]), { type: "bulk", value: new TextEncoder().encode("v") });
      assert.equal(client.closed, false);
    } finally {
      client.close();
    }
  });
});

describe("memcached version", () => {
  const r = rig(startMemcached, (ports) => memcachePoolYaml(ports), 1);

  it("version is answered by the proxy, not forwarded to a server, with a VERSION line naming the proxy", async () => {
    const server = r.tp.proxy.pools[0].servers[0];
    const before = server.stats.requests;
    const client = await PipeClient.connect(r.tp.port(), memcacheFramer);
    try {
      const [version, miss] = await client.exchange("version\r\nget ver:k\r\n", 2);
      assert.match(version, /^VERSION \S+-twemproxy-ts\r\n$/);
      assert.equal(miss, "END\r\n");
      assert.equal(server.stats.requests - before, 1, "only the get reached the server");
    } finally {
      client.destroy();
    }
  });
});

describe("README's Differences from twemproxy section", () => {
  /** The section's bullets, each joined into one line. */
  function bullets(): string[] {
    const readme = readFileSync(`${ROOT}/README.md`, "utf8");
    const start = readme.indexOf("\n## Differences from twemproxy\n");
    assert.ok(start >= 0, "README has the section");
    const end = readme.indexOf("\n## ", start + 1);
    const lines = readme.slice(start, end < 0 ? undefined : end).split("\n");
    const out: string[] = [];
    for (const line of lines) {
      if (line.startsWith("- ")) out.push(line.slice(2));
      else if (out.length > 0 && line.startsWith("  ") && line.trim() !== "") out[out.length - 1] += ` ${line.trim()}`;
    }
    return out;
  }

  const REF = /\[`(tests\/[a-z0-9-]+\.test\.ts)`\]\((tests\/[a-z0-9-]+\.test\.ts)\) "([^"]+)"/g;

  it("names at least one test for every difference, and every test it names exists in its file", () => {
    const items = bullets();
    assert.ok(items.length >= 30, `${items.length} differences listed`);
    let refs = 0;
    for (const item of items) {
      const found = [...item.matchAll(REF)];
      assert.ok(found.length > 0, `no test named for: ${item.slice(0, 100)}`);
      for (const [, file, link, name] of found) {
        refs++;
        assert.equal(link, file, `the link points at ${file}`);
        assert.ok(existsSync(`${ROOT}/${file}`), `${file} exists`);
        const source = readFileSync(`${ROOT}/${file}`, "utf8");
        const quoted = [JSON.stringify(name), `'${name}'`, `\`${name}\``];
        assert.ok(quoted.some((q) => source.includes(`it(${q}`)), `${file} has a test named "${name}"`);
      }
    }
    assert.ok(refs >= items.length);
  });
});
