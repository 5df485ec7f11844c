/**
 * The dashboard in a real browser: Debian's headless Chromium (one start for the file),
 * driven over the DevTools protocol (helpers/cdp.ts), against the real CLI running on the
 * runtime running the tests with the admin API and --admin-token, in front of two real
 * redis-servers. The page loads without a console error and shows the pool and nodes of
 * the config (and the Sentinel panel of a pool following a real Sentinel); the request rate
 * shows within 2 s of a load starting and the chart moves,
 * without layout shift; a server killed during the test shows as ejected within 2 s; the
 * reload action asks for confirmation, is refused without the token and applies a changed
 * config with it. Screenshots at a phone and a wide size are written as artifacts (not
 * committed) to $TEST_ARTIFACTS or the temp directory.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { killStarted, startCli, waitUntil } from "./helpers/cli.ts";
import { assertFitsScreens, type Browser, hasChromium, launchChromium, type Page } from "./helpers/cdp.ts";
import { startLoad, type Load } from "./helpers/load.ts";
import { freePort } from "./helpers/ports.ts";
import { runtimeName } from "./helpers/runtime.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { SentinelSetup } from "./helpers/sentinel.ts";

const TOKEN = "dashboard-browser-token-5c1e";

/** Text of the element matching `selector`, as an expression evaluated in the page. */
const textOf = (selector: string) => `(document.querySelector(${JSON.stringify(selector)}) || {}).textContent`;
const poolSel = (pool: string) => `section[data-pool="${pool}"]`;
const rateTile = (pool: string) => `${poolSel(pool)} .tile:nth-child(2) .value`;
const nodeBadge = (pool: string, node: string) => `${poolSel(pool)} tr[data-node="${node}"] .badge`;

describe("the dashboard in headless Chromium", { skip: hasChromium() ? false : "no /usr/bin/chromium (scripts/setup.sh installs it)" }, () => {
  let tmp = "";
  let conf = "";
  let redisA: ServerProcess;
  let redisB: ServerProcess;
  let setup: SentinelSetup;
  let alphaPort = 0;
  let watchedPort = 0;
  let betaPort = 0;
  let base = "";
  let browser: Browser | null = null;
  let page: Page;
  let load: Load | null = null;

  const yaml = (withBeta: boolean) =>
    `alpha:\n  listen: 127.0.0.1:${alphaPort}\n  redis: true\n  auto_eject_hosts: true\n  server_failure_limit: 1\n` +
    `  server_retry_timeout: 60000\n  timeout: 1000\n  servers:\n    - 127.0.0.1:${redisA.port}:1 s1\n    - 127.0.0.1:${redisB.port}:1 s2\n` +
    `watched:\n  listen: 127.0.0.1:${watchedPort}\n  redis: true\n  sentinels:\n    - 127.0.0.1:${setup.sentinelPorts[0]}\n` +
    `  servers:\n    - 127.0.0.1:${setup.redises[0].port}:1 ${setup.name}\n  replica_check_interval: 200\n` +
    (withBeta ? `beta:\n  listen: 127.0.0.1:${betaPort}\n  redis: true\n  servers:\n    - 127.0.0.1:${redisA.port}:1 b1\n` : "");

  before(async () => {
    [redisA, redisB, setup] = await Promise.all([
      startRedis(),
      startRedis(),
      SentinelSetup.start({ replicas: 1, sentinels: 1, quorum: 1, prefix: "dashboard-browser-" }),
    ]);
    await setup.waitAgreed({ masterPort: setup.redises[0].port, replicas: 1 });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-dashboard-"));
    [alphaPort, betaPort, watchedPort] = [await freePort(), await freePort(), await freePort()];
    const [adminPort, statsPort] = [await freePort(), await freePort()];
    conf = path.join(tmp, "nutcracker.yml");
    fs.writeFileSync(conf, yaml(false));
    fs.writeFileSync(path.join(tmp, "token"), `${TOKEN}\n`);
    startCli(["-c", conf, "-s", String(statsPort), "-a", "127.0.0.1", "--admin", `127.0.0.1:${adminPort}`,
      "--admin-token", path.join(tmp, "token")], 120_000);
    base = `http://127.0.0.1:${adminPort}`;
    await waitUntil(async () => (await fetch(`${base}/live`).then((r) => r.status, () => 0)) === 200, "the admin API", 30_000);
    browser = await launchChromium();
    page = await browser.newPage({ width: 1280, height: 900 });
  });

  after(async () => {
    load?.stop();
    await browser?.close();
    killStarted();
    await Promise.all([redisA?.stop(), redisB?.stop(), setup?.stopAll()]);
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("loads with no console error and shows the pool and every node of the config", async () => {
    await page.goto(`${base}/`);
    await page.waitFor(`document.querySelectorAll('${poolSel("alpha")} tr.node').length === 2`, "pool alpha with two nodes");
    assert.equal(await page.eval(textOf(`${poolSel("alpha")} h2`)), "alpha");
    assert.equal(await page.eval(textOf(`${poolSel("alpha")} .addr`)), `127.0.0.1:${alphaPort}`);
    const nodes = await page.eval<string[]>(`[...document.querySelectorAll('${poolSel("alpha")} tr.node')].map((r) => r.dataset.node)`);
    assert.deepEqual(nodes, ["s1", "s2"]);
    assert.equal(await page.eval(textOf(nodeBadge("alpha", "s1"))), "up");
    assert.equal(await page.eval(textOf("#generation")), "1");
    assert.equal(await page.eval(textOf("#live")), "live");
    assert.deepEqual(page.errors, []);
  });

  it("shows a Sentinel pool's Sentinels, its master and the replica Sentinel reported", async () => {
    const replica = `${setup.name}/127.0.0.1:${setup.redises[1].port}`;
    await page.waitFor(`${textOf(nodeBadge("watched", replica))} === "up"`, "the discovered replica, up", 10_000);
    await page.waitFor(`String(${textOf(`${poolSel("watched")} .sentinel h3`)}).startsWith("Sentinel: 1 of 1 reachable")`, "the Sentinel panel");
    const lines = await page.eval<string[]>(`[...document.querySelectorAll('${poolSel("watched")} .sentinel div')].map((d) => d.textContent)`);
    assert.deepEqual(lines, [`${setup.name}: master 127.0.0.1:${setup.redises[0].port}, 0 failovers`]);
    assert.equal(await page.eval(textOf(`${poolSel("watched")} tr[data-node="${replica}"] td:nth-child(2)`)), "replica");
    assert.equal(await page.eval(`document.querySelector('${poolSel("alpha")} .sentinel').hidden`), true, "no panel without sentinels");
    assert.deepEqual(page.errors, []);
  });

  it("shows the request rate within 2 s of a load starting, moves the chart, and shifts no layout", async () => {
    assert.equal(await page.eval(textOf(rateTile("alpha"))), "0");
    const chartBefore = await page.eval<string>(`document.querySelector('${poolSel("alpha")} .chart .line.s0').getAttribute('d')`);
    await page.eval(`window.__shifts = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__shifts.push(e.value); })` +
      `.observe({ type: "layout-shift" }); true`);
    load = startLoad(alphaPort);
    const took = await page.waitFor(`!["0", "\\u2014"].includes(${textOf(rateTile("alpha"))})`, "a request rate", 2000);
    console.log(`# ${runtimeName()}: request rate on the page ${took} ms after the load started`);
    await page.waitFor(`document.querySelector('${poolSel("alpha")} .chart .line.s0').getAttribute('d') !== ${JSON.stringify(chartBefore)}`,
      "the request-rate chart to move", 3000);
    const rate = Number(String(await page.eval(textOf(rateTile("alpha")))).replace("k", "e3"));
    assert.ok(rate > 100, `rate ${rate}`);
    await new Promise((r) => setTimeout(r, 1500));
    const shifts = await page.eval<number[]>("window.__shifts");
    assert.ok(shifts.reduce((a, b) => a + b, 0) < 0.001, `layout shifts while numbers changed: ${shifts.join(", ")}`);
    assert.deepEqual(page.errors, []);
  });

  it("asks before reloading, refuses a reload without the token and applies the changed config with it", async () => {
    fs.writeFileSync(conf, yaml(true));
    await page.click("#reload-button");
    await page.waitFor("document.querySelector('#reload-dialog').open", "the confirmation dialog");
    const status = await fetch(`${base}/reload`).then((r) => r.json()) as { generation: number };
    assert.equal(status.generation, 1, "opening the dialog reloads nothing");
    await page.eval("document.querySelector('#reload-token').value = ''; true");
    await page.click("#reload-confirm");
    await page.waitFor(`document.querySelector('#reload-result').dataset.status === "401"`, "the refusal");
    assert.match(String(await page.eval(textOf("#reload-result"))), /^Refused \(401\): .*Authorization: Bearer/);
    // The browser logs every non-2xx answer; this one is the point of the step.
    assert.deepEqual(page.errors, [`log: Failed to load resource: the server responded with a status of 401 (Unauthorized) (${base}/reload)`]);
    page.errors.length = 0;
    await page.eval("document.querySelector('#reload-token').focus(); true");
    await page.type(TOKEN);
    await page.click("#reload-confirm");
    await page.waitFor(`document.querySelector('#reload-result').dataset.status === "200"`, "the reload's result");
    assert.match(String(await page.eval(textOf("#reload-result"))), /^Applied: configuration generation 2\.\npool beta: added/);
    await page.click("#reload-cancel");
    await page.waitFor(`document.querySelector('${poolSel("beta")}') !== null && ${textOf("#generation")} === "2"`, "pool beta and generation 2");
    assert.match(String(await page.eval(textOf("#last-reload"))), /^ok at \d\d:\d\d:\d\d$/);
    assert.deepEqual(page.errors, []);
  });

  it("shows a server killed under load as ejected within 2 s", async () => {
    redisB.kill("SIGKILL");
    const took = await page.waitFor(`String(${textOf(nodeBadge("alpha", "s2"))}).startsWith("ejected")`, "s2 ejected", 2000);
    console.log(`# ${runtimeName()}: killed server shown as ejected after ${took} ms`);
    assert.match(String(await page.eval(textOf(nodeBadge("alpha", "s2")))), /^ejected · retry \d\d:\d\d:\d\d$/);
    assert.equal(await page.eval(textOf(nodeBadge("alpha", "s1"))), "up");
  });

  it("fits a phone and a wide screen, in dark and light mode (screenshots as artifacts)", async () => {
    const shots = await assertFitsScreens(page, "dashboard");
    console.log(`# screenshots: ${shots.join(" ")}`);
    assert.deepEqual(page.errors, []);
  });
});
