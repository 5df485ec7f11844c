/**
 * The admin hono app in front of a real proxy, called through its fetch without a socket,
 * and a scripted Reloader that records its calls (the routes' side of the contract only;
 * the real reloader is exercised by the CLI and reload tests).
 */
import type { Hono } from "hono";
import { systemClock } from "../../core/net.ts";
import type { Addr } from "../../core/net.ts";
import type { Proxy } from "../../core/proxy/mod.ts";
import { createAdminApp, createMetrics } from "../../core/admin/mod.ts";
import { HealthChecker } from "../../core/admin/health.ts";
import { StatsReporter } from "../../core/stats/reporter.ts";
import type { ReloadReport, Reloader, ReloadStatus } from "../../core/reload/types.ts";
import { loadNet } from "../../adapters/mod.ts";

/** A Reloader that answers `next` and counts what it was asked. */
export class ScriptedReloader implements Reloader {
  calls: { dryRun: boolean }[] = [];
  next: ReloadReport = { result: "ok", dryRun: false, generation: 2, changes: [], error: null };
  current: ReloadStatus = { generation: 1, reloads: { ok: 0, error: 0 }, lastReloadAt: null, lastError: null };

  reload(opts?: { readonly dryRun?: boolean }): Promise<ReloadReport> {
    const dryRun = opts?.dryRun ?? false;
    this.calls.push({ dryRun });
    return Promise.resolve({ ...this.next, dryRun });
  }

  status(): ReloadStatus {
    return this.current;
  }
}

/** What an app under test is built with. */
export interface AppOptions {
  readonly token?: string | null;
  /** The bound admin address the guard checks Host against. */
  readonly bound?: Addr;
  readonly reloader?: Reloader | null;
}

/** The admin app of `proxy`, as startObservability builds it. */
export async function adminApp(proxy: Proxy, opts: AppOptions = {}): Promise<Hono> {
  const net = await loadNet();
  const clock = systemClock;
  const startedAt = clock.now();
  const reporter = new StatsReporter(() => proxy.pools, { source: "test", version: "0.5.0", intervalMs: 1000, startedAt }, clock);
  const bound = opts.bound ?? { kind: "tcp", host: "127.0.0.1", port: 8181 };
  return createAdminApp({
    proxy,
    reporter,
    metrics: createMetrics(),
    health: new HealthChecker(net, clock),
    clock,
    version: "0.5.0",
    source: "test",
    startedAt,
    ready: () => true,
    reloader: opts.reloader === undefined ? new ScriptedReloader() : opts.reloader,
    adminToken: opts.token ?? null,
    adminAddr: () => bound,
  });
}

/** A request to `app` as a client would send it: `host` goes in the URL and the Host header. */
export async function call(
  app: Hono,
  method: string,
  path: string,
  host: string | null,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const all: Record<string, string> = { ...headers };
  if (host !== null) all.host = host;
  const res = await app.fetch(new Request(`http://${host ?? "127.0.0.1:8181"}${path}`, { method, headers: all }));
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body, headers: res.headers };
}
