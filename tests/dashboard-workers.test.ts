/**
 * The dashboard under `--workers 2`: the supervisor serves the page of one process at / of
 * its admin address, over its workers' merged view. The real CLI on the runtime running the
 * tests, in front of a real redis-server: the page and assets with the same CSP, /api naming
 * them, /api/dashboard counting the clients of both workers and every client request once
 * (its chart points add up to the requests sent), and in headless Chromium the page loading
 * without a console error, showing the pool, its rate under load and a confirmed dry-run reload.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DashboardState } from "../core/admin/dashboard/mod.ts";
import { killStarted, waitUntil } from "./helpers/cli.ts";
import { type Browser, hasChromium, launchChromium } from "./helpers/cdp.ts";
import { bulkText, RespClient } from "./helpers/resp.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { killWorkers, type Supervised, startSupervised } from "./helpers/workers.ts";

const textOf = (selector: string) => `(document.querySelector(${JSON.stringify(selector)}) || {}).textContent`;

/** A client connection with the pid of the worker serving it (INFO's process_id: one client request). */
async function connect(port: number): Promise<{ client: RespClient; pid: number }> {
  const client = await RespClient.connect(port);
  const match = /process_id:(\d+)/.exec(bulkText(await client.call(["INFO", "server"])) ?? "");
  assert.ok(match !== null, "INFO names the worker's pid");
  return { client, pid: Number(match[1]) };
}

describe("the dashboard under --workers 2", () => {
  let redis: ServerProcess;
  let tmp = "";
  let sup: Supervised;
  let browser: Browser | null = null;
  const clients: RespClient[] = [];
  let requests = 0;

  const state = async (): Promise<DashboardState> => (await fetch(`${sup.admin}/api/dashboard`)).json() as Promise<DashboardState>;

  before(async () => {
    redis = await startRedis();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-dashboard-workers-"));
    sup = await startSupervised(tmp, "dash", redis.port);
  });

  after(async () => {
    for (const c of clients) c.close();
    await browser?.close();
    killStarted();
    killWorkers();
    await redis?.stop();
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("serves the page and its assets at / with the CSP of one process, and lists them at /api", async () => {
    const page = await fetch(`${sup.admin}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    assert.match(await page.text(), /assets\/dashboard\.js/);
    const script = await fetch(`${sup.admin}/assets/dashboard.js`);
    assert.equal(script.status, 200);
    new Function(await script.text());
    const api = await (await fetch(`${sup.admin}/api`)).json() as { workers: boolean; endpoints: Record<string, string> };
    assert.equal(api.workers, true);
    assert.ok("/" in api.endpoints && "/api/dashboard" in api.endpoints);
  });

  it("counts the clients of both workers and every client request once", async () => {
    const pids = new Set<number>();
    // Connections go to either worker: open some until both serve one (bounded).
    for (let i = 0; i < 40 && (pids.size < 2 || clients.length < 4); i++) {
      const { client, pid } = await connect(sup.port);
      clients.push(client);
      pids.add(pid);
      requests++;
    }
    assert.equal(pids.size, 2, "both workers serve a connection");
    await waitUntil(async () => (await state()).pools[0]?.clients === clients.length, `${clients.length} clients on the page`, 5000);
    for (let round = 0; round < 10; round++) {
      await Promise.all(clients.map((c, i) => c.pipeline(Array.from({ length: 20 }, (_, j) => ["SET", `k:${i}:${j}`, "v"]))));
      requests += clients.length * 20;
    }
    // Chart points are per-second rates; over every point they add up to the requests counted.
    const counted = async () => {
      const s = await state();
      const { times, pools } = s.history;
      let total = 0;
      for (let i = 1; i < times.length; i++) total += ((pools.alpha.rate[i] ?? 0) * (times[i] - times[i - 1])) / 1000;
      return total;
    };
    let last = 0;
    await waitUntil(async () => Math.abs((last = await counted()) - requests) <= 1 + requests * 0.01,
      `the chart points to add up to the ${requests} requests sent (they add up to ${last.toFixed(1)})`, 10_000);
    const s = await state();
    assert.equal(s.workers, 2);
    assert.deepEqual(s.pools.map((p) => p.name), ["alpha"]);
    assert.deepEqual(s.pools[0].shards.flatMap((sh) => sh.nodes.map((n) => n.state)), ["up"]);
    assert.equal(s.pools[0].cluster, null);
    assert.equal(s.pools[0].sentinel, null);
  });

  it("loads in Chromium with no console error, shows the pool and its request rate, and reloads after confirmation", {
    skip: hasChromium() ? false : "no /usr/bin/chromium (scripts/setup.sh installs it)",
  }, async () => {
    browser = await launchChromium();
    const page = await browser.newPage({ width: 1280, height: 900 });
    await page.goto(`${sup.admin}/`);
    await page.waitFor(`document.querySelectorAll('section[data-pool="alpha"] tr.node').length === 1`, "pool alpha with its node");
    assert.equal(await page.eval(textOf(`section[data-pool="alpha"] .addr`)), `127.0.0.1:${sup.port}`);
    let sending = true;
    const load = (async () => {
      while (sending) await Promise.all(clients.map((c) => c.pipeline([["SET", "a", "b"], ["GET", "a"]])));
    })();
    try {
      await page.waitFor(`!["0", "\\u2014"].includes(${textOf(`section[data-pool="alpha"] .tile:nth-child(2) .value`)})`,
        "a request rate", 10_000);
    } finally {
      sending = false;
      await load;
    }
    await page.click("#reload-button");
    await page.waitFor("document.querySelector('#reload-dialog').open", "the confirmation dialog");
    await page.eval("document.querySelector('#reload-dry').checked = true; true");
    await page.click("#reload-confirm");
    await page.waitFor(`document.querySelector('#reload-result').dataset.status === "200"`, "the dry run's result");
    assert.match(String(await page.eval(textOf("#reload-result"))), /^Dry run: the file is valid\./);
    assert.equal(await page.eval(textOf("#live")), "live");
    assert.deepEqual(page.errors, []);
  });
});
