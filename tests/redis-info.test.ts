/**
 * INFO and CLIENT, answered by the proxy: INFO in Redis's format with # Server (version,
 * runtime, pid, uptime), # Clients, # Stats, # Keyspace (every server's db0 summed, asked
 * live) and # Pools (each pool's servers and state), read by ioredis' ready check, raw RESP
 * and redis-cli, and by the real CLI with its own pid; CLIENT SETNAME/GETNAME/ID/INFO per
 * client connection (ioredis' connectionName), other CLIENT subcommands still refused.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { RespClient, show } from "./helpers/resp.ts";
import { keysOn } from "./helpers/soak.ts";
import { freePort, waitForPort } from "./helpers/ports.ts";
import { kill, killStarted, startCli } from "./helpers/cli.ts";

const decoder = new TextDecoder();
const SECTIONS = ["Server", "Clients", "Stats", "Keyspace", "Pools"];

/** The sections of an INFO text: title -> field -> value. */
function parseInfo(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | null = null;
  for (const line of text.split("\r\n")) {
    if (line === "") continue;
    if (line.startsWith("# ")) {
      current = new Map();
      out.set(line.slice(2), current);
      continue;
    }
    const colon = line.indexOf(":");
    assert.ok(current !== null && colon > 0 && /^[a-z0-9_]+$/.test(line.slice(0, colon)), `an INFO line: ${JSON.stringify(line)}`);
    current.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return out;
}

async function info(client: RespClient, ...sections: string[]): Promise<string> {
  const reply = await client.call(["INFO", ...sections]);
  assert.equal(reply.type, "bulk");
  return decoder.decode((reply as { value: Uint8Array }).value);
}

function twoPools(alpha: number[], beta: number): string {
  const servers = alpha.map((p) => `    - 127.0.0.1:${p}:1`).join("\n");
  return `alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n${servers}\n` +
    `beta:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n    - 127.0.0.1:${beta}:1 only\n`;
}

describe("INFO through a proxy of three redis-servers (and a second pool)", () => {
  const servers: ServerProcess[] = [];
  let tp: TestProxy;
  let client: RespClient;

  before(async () => {
    servers.push(...await Promise.all([0, 1, 2, 3].map(() => startRedis())));
    tp = await startTestProxy(twoPools(servers.slice(0, 3).map((s) => s.port), servers[3].port), {
      identity: { version: "9.9.9-test", pid: 4242 },
    });
    client = await RespClient.connect(tp.port());
  });
  after(async () => {
    client?.close();
    await tp?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("answers every section in Redis's INFO format, and INFO <section> only those named", async () => {
    const text = await info(client);
    assert.ok(text.endsWith("\r\n") && !text.endsWith("\r\n\r\n"), "ends with one CRLF");
    assert.deepEqual(text.split("\r\n").filter((l) => l.startsWith("#")), SECTIONS.map((s) => `# ${s}`));
    assert.equal(text.split("\r\n\r\n").length, SECTIONS.length, "a blank line between sections");
    const all = parseInfo(text);
    const server = all.get("Server")!;
    assert.equal(server.get("redis_version"), "7.0.0");
    assert.equal(server.get("proxy_version"), "9.9.9-test");
    assert.equal(server.get("process_id"), "4242");
    assert.ok(["node", "deno", "bun"].includes(server.get("runtime")!), server.get("runtime"));
    assert.equal(server.get("tcp_port"), String(tp.port()));
    assert.match(server.get("uptime_in_seconds")!, /^\d+$/);
    assert.equal(server.get("pool"), "alpha");
    assert.deepEqual([...parseInfo(await info(client, "server")).keys()], ["Server"]);
    assert.deepEqual([...parseInfo(await info(client, "CLIENTS", "server")).keys()], ["Server", "Clients"]);
    assert.deepEqual([...parseInfo(await info(client, "everything")).keys()], SECTIONS);
    assert.equal(await info(client, "nosuchsection"), "");
    assert.match(await redisCli(tp.port(), "INFO", "server"), /^# Server\r\nredis_version:7\.0\.0\r\n/);
  });

  it("# Keyspace sums every server's db0, asked live, as Redis prints it", async () => {
    assert.deepEqual(parseInfo(await info(client, "keyspace")).get("Keyspace"), new Map(), "no db0 line while empty");
    const pool = tp.proxy.pools[0];
    const keys = [0, 1, 2].flatMap((s) => keysOn(pool, s, "ks", 100));
    const cmds = keys.map((key, i) => i % 15 === 0 ? ["SET", key, "v", "EX", "1000"] : ["SET", key, "v"]);
    await client.pipeline(cmds);
    const db0 = parseInfo(await info(client, "keyspace")).get("Keyspace")!.get("db0")!;
    const m = /^keys=300,expires=20,avg_ttl=(\d+)$/.exec(db0);
    // Each server's avg_ttl is its own running estimate (from its expire cycles); the sum weighs them by expires.
    assert.ok(m !== null && Number(m[1]) <= 1_000_000, db0);
    const perServer = await Promise.all(servers.slice(0, 3).map((s) => redisCli(s.port, "DBSIZE")));
    assert.ok(perServer.every((n) => Number(n) > 0), `every server holds some: ${perServer}`);
    await client.call(["SET", "ks:one-more", "v"]);
    assert.match(parseInfo(await info(client)).get("Keyspace")!.get("db0")!, /^keys=301,expires=20,/);
  });

  it("# Clients counts the pool's clients and # Stats its requests", async () => {
    const others = await Promise.all([0, 1, 2].map(() => RespClient.connect(tp.port())));
    try {
      const before = parseInfo(await info(client));
      assert.equal(before.get("Clients")!.get("connected_clients"), String(tp.proxy.pools[0].stats.client_connections));
      assert.ok(Number(before.get("Clients")!.get("connected_clients")) >= 4);
      await client.pipeline(Array.from({ length: 50 }, (_, i) => ["GET", `stats:${i}`]));
      const after = parseInfo(await info(client, "stats")).get("Stats")!;
      const processed = (s: Map<string, string>) => Number(s.get("total_commands_processed"));
      assert.ok(processed(after) >= processed(before.get("Stats")!) + 50, `${processed(before.get("Stats")!)} -> ${processed(after)}`);
      for (const field of ["client_eof", "client_err", "forward_error", "fragments", "server_ejects", "request_bytes", "response_bytes"]) {
        assert.match(after.get(field) ?? "", /^\d+$/, field);
      }
    } finally {
      for (const c of others) c.close();
    }
  });

  it("# Pools lists every pool, each server with its address and state", async () => {
    const pools = parseInfo(await info(client, "pools")).get("Pools")!;
    assert.equal(pools.get("pools"), "2");
    assert.match(pools.get("pool0")!, /^name=alpha,listen=127\.0\.0\.1:\d+,protocol=redis,hash=fnv1a_64,distribution=ketama,shards=3,servers=3,/);
    assert.match(pools.get("pool1")!, /^name=beta,.*shards=1,servers=1,/);
    for (let i = 0; i < 3; i++) {
      const line = pools.get(`pool0_server${i}`)!;
      assert.match(line, new RegExp(`^name=127\\.0\\.0\\.1:${servers[i].port},addr=127\\.0\\.0\\.1:${servers[i].port},role=master,`));
      assert.match(line, /,state=up,connections=\d+,failures=0,/);
    }
    assert.match(pools.get("pool1_server0")!, new RegExp(`^name=only,addr=127\\.0\\.0\\.1:${servers[3].port},`));
  });
});

describe("INFO with a server down (auto_eject_hosts, server_failure_limit 1)", () => {
  const servers: ServerProcess[] = [];
  let tp: TestProxy;

  before(async () => {
    servers.push(...await Promise.all([0, 1, 2].map(() => startRedis())));
    const list = servers.map((s) => `    - 127.0.0.1:${s.port}:1`).join("\n");
    tp = await startTestProxy(
      `alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n  servers:\n${list}\n`,
    );
  });
  after(async () => {
    await tp?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("still answers: the ejected server shows state=ejected and the keyspace is what the others hold", async () => {
    const client = await RespClient.connect(tp.port());
    try {
      const pool = tp.proxy.pools[0];
      for (let s = 0; s < 3; s++) await client.call(["SET", keysOn(pool, s, "down")[0], "v"]);
      await servers[1].stop();
      const failed = await client.call(["GET", keysOn(pool, 1, "down")[0]]);
      assert.equal(failed.type, "error");
      const all = parseInfo(await info(client));
      assert.match(all.get("Pools")!.get("pool0_server1")!, /,state=ejected,/);
      assert.match(all.get("Pools")!.get("pool0_server0")!, /,state=up,/);
      assert.match(all.get("Keyspace")!.get("db0")!, /^keys=2,/);
    } finally {
      client.close();
    }
  });
});

describe("ioredis with its INFO ready check, and CLIENT per connection", () => {
  const servers: ServerProcess[] = [];
  let tp: TestProxy;
  const opened: Redis[] = [];

  before(async () => {
    servers.push(...await Promise.all([0, 1, 2].map(() => startRedis())));
    const list = servers.map((s) => `    - 127.0.0.1:${s.port}:1`).join("\n");
    tp = await startTestProxy(`alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n${list}\n`, { identity: { version: "1.2.3", pid: 777 } });
  });
  after(async () => {
    for (const io of opened) io.disconnect();
    await tp?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  /** ioredis as an application uses it: ready check on, client info sent, a connection name. */
  async function connect(connectionName?: string): Promise<Redis> {
    const io = new Redis({
      host: "127.0.0.1", port: tp.port(), enableReadyCheck: true, lazyConnect: true, connectionName,
      maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000,
    });
    opened.push(io);
    await io.connect();
    return io;
  }

  it("connects with the ready check on, reads and writes, and parses INFO", async () => {
    const io = await connect();
    assert.equal(io.status, "ready");
    assert.equal(await io.set("io:k", "v"), "OK");
    assert.equal(await io.get("io:k"), "v");
    const text = await io.info();
    const server = parseInfo(text).get("Server")!;
    assert.deepEqual([server.get("proxy_version"), server.get("process_id")], ["1.2.3", "777"]);
    assert.match(await io.info("keyspace"), /^# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n$/);
  });

  it("sets connectionName with CLIENT SETNAME; each connection keeps its own name, id and address", async () => {
    const [a, b, anon] = [await connect("app-a"), await connect("app-b"), await connect()];
    assert.equal(await a.client("GETNAME"), "app-a");
    assert.equal(await b.client("GETNAME"), "app-b");
    assert.equal(await anon.client("GETNAME"), null);
    const ids = await Promise.all([a, b, anon].map((io) => io.client("ID") as Promise<number>));
    assert.equal(new Set(ids).size, 3);
    assert.ok(ids.every((id) => Number.isInteger(id) && id > 0), `${ids}`);
    const line = await a.client("INFO") as string;
    const local = (a as unknown as { stream: { localPort: number } }).stream.localPort;
    assert.match(line, new RegExp(`^id=${ids[0]} addr=127\\.0\\.0\\.1:${local} laddr=127\\.0\\.0\\.1:${tp.port()} name=app-a `));
    assert.ok(line.endsWith("\n"));
    assert.equal(await b.client("SETNAME", "renamed"), "OK");
    assert.deepEqual([await a.client("GETNAME"), await b.client("GETNAME")], ["app-a", "renamed"]);
  });

  it("answers CLIENT as Redis does for names and arity, refuses the other subcommands, and keeps the connection", async () => {
    const plain = servers[0];
    const cmds = [
      ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", "first"], ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", "a b"],
      ["CLIENT", "SETNAME", "new\nline"], ["CLIENT", "GETNAME"], ["CLIENT", "SETNAME", ""], ["CLIENT", "GETNAME"],
      ["CLIENT", "SETNAME"], ["CLIENT", "GETNAME", "x"], ["CLIENT", "ID", "x"],
    ];
    const [viaProxy, direct] = await Promise.all([RespClient.connect(tp.port()), RespClient.connect(plain.port)]);
    try {
      const [got, want] = await Promise.all([viaProxy.pipeline(cmds), direct.pipeline(cmds)]);
      assert.deepEqual(got.map((r) => show(r.raw)), want.map((r) => show(r.raw)));
      const refused = await viaProxy.pipeline([["CLIENT", "LIST"], ["CLIENT", "KILL", "ID", "1"], ["CLIENT", "NO-EVICT", "on"], ["PING"]]);
      assert.deepEqual(refused.map((r) => show(r.raw)), [
        "-ERR unsupported command 'client'\\r\\n", "-ERR unsupported command 'client'\\r\\n",
        "-ERR unsupported command 'client'\\r\\n", "+PONG\\r\\n",
      ]);
    } finally {
      viaProxy.close();
      direct.close();
    }
    assert.equal(await redisCli(tp.port(), "CLIENT", "GETNAME"), "\n", "a new connection has no name");
  });
});

describe("INFO from the real command line", () => {
  let redis: ServerProcess;
  let tmp = "";

  before(async () => {
    redis = await startRedis();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "info-cli-"));
  });
  after(async () => {
    killStarted();
    await redis?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("names the proxy's own process id and version", async () => {
    const port = await freePort();
    const conf = path.join(tmp, "info.yml");
    fs.writeFileSync(conf, `alpha:\n  listen: 127.0.0.1:${port}\n  redis: true\n  servers:\n   - 127.0.0.1:${redis.port}:1\n`);
    const child = startCli(["-c", conf, "-s", String(await freePort())]);
    try {
      await waitForPort(port, 30_000);
      const server = parseInfo((await redisCli(port, "INFO", "server")).replace(/\n$/, "")).get("Server")!;
      assert.equal(server.get("process_id"), String(child.pid));
      assert.match(server.get("proxy_version")!, /^\d+\.\d+\.\d+$/);
    } finally {
      kill(child.pid, "SIGTERM");
      await child.done;
    }
  });
});
