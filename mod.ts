/**
 * The nutcracker command line and the package entry: `main(argv, host, net)` does
 * what `nutcracker [flags]` does and returns the exit code. Run directly with
 *   node --import tsx mod.ts | deno run -A mod.ts | bun run mod.ts   [-c conf/nutcracker.yml ...]
 */
import { ConfError, loadConf } from "./core/conf/mod.ts";
import type { Conf } from "./core/conf/mod.ts";
import { createLogger, LOG_LEVELS } from "./core/log.ts";
import type { Logger } from "./core/log.ts";
import { systemClock } from "./core/net.ts";
import type { Net } from "./core/net.ts";
import { startProxy } from "./core/proxy/mod.ts";
import type { Proxy } from "./core/proxy/mod.ts";
import { describeStats } from "./core/stats/fields.ts";
import { createMetrics, type Observability, startObservability, withTrigger } from "./core/admin/mod.ts";
import { createReloader } from "./core/reload/reloader.ts";
import type { Reloader } from "./core/reload/types.ts";
import { parseListen } from "./core/conf/mod.ts";
import { FLAG_DEFAULTS, parseFlags, usage } from "./adapters/flags.ts";
import type { Flags } from "./adapters/flags.ts";
import { createHost, isMainModule, openLogOrReport, reason, SIGNAL_NUMBERS } from "./adapters/host.ts";
import type { Host, HostSignal, LogOutput } from "./adapters/host.ts";
import { loadNet } from "./adapters/mod.ts";
import { type CliParts, isWorkerProcess, runSupervisor, runWorkerProcess } from "./adapters/supervise.ts";

/** The twemproxy release this is a drop-in for. */
export const NUTCRACKER_VERSION = "0.5.0";
/** This implementation's version. */
export const VERSION = "0.1.0";

export { ConfError, loadConf } from "./core/conf/mod.ts";
export type { Conf, PoolConf, ServerConf } from "./core/conf/mod.ts";
export { startProxy } from "./core/proxy/mod.ts";
export type { Proxy } from "./core/proxy/mod.ts";
export { createLogger } from "./core/log.ts";
export type { Logger } from "./core/log.ts";
export { parseFlags, usage } from "./adapters/flags.ts";
export type { Flags } from "./adapters/flags.ts";
export { createHost } from "./adapters/host.ts";
export type { Host } from "./adapters/host.ts";

/** How long in-flight requests may finish after SIGINT/SIGTERM before connections are cut. */
const SHUTDOWN_GRACE_MS = 5000;

/** Logged at startup on Deno, where SIGUSR1 cannot be used for reload (see handleSignals). */
export const DENO_SIGUSR1_WARNING = "never send SIGUSR1 to this process on Deno: it opens a V8 inspector on " +
  "127.0.0.1:9229; reload with POST /reload or --watch";

/**
 * Run nutcracker with `argv` (the arguments after the program name). Resolves with
 * the exit code: at once for -h/-V/-D/-t and errors, at shutdown (SIGINT/SIGTERM)
 * for a running proxy. With --workers this process is the supervisor, or one of its
 * workers when started by one (a worker's `net` must come from loadNet({ shared: true })).
 * @example process.exitCode = await main(["-t", "-c", "conf/demo.yml"], createHost(), await loadNet());
 */
export async function main(argv: string[], host: Host, net: Net): Promise<number> {
  const parsed = parseFlags(argv);
  if (!parsed.ok) {
    host.stderr(parsed.error);
    host.stderr(usage());
    return 1;
  }
  const flags = parsed.flags;
  if (flags.help || flags.version || flags.describeStats) {
    printInfo(flags, host, net);
    return 0;
  }
  if (flags.testConf) return testConf(flags.confFile, host);
  // A worker inherits the supervisor's arguments, -d included: it must not daemonize again.
  if (flags.workers !== null && isWorkerProcess()) return await runWorkerProcess(flags, host, net, cliParts(net, host));
  if (flags.daemonize && !host.isDaemonChild()) return await host.daemonize(net.runtime);
  if (flags.workers !== null) return await runSupervisor(flags, host, net, cliParts(net, host));
  if (flags.drainTimeout !== FLAG_DEFAULTS.drainTimeout) host.stderr("nutcracker: --drain-timeout has no effect without --workers");
  return await run(flags, host, net);
}

/** What the supervisor and workers (adapters/supervise.ts) take from the CLI. */
function cliParts(net: Net, host: Host): CliParts {
  return {
    readConf: (file) => {
      const text = readConfText(file, host);
      return { text, conf: loadConf(text, file) };
    },
    readAdminToken: (file) => readAdminToken(file, host),
    adminAddr: (text) => {
      const parsed = parseListen(text);
      return parsed.ok ? { ok: true, addr: parsed.value.addr } : { ok: false, error: parsed.phrase };
    },
    version: VERSION,
    nutcrackerVersion: NUTCRACKER_VERSION,
    graceMs: SHUTDOWN_GRACE_MS,
    banner: `nutcracker-${NUTCRACKER_VERSION} (twemproxy-ts ${VERSION}, ${net.runtime})`,
    denoWarning: DENO_SIGUSR1_WARNING,
    logPools,
  };
}

/** The version line -h, -V and -D start with. */
export function versionLine(): string {
  return `This is nutcracker-${NUTCRACKER_VERSION} (twemproxy-ts ${VERSION})`;
}

/** -h, -V, -D: nutcracker prints these to stderr. */
function printInfo(flags: Flags, host: Host, net: Net): void {
  host.stderr(versionLine());
  host.stderr(`runtime: ${net.runtime}`);
  host.stderr("");
  if (flags.help) host.stderr(usage());
  if (flags.describeStats) for (const line of describeStats()) host.stderr(line);
}

/** Read and validate the config file; throws ConfError or an Error naming the file. */
function readConf(file: string, host: Host): Conf {
  return loadConf(readConfText(file, host), file);
}

/** The config file's text; throws an Error naming the file. */
function readConfText(file: string, host: Host): string {
  try {
    return host.readText(file);
  } catch (err) {
    throw new Error(`nutcracker: failed to open configuration '${file}': ${reason(err)}`);
  }
}

function errorText(err: unknown): string {
  return err instanceof ConfError || err instanceof Error ? err.message : String(err);
}

/** -t: nutcracker's two possible verdicts. */
function testConf(file: string, host: Host): number {
  try {
    readConf(file, host);
  } catch (err) {
    host.stderr(errorText(err));
    host.stderr(`nutcracker: configuration file '${file}' syntax is invalid`);
    return 1;
  }
  host.stderr(`nutcracker: configuration file '${file}' syntax is ok`);
  return 0;
}

/** Start the proxy and serve until SIGINT/SIGTERM. */
async function run(flags: Flags, host: Host, net: Net): Promise<number> {
  const output = openLogOrReport(flags.output, host);
  if (output === null) return 1;
  const log = createLogger(output.write, flags.verbose);
  const reloads = reloadTriggers(log);
  // Before anything slow, as nutcracker does: an early SIGTTIN must not stop the process,
  // and an unhandled SIGUSR1 would start Node's inspector.
  const stopRequested = handleSignals(flags, host, net.runtime, log, output, reloads);
  // A fatal error is written whatever the level: it is the last thing this process says.
  let stopWatching: (() => void) | null = null;
  const fail = (msg: string): number => {
    stopWatching?.();
    log.log(LOG_LEVELS.EMERG, msg);
    host.reportReady(false, msg);
    host.clearSignals();
    output.close();
    return 1;
  };
  // Watch from before the first read, so an edit made while starting is not missed (it waits in the queue).
  if (flags.watch) stopWatching = host.watchFile(flags.confFile, () => reloads.request("configuration file changed"));
  let conf: Conf;
  try {
    conf = readConf(flags.confFile, host);
  } catch (err) {
    return fail(errorText(err));
  }
  log.notice(`nutcracker-${NUTCRACKER_VERSION} (twemproxy-ts ${VERSION}, ${net.runtime}) started on pid ${host.pid}`);
  const adminAddr = flags.admin === null ? null : parseListen(flags.admin);
  if (adminAddr !== null && !adminAddr.ok) return fail(`invalid --admin address '${flags.admin}': ${adminAddr.phrase}`);
  let adminToken: string | null = null;
  try {
    adminToken = flags.adminToken === null ? null : readAdminToken(flags.adminToken, host);
  } catch (err) {
    return fail(errorText(err));
  }
  if (adminToken !== null && adminAddr === null) log.warn("--admin-token has no effect without --admin");
  const metrics = createMetrics();
  let proxy: Proxy;
  try {
    // Histograms are read only through the admin API: without it, skip their per-request cost.
    const observe = adminAddr === null ? undefined : metrics.observe;
    proxy = await startProxy(conf, { net, clock: systemClock, log, observe, identity: { version: VERSION, pid: host.pid } });
  } catch (err) {
    return fail(`failed to start the proxy: ${reason(err)}`);
  }
  const reloader = createReloader(proxy, () => readConf(flags.confFile, host), { clock: systemClock, log });
  let observability: Observability;
  try {
    observability = await startObservability(proxy, metrics, {
      statsAddr: { kind: "tcp", host: flags.statsAddr, port: flags.statsPort },
      statsIntervalMs: flags.statsInterval,
      adminAddr: adminAddr === null ? null : adminAddr.value.addr,
      version: NUTCRACKER_VERSION,
      source: host.hostname,
      adminToken,
      reloader: withTrigger(reloader, log, "POST /reload"),
    }, { net, clock: systemClock, log });
  } catch (err) {
    await proxy.close(0);
    return fail(`failed to listen on the stats port ${flags.statsAddr}:${flags.statsPort}: ${reason(err)}`);
  }
  // Written once every listener is up, so a pid file always names a serving process.
  if (flags.pidFile !== null) {
    try {
      host.writePidFile(flags.pidFile, host.pid);
    } catch (err) {
      await observability.close();
      await proxy.close(0);
      return fail(`opening pid file '${flags.pidFile}' failed: ${reason(err)}`);
    }
  }
  logPools(conf, log);
  host.reportReady(true, String(host.pid));
  if (stopWatching !== null) log.notice(`watching '${flags.confFile}' for changes`);
  reloads.attach(reloader);
  await stopRequested;
  stopWatching?.();
  reloads.close();
  await observability.close();
  return await shutdown(flags, host, log, output, proxy);
}

function logPools(conf: Conf, log: Logger): void {
  for (const pool of conf.pools) {
    const kind = pool.redis ? "redis" : "memcache";
    log.notice(`pool '${pool.name}': ${kind}, ${pool.shards.length} servers, hash ${pool.hash},` +
      ` distribution ${pool.distribution}, listen ${pool.listenText}`);
  }
}

/** The --admin-token file's token: its text without the trailing newline; throws naming the file. */
function readAdminToken(file: string, host: Host): string {
  let text: string;
  try {
    text = host.readText(file);
  } catch (err) {
    throw new Error(`nutcracker: failed to read the --admin-token file '${file}': ${reason(err)}`);
  }
  const token = text.replace(/\s+$/, "");
  if (token === "") throw new Error(`nutcracker: the --admin-token file '${file}' is empty`);
  if (/\s/.test(token)) throw new Error(`nutcracker: the --admin-token file '${file}' must hold one token without spaces`);
  return token;
}

/** Reload requests from SIGUSR1 and --watch: queued until the reloader exists, ignored once stopping. */
interface ReloadTriggers {
  request(why: string): void;
  attach(reloader: Reloader): void;
  close(): void;
}

function reloadTriggers(log: Logger): ReloadTriggers {
  let reloader: Reloader | null = null;
  let queued: string | null = null;
  let closed = false;
  // The reloader logs the outcome; a throw would be a bug, logged rather than left unhandled.
  const run = (r: Reloader, why: string) =>
    void withTrigger(r, log, why).reload().catch((err) => log.error(`reload failed: ${reason(err)}`));
  return {
    request(why) {
      if (closed) return;
      if (reloader !== null) return run(reloader, why);
      queued = why;
      log.notice(`${why}: reload queued until startup completes`);
    },
    attach(r) {
      reloader = r;
      if (queued !== null) run(r, queued);
      queued = null;
    },
    close() {
      closed = true;
    },
  };
}

/**
 * Install nutcracker's signal handling: SIGHUP reopens the log, SIGTTIN/SIGTTOU move
 * the level up/down, SIGUSR1 reloads the config (not on Deno). Resolves on the first
 * SIGINT or SIGTERM.
 */
function handleSignals(
  flags: Flags,
  host: Host,
  runtime: string,
  log: Logger,
  output: LogOutput,
  reloads: ReloadTriggers,
): Promise<HostSignal> {
  const received = (signal: HostSignal, action: string) =>
    log.notice(`signal ${SIGNAL_NUMBERS[signal]} (${signal}) received, ${action}`);
  // Deno opens a V8 inspector on SIGUSR1 whether or not a listener is installed, so it is
  // not a reload trigger there; a listener would only suggest that sending it is safe.
  if (runtime === "deno") log.warn(DENO_SIGUSR1_WARNING);
  else host.onSignal("SIGUSR1", () => reloads.request(`signal ${SIGNAL_NUMBERS.SIGUSR1} (SIGUSR1) received`));
  // As nutcracker: SIGUSR2 is caught and does nothing (with --workers it restarts them).
  host.onSignal("SIGUSR2", () => received("SIGUSR2", "ignored (it restarts the workers only under --workers)"));
  host.onSignal("SIGHUP", () => {
    received("SIGHUP", "reopening log file");
    const failed = output.reopen();
    if (failed !== null) log.error(`reopening log file '${flags.output}' failed, ignored: ${failed}`);
  });
  // Level changes are logged at EMERG so they show whatever the level is.
  host.onSignal("SIGTTIN", () => {
    log.level = log.level + 1;
    log.log(LOG_LEVELS.EMERG, `log level raised to ${log.level}`);
  });
  host.onSignal("SIGTTOU", () => {
    log.level = log.level - 1;
    log.log(LOG_LEVELS.EMERG, `log level lowered to ${log.level}`);
  });
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: HostSignal) => {
      if (stopping) return;
      stopping = true;
      received(signal, "exiting");
      resolve(signal);
    };
    host.onSignal("SIGINT", () => stop("SIGINT"));
    host.onSignal("SIGTERM", () => stop("SIGTERM"));
  });
}

async function shutdown(flags: Flags, host: Host, log: Logger, output: LogOutput, proxy: Proxy): Promise<number> {
  let code = 0;
  try {
    await proxy.close(SHUTDOWN_GRACE_MS);
  } catch (err) {
    log.error(`closing the proxy failed: ${reason(err)}`);
    code = 1;
  }
  if (flags.pidFile !== null) {
    const failed = host.removeFile(flags.pidFile);
    if (failed !== null) log.error(`removing pid file '${flags.pidFile}' failed, ignored: ${failed}`);
  }
  host.clearSignals();
  log.notice("stopped");
  output.close();
  return code;
}

if (isMainModule(import.meta)) {
  const host = createHost();
  host.exit(await main(host.argv(), host, await loadNet({ shared: isWorkerProcess() })));
}
