/**
 * Real memcached tools through the proxy (four memcached servers, keys spread by md5):
 * the `memcached` npm client gets the same results as from one plain memcached, and
 * memcslap (libmemcached-tools, ASCII protocol) runs its get, mget and set tests to the
 * end with no error, every request it reports reaching a server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import process from "node:process";
import { type McRig, startRig } from "./helpers/memcache-wire.ts";

/** The callback API of the `memcached` package that these tests use. */
interface MemcachedClient {
  set(key: string, value: unknown, lifetime: number, cb: (err: unknown, ok: boolean) => void): void;
  add(key: string, value: unknown, lifetime: number, cb: (err: unknown, ok: boolean) => void): void;
  replace(key: string, value: unknown, lifetime: number, cb: (err: unknown, ok: boolean) => void): void;
  append(key: string, value: unknown, cb: (err: unknown, ok: boolean) => void): void;
  prepend(key: string, value: unknown, cb: (err: unknown, ok: boolean) => void): void;
  cas(key: string, value: unknown, cas: string, lifetime: number, cb: (err: unknown, ok: boolean) => void): void;
  get(key: string, cb: (err: unknown, data: unknown) => void): void;
  gets(key: string, cb: (err: unknown, data: { cas: string } | undefined) => void): void;
  getMulti(keys: string[], cb: (err: unknown, data: Record<string, unknown>) => void): void;
  del(key: string, cb: (err: unknown, ok: boolean) => void): void;
  incr(key: string, amount: number, cb: (err: unknown, value: number | boolean) => void): void;
  decr(key: string, amount: number, cb: (err: unknown, value: number | boolean) => void): void;
  touch(key: string, lifetime: number, cb: (err: unknown, ok: unknown) => void): void;
  end(): void;
}

type MemcachedCtor = new (location: string, options: Record<string, unknown>) => MemcachedClient;

/**
 * Loads the `memcached` package. It sets prototypes with `X.prototype.__proto__ = ...`
 * at load time, which Deno turns into an own property unless run with --unsafe-proto;
 * so the standard accessor is put back just for the import (Node and Bun have it anyway).
 */
async function loadMemcached(): Promise<MemcachedCtor> {
  const saved = Object.getOwnPropertyDescriptor(Object.prototype, "__proto__");
  Object.defineProperty(Object.prototype, "__proto__", {
    configurable: true,
    get(this: object) {
      return Object.getPrototypeOf(this);
    },
    set(this: object, proto: object | null) {
      Object.setPrototypeOf(this, proto);
    },
  });
  try {
    return (await import("memcached")).default as unknown as MemcachedCtor;
  } finally {
    if (saved !== undefined) Object.defineProperty(Object.prototype, "__proto__", saved);
  }
}

/** Calls one client method, bounded by timeoutMs, resolving with [err, result]. */
function call<T>(fn: (cb: (err: unknown, result: T) => void) => void, timeoutMs = 5000): Promise<[unknown, T | undefined]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    fn((err, result) => {
      clearTimeout(timer);
      resolve([err ?? null, result]);
    });
  });
}

/** Runs the same steps with a client of the proxy and a client of the plain memcached. */
async function both<T>(clients: MemcachedClient[], step: (c: MemcachedClient) => Promise<T>): Promise<[T, T]> {
  const [viaProxy, direct] = await Promise.all(clients.map(step));
  return [viaProxy, direct];
}

describe("the memcached npm client through the proxy gets what it gets from a plain memcached", () => {
  let rig: McRig;
  let clients: MemcachedClient[] = [];

  before(async () => {
    rig = await startRig();
    const Memcached = await loadMemcached();
    const options = { retries: 0, timeout: 5000, reconnect: 1000, poolSize: 4 };
    clients = [rig.tp.port(), rig.plain.port].map((port) => new Memcached(`127.0.0.1:${port}`, options));
  });

  after(async () => {
    for (const c of clients) c.end();
    await rig?.stop();
  });

  it("set and get strings, Buffers with every byte value, numbers and JSON objects", async () => {
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256));
    const values: [string, unknown][] = [["npm:s", "hello world"], ["npm:b", bytes], ["npm:n", 42], ["npm:o", { a: [1, "x"], b: null }]];
    const [got, want] = await both(clients, async (c) => {
      const out: unknown[] = [];
      for (const [k, v] of values) out.push(await call<boolean>((cb) => c.set(k, v, 100, cb)));
      for (const [k] of values) out.push(await call<unknown>((cb) => c.get(k, cb)));
      out.push(await call<unknown>((cb) => c.get("npm:missing", cb)));
      return out;
    });
    assert.deepEqual(got, want);
    assert.deepEqual(got.slice(4, 8), values.map(([, v]) => [null, v]));
  });

  it("getMulti over 60 keys on every server returns the stored ones", async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `npm:m:${i}`);
    const [got, want] = await both(clients, async (c) => {
      for (const k of keys.filter((_, i) => i % 4 !== 0)) await call<boolean>((cb) => c.set(k, `v-${k}`, 100, cb));
      return await call<Record<string, unknown>>((cb) => c.getMulti(keys, cb));
    });
    assert.deepEqual(got, want);
    assert.deepEqual(Object.keys(got[1] ?? {}).sort(), keys.filter((_, i) => i % 4 !== 0).sort());
  });

  it("del, incr, decr, add, replace, append, prepend, touch, gets and cas behave as on memcached", async () => {
    const [got, want] = await both(clients, async (c) => {
      const out: unknown[] = [];
      out.push(await call<boolean>((cb) => c.set("npm:c", "10", 100, cb)));
      out.push(await call<number | boolean>((cb) => c.incr("npm:c", 5, cb)));
      out.push(await call<number | boolean>((cb) => c.decr("npm:c", 20, cb)));
      out.push(await call<number | boolean>((cb) => c.incr("npm:none", 1, cb)));
      out.push(await call<boolean>((cb) => c.del("npm:c", cb)));
      out.push(await call<boolean>((cb) => c.del("npm:c", cb)));
      out.push(await call<boolean>((cb) => c.add("npm:a", "first", 100, cb)));
      out.push((await call<boolean>((cb) => c.add("npm:a", "second", 100, cb)))[1]);
      out.push(await call<boolean>((cb) => c.replace("npm:a", "third", 100, cb)));
      out.push(await call<boolean>((cb) => c.append("npm:a", "+end", cb)));
      out.push(await call<boolean>((cb) => c.prepend("npm:a", "start+", cb)));
      out.push(await call<unknown>((cb) => c.get("npm:a", cb)));
      out.push(await call<unknown>((cb) => c.touch("npm:a", 200, cb)));
      const [, gets] = await call<{ cas: string } | undefined>((cb) => c.gets("npm:a", cb));
      out.push(typeof gets?.cas);
      out.push(await call<boolean>((cb) => c.cas("npm:a", "swapped", gets!.cas, 100, cb)));
      out.push((await call<boolean>((cb) => c.cas("npm:a", "stale", gets!.cas, 100, cb)))[1]);
      out.push(await call<unknown>((cb) => c.get("npm:a", cb)));
      return out;
    });
    assert.deepEqual(got, want);
    assert.deepEqual(got[11], [null, "start+third+end"]);
    assert.deepEqual(got[16], [null, "swapped"]);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs memcslap against 127.0.0.1:port; kills it by PID after timeoutMs. */
function memcslap(port: number, test: string, timeoutMs = 60000): Promise<Run> {
  const args = [`--servers=127.0.0.1:${port}`, "--concurrency=4", "--execute-number=2000", `--test=${test}`];
  return new Promise((resolve, reject) => {
    const child = spawn("memcslap", args, { stdio: ["ignore", "pipe", "pipe"] });
    const decoder = new TextDecoder();
    const run: Run = { code: null, stdout: "", stderr: "" };
    child.stdout?.on("data", (c: Uint8Array) => (run.stdout += decoder.decode(c)));
    child.stderr?.on("data", (c: Uint8Array) => (run.stderr += decoder.decode(c)));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      run.stderr += `\nkilled after ${timeoutMs} ms`;
    }, timeoutMs);
    child.once("error", (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code: number | null) => {
      clearTimeout(timer);
      run.code = code;
      resolve(run);
    });
  });
}

/** The key counts memcslap reports: "Time to set  2000 keys" -> { set: 2000 }. */
function reportedCounts(stdout: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of stdout.matchAll(/^Time to (set|get|mget)\s+(\d+) keys/gm)) counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[2]);
  return counts;
}

describe("memcslap through the proxy", () => {
  let rig: McRig;

  before(async () => {
    rig = await startRig();
  });

  after(async () => {
    await rig?.stop();
  });

  function requests(): number {
    return rig.tp.proxy.pools[0].servers.reduce((sum, s) => sum + s.stats.requests, 0);
  }

  for (const test of ["set", "get"]) {
    it(`memcslap --test=${test} with 4 threads of 2000 runs to the end with no error, every request reaching a server`, async () => {
      const before = requests();
      const run = await memcslap(rig.tp.port(), test);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr.trim(), "", "memcslap reported errors");
      assert.match(run.stdout, /^Time total:/m);
      const counts = reportedCounts(run.stdout);
      assert.ok((counts[test] ?? 0) >= 8000, `memcslap ran ${JSON.stringify(counts)}`);
      assert.equal(requests() - before, (counts.set ?? 0) + (counts.get ?? 0), "requests sent to the servers");
    });
  }

  it("memcslap --test=mget runs to the end with no error, its multi-gets split over the servers", async () => {
    const pool = rig.tp.proxy.pools[0];
    const fragmentsBefore = pool.stats.fragments;
    const run = await memcslap(rig.tp.port(), "mget");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr.trim(), "", "memcslap reported errors");
    assert.ok((reportedCounts(run.stdout).mget ?? 0) >= 8000, run.stdout);
    assert.ok(pool.stats.fragments - fragmentsBefore >= 4, "multi-gets were fragmented");
    assert.equal(pool.stats.client_err, 0);
  });
});
