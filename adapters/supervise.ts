/**
 * The command line under `--workers N|auto`: the supervisor (the process the CLI started;
 * the pid file and -d are its) and the worker processes it starts. See core/workers/ for
 * what each does and adapters/workers.ts for how workers are started and share addresses.
 *
 * Signals at the supervisor: SIGINT/SIGTERM stop every worker gracefully and exit 0;
 * SIGUSR1 reloads every worker (not on Deno, where SIGUSR1 opens the inspector: use POST
 * /reload or --watch); SIGUSR2 restarts (a new generation, then the old one drains);
 * SIGHUP reopens every log file; SIGTTIN/SIGTTOU move every process's log level.
 * A worker ignores the signals a terminal sends the whole process group (SIGINT) and those
 * the supervisor passes on itself; a SIGTERM sent to one worker stops it (and the
 * supervisor starts another).
 */
import type { Conf } from "../core/conf/types.ts";
import { createLogger, LOG_LEVELS } from "../core/log.ts";
import type { Logger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import type { Addr, Net } from "../core/net.ts";
import { type ConfText, Supervisor } from "../core/workers/supervisor.ts";
import { startSupervisorView, type SupervisorView } from "../core/workers/view.ts";
import { startWorker, type Worker } from "../core/workers/worker.ts";
import type { Flags } from "./flags.ts";
import { openLogOrReport, reason, SIGNAL_NUMBERS } from "./host.ts";
import type { Host, HostSignal, LogOutput } from "./host.ts";
import { removeStaleSocket } from "./common.ts";
import { cpuCount, workerChannel, workerIdentity, workerSpawner } from "./workers.ts";

/** What the CLI (mod.ts) hands over: reading the files its flags name, and what to report. */
export interface CliParts {
  /** Read and validate the config file: its text and parsed form; throws with the message to print. */
  readConf(file: string): { text: string; conf: Conf };
  /** The --admin-token file's token; throws with the message to print. */
  readAdminToken(file: string): string;
  /** The --admin address, or an error message. */
  adminAddr(text: string): { ok: true; addr: Addr } | { ok: false; error: string };
  readonly version: string;
  readonly nutcrackerVersion: string;
  /** ms in-flight requests get on SIGINT/SIGTERM. */
  readonly graceMs: number;
  /** The startup line, e.g. "nutcracker-0.5.0 (twemproxy-ts 0.1.0, node)". */
  readonly banner: string;
  /** Logged at startup on Deno (never send SIGUSR1). */
  readonly denoWarning: string;
  logPools(conf: Conf, log: Logger): void;
}

/** True in a process started by a supervisor as one of its workers. */
export function isWorkerProcess(): boolean {
  return workerIdentity() !== null;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The supervisor: start the workers, serve the stats port and admin API, until SIGINT/SIGTERM. */
export async function runSupervisor(flags: Flags, host: Host, net: Net, cli: CliParts): Promise<number> {
  const output = openLogOrReport(flags.output, host);
  if (output === null) return 1;
  const log = createLogger(output.write, flags.verbose);
  let sup: Supervisor | null = null;
  const stopRequested = supervisorSignals(flags, host, net.runtime, log, output, () => sup, cli);
  let stopWatching: (() => void) | null = null;
  const fail = (msg: string): number => {
    stopWatching?.();
    log.log(LOG_LEVELS.EMERG, msg);
    host.reportReady(false, msg);
    host.clearSignals();
    output.close();
    return 1;
  };
  if (flags.watch) stopWatching = host.watchFile(flags.confFile, () => trigger(sup, log, "configuration file changed", "reload"));
  const readConf = (): ConfText & { conf: Conf } => ({ ...cli.readConf(flags.confFile), file: flags.confFile });
  let first: ConfText & { conf: Conf };
  try {
    first = readConf();
  } catch (err) {
    return fail(errorText(err));
  }
  const count = flags.workers === "auto" ? cpuCount() : flags.workers ?? 1;
  const sharing = net.runtime === "deno" ? "SO_REUSEPORT" : "node:cluster";
  log.notice(`${cli.banner} started on pid ${host.pid}: supervisor of ${count} worker${count === 1 ? "" : "s"} (listen addresses shared through ${sharing})`);
  const admin = flags.admin === null ? null : cli.adminAddr(flags.admin);
  if (admin !== null && !admin.ok) return fail(`invalid --admin address '${flags.admin}': ${admin.error}`);
  let adminToken: string | null = null;
  try {
    adminToken = flags.adminToken === null ? null : cli.readAdminToken(flags.adminToken);
  } catch (err) {
    return fail(errorText(err));
  }
  if (adminToken !== null && admin === null) log.warn("--admin-token has no effect without --admin");
  // Under node:cluster the supervisor binds a unix socket for its workers: clear a stale file first.
  if (net.runtime !== "deno") {
    for (const pool of first.conf.pools) if (pool.listen.kind === "unix") removeStaleSocket(pool.listen.path);
  }
  const supervisor = new Supervisor({ text: first.text, file: first.file }, {
    count, drainTimeoutMs: flags.drainTimeout, graceMs: cli.graceMs, histograms: admin !== null,
  }, { spawn: workerSpawner(net.runtime), clock: systemClock, log, readConf });
  try {
    await supervisor.start();
  } catch (err) {
    return fail(`failed to start the proxy: ${errorText(err)}`);
  }
  sup = supervisor;
  let view: SupervisorView;
  try {
    view = await startSupervisorView(supervisor, {
      statsAddr: { kind: "tcp", host: flags.statsAddr, port: flags.statsPort },
      statsIntervalMs: flags.statsInterval,
      adminAddr: admin === null ? null : admin.addr,
      adminToken,
      version: cli.nutcrackerVersion,
      source: host.hostname,
    }, { net, clock: systemClock, log });
  } catch (err) {
    await supervisor.stop();
    return fail(`failed to listen on the stats port ${flags.statsAddr}:${flags.statsPort}: ${reason(err)}`);
  }
  if (flags.pidFile !== null) {
    try {
      host.writePidFile(flags.pidFile, host.pid);
    } catch (err) {
      await view.close();
      await supervisor.stop();
      return fail(`opening pid file '${flags.pidFile}' failed: ${reason(err)}`);
    }
  }
  cli.logPools(first.conf, log);
  log.notice(`workers ready: pids ${supervisor.workers().map((w) => w.pid).join(", ")}`);
  host.reportReady(true, String(host.pid));
  await stopRequested;
  stopWatching?.();
  await view.close();
  await supervisor.stop();
  if (flags.pidFile !== null) {
    const failed = host.removeFile(flags.pidFile);
    if (failed !== null) log.error(`removing pid file '${flags.pidFile}' failed, ignored: ${failed}`);
  }
  host.clearSignals();
  log.notice("stopped");
  output.close();
  return 0;
}

/** Reload or restart on a signal or --watch; before the workers are up there is nothing to do yet. */
function trigger(sup: Supervisor | null, log: Logger, why: string, what: "reload" | "restart"): void {
  if (sup === null) return log.warn(`${why} while starting: ignored`);
  log.notice(`${why}: ${what === "reload" ? "reloading the configuration in every worker" : "restarting the workers"}`);
  if (what === "reload") void sup.reload().catch((err) => log.error(`reload failed: ${errorText(err)}`));
  else void sup.restart().catch((err) => log.error(`restart failed, the running workers keep serving: ${errorText(err)}`));
}

function supervisorSignals(
  flags: Flags,
  host: Host,
  runtime: string,
  log: Logger,
  output: LogOutput,
  sup: () => Supervisor | null,
  cli: CliParts,
): Promise<HostSignal> {
  const name = (signal: HostSignal) => `signal ${SIGNAL_NUMBERS[signal]} (${signal}) received`;
  if (runtime === "deno") log.warn(cli.denoWarning);
  else host.onSignal("SIGUSR1", () => trigger(sup(), log, name("SIGUSR1"), "reload"));
  host.onSignal("SIGUSR2", () => trigger(sup(), log, name("SIGUSR2"), "restart"));
  host.onSignal("SIGHUP", () => {
    log.notice(`${name("SIGHUP")}, reopening log files`);
    const failed = output.reopen();
    if (failed !== null) log.error(`reopening log file '${flags.output}' failed, ignored: ${failed}`);
    sup()?.forward({ t: "log-reopen" });
  });
  const level = (delta: number) => {
    log.level = log.level + delta;
    log.log(LOG_LEVELS.EMERG, `log level ${delta > 0 ? "raised" : "lowered"} to ${log.level}`);
    sup()?.forward({ t: "log-level", delta });
  };
  host.onSignal("SIGTTIN", () => level(1));
  host.onSignal("SIGTTOU", () => level(-1));
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: HostSignal) => {
      if (stopping) return;
      stopping = true;
      log.notice(`${name(signal)}, stopping the workers and exiting`);
      resolve(signal);
    };
    host.onSignal("SIGINT", () => stop("SIGINT"));
    host.onSignal("SIGTERM", () => stop("SIGTERM"));
  });
}

/** A worker process: serve what the supervisor says until it stops or drains us. */
export async function runWorkerProcess(flags: Flags, host: Host, net: Net, cli: CliParts): Promise<number> {
  const id = workerIdentity()!;
  const channel = workerChannel();
  if (channel === null) {
    host.stderr("nutcracker: this process was started as a worker but has no channel to its supervisor");
    return 1;
  }
  let output: LogOutput;
  try {
    output = host.openLog(flags.output);
  } catch (err) {
    channel.send({ t: "failed", error: `opening log file '${flags.output}' failed: ${reason(err)}` });
    return 1;
  }
  const tag = `[worker ${id.slot} pid ${host.pid}] `;
  const log = createLogger((line) => {
    const at = line.indexOf("] ");
    output.write(at < 0 ? tag + line : line.slice(0, at + 2) + tag + line.slice(at + 2));
  }, flags.verbose);
  // Handlers first: an unhandled SIGUSR1 would start Node's inspector. (Signals arrive through the
  // event loop, so `worker` is set by the time a handler runs.)
  let worker: Worker | null = null;
  // The supervisor passes these on itself; a terminal's Ctrl-C reaches the whole group.
  const ignored: HostSignal[] = ["SIGINT", "SIGHUP", "SIGTTIN", "SIGTTOU", "SIGUSR2"];
  // Deno: no SIGUSR1 listener at all (it opens the inspector regardless, see mod.ts).
  if (net.runtime !== "deno") ignored.push("SIGUSR1");
  for (const signal of ignored) host.onSignal(signal, () => log.info(`signal ${signal} ignored: the supervisor handles it`));
  host.onSignal("SIGTERM", () => {
    log.notice("signal 15 (SIGTERM) received, exiting");
    void worker?.stop(cli.graceMs);
  });
  worker = startWorker({
    net, clock: systemClock, log, channel,
    version: cli.version, nutcrackerVersion: cli.nutcrackerVersion, source: host.hostname, pid: host.pid,
    histograms: flags.admin !== null,
    reopenLog: () => output.reopen(),
  });
  const code = await worker.done;
  host.clearSignals();
  output.close();
  return code;
}
