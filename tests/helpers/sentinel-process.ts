/**
 * One Redis Sentinel process for tests: `redis-server <dir>/sentinel.conf --sentinel` (the conf
 * in its own directory, since Sentinel rewrites it) on a free loopback port, ready once this
 * very process answers INFO (with AUTH when it needs a password), stopped by PID, restarted
 * from its rewritten conf. Every Sentinel started here is killed when the test process exits.
 * The same pattern as servers.ts, which cannot start one: Sentinel needs its config file as the
 * first argument. node:child_process and node:fs only.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { freePort, sleep } from "./ports.ts";
import { type Launched, type Signal, spawnTracked, terminate, trySignal } from "./servers.ts";
import { RespClient } from "./resp.ts";
import { waitFor } from "./soak.ts";

const decoder = new TextDecoder();

/** One Sentinel process. */
export interface SentinelProcess {
  readonly port: number;
  /** PID of the current process (changes after restart()). */
  readonly pid: number;
  readonly running: boolean;
  /** The config file Sentinel reads and rewrites. */
  readonly confPath: string;
  /** SIGTERM (SIGKILL after a bound) and wait for the exit. Safe to call twice. */
  stop(): Promise<void>;
  kill(sig: Signal): void;
  /** Start again on the same port from its (rewritten) config file. */
  restart(): Promise<void>;
}

function spawnSentinel(confPath: string): Launched {
  return spawnTracked("redis-server", [confPath, "--sentinel"]);
}

/** Until this very process (by PID) answers INFO on `port`; false when it exits or after ms. */
async function answers(port: number, run: Launched, password: string | null, ms: number): Promise<boolean> {
  return await waitFor(async () => {
    if (run.exited) return true;
    const client = await RespClient.connect(port, 500).catch(() => null);
    if (client === null) return false;
    try {
      if (password !== null) await client.call(["AUTH", password], 500);
      const info = await client.call(["INFO", "server"], 500);
      return info.type === "bulk" && info.value !== null && decoder.decode(info.value).includes(`process_id:${run.pid}\r\n`);
    } catch {
      return false;
    } finally {
      client.close();
    }
  }, ms, 25) && !run.exited;
}

/** Writes `<dir>/sentinel.conf` (port, dir, then `conf`) and starts a Sentinel, retrying on another port. */
export async function startSentinelProcess(dir: string, conf: string, password: string | null): Promise<SentinelProcess> {
  const confPath = path.join(dir, "sentinel.conf");
  const errors: string[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    writeFileSync(confPath, `port ${port}\ndir ${dir}\n${conf}`);
    const first = spawnSentinel(confPath);
    if (await answers(port, first, password, 10000)) return sentinelProcess(port, confPath, first, password);
    await terminate(first).catch(() => {});
    errors.push(`port ${port}: ${first.output.trim().slice(-300) || "no answer"}`);
  }
  throw new Error(`redis-server --sentinel did not start:\n${errors.join("\n")}`);
}

function sentinelProcess(port: number, confPath: string, first: Launched, password: string | null): SentinelProcess {
  let run = first;
  return {
    port,
    confPath,
    get pid() {
      return run.pid;
    },
    get running() {
      return !run.exited;
    },
    stop: () => terminate(run),
    kill: (sig: Signal) => trySignal(run.pid, sig),
    async restart() {
      await terminate(run);
      for (let attempt = 0; attempt < 5; attempt++) {
        run = spawnSentinel(confPath);
        if (await answers(port, run, password, 10000)) return;
        await terminate(run).catch(() => {});
        await sleep(200);
      }
      throw new Error(`Sentinel on ${port} did not restart: ${run.output.trim().slice(-300)}`);
    },
  };
}
