/**
 * The admin API's guard on state-changing routes (core/admin/guard.ts), as a table of
 * requests against the hono app in front of a real proxy: the bearer token (missing 401,
 * wrong 403, right 200), and without a token the loopback-only rules (a non-simple request
 * whose Host and Origin name the admin address) that keep a browser page out (CSRF, DNS
 * rebinding). Then the same rules through the runtime's real HTTP server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { isLoopbackHost } from "../core/admin/guard.ts";
import { createMetrics, type Observability, startObservability } from "../core/admin/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { loadNet } from "../adapters/mod.ts";
import { adminApp, call, ScriptedReloader } from "./helpers/admin-app.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { rawText } from "./helpers/servers.ts";

const TOKEN = "s3cret-Token_0123456789";
const JSON_CT = { "content-type": "application/json" };
const HOST = "127.0.0.1:8181";

/** One request of the table, and what the guard must answer. */
interface Row {
  readonly what: string;
  readonly app: "token" | "loopback" | "loopback6" | "wildcard" | "wildcardToken";
  readonly method?: string;
  readonly path?: string;
  /** The Host header (and URL authority); null = no Host header. */
  readonly host?: string | null;
  readonly headers?: Record<string, string>;
  readonly status: number;
  /** A word the error must contain. */
  readonly error?: RegExp;
}

const ROWS: readonly Row[] = [
  // With --admin-token: the bearer token decides, wherever the API listens.
  { what: "token set, no Authorization header", app: "token", status: 401, error: /Bearer/ },
  { what: "token set, Basic credentials", app: "token", headers: { authorization: "Basic dXNlcjpwYXNz" }, status: 401 },
  { what: "token set, empty bearer", app: "token", headers: { authorization: "Bearer " }, status: 401 },
  { what: "token set, wrong token", app: "token", headers: { authorization: "Bearer nope" }, status: 403, error: /wrong/ },
  { what: "token set, right token plus one byte", app: "token", headers: { authorization: `Bearer ${TOKEN}x` }, status: 403 },
  { what: "token set, right token minus one byte", app: "token", headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, status: 403 },
  { what: "token set, right token", app: "token", headers: { authorization: `Bearer ${TOKEN}` }, status: 200 },
  { what: "token set, right token, lower-case scheme", app: "token", headers: { authorization: `bearer ${TOKEN}` }, status: 200 },
  { what: "token set, right token from a foreign Host and Origin", app: "token", host: "evil.example:8181",
    headers: { authorization: `Bearer ${TOKEN}`, origin: "http://evil.example:8181" }, status: 200 },
  { what: "token set, GET /pools needs no token", app: "token", method: "GET", path: "/pools", status: 200 },
  { what: "token set, GET /reload needs no token", app: "token", method: "GET", path: "/reload", status: 200 },
  { what: "token set, a DELETE is guarded too", app: "token", method: "DELETE", status: 401 },
  { what: "token on a wildcard bind, right token", app: "wildcardToken", host: "10.1.2.3:8181",
    headers: { authorization: `Bearer ${TOKEN}` }, status: 200 },
  { what: "token on a wildcard bind, no token", app: "wildcardToken", host: "10.1.2.3:8181", headers: JSON_CT, status: 401 },
  // No token, loopback bind: only a non-simple request naming the admin address.
  { what: "loopback, a simple POST (no Content-Type)", app: "loopback", status: 403, error: /application\/json/ },
  { what: "loopback, a form POST", app: "loopback", headers: { "content-type": "application/x-www-form-urlencoded" }, status: 403 },
  { what: "loopback, a text/plain POST", app: "loopback", headers: { "content-type": "text/plain" }, status: 403 },
  { what: "loopback, JSON and Host 127.0.0.1:P", app: "loopback", headers: JSON_CT, status: 200 },
  { what: "loopback, JSON with a charset", app: "loopback", headers: { "content-type": "Application/JSON; charset=utf-8" }, status: 200 },
  { what: "loopback, JSON and Host localhost:P", app: "loopback", host: "localhost:8181", headers: JSON_CT, status: 200 },
  { what: "loopback, JSON and Host [::1]:P", app: "loopback", host: "[::1]:8181", headers: JSON_CT, status: 200 },
  { what: "loopback, an Authorization header instead of JSON", app: "loopback", headers: { authorization: "Bearer anything" }, status: 200 },
  { what: "loopback, JSON and a rebound Host name", app: "loopback", host: "evil.example:8181", headers: JSON_CT, status: 403, error: /Host/ },
  { what: "loopback, JSON and Host on another port", app: "loopback", host: "127.0.0.1:9999", headers: JSON_CT, status: 403 },
  { what: "loopback, JSON and Host without the port", app: "loopback", host: "127.0.0.1", headers: JSON_CT, status: 403 },
  { what: "loopback, JSON and no Host header", app: "loopback", host: null, headers: JSON_CT, status: 403 },
  { what: "loopback, JSON and a foreign Origin", app: "loopback", headers: { ...JSON_CT, origin: "http://evil.example" }, status: 403, error: /Origin/ },
  { what: "loopback, JSON and Origin null", app: "loopback", headers: { ...JSON_CT, origin: "null" }, status: 403 },
  { what: "loopback, JSON and the https Origin of the address", app: "loopback", headers: { ...JSON_CT, origin: `https://${HOST}` }, status: 403 },
  { what: "loopback, JSON and its own Origin", app: "loopback", headers: { ...JSON_CT, origin: `http://${HOST}` }, status: 200 },
  { what: "loopback, JSON and Origin localhost:P", app: "loopback", headers: { ...JSON_CT, origin: "http://localhost:8181" }, status: 200 },
  { what: "loopback, a simple DELETE", app: "loopback", method: "DELETE", status: 403 },
  { what: "loopback, GET stays open", app: "loopback", method: "GET", path: "/pools", status: 200 },
  { what: "::1 bind, JSON and Host [::1]:P", app: "loopback6", host: "[::1]:8181", headers: JSON_CT, status: 200 },
  { what: "::1 bind, JSON and a rebound Host", app: "loopback6", host: "evil.example:8181", headers: JSON_CT, status: 403 },
  // No token, non-loopback bind: refused, saying what to do.
  { what: "wildcard bind without a token, a JSON POST", app: "wildcard", host: "10.1.2.3:8181", headers: JSON_CT, status: 403, error: /--admin-token/ },
  { what: "wildcard bind without a token, Host 127.0.0.1:P", app: "wildcard", headers: { ...JSON_CT, authorization: "Bearer x" }, status: 403, error: /--admin-token/ },
  { what: "wildcard bind without a token, GET stays open", app: "wildcard", method: "GET", path: "/pools", status: 200 },
];

describe("admin guard on state-changing routes", () => {
  let stack: TestProxy;
  const reloader = new ScriptedReloader();
  const apps = new Map<Row["app"], Hono>();

  before(async () => {
    stack = await startTestProxy("alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n    - 127.0.0.1:1:1\n");
    const loopback = { kind: "tcp", host: "127.0.0.1", port: 8181 } as const;
    const wildcard = { kind: "tcp", host: "0.0.0.0", port: 8181 } as const;
    apps.set("token", await adminApp(stack.proxy, { token: TOKEN, bound: loopback, reloader }));
    apps.set("loopback", await adminApp(stack.proxy, { token: null, bound: loopback, reloader }));
    apps.set("loopback6", await adminApp(stack.proxy, { token: null, bound: { kind: "tcp", host: "::1", port: 8181 }, reloader }));
    apps.set("wildcard", await adminApp(stack.proxy, { token: null, bound: wildcard, reloader }));
    apps.set("wildcardToken", await adminApp(stack.proxy, { token: TOKEN, bound: wildcard, reloader }));
  });

  after(async () => {
    await stack?.close();
  });

  it("answers every request of the table as the rules say, reaching the reloader only when allowed", async () => {
    const wrong: string[] = [];
    for (const row of ROWS) {
      const calls = reloader.calls.length;
      const method = row.method ?? "POST";
      const res = await call(apps.get(row.app)!, method, row.path ?? "/reload", row.host === undefined ? HOST : row.host, row.headers);
      const reached = reloader.calls.length - calls;
      const expectReached = method === "POST" && res.status === 200 ? 1 : 0;
      if (res.status !== row.status) wrong.push(`${row.what}: ${res.status} ${JSON.stringify(res.body)}, expected ${row.status}`);
      else if (reached !== expectReached) wrong.push(`${row.what}: reloader called ${reached} times`);
      else if (row.status >= 400 && typeof res.body.error !== "string") wrong.push(`${row.what}: no JSON error body`);
      else if (row.error && !row.error.test(String(res.body.error))) wrong.push(`${row.what}: error '${res.body.error}' lacks ${row.error}`);
      else if (row.status === 401 && !/^Bearer /.test(res.headers.get("www-authenticate") ?? "")) wrong.push(`${row.what}: no WWW-Authenticate`);
    }
    assert.deepEqual(wrong, []);
  });

  it("isLoopbackHost() accepts 127.0.0.0/8, ::1 and localhost, and nothing else", () => {
    const yes = ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "0:0:0:0:0:0:0:1", "localhost", "LOCALHOST", "::ffff:127.0.0.1"];
    const no = ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "localhost.example", "127.0.0.1.example", "", "192.168.1.1"];
    assert.deepEqual(yes.filter((h) => !isLoopbackHost(h)), []);
    assert.deepEqual(no.filter((h) => isLoopbackHost(h)), []);
  });
});

describe("admin guard through the runtime's HTTP server", () => {
  let stack: TestProxy;
  let obs: Observability;
  let port = 0;
  const reloader = new ScriptedReloader();

  before(async () => {
    stack = await startTestProxy("alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n    - 127.0.0.1:1:1\n");
    const net = await loadNet();
    const log = createLogger(() => {}, 0);
    obs = await startObservability(stack.proxy, createMetrics(), {
      statsAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
      statsIntervalMs: 1000,
      adminAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
      version: "0.5.0",
      source: "test",
      reloader,
    }, { net, clock: systemClock, log });
    const addr = obs.adminAddr!;
    assert.ok(addr.kind === "tcp");
    port = addr.port;
  });

  after(async () => {
    await obs?.close();
    await stack?.close();
  });

  /** A raw HTTP/1.1 POST /reload with these header lines; returns the status code. */
  async function rawPost(headers: string[]): Promise<number> {
    const text = await rawText(port, ["POST /reload HTTP/1.1", ...headers, "Content-Length: 0", "Connection: close", "", ""].join("\r\n"),
      { timeoutMs: 5000 });
    return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  }

  it("a JSON POST from fetch() (Host = the bound address) reloads", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/reload`, { method: "POST", headers: JSON_CT });
    assert.equal(res.status, 200);
    assert.equal((await res.json() as { result: string }).result, "ok");
  });

  it("a simple POST, as a cross-site form sends it, is refused", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/reload`, { method: "POST", body: "x=1",
      headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(res.status, 403);
    await res.body?.cancel();
  });

  it("the Host header as sent on the wire decides: a rebound name is refused, the bound address allowed", async () => {
    const before = reloader.calls.length;
    assert.equal(await rawPost([`Host: attacker.example:${port}`, "Content-Type: application/json"]), 403);
    assert.equal(await rawPost([`Host: localhost:${port}`, "Content-Type: application/json", "Origin: http://attacker.example"]), 403);
    // Without Host, an HTTP/1.1 server may refuse the request itself (400) or hand it on; never a 200.
    assert.notEqual(await rawPost(["Content-Type: application/json"]), 200, "no Host header");
    assert.equal(reloader.calls.length, before);
    assert.equal(await rawPost([`Host: localhost:${port}`, "Content-Type: application/json"]), 200);
    assert.equal(reloader.calls.length, before + 1);
  });
});
