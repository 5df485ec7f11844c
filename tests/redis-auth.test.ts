/**
 * redis_auth and redis_db end to end: clients must AUTH with the pool's password, the
 * proxy authenticates its own connections to password-protected redis-servers, and
 * with redis_db the keys land in that database on the backends while clients see db 0.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { type Arg, type Reply, RespClient, show } from "./helpers/resp.ts";

const encoder = new TextEncoder();
const OK: Reply = { type: "status", text: "OK" };
const bulk = (text: string): Reply => ({ type: "bulk", value: encoder.encode(text) });

function errorText(reply: Reply): string {
  assert.equal(reply.type, "error", `expected an error, got ${JSON.stringify(reply)}`);
  return (reply as { text: string }).text;
}

/** Runs cmds on a fresh connection to port and closes it. */
async function onFreshConn(port: number, cmds: Arg[][]): Promise<Reply[]> {
  const client = await RespClient.connect(port);
  try {
    return (await client.pipeline(cmds)).map((r) => r.reply);
  } finally {
    client.close();
  }
}

describe("a pool with redis_auth in front of password-protected redis-servers", () => {
  const backends: ServerProcess[] = [];
  let tp: TestProxy;

  before(async () => {
    backends.push(...await Promise.all([0, 1].map(() => startRedis({ args: ["--requirepass", "secret"] }))));
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), "  hash: md5\n  redis_auth: secret\n"));
  });

  after(async () => {
    await tp?.close();
    await Promise.all(backends.map((s) => s.stop()));
  });

  it("a client that has not sent AUTH gets -NOAUTH and nothing reaches a server", async () => {
    const servers = tp.proxy.pools[0].servers;
    const before = servers.map((s) => s.stats.requests);
    const replies = await onFreshConn(tp.port(), [["GET", "a:k"], ["SET", "a:k", "v"], ["MGET", "a:k", "a:j"]]);
    for (const reply of replies) assert.match(errorText(reply), /^NOAUTH Authentication required/);
    assert.deepEqual(servers.map((s, i) => s.stats.requests - before[i]), [0, 0], "no requests forwarded");
  });

  it("a wrong password gets -ERR invalid password and the client stays unauthenticated", async () => {
    const client = await RespClient.connect(tp.port());
    try {
      assert.equal(show(await client.callRaw(["AUTH", "wrong"])), "-ERR invalid password\\r\\n");
      assert.match(errorText(await client.call(["GET", "a:k"])), /^NOAUTH/);
    } finally {
      client.close();
    }
  });

  it("the right password is accepted and commands reach the password-protected servers", async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `a:key:${i}`);
    const replies = await onFreshConn(tp.port(), [
      ["AUTH", "secret"],
      ...keys.map((k): Arg[] => ["SET", k, `v-${k}`]),
      ["MGET", ...keys],
      ["GET", keys[7]],
    ]);
    assert.deepEqual(replies[0], OK);
    assert.deepEqual(replies.slice(1, 21), keys.map(() => OK), "every SET succeeds on an authenticated server connection");
    assert.deepEqual(replies[21], { type: "array", items: keys.map((k) => bulk(`v-${k}`)) });
    assert.deepEqual(replies[22], bulk("v-a:key:7"));
    const held = await Promise.all(backends.map((b) => redisCli(b.port, "-a", "secret", "--no-auth-warning", "DBSIZE")));
    assert.equal(held.map((out) => Number(out.trim())).reduce((a, b) => a + b, 0), 20, `keys per backend: ${held}`);
    assert.ok(held.every((out) => Number(out.trim()) > 0), "both backends hold keys");
  });

  it("AUTH lasts for its own connection only", async () => {
    const [auth, set] = await onFreshConn(tp.port(), [["AUTH", "secret"], ["SET", "a:once", "1"]]);
    assert.deepEqual([auth, set], [OK, OK]);
    const [get] = await onFreshConn(tp.port(), [["GET", "a:once"]]);
    assert.match(errorText(get), /^NOAUTH/);
  });
});

describe("a pool with redis_db: 3", () => {
  const backends: ServerProcess[] = [];
  let tp: TestProxy;

  before(async () => {
    backends.push(...await Promise.all([0, 1].map(() => startRedis())));
    tp = await startTestProxy(redisPoolYaml(backends.map((b) => b.port), "  redis_db: 3\n"));
  });

  after(async () => {
    await tp?.close();
    await Promise.all(backends.map((s) => s.stop()));
  });

  it("keys written through the proxy land in db 3 on the backends, not in db 0", async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `db:key:${i}`);
    const replies = await onFreshConn(tp.port(), keys.map((k) => ["SET", k, `v-${k}`]));
    assert.deepEqual(replies, keys.map(() => OK));
    const inDb3 = await Promise.all(backends.map((b) => redisCli(b.port, "-n", "3", "DBSIZE")));
    const inDb0 = await Promise.all(backends.map((b) => redisCli(b.port, "-n", "0", "DBSIZE")));
    assert.equal(inDb3.map((o) => Number(o.trim())).reduce((a, b) => a + b, 0), 20, `db 3 sizes: ${inDb3}`);
    assert.deepEqual(inDb0.map((o) => o.trim()), ["0", "0"], "nothing in db 0");
    const owner = (await Promise.all(backends.map((b) => redisCli(b.port, "-n", "3", "GET", keys[5])))).map((o) => o.trim());
    assert.deepEqual(owner.filter((o) => o !== "").sort(), ["v-db:key:5"], "one backend has the key in db 3");
  });

  it("clients see db 0: SELECT 0 is OK, and reads and multi-key commands find their writes", async () => {
    const replies = await onFreshConn(tp.port(), [
      ["SELECT", "0"], ["MSET", "db:a", "1", "db:b", "2", "db:c", "3"], ["MGET", "db:a", "db:b", "db:c"], ["SELECT", "0"],
      ["DEL", "db:a", "db:b"], ["EXISTS", "db:a", "db:b", "db:c"],
    ]);
    assert.deepEqual(replies, [
      OK, OK, { type: "array", items: [bulk("1"), bulk("2"), bulk("3")] }, OK, { type: "int", value: 2 }, { type: "int", value: 1 },
    ]);
    const inDb3 = await Promise.all(backends.map((b) => redisCli(b.port, "-n", "3", "EXISTS", "db:c")));
    assert.equal(inDb3.map((o) => Number(o.trim())).reduce((a, b) => a + b, 0), 1, "db:c is in db 3");
  });
});

describe("a pool with both redis_auth and redis_db", () => {
  let backend: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    backend = await startRedis({ args: ["--requirepass", "pw2"] });
    tp = await startTestProxy(redisPoolYaml([backend.port], "  redis_auth: pw2\n  redis_db: 5\n"));
  });

  after(async () => {
    await tp?.close();
    await backend?.stop();
  });

  it("the server connection authenticates, then selects the db, before the first command", async () => {
    const replies = await onFreshConn(tp.port(), [["AUTH", "pw2"], ["SET", "both:k", "v"], ["GET", "both:k"]]);
    assert.deepEqual(replies, [OK, OK, bulk("v")]);
    assert.equal((await redisCli(backend.port, "-a", "pw2", "--no-auth-warning", "-n", "5", "GET", "both:k")).trim(), "v");
  });
});
