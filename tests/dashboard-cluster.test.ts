/**
 * The dashboard's Redis Cluster panel in headless Chromium (helpers/cdp.ts), against the real
 * CLI on the runtime running the tests with the admin API, in front of a real Redis Cluster
 * (three masters with a replica each; one cluster start for the file): the panel shows each
 * master with the slot ranges the cluster itself reports and a fresh slot map; after a
 * reshard, a request to a moved slot counts a MOVED and the panel shows the new ranges; a
 * cluster pool whose seed does not answer shows "no slot map yet" and the refresh error (and
 * /metrics counts the failed refreshes); a
 * pool without redis_cluster shows no cluster panel. Screenshots of the panel at a phone and
 * a wide size are written as artifacts (not committed) to $TEST_ARTIFACTS or the temp directory.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { killStarted, startCli, waitUntil } from "./helpers/cli.ts";
import { assertFitsScreens, type Browser, hasChromium, launchChromium, type Page } from "./helpers/cdp.ts";
import { type ClusterNode, keySlot, RedisCluster } from "./helpers/cluster.ts";
import { freePort } from "./helpers/ports.ts";
import { RespClient } from "./helpers/resp.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

const textOf = (selector: string) => `(document.querySelector(${JSON.stringify(selector)}) || {}).textContent`;
const panel = (pool: string) => `section[data-pool="${pool}"] .cluster`;

/** A master's slot ranges as the proxy writes them ("0-5460,10923"). */
const rangesOf = (n: ClusterNode) => [...n.slots].sort((a, b) => a[0] - b[0]).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");

describe("the dashboard's Redis Cluster panel in headless Chromium", { skip: hasChromium() ? false : "no /usr/bin/chromium (scripts/setup.sh installs it)" }, () => {
  let cluster: RedisCluster;
  let plainRedis: ServerProcess;
  let tmp = "";
  let shopPort = 0;
  let base = "";
  let browser: Browser | null = null;
  let page: Page;

  /** The master rows of a pool's panel, "address ranges count", sorted. */
  const rowsJs = (pool: string) =>
    `[...document.querySelectorAll('${panel(pool)} tr[data-master]')].map((r) => [...r.cells].map((c) => c.textContent).join(" ")).sort()`;
  const rows = (pool: string) => page.eval<string[]>(rowsJs(pool));
  const expectedRows = async () => (await cluster.masters()).map((m) => {
    const count = m.slots.reduce((n, [a, b]) => n + b - a + 1, 0);
    return `127.0.0.1:${m.port} ${rangesOf(m)} ${count}`;
  }).sort();

  before(async () => {
    [cluster, plainRedis] = await Promise.all([RedisCluster.start({ prefix: "dashboard-cluster-" }), startRedis()]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-dashboard-cluster-"));
    shopPort = await freePort();
    const [lostPort, plainPort, deadSeed, adminPort, statsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const seeds = (await cluster.masters()).map((m) => `    - 127.0.0.1:${m.port}:1`).join("\n");
    // A long refresh interval: after the reshard only the MOVED makes the proxy refresh.
    const yml = `shop:\n  listen: 127.0.0.1:${shopPort}\n  redis: true\n  distribution: redis_cluster\n  timeout: 1000\n` +
      `  cluster_refresh_interval: 600000\n  servers:\n${seeds}\n` +
      `lost:\n  listen: 127.0.0.1:${lostPort}\n  redis: true\n  distribution: redis_cluster\n  timeout: 1000\n` +
      `  servers:\n    - 127.0.0.1:${deadSeed}:1\n` +
      `plain:\n  listen: 127.0.0.1:${plainPort}\n  redis: true\n  servers:\n    - 127.0.0.1:${plainRedis.port}:1\n`;
    const conf = path.join(tmp, "nutcracker.yml");
    fs.writeFileSync(conf, yml);
    startCli(["-c", conf, "-s", String(statsPort), "-a", "127.0.0.1", "--admin", `127.0.0.1:${adminPort}`], 180_000);
    base = `http://127.0.0.1:${adminPort}`;
    await waitUntil(async () => (await fetch(`${base}/live`).then((r) => r.status, () => 0)) === 200, "the admin API", 30_000);
    browser = await launchChromium();
    page = await browser.newPage({ width: 1280, height: 900 });
  });

  after(async () => {
    await browser?.close();
    killStarted();
    await Promise.all([cluster?.stopAll(), plainRedis?.stop()]);
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("shows every master with the slot ranges the cluster reports, a fresh slot map and no redirections", async () => {
    await page.goto(`${base}/`);
    await page.waitFor(`document.querySelectorAll('${panel("shop")} tr[data-master]').length === 3`, "three masters in the panel");
    assert.deepEqual(await rows("shop"), await expectedRows());
    assert.equal(await page.eval(`document.querySelector('${panel("shop")}').dataset.map`), "fresh");
    assert.equal(await page.eval(textOf(`${panel("shop")} h3`)), "Redis Cluster: slot map fresh \u00b7 3 masters, 16384 of 16384 slots");
    assert.match(String(await page.eval(textOf(`${panel("shop")} .refresh`))), /^refreshed \d\d:\d\d:\d\d · every 600 s · \d+ refresh(es)?, 0 failed$/);
    assert.equal(await page.eval(textOf(`${panel("shop")} .redirects`)), "MOVED 0 \u00b7 ASK 0");
    // Every node of the cluster (masters and replicas) is in the node table.
    const nodes = await page.eval<number>(`document.querySelectorAll('section[data-pool="shop"] tr.node').length`);
    assert.equal(nodes, 6);
    assert.deepEqual(page.errors, []);
  });

  it("counts a MOVED for a slot resharded away and shows the new ranges after the refresh it causes", async () => {
    const [from, to] = (await cluster.masters()).map((m) => m);
    const movedFrom = new Set<number>();
    for (const [a, b] of from.slots) for (let s = a; s <= b; s++) movedFrom.add(s);
    await cluster.reshard(from.port, to.port, 50);
    const owners = await cluster.owners();
    let key = "";
    for (let n = 0; key === "" && n < 100_000; n++) {
      const slot = keySlot(`moved:${n}`);
      if (movedFrom.has(slot) && owners[slot] === to.port) key = `moved:${n}`;
    }
    assert.notEqual(key, "", "a key in a slot the reshard moved");
    const client = await RespClient.connect(shopPort);
    try {
      const reply = await client.call(["SET", key, "v"]);
      assert.ok(reply.type === "status" && reply.text === "OK", `the proxy follows the MOVED for the client: ${JSON.stringify(reply)}`);
    } finally {
      client.close();
    }
    await page.waitFor(`/^MOVED [1-9]/.test(${textOf(`${panel("shop")} .redirects`)})`, "the MOVED on the page", 5000);
    const want = await expectedRows();
    await page.waitFor(`JSON.stringify(${rowsJs("shop")}) === ${JSON.stringify(JSON.stringify(want))}`, `the new slot ranges ${want.join("; ")}`, 5000);
    assert.equal(await page.eval(`document.querySelector('${panel("shop")}').dataset.map`), "fresh");
    assert.deepEqual(page.errors, []);
  });

  it("shows a cluster pool whose seed does not answer as having no slot map, with the refresh error", async () => {
    await page.waitFor(`${textOf(`${panel("lost")} h3`)} === "Redis Cluster: no slot map yet \u00b7 0 masters, 0 of 16384 slots"`, "the lost pool's panel");
    assert.equal(await page.eval(`document.querySelector('${panel("lost")}').dataset.map`), "none");
    assert.match(String(await page.eval(textOf(`${panel("lost")} .error`))),
      /^last refresh error at \d\d:\d\d:\d\d: no cluster node answered CLUSTER SLOTS \(127\.0\.0\.1:\d+: .+\)$/);
    assert.match(String(await page.eval(textOf(`${panel("lost")} .refresh`))), /^never refreshed · every 5 s · 0 refreshes, [1-9]\d* failed$/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^nutcracker_cluster_refresh_errors_total\{pool="lost"\} [1-9]\d*$/m);
    assert.match(metrics, /^nutcracker_cluster_refresh_errors_total\{pool="shop"\} 0$/m);
    assert.match(metrics, /^nutcracker_cluster_last_refresh_timestamp_seconds\{pool="lost"\} 0$/m);
    assert.match(metrics, /^nutcracker_client_requests_total\{pool="shop"\} 1$/m, "the one SET of the MOVED step");
  });

  it("shows no cluster panel for a pool without redis_cluster, and no Sentinel panel for the cluster pools", async () => {
    assert.equal(await page.eval(`document.querySelector('${panel("plain")}').hidden`), true);
    assert.equal(await page.eval(`document.querySelector('section[data-pool="shop"] .sentinel').hidden`), true);
    const api = await (await fetch(`${base}/api/dashboard`)).json() as { pools: { name: string; cluster: unknown }[] };
    assert.deepEqual(api.pools.map((p) => [p.name, p.cluster === null]), [["shop", false], ["lost", false], ["plain", true]]);
  });

  it("fits the panel on a phone and a wide screen (screenshots as artifacts)", async () => {
    await assertFitsScreens(page, "dashboard-cluster");
    assert.deepEqual(page.errors, []);
  });
});
