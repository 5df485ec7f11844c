/**
 * The process around the proxy: arguments, files (config, pid file, log file, watching the
 * config for changes), signals, exit, and running in the background. Built only on node: modules that Node, Deno and
 * Bun all provide, so one file serves the three runtimes. The core never sees this.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The signals the CLI handles. */
export type HostSignal = "SIGHUP" | "SIGINT" | "SIGTERM" | "SIGTTIN" | "SIGTTOU" | "SIGUSR1" | "SIGUSR2";

/** Signal numbers on Linux, for log lines ("signal 15 (SIGTERM) received"). */
export const SIGNAL_NUMBERS: Readonly<Record<HostSignal, number>> = {
  SIGHUP: 1, SIGINT: 2, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15, SIGTTIN: 21, SIGTTOU: 22,
};

/** How often watchFile looks at the file (ms). */
export const WATCH_INTERVAL_MS = 500;

/** Where log lines go: stderr, or a file that SIGHUP reopens (after logrotate moved it). */
export interface LogOutput {
  write(line: string): void;
  /** Reopen the file by name; returns an error message, or null when done (or nothing to do). */
  reopen(): string | null;
  close(): void;
}

/** The process-level operations main() needs. */
export interface Host {
  readonly pid: number;
  /** This machine's name, reported as the stats `source`. */
  readonly hostname: string;
  /** Arguments after the program (and script) name. */
  argv(): string[];
  /** Read a text file; throws an Error whose message is the reason (e.g. "No such file or directory"). */
  readText(file: string): string;
  writePidFile(file: string, pid: number): void;
  /** Remove a file; returns an error reason, or null. */
  removeFile(file: string): string | null;
  /** Write one line (a newline is added) to stderr, synchronously. */
  stderr(line: string): void;
  /** Open the log: a file opened for append, or stderr when `file` is null. Throws with the reason. */
  openLog(file: string | null): LogOutput;
  onSignal(signal: HostSignal, handler: () => void): void;
  /**
   * Call `onChange` when the file's mtime, size or inode changed and then stayed the same
   * for one more look (a debounce: an editor's several writes give one call). Looks every
   * `intervalMs`; a missing file is waited for, not reported. Returns the stop function.
   */
  watchFile(file: string, onChange: () => void, intervalMs?: number): () => void;
  /** Remove every handler installed with onSignal. */
  clearSignals(): void;
  exit(code: number): never;
  /** In a daemon child: tell the waiting parent we are up (ok) or why we failed. No-op otherwise. */
  reportReady(ok: boolean, message: string): void;
  /** True in the background copy started by daemonize(). */
  isDaemonChild(): boolean;
  /**
   * Start this same command again in the background and wait until it reports ready.
   * `runtime` ("node", "deno", "bun") picks how to re-launch. Returns the exit code
   * for the foreground process: 0 once the child is up, 1 with its error printed.
   */
  daemonize(runtime: string, timeoutMs?: number): Promise<number>;
}

/** The child finds its status file through this variable; its presence marks the daemon child. */
const STATUS_ENV = "NUTCRACKER_DAEMON_STATUS";

/** strerror-like text from a Node-style error ("ENOENT: no such file ..." -> "no such file ..."). */
/**
 * Open the log (-o) as nutcracker does at start; on failure print why, tell a waiting
 * -d parent, and return null (the caller exits 1).
 */
export function openLogOrReport(file: string | null, host: Host): LogOutput | null {
  try {
    return host.openLog(file);
  } catch (err) {
    const msg = `nutcracker: opening log file '${file}' failed: ${reason(err)}`;
    host.stderr(msg);
    host.reportReady(false, msg);
    return null;
  }
}

export function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const text = String(e?.message ?? err);
  const noCode = e?.code && text.startsWith(`${e.code}: `) ? text.slice(e.code.length + 2) : text;
  return noCode.split(", ")[0];
}

function writeAll(fd: number, text: string): void {
  try {
    fs.writeSync(fd, text);
  } catch {
    // A closed stderr or a full disk must not take the proxy down with it.
  }
}

function stderrOutput(): LogOutput {
  return { write: (line) => writeAll(2, `${line}\n`), reopen: () => null, close: () => {} };
}

function fileOutput(file: string): LogOutput {
  let fd = fs.openSync(file, "a", 0o644);
  return {
    write: (line) => writeAll(fd, `${line}\n`),
    reopen: () => {
      try {
        const next = fs.openSync(file, "a", 0o644);
        fs.closeSync(fd);
        fd = next;
        return null;
      } catch (err) {
        return reason(err);
      }
    },
    close: () => fs.closeSync(fd),
  };
}

/** What watchFile compares: "mtime:size:inode", or null when the file cannot be read. */
function fileSignature(file: string): string | null {
  try {
    const st = fs.statSync(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch {
    return null;
  }
}

function watchFile(file: string, onChange: () => void, intervalMs: number): () => void {
  let seen = fileSignature(file);
  let pending: string | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const look = () => {
    const now = fileSignature(file);
    if (now === null || now === seen) {
      pending = null;
    } else if (now !== pending) {
      pending = now;
    } else {
      seen = now;
      pending = null;
      onChange();
    }
    if (timer !== null) timer = setTimeout(look, intervalMs);
  };
  timer = setTimeout(look, intervalMs);
  return () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
}

/** How to start this program again, for each runtime, with `args` after the script. */
function relaunchCommand(runtime: string, args: string[]): string[] {
  const exec = process.execPath;
  const script = process.argv[1] ?? "";
  // A `bun build --compile` binary carries its script inside; it takes the arguments directly.
  if (runtime === "bun" && (script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/"))) return [exec, ...args];
  if (runtime === "bun") return [exec, "run", script, ...args];
  if (runtime === "deno") return [exec, "run", "-A", script, ...args];
  // Node: execArgv keeps loaders such as `--import tsx`.
  return [exec, ...process.execArgv, script, ...args];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Read "ok ..." / "error ..." from the status file once the child has written it whole. */
function readStatus(file: string): { ok: boolean; message: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
  if (!text.endsWith("\n")) return null;
  const [word, ...rest] = text.trimEnd().split(" ");
  return { ok: word === "ok", message: rest.join(" ") };
}

async function daemonize(host: Host, runtime: string, timeoutMs: number): Promise<number> {
  const statusFile = path.join(os.tmpdir(), `nutcracker-${process.pid}-${Date.now()}.status`);
  const [cmd, ...args] = relaunchCommand(runtime, host.argv());
  const child = spawn(cmd, args, {
    detached: true,
    stdio: "ignore",
    env: { ...process.env, [STATUS_ENV]: statusFile },
  });
  let exited: string | null = null;
  child.on("exit", (code, signal) => (exited = signal ? `signal ${signal}` : `exit code ${code}`));
  child.on("error", (err) => (exited = reason(err)));
  const deadline = Date.now() + timeoutMs;
  let status = readStatus(statusFile);
  while (status === null && exited === null && Date.now() < deadline) {
    await sleep(25);
    status = readStatus(statusFile);
  }
  host.removeFile(statusFile);
  if (status?.ok) {
    child.unref();
    return 0;
  }
  if (status === null && exited === null && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  const why = status?.message ?? (exited ? `the background process ended (${exited})` : `no answer in ${timeoutMs} ms`);
  host.stderr(`nutcracker: failed to start in the background: ${why}`);
  return 1;
}

/** The Host of the running process. */
export function createHost(): Host {
  const handlers: Array<[HostSignal, () => void]> = [];
  const host: Host = {
    pid: process.pid,
    hostname: os.hostname(),
    argv: () => process.argv.slice(2),
    readText: (file) => {
      try {
        return fs.readFileSync(file, "utf8");
      } catch (err) {
        throw new Error(reason(err));
      }
    },
    writePidFile: (file, pid) => fs.writeFileSync(file, String(pid), { mode: 0o644 }),
    removeFile: (file) => {
      try {
        fs.unlinkSync(file);
        return null;
      } catch (err) {
        return reason(err);
      }
    },
    stderr: (line) => writeAll(2, `${line}\n`),
    openLog: (file) => (file === null ? stderrOutput() : fileOutput(file)),
    onSignal: (signal, handler) => {
      handlers.push([signal, handler]);
      process.on(signal, handler);
    },
    watchFile: (file, onChange, intervalMs = WATCH_INTERVAL_MS) => watchFile(file, onChange, intervalMs),
    clearSignals: () => {
      for (const [signal, handler] of handlers.splice(0)) process.off(signal, handler);
    },
    exit: (code) => process.exit(code),
    isDaemonChild: () => typeof process.env[STATUS_ENV] === "string",
    reportReady: (ok, message) => {
      const file = process.env[STATUS_ENV];
      if (!file) return;
      // Write then rename, so the parent never reads half a line.
      fs.writeFileSync(`${file}.tmp`, `${ok ? "ok" : "error"} ${message}\n`);
      fs.renameSync(`${file}.tmp`, file);
    },
    daemonize: (runtime, timeoutMs = 15000) => daemonize(host, runtime, timeoutMs),
  };
  return host;
}

/**
 * Whether the module with this `import.meta` is the program's entry point. Deno, Bun
 * (also `bun build --compile`) and newer Node set import.meta.main; Node 20 does not,
 * so compare the module's file with the script path Node was started with.
 * @example if (isMainModule(import.meta)) run();
 */
export function isMainModule(meta: ImportMeta): boolean {
  const main = (meta as { main?: unknown }).main;
  if (typeof main === "boolean") return main;
  const script = process.argv[1];
  if (!script) return false;
  try {
    return fs.realpathSync(path.resolve(script)) === fs.realpathSync(fileURLToPath(meta.url));
  } catch {
    return false;
  }
}
