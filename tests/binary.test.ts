/**
 * The single binary: `bun build --compile mod.ts` works offline, and the binary it
 * makes is the CLI (answers -V, checks configs with -t). Deno's compile needs to
 * download its runtime, which these machines cannot, so only Bun's is tested.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./helpers/runtime.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe("the bun-compiled single binary", () => {
  let dir = "";
  let binary = "";

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-bin-"));
    binary = path.join(dir, "nutcracker");
    const bun = path.join(ROOT, "node_modules", ".bin", "bun");
    const built = await run(bun, ["build", "--compile", "mod.ts", "--outfile", binary], 120_000);
    assert.equal(built.code, 0, built.stderr);
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers -V with the version line", async () => {
    const r = await run(binary, ["-V"], 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^This is nutcracker-0\.5\.0 \(twemproxy-ts \d+\.\d+\.\d+\)/);
  });

  it("checks a good config with -t and says its syntax is ok", async () => {
    const r = await run(binary, ["-t", "-c", "conf/nutcracker.yml"], 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /nutcracker: configuration file 'conf\/nutcracker.yml' syntax is ok/);
  });

  it("rejects a broken config with -t, naming the line, and exits 1", async () => {
    const bad = path.join(dir, "bad.yml");
    fs.writeFileSync(bad, "alpha:\n  listen: 127.0.0.1:22121\n  hash: nope\n  servers:\n   - 127.0.0.1:6379:1\n");
    const r = await run(binary, ["-t", "-c", bad], 30_000);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${bad}:3`), r.stderr);
    assert.match(r.stderr, /is not a valid hash/);
    assert.match(r.stderr, /syntax is invalid/);
  });
});
