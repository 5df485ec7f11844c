/**
 * Who may change state through the admin API. Reading (GET, HEAD, OPTIONS) is open;
 * every other method (POST /reload, ...) must pass this guard:
 * - with a token (--admin-token FILE): `Authorization: Bearer <token>`, compared in
 *   constant time; no credential -> 401, a wrong one -> 403;
 * - without a token: only when the admin API is bound to a loopback address, and only for
 *   a request a web page cannot send without a CORS preflight (an Authorization header or
 *   `Content-Type: application/json`) whose Host, and Origin if sent, name the admin
 *   address. That keeps a page in the operator's browser from reaching it: a cross-site
 *   form or fetch is simple (CSRF), and a rebound DNS name shows in Host (DNS rebinding).
 * Refusals are JSON: `{"error": "..."}`.
 */
import type { Context, MiddlewareHandler } from "hono";
import { type Addr, formatAddr } from "../net.ts";

/** What the guard checks against. */
export interface GuardOptions {
  /** The bearer token, or null when none is configured. */
  readonly token: string | null;
  /** The admin API's bound address (the real port when 0 was asked); null while unbound. */
  readonly bound: () => Addr | null;
}

const READ_ONLY_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The middleware; install it before the routes.
 * @example app.use("*", adminGuard({ token: null, bound: () => listener.addr }));
 */
export function adminGuard(opts: GuardOptions): MiddlewareHandler {
  const expected = opts.token === null ? null : digest(opts.token);
  return async (c, next) => {
    if (READ_ONLY_METHODS.has(c.req.method)) return await next();
    const refusal = expected === null ? checkWithoutToken(c, opts.bound()) : await checkToken(c, await expected);
    if (refusal !== null) {
      const headers: Record<string, string> = refusal.status === 401 ? { "www-authenticate": 'Bearer realm="nutcracker"' } : {};
      return c.json({ error: refusal.error }, refusal.status, headers);
    }
    return await next();
  };
}

interface Refusal {
  readonly status: 401 | 403;
  readonly error: string;
}

async function checkToken(c: Context, expected: Uint8Array): Promise<Refusal | null> {
  const header = c.req.header("authorization") ?? "";
  const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match === null) return { status: 401, error: "this route needs an 'Authorization: Bearer <token>' header (--admin-token)" };
  const given = await digest(match[1]);
  return sameBytes(given, expected) ? null : { status: 403, error: "wrong admin token" };
}

function checkWithoutToken(c: Context, bound: Addr | null): Refusal | null {
  if (bound === null || bound.kind !== "tcp" || !isLoopbackHost(bound.host)) {
    const where = bound === null ? "an unknown address" : `'${formatAddr(bound)}'`;
    return {
      status: 403,
      error: `the admin API listens on ${where}, which is not loopback: state-changing routes need a token; ` +
        "start nutcracker with --admin-token FILE",
    };
  }
  const json = mediaType(c.req.header("content-type")) === "application/json";
  if (c.req.header("authorization") === undefined && !json) {
    return { status: 403, error: "send 'Content-Type: application/json' (or an Authorization header) to change state" };
  }
  const names = hostNames(bound.host, bound.port);
  const host = (c.req.header("host") ?? "").toLowerCase();
  if (!names.has(host)) return { status: 403, error: `Host '${host}' does not name the admin address ${formatAddr(bound)}` };
  const origin = c.req.header("origin");
  if (origin !== undefined && !isOwnOrigin(origin.toLowerCase(), names)) {
    return { status: 403, error: `Origin '${origin}' is not the admin API's own` };
  }
  return null;
}

/** True for 127.0.0.0/8, ::1 (also spelled out or IPv4-mapped) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The Host header values that name a loopback admin address bound on `port`. */
function hostNames(boundHost: string, port: number): Set<string> {
  const own = boundHost.toLowerCase();
  const hosts = ["127.0.0.1", "localhost", "[::1]", own.includes(":") ? `[${own}]` : own];
  const names = new Set(hosts.map((h) => `${h}:${port}`));
  // A browser leaves out the default port.
  if (port === 80) for (const h of hosts) names.add(h);
  return names;
}

function isOwnOrigin(origin: string, names: ReadonlySet<string>): boolean {
  return origin.startsWith("http://") && names.has(origin.slice("http://".length));
}

/** "application/json; charset=utf-8" -> "application/json". */
function mediaType(value: string | undefined): string {
  return (value ?? "").split(";")[0].trim().toLowerCase();
}

/** SHA-256 of the text: both sides of the compare have 32 bytes, whatever the token's length. */
async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Constant-time equality of two equal-length byte arrays: no early exit. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
