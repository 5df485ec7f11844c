/**
 * The bun-compiled single binary carries the dashboard: built with `bun build --compile`
 * (offline), started with --admin in front of a real redis-server, it serves the page, its
 * assets byte for byte as the source has them, and /api/dashboard.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "../core/admin/dashboard/mod.ts";
import { kill, track, untrack, waitUntil } from "./helpers/cli.ts";
import { freePort } from "./helpers/ports.ts";
import { ROOT } from "./helpers/runtime.ts";
import { type ServerProcess, startRedis } from "./helpers/servers.ts";

describe("the dashboard in the bun-compiled binary", () => {
  let dir = "";
  let redis: ServerProcess;
  let pid = 0;
  let base = "";

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-dashboard-bin-"));
    const binary = path.join(dir, "nutcracker");
    const built = await new Promise<string | null>((resolve) => {
      execFile(path.join(ROOT, "node_modules", ".bin", "bun"), ["build", "--compile", "mod.ts", "--outfile", binary],
        { cwd: ROOT, timeout: 120_000 }, (err, _out, stderr) => resolve(err === null ? null : `${err.message}\n${stderr}`));
    });
    assert.equal(built, null);
    redis = await startRedis();
    const [listen, admin, stats] = [await freePort(), await freePort(), await freePort()];
    const conf = path.join(dir, "nutcracker.yml");
    fs.writeFileSync(conf, `alpha:\n  listen: 127.0.0.1:${listen}\n  redis: true\n  servers:\n    - 127.0.0.1:${redis.port}:1 s1\n`);
    const child = spawn(binary, ["-c", conf, "-s", String(stats), "-a", "127.0.0.1", "--admin", `127.0.0.1:${admin}`], { stdio: "ignore" });
    pid = child.pid ?? 0;
    track(pid);
    base = `http://127.0.0.1:${admin}`;
    await waitUntil(async () => (await fetch(`${base}/live`).then((r) => r.status, () => 0)) === 200, "the binary's admin API", 30_000);
  });

  after(async () => {
    if (pid > 0) {
      kill(pid, "SIGKILL");
      untrack(pid);
    }
    await redis?.stop();
    if (dir !== "") fs.rmSync(dir, { recursive: true, force: true });
  });

  it("serves the page, its script and stylesheet as the source has them, and the dashboard's data", async () => {
    for (const [route, body] of [["/", DASHBOARD_HTML], ["/assets/dashboard.js", DASHBOARD_JS], ["/assets/dashboard.css", DASHBOARD_CSS]]) {
      const res = await fetch(`${base}${route}`);
      assert.equal(res.status, 200, route);
      assert.equal(await res.text(), body, route);
    }
    const state = await (await fetch(`${base}/api/dashboard`)).json() as { pools: { name: string; shards: { nodes: { name: string }[] }[] }[] };
    assert.deepEqual(state.pools.map((p) => [p.name, p.shards[0].nodes[0].name]), [["alpha", "s1"]]);
  });
});
