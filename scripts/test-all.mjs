#!/usr/bin/env node
// Runs the identical test suite (tests/**/*.test.ts) under Node, Deno and Bun, one runtime
// after the other, streaming their output, and ends with one line: "N passed, N failed".
//
//   node scripts/test-all.mjs [node|deno|bun ...] [-- file-filter ...]
//
// Counts are leaf tests (`it`s). A runtime that crashes, times out or exits non-zero
// without reporting a failure still counts as at least one failure.
// Bounds (ms, override by environment): TEST_TIMEOUT_MS per test (bun), TEST_FILE_TIMEOUT_MS
// per file (node applies --test-timeout to each file), TEST_RUNTIME_TIMEOUT_MS per runtime.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const BIN = join(ROOT, "node_modules", ".bin");
const RUNTIMES = ["node", "deno", "bun"];
const envMs = (name, dflt) => Number(process.env[name]) > 0 ? Number(process.env[name]) : dflt;
// 2 min: a store migration test moves 20,000 keys and copies 28 MB of big keys in one test.
const TEST_TIMEOUT = envMs("TEST_TIMEOUT_MS", 120_000);
const FILE_TIMEOUT = envMs("TEST_FILE_TIMEOUT_MS", 300_000);
// 15 min: real-process suites (replicas, Sentinel, Redis Cluster, workers) take 6-8 min a runtime alone on 2 cores.
const RUNTIME_TIMEOUT = envMs("TEST_RUNTIME_TIMEOUT_MS", 900_000);
const CONCURRENCY = envMs("TEST_CONCURRENCY", 2);
const TAIL_BYTES = 1 << 20;

/** Splits argv into runtime names and file filters (after `--`). */
function parseArgs(argv) {
  const dash = argv.indexOf("--");
  const names = dash < 0 ? argv : argv.slice(0, dash);
  const filters = dash < 0 ? [] : argv.slice(dash + 1);
  const unknown = names.filter((n) => !RUNTIMES.includes(n));
  if (unknown.length > 0) {
    console.error(`unknown runtime ${unknown.join(", ")}; usage: test-all.mjs [node|deno|bun ...] [-- filter ...]`);
    console.log("0 passed, 1 failed");
    process.exit(2);
  }
  return { runtimes: names.length > 0 ? RUNTIMES.filter((r) => names.includes(r)) : RUNTIMES, filters };
}

/** tests/**\/*.test.ts as sorted repo-relative paths. */
function findTests(dir = "tests") {
  const out = [];
  for (const name of readdirSync(join(ROOT, dir)).sort()) {
    const rel = `${dir}/${name}`;
    if (name === "node_modules" || name.startsWith(".")) continue;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...findTests(rel));
    else if (name.endsWith(".test.ts")) out.push(rel);
  }
  return out.sort();
}

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");

/** Last number captured by re (global, multiline) in text, or null. */
function lastCount(text, re) {
  let n = null;
  for (const m of text.matchAll(re)) n = Number(m[1]);
  return n;
}

/** Node spec reporter summary: "ℹ pass N", "ℹ fail N", "ℹ cancelled N" (timeouts, hook failures). */
function countNode(out) {
  const text = stripAnsi(out.stdout + "\n" + out.stderr);
  const pass = lastCount(text, /^ℹ pass (\d+)$/gm);
  if (pass === null) return null;
  const failed = (lastCount(text, /^ℹ fail (\d+)$/gm) ?? 0) + (lastCount(text, /^ℹ cancelled (\d+)$/gm) ?? 0);
  return { passed: pass, failed, names: failedLines(text, /^\s*✖ (.+?)(?: \([\d.]+m?s\))?$/gm) };
}

/** Distinct failing test names matched by re's first group, in order (a CI log keeps only its tail). */
function failedLines(text, re) {
  return [...new Set([...text.matchAll(re)].map((m) => m[1].trim()))].filter((n) => n !== "failing tests:");
}

/**
 * Bun summary: " N pass", " N fail", " N error(s)" (errors between tests, e.g. a failed hook).
 * A file that fails to load shows as one fail and one error; count it once.
 */
function countBun(out) {
  const text = stripAnsi(out.stderr + "\n" + out.stdout);
  const pass = lastCount(text, /^\s*(\d+) pass$/gm);
  if (pass === null) return null;
  const fail = lastCount(text, /^\s*(\d+) fail$/gm) ?? 0;
  const errors = lastCount(text, /^\s*(\d+) errors?$/gm) ?? 0;
  const sections = text.split(/^\S[^\n]*\.test\.ts:$/m).slice(1);
  const loadFailures = sections.filter((s) =>
    s.includes("# Unhandled error between tests") && !/^\((pass|fail|skip|todo)\)/m.test(s)
  ).length;
  const failed = fail + errors > 0 ? Math.max(1, fail + errors - Math.min(loadFailures, fail, errors)) : 0;
  return { passed: pass, failed, names: failedLines(text, /^\(fail\) (.+?)(?: \[[\d.]+m?s\])?$/gm) };
}

const xmlText = (s) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");

/**
 * Deno JUnit: `describe` is a testcase "group", each `it` a testcase "group > name". Leaves are
 * the testcases no other testcase nests under. A parent that failed while all its children
 * passed (an after hook threw) adds one failure.
 */
function countDeno(junitPath) {
  if (!existsSync(junitPath)) return null;
  const xml = readFileSync(junitPath, "utf8");
  const cases = [];
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const name = xmlText(/\bname="([^"]*)"/.exec(m[1])?.[1] ?? "");
    const body = m[3] ?? "";
    cases.push({ name, failed: /<(failure|error)\b/.test(body), skipped: /<skipped\b/.test(body) });
  }
  let passed = 0;
  const names = [];
  for (const c of cases) {
    const children = cases.filter((k) => k.name.startsWith(`${c.name} > `));
    if (children.length === 0) {
      if (c.skipped) continue;
      if (c.failed) names.push(c.name);
      else passed++;
    } else if (c.failed && !children.some((k) => k.failed)) names.push(c.name);
  }
  return { passed, failed: names.length, names };
}

/** Kills a process group we created, ignoring "no such process". */
function killGroup(pgid, sig) {
  try {
    process.kill(-pgid, sig);
  } catch {
    // group already gone
  }
}

/** Non-zombie processes still in the group (Linux /proc), as "pid comm". */
function groupMembers(pgid) {
  const found = [];
  let pids = [];
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return found;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const [state, , pgrp] = stat.slice(close + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") found.push(`${pid} ${stat.slice(stat.indexOf("(") + 1, close)}`);
    } catch {
      // process ended while we looked
    }
  }
  return found;
}

let current = null; // the running runtime's pid, for Ctrl-C
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (current !== null) killGroup(current, "SIGKILL");
    process.exit(130);
  });
}

/** Runs one command in its own process group, tees its output, bounds its run time. */
function run(cmd, args) {
  return new Promise((resolve) => {
    const out = { stdout: "", stderr: "", code: null, signal: null, timedOut: false, error: null };
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true });
    current = child.pid ?? null;
    const tee = (stream, dest, key) => {
      const decoder = new TextDecoder(); // streaming: a chunk may end inside "ℹ"
      stream.on("data", (chunk) => {
        dest.write(chunk);
        out[key] = (out[key] + decoder.decode(chunk, { stream: true })).slice(-TAIL_BYTES);
      });
    };
    tee(child.stdout, process.stdout, "stdout");
    tee(child.stderr, process.stderr, "stderr");
    const bound = setTimeout(() => {
      out.timedOut = true;
      console.error(`\n!! ${cmd} exceeded ${RUNTIME_TIMEOUT} ms; killing it`);
      killGroup(child.pid, "SIGTERM");
      setTimeout(() => killGroup(child.pid, "SIGKILL"), 5000);
    }, RUNTIME_TIMEOUT);
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(bound);
      current = null;
      // Anything left in the group was leaked by a test: report it, then kill it.
      setTimeout(() => {
        const left = child.pid ? groupMembers(child.pid) : [];
        if (left.length > 0) console.error(`!! processes left running by the tests (killed): ${left.join(", ")}`);
        if (child.pid) killGroup(child.pid, "SIGKILL");
        resolve(out);
      }, 300);
    };
    child.on("error", (err) => {
      out.error = err;
      finish();
    });
    child.on("exit", (code, signal) => {
      out.code = code;
      out.signal = signal;
      // Give the pipes a moment to drain; a leaked grandchild may hold them open forever.
      const drain = setTimeout(finish, 2000);
      child.on("close", () => {
        clearTimeout(drain);
        finish();
      });
    });
  });
}

/** Node's --test-force-exit (from 20.14 on) ends a file left with open handles; older Nodes lack it. */
function forceExitFlag() {
  const [major, minor] = process.versions.node.split(".").map(Number);
  return major > 20 || (major === 20 && minor >= 14) ? ["--test-force-exit"] : [];
}

/** The command line and counter for each runtime. */
function plan(runtime, files, junitPath) {
  if (runtime === "node") {
    const args = ["--import", "tsx", "--test", "--test-reporter=spec", `--test-concurrency=${CONCURRENCY}`,
      `--test-timeout=${FILE_TIMEOUT}`, ...forceExitFlag(), ...files];
    return { cmd: process.execPath, args, count: countNode };
  }
  if (runtime === "deno") {
    const args = ["test", "-A", `--junit-path=${junitPath}`, ...files];
    return { cmd: join(BIN, "deno"), args, count: () => countDeno(junitPath) };
  }
  const args = ["test", "--timeout", String(TEST_TIMEOUT), ...files.map((f) => `./${f}`)];
  return { cmd: join(BIN, "bun"), args, count: countBun };
}

async function runRuntime(runtime, files) {
  const tmp = mkdtempSync(join(tmpdir(), "test-all-"));
  try {
    const p = plan(runtime, files, join(tmp, "deno-junit.xml"));
    console.log(`\n=== ${runtime}: ${files.length} test files ===\n`);
    if (!existsSync(p.cmd)) return { passed: 0, failed: 1, note: `${p.cmd} not found` };
    const out = await run(p.cmd, p.args);
    const counted = out.error ? null : p.count(out);
    const result = counted ?? { passed: 0, failed: 0 };
    const notes = [];
    if (out.error) notes.push(`could not start: ${out.error.message}`);
    if (out.timedOut) notes.push(`killed after ${RUNTIME_TIMEOUT} ms`);
    else if (out.signal) notes.push(`killed by ${out.signal}`);
    else if (out.code !== 0 && !out.error) notes.push(`exit code ${out.code}`);
    if (counted === null && !out.error) notes.push("no test summary found");
    const broken = out.error || out.timedOut || out.code !== 0 || counted === null;
    if (broken && result.failed === 0) result.failed = 1; // never report a broken run as clean
    return { ...result, note: notes.join("; ") };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main() {
  const { runtimes, filters } = parseArgs(process.argv.slice(2));
  const all = findTests();
  const files = filters.length === 0 ? all : all.filter((f) => filters.some((q) => f.includes(q)));
  const results = [];
  if (files.length === 0) {
    console.error(`no test files match ${filters.length > 0 ? filters.join(" ") : "tests/**/*.test.ts"}`);
    results.push({ runtime: "all", passed: 0, failed: 1, note: "no test files" });
  }
  for (const runtime of files.length > 0 ? runtimes : []) {
    results.push({ runtime, ...(await runRuntime(runtime, files)) });
  }
  const line = (r) => `${r.runtime}: ${r.passed} passed, ${r.failed} failed${r.note ? ` (${r.note})` : ""}`;
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  for (const r of results) {
    for (const name of r.names ?? []) console.log(`failed on ${r.runtime}: ${name}`);
  }
  console.log(`\n${results.map(line).join(" | ")}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  console.log("0 passed, 1 failed");
  process.exit(1);
});
