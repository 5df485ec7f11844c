/**
 * The real CLI under `--workers N` for tests: start a supervisor with a one-pool config, read
 * its /workers, stats port and /metrics, ask which worker answered (INFO's process_id), and
 * kill by PID every worker seen (the supervisor itself is killed by cli.ts killStarted).
 * node:fs, node:net and fetch only, so Node, Deno and Bun all run it.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { type Child, kill, read, startCli, waitUntil } from "./cli.ts";
import { freePort } from "./ports.ts";
import { bulkText, RespClient } from "./resp.ts";
import { parseExposition } from "./prometheus.ts";

/** A supervisor started by startSupervised. */
export interface Supervised {
  readonly child: Child;
  /** The supervisor's pid (the pid file's content). */
  readonly pid: number;
  readonly port: number;
  readonly statsPort: number;
  /** "http://127.0.0.1:PORT" of the admin API. */
  readonly admin: string;
  readonly conf: string;
  readonly log: string;
  readonly pidFile: string;
}

/** One entry of GET /workers. */
export interface WorkerEntry {
  readonly slot: number;
  readonly generation: number;
  readonly pid: number;
  readonly state: string;
}

export interface WorkersView {
  readonly generation: number;
  readonly workers: readonly WorkerEntry[];
  readonly replaced: number;
  readonly restarts: number;
}

/** Every worker pid a test saw, killed by killWorkers. */
const seen = new Set<number>();

/** The config of one redis pool on `port` in front of `backend`, plus extra pool keys. */
export function poolConf(port: number, backend: number, extra = ""): string {
  return `alpha:\n  listen: 127.0.0.1:${port}\n  redis: true\n${extra}  servers:\n   - 127.0.0.1:${backend}:1\n`;
}

/**
 * Start `--workers 2` (or what `flags` say) with a log file, a pid file, a stats port
 * (interval 100 ms) and the admin API; resolves once the pid file is written (every
 * worker listens then).
 */
export async function startSupervised(dir: string, tag: string, backend: number, flags: string[] = []): Promise<Supervised> {
  const port = await freePort();
  const statsPort = await freePort();
  const adminPort = await freePort();
  const conf = path.join(dir, `${tag}.yml`);
  const log = path.join(dir, `${tag}.log`);
  const pidFile = path.join(dir, `${tag}.pid`);
  fs.writeFileSync(conf, poolConf(port, backend));
  const child = startCli(["-c", conf, "-o", log, "-p", pidFile, "-s", String(statsPort), "-i", "100",
    "--admin", `127.0.0.1:${adminPort}`, ...(flags.includes("--workers") ? [] : ["--workers", "2"]), ...flags], 120_000);
  await waitUntil(() => read(pidFile) !== "", `the pid file (log: ${read(log)})`, 60_000);
  const sup = { child, pid: Number(read(pidFile)), port, statsPort, admin: `http://127.0.0.1:${adminPort}`, conf, log, pidFile };
  await workers(sup);
  return sup;
}

/** GET /workers; every pid in it is remembered for killWorkers. */
export async function workers(sup: { admin: string }): Promise<WorkersView> {
  const view = await (await fetch(`${sup.admin}/workers`)).json() as WorkersView;
  for (const w of view.workers) seen.add(w.pid);
  return view;
}

/** SIGKILL every worker pid seen (after a file's tests; they exit with their supervisor anyway). */
export function killWorkers(): void {
  for (const pid of seen) kill(pid, "SIGKILL");
  seen.clear();
}

/** The pid of the worker that serves a new connection (INFO's process_id). */
export async function servingPid(port: number): Promise<number> {
  const client = await RespClient.connect(port);
  try {
    const text = bulkText(await client.call(["INFO", "server"])) ?? "";
    const match = /process_id:(\d+)/.exec(text);
    if (match === null) throw new Error(`no process_id in INFO: ${text}`);
    return Number(match[1]);
  } finally {
    client.close();
  }
}

/** The pid of the worker that serves a new connection to a unix socket (INFO's process_id). */
export function servingPidAt(socketPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    let text = "";
    socket.setTimeout(10_000, () => socket.destroy(new Error("INFO timed out")));
    socket.on("connect", () => socket.write("INFO server\r\n"));
    socket.on("data", (chunk) => {
      text += String(chunk);
      const match = /process_id:(\d+)\r\n/.exec(text);
      if (match === null) return;
      socket.destroy();
      resolve(Number(match[1]));
    });
    socket.on("error", reject);
  });
}

/** The stats port's JSON. */
export function statsJson(port: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    socket.setEncoding("utf8");
    socket.setTimeout(10_000, () => socket.destroy(new Error("stats port timed out")));
    socket.on("data", (chunk) => text += chunk);
    socket.on("end", () => {
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(err);
      }
    });
    socket.on("error", reject);
  });
}

/** A server's values in the stats JSON: `json.alpha["127.0.0.1:6379"]`. */
export function serverStats(json: Record<string, unknown>, pool: string, server: string): Record<string, number> {
  return (json[pool] as Record<string, Record<string, number>>)[server];
}

/** /metrics, parsed strictly (tests/helpers/prometheus.ts): family name -> samples. */
export async function metrics(admin: string) {
  return parseExposition(await (await fetch(`${admin}/metrics`)).text());
}

/** The one sample named `name` (a histogram's `_count` too) whose labels include `labels`. */
export function sampleValue(families: Awaited<ReturnType<typeof metrics>>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ""));
  const samples = family?.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels.get(k) === v)) ?? [];
  if (samples.length !== 1) throw new Error(`${samples.length} samples of ${name} ${JSON.stringify(labels)}`);
  return samples[0].value;
}
