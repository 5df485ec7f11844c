/**
 * The dashboard's migration panel in headless Chromium (helpers/cdp.ts), against the real CLI
 * on the runtime running the tests with the admin API and --admin-token, in front of three
 * real redis-servers: a store pool of two servers holding 2,000 keys is reloaded onto three
 * with a low migration_rate, so the migration runs through the test. The panel appears with
 * the mode, the phase, both rings and each old server's progress, and its numbers change
 * without layout shift; Pause asks for confirmation, is refused without the token (nothing
 * changes) and pauses with it; Abort from the page turns the migration round (back to the old
 * ring). Screenshots at a phone and a wide size are written as artifacts (not committed) to
 * $TEST_ARTIFACTS or the temp directory.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { killStarted, startCli, waitUntil } from "./helpers/cli.ts";
import { assertFitsScreens, type Browser, hasChromium, launchChromium, type Page } from "./helpers/cdp.ts";
import { freePort } from "./helpers/ports.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { poolYaml } from "./helpers/reload.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";
import { PipeClient } from "./helpers/soak.ts";

const TOKEN = "dashboard-migration-token-7a2d";
const KEYS = 2000;

const textOf = (selector: string) => `(document.querySelector(${JSON.stringify(selector)}) || {}).textContent`;
const PANEL = `section[data-pool="st"] .migration`;
const button = (action: string) => `${PANEL} button[data-action="${action}"]`;

describe("the dashboard's migration panel in headless Chromium", { skip: hasChromium() ? false : "no /usr/bin/chromium (scripts/setup.sh installs it)" }, () => {
  let r: ServerProcess[] = [];
  let tmp = "";
  let conf = "";
  let port = 0;
  let base = "";
  let browser: Browser | null = null;
  let page: Page;
  const ids = () => r.map((s) => `127.0.0.1:${s.port}`);
  // A slow mover (10 keys/s): the migration still runs when the test pauses and aborts it.
  const yaml = (servers: ServerProcess[]) => poolYaml("st", port, servers.map((s) => s.port), { migration: "store", migration_rate: 10 });
  const migration = async () =>
    (await (await fetch(`${base}/pools/st/migration`)).json()) as { running: boolean; migration: { phase: string; reverse: boolean } | null };

  /** Open the action's dialog from the panel and confirm it with `token`; the answer's status on the page. */
  async function confirmAction(action: string, token: string): Promise<string> {
    await page.click(button(action));
    await page.waitFor("document.querySelector('#migration-dialog').open", `the ${action} confirmation dialog`);
    await page.eval("document.querySelector('#migration-token').value = ''; document.querySelector('#migration-token').focus(); true");
    if (token !== "") await page.type(token);
    await page.click("#migration-confirm");
    await page.waitFor(`document.querySelector('#migration-result').dataset.status`, `the ${action} result`);
    return await page.eval<string>(`document.querySelector('#migration-result').dataset.status`);
  }

  before(async () => {
    r = await Promise.all([startRedis(), startRedis(), startRedis()]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-dashboard-migration-"));
    port = await freePort();
    const [adminPort, statsPort] = [await freePort(), await freePort()];
    conf = path.join(tmp, "nutcracker.yml");
    fs.writeFileSync(conf, yaml([r[0], r[1]]));
    fs.writeFileSync(path.join(tmp, "token"), `${TOKEN}\n`);
    startCli(["-c", conf, "-s", String(statsPort), "-a", "127.0.0.1", "--admin", `127.0.0.1:${adminPort}`,
      "--admin-token", path.join(tmp, "token")], 180_000);
    base = `http://127.0.0.1:${adminPort}`;
    await waitUntil(async () => (await fetch(`${base}/live`).then((res) => res.status, () => 0)) === 200, "the admin API", 30_000);
    const client = await PipeClient.connect(port);
    try {
      const cmds = Array.from({ length: KEYS }, (_, i) => ["SET", `dm:${i}`, `v${i}`]);
      const replies = await client.exchange(encodePipeline(cmds), cmds.length, 30_000);
      assert.ok(replies.every((reply) => reply === "+OK\r\n"));
    } finally {
      client.destroy();
    }
    browser = await launchChromium();
    page = await browser.newPage({ width: 1280, height: 900 });
  });

  after(async () => {
    await browser?.close();
    killStarted();
    await Promise.all(r.map((s) => s?.stop()));
    if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("shows no panel before a migration, then the migration a reload starts with its phase, rings and progress", async () => {
    await page.goto(`${base}/`);
    await page.waitFor(`document.querySelectorAll('section[data-pool="st"] tr.node').length === 2`, "pool st with two nodes");
    assert.equal(await page.eval(`document.querySelector('${PANEL}').hidden`), true);
    fs.writeFileSync(conf, yaml(r));
    const res = await fetch(`${base}/reload`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200, await res.text());
    await page.waitFor(`document.querySelector('${PANEL}').dataset.phase === "moving"`, "the migration moving on the page", 15_000);
    const [a, b, c] = ids();
    assert.equal(await page.eval(textOf(`${PANEL} .mig-head span`)), "Migration (store): 2 \u2192 3 servers");
    assert.equal(await page.eval(textOf(`${PANEL} .mig-head .badge`)), "moving");
    assert.equal(await page.eval(textOf(`${PANEL} .mig-ring`)), `from ${a}, ${b} \u2192 ${a}, ${b}, ${c}`);
    assert.equal(await page.eval(textOf(`${PANEL} .mig-waiting`)), "waiting for no proxy");
    assert.equal(await page.eval(textOf(`${PANEL} .mig-error`)), "no error");
    const rows = await page.eval<string[]>(`[...document.querySelectorAll('${PANEL} tr[data-server]')].map((tr) => tr.dataset.server)`);
    assert.deepEqual(rows, [a, b], "one progress row per old server");
    await page.waitFor(`Number(${textOf(`${PANEL} .mig-tile.moved .value`)}) > 0`, "keys moved", 15_000);
    assert.match(String(await page.eval(textOf(`${PANEL} .mig-tile.eta .value`))), /^(\d+ s|\d+ min \d\d s)$/);
    const api = await (await fetch(`${base}/api/dashboard`)).json() as { pools: { migration: { running: boolean; mode: string } | null }[] };
    assert.deepEqual([api.pools[0].migration?.running, api.pools[0].migration?.mode], [true, "store"]);
    assert.deepEqual(await page.eval(`[...document.querySelectorAll('${PANEL} .mig-actions button')].map((b) => b.disabled)`),
      [false, true, false, false], "pause, finish and abort offered; resume not");
    assert.deepEqual(page.errors, []);
  });

  it("changes its numbers without layout shift", async () => {
    await page.eval(`window.__shifts = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__shifts.push(e.value); })` +
      `.observe({ type: "layout-shift" }); true`);
    const scanned = `${PANEL} tr[data-server] td:nth-child(2)`;
    const before = await page.eval<string>(textOf(scanned));
    await page.waitFor(`${textOf(scanned)} !== ${JSON.stringify(before)}`, "an old server's scanned count to change", 15_000);
    const shifts = await page.eval<number[]>("window.__shifts");
    assert.ok(shifts.reduce((x, y) => x + y, 0) < 0.001, `layout shifts while numbers changed: ${shifts.join(", ")}`);
  });

  it("asks before pausing, refuses the action without the token (nothing changes) and pauses with it", async () => {
    await page.click(button("pause"));
    await page.waitFor("document.querySelector('#migration-dialog').open", "the confirmation dialog");
    assert.match(String(await page.eval(textOf("#migration-title"))), /^Pause the store migration of pool st\?$/);
    assert.equal((await migration()).migration?.phase, "moving", "opening the dialog changes nothing");
    await page.click("#migration-cancel");
    assert.equal(await confirmAction("pause", ""), "401");
    assert.match(String(await page.eval(textOf("#migration-result"))), /^Refused \(401\): .*Authorization: Bearer/);
    assert.equal((await migration()).migration?.phase, "moving", "a refused pause changes nothing");
    // The browser logs every non-2xx answer; this one is the point of the step.
    assert.deepEqual(page.errors, [`log: Failed to load resource: the server responded with a status of 401 (Unauthorized) (${base}/pools/st/migration/pause)`]);
    page.errors.length = 0;
    await page.click("#migration-cancel");
    assert.equal(await confirmAction("pause", TOKEN), "200");
    assert.equal(await page.eval(textOf("#migration-result")), "Done: paused.\nphase now: paused");
    await page.click("#migration-cancel");
    await page.waitFor(`document.querySelector('${PANEL}').dataset.phase === "paused"`, "the paused phase on the page", 5000);
    assert.equal(await page.eval(textOf(`${PANEL} .mig-head .badge`)), "paused");
    assert.deepEqual(await page.eval(`[...document.querySelectorAll('${PANEL} .mig-actions button')].map((b) => b.disabled)`),
      [true, false, false, false], "resume offered, pause not");
    assert.deepEqual(page.errors, []);
  });

  it("aborts from the page after confirmation: the migration turns back to the old ring", async () => {
    assert.equal(await confirmAction("abort", TOKEN), "200");
    assert.match(String(await page.eval(textOf("#migration-result"))), /^Done: moving back to the old ring\.\nphase now: .+ \(abort\)$/);
    await page.click("#migration-cancel");
    const [a, b, c] = ids();
    await page.waitFor(`${textOf(`${PANEL} .mig-head span`)} === "Migration (store, abort): 3 \u2192 2 servers"`, "the way back on the page", 5000);
    assert.equal(await page.eval(textOf(`${PANEL} .mig-ring`)), `abort: back from ${a}, ${b}, ${c} \u2192 ${a}, ${b}`);
    const status = await migration();
    assert.deepEqual([status.running, status.migration?.reverse], [true, true]);
    assert.deepEqual(page.errors, []);
  });

  it("fits the panel on a phone and a wide screen, dark and light (screenshots as artifacts)", async () => {
    await assertFitsScreens(page, "dashboard-migration");
    assert.deepEqual(page.errors, []);
  });
});
