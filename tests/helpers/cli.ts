/**
 * Running the real CLI (mod.ts) as a child process on the runtime running the tests, with
 * every wait bounded and every process started here killed by PID at the end of a file
 * (killStarted in `after`).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import process from "node:process";
import { cliCommand, ROOT } from "./runtime.ts";
import { sleep } from "./ports.ts";

/** Every pid started (or adopted with track) and still alive. */
const started = new Set<number>();

export interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface Child {
  pid: number;
  /** Resolves when the process exits (or is killed after `timeoutMs`). */
  done: Promise<Result>;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

/** Start the CLI with `flags`; kill it if it runs longer than `timeoutMs`. */
export function startCli(flags: string[], timeoutMs = 60_000): Child {
  const [cmd, args] = cliCommand(...flags);
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid ?? -1;
  if (pid > 0) started.add(pid);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += String(d)));
  child.stderr?.on("data", (d) => (stderr += String(d)));
  const done = new Promise<Result>((resolve) => {
    const timer = setTimeout(() => kill(pid, "SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      started.delete(pid);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { pid, done, stderr: () => stderr };
}

/** Run the CLI to completion. */
export function runCli(flags: string[], timeoutMs = 60_000): Promise<Result> {
  return startCli(flags, timeoutMs).done;
}

/** Kill `pid` after the file's tests too (a daemon started by a test). */
export function track(pid: number): void {
  started.add(pid);
}

export function untrack(pid: number): void {
  started.delete(pid);
}

/** Send a signal; a process already gone is fine. */
export function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGKILL everything started here that is still alive. */
export function killStarted(): void {
  for (const pid of started) kill(pid, "SIGKILL");
}

/** Poll `check` every 25 ms until it is true; fail after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** A file's text, or "" while it does not exist. */
export const read = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");
