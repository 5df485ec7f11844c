/**
 * `npm run bench:parse`: ns per command for GET, SET 32 B, SET 4 KB and MGET of 10 keys
 * through parse -> route, through the whole Redis session, and through the engine on an
 * in-memory network; heap bytes per command where the runtime can tell (V8 with gc()).
 * Runs on Node, `deno run -A bench/parse.ts` and `bun run bench/parse.ts`;
 * `--all` (from any runtime) runs every runtime and prints one table. `--json` prints rows as JSON.
 */
import { spawn } from "node:child_process";
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchPool, cases, parseRouteBatch, sessionBatch } from "./lib/parse_cases.ts";
import { engineNsPerRequest } from "./lib/engine_rt.ts";
import { bytesPerIter, findGc, nsPerIter, sinkValue } from "./lib/timing.ts";
import { fixed, int, machineHeader, table } from "./lib/report.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** One result row: one command on one runtime. */
interface Row {
  runtime: string;
  command: string;
  parseRouteNs: number;
  parseRouteBytes: number;
  sessionNs: number;
  sessionBytes: number;
  engineNs: number;
}

function runtimeLabel(): string {
  const v = process.versions as Record<string, string | undefined>;
  if (v.deno !== undefined) return `deno ${v.deno}`;
  if (v.bun !== undefined) return `bun ${v.bun}`;
  return `node ${process.version.slice(1)}`;
}

/** Measure every case on this runtime. */
async function measureHere(): Promise<Row[]> {
  const gc = findGc();
  const { conf, pool } = benchPool();
  const rows: Row[] = [];
  for (const c of cases()) {
    const parseRoute = parseRouteBatch(c, pool);
    const session = sessionBatch(c, conf, pool);
    rows.push({
      runtime: runtimeLabel(),
      command: c.name,
      parseRouteNs: nsPerIter(parseRoute),
      parseRouteBytes: bytesPerIter(parseRoute, gc),
      sessionNs: nsPerIter(session),
      sessionBytes: bytesPerIter(session, gc),
      engineNs: await engineNsPerRequest(c),
    });
  }
  if (sinkValue() === 0.5) console.log(""); // keeps the work observable
  return rows;
}

/** How to run this file as a child on each runtime (JSON output). */
const CHILDREN: Record<string, () => [string, string[]]> = {
  node: () => [process.execPath, ["--import", "tsx", "bench/parse.ts", "--json"]],
  deno: () => [realpathSync(join(ROOT, "node_modules/.bin/deno")), ["run", "-A", "--v8-flags=--expose-gc", "bench/parse.ts", "--json"]],
  bun: () => [realpathSync(join(ROOT, "node_modules/.bin/bun")), ["run", "bench/parse.ts", "--json"]],
};

/** Run this file on another runtime and read its JSON rows; killed by PID after 5 minutes. */
function measureOn(runtime: string): Promise<Row[]> {
  const [cmd, args] = CHILDREN[runtime]();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, "SIGKILL"), 300000);
    const stopChild = () => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, "SIGKILL");
    process.once("exit", stopChild);
    child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      process.off("exit", stopChild);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line) as Row[]);
      } catch {
        reject(new Error(`${runtime} exited with ${code}: ${out.slice(-500)}`));
      }
    });
  });
}

function render(rows: Row[]): string {
  const body = rows.map((r) => [
    r.runtime, r.command,
    fixed(r.parseRouteNs, 0), bytesCell(r.parseRouteBytes),
    fixed(r.sessionNs, 0), bytesCell(r.sessionBytes),
    int(r.engineNs),
  ]);
  const head = ["runtime", "command", "parse→route ns", "B/cmd", "session ns", "B/cmd", "engine (in-memory) ns"];
  return [
    "## Parser micro-benchmark", "",
    machineHeader([
      "parse→route: parseRequest + lookupCommand + checkArity + Pool.serverIndexFor (fnv1a_64, ketama, 2 servers) per key.",
      "session: RedisSession.handle on a stub host (adds Req objects and MGET fragments). engine: startProxy on the " +
        "in-memory Net of the tests, 50 clients x 1 request per round, canned backends (includes the in-memory Net's copies).",
      "B/cmd: V8 heapUsed growth per command between full GCs, minus an empty loop; n/a without gc() " +
        "(Bun; Deno unless run with --v8-flags=--expose-gc, as --all does).",
    ]),
    "", table(head, body),
  ].join("\n");
}

function bytesCell(x: number): string {
  return Number.isFinite(x) ? x.toFixed(0) : "n/a";
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--json")) {
    console.log(JSON.stringify(await measureHere()));
    return;
  }
  if (!argv.includes("--all")) {
    console.log(render(await measureHere()));
    return;
  }
  const rows: Row[] = [];
  for (const runtime of ["node", "deno", "bun"]) {
    process.stderr.write(`measuring on ${runtime}...\n`);
    rows.push(...await measureOn(runtime));
  }
  console.log(render(rows));
}

main().catch((err) => {
  process.stderr.write(`bench:parse failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
