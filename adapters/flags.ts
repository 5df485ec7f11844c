/**
 * nutcracker 0.5.0's command line: the same short and long flags, defaults and ranges,
 * plus `--admin ADDR` for the HTTP admin API, `--admin-token FILE` for its state-changing
 * routes, `--watch` (reload when the config file changes), `--workers N|auto` (a supervisor
 * and N worker processes) and `--drain-timeout MS` (how long an old generation of workers
 * serves its clients after a restart). The only user of node:util's parseArgs.
 * Bad input never throws: parseFlags returns the error line for the caller to print
 * above the usage text.
 */
import { parseArgs } from "node:util";
import { LOG_DEFAULT, LOG_MAX, LOG_MIN } from "../core/log.ts";

/** Defaults and limits, as nutcracker 0.5.0 has them. */
export const FLAG_DEFAULTS = {
  confFile: "conf/nutcracker.yml",
  verbose: LOG_DEFAULT,
  statsPort: 22222,
  statsAddr: "0.0.0.0",
  statsInterval: 30000,
  mbufSize: 16384,
  drainTimeout: 30000,
} as const;
/** The most workers --workers takes. */
export const MAX_WORKERS = 256;
export const MBUF_MIN_SIZE = 512;
export const MBUF_MAX_SIZE = 16777216;

/** Everything the command line can set. */
export interface Flags {
  readonly help: boolean;
  readonly version: boolean;
  readonly testConf: boolean;
  readonly daemonize: boolean;
  readonly describeStats: boolean;
  /** Log level, 0..11. */
  readonly verbose: number;
  /** Log file; null = stderr. */
  readonly output: string | null;
  readonly confFile: string;
  readonly statsPort: number;
  readonly statsAddr: string;
  /** Stats aggregation interval in ms. */
  readonly statsInterval: number;
  readonly pidFile: string | null;
  /** nutcracker's mbuf chunk size: validated for compatibility; the runtimes size their own read buffers. */
  readonly mbufSize: number;
  /** HTTP admin API address ("host:port"); null = off. */
  readonly admin: string | null;
  /** File holding the bearer token POST routes of the admin API need; null = none. */
  readonly adminToken: string | null;
  /** Reload when the config file changes. */
  readonly watch: boolean;
  /** --workers: a worker count, "auto" (one per CPU), or null = one process, no supervisor. */
  readonly workers: number | "auto" | null;
  /** --drain-timeout: ms an old generation of workers keeps serving its clients after a restart. */
  readonly drainTimeout: number;
}

export type FlagsResult = { readonly ok: true; readonly flags: Flags } | { readonly ok: false; readonly error: string };

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  "test-conf": { type: "boolean", short: "t" },
  daemonize: { type: "boolean", short: "d" },
  "describe-stats": { type: "boolean", short: "D" },
  verbose: { type: "string", short: "v" },
  // The spelling nutcracker's own usage text shows.
  verbosity: { type: "string" },
  output: { type: "string", short: "o" },
  "conf-file": { type: "string", short: "c" },
  "stats-port": { type: "string", short: "s" },
  "stats-addr": { type: "string", short: "a" },
  "stats-interval": { type: "string", short: "i" },
  "pid-file": { type: "string", short: "p" },
  "mbuf-size": { type: "string", short: "m" },
  admin: { type: "string" },
  "admin-token": { type: "string" },
  watch: { type: "boolean" },
  workers: { type: "string" },
  "drain-timeout": { type: "string" },
} as const;

/** What a missing argument is called in the error line, by short flag. */
const ARG_KIND: Readonly<Record<string, string>> = {
  v: "a number", s: "a number", i: "a number", m: "a number",
  o: "a file name", c: "a file name", p: "a file name",
  a: "a string", admin: "an address", "admin-token": "a file name",
  workers: "a number or 'auto'", "drain-timeout": "a number",
};

/** A flag error: the message nutcracker-style, prefixed with the program name. */
class FlagError extends Error {}

/** Digits only, as nutcracker's nc_atoi; -1 otherwise. */
function toNumber(text: string): number {
  return /^[0-9]{1,10}$/.test(text) && Number(text) <= 0x7fffffff ? Number(text) : -1;
}

function number(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = toNumber(text);
  if (n < 0) throw new FlagError(`nutcracker: option -${flag} requires a number`);
  return n;
}

function checkedVerbose(text: string | undefined): number {
  const n = number("v", text, FLAG_DEFAULTS.verbose);
  if (n < LOG_MIN || n > LOG_MAX) {
    throw new FlagError(`nutcracker: option -v value ${n} is out of range (${LOG_MIN}..${LOG_MAX})`);
  }
  return n;
}

function checkedPort(text: string | undefined): number {
  const n = number("s", text, FLAG_DEFAULTS.statsPort);
  if (n < 1 || n > 65535) throw new FlagError(`nutcracker: option -s value ${n} is not a valid port`);
  return n;
}

function checkedMbuf(text: string | undefined): number {
  const n = number("m", text, FLAG_DEFAULTS.mbufSize);
  if (n === 0) throw new FlagError("nutcracker: option -m requires a non-zero number");
  if (n < MBUF_MIN_SIZE || n > MBUF_MAX_SIZE) {
    throw new FlagError(`nutcracker: mbuf chunk size must be between ${MBUF_MIN_SIZE} and ${MBUF_MAX_SIZE} bytes`);
  }
  return n;
}

/** --workers: 1..MAX_WORKERS or "auto"; absent = null (no supervisor). */
function checkedWorkers(text: string | undefined): number | "auto" | null {
  if (text === undefined) return null;
  if (text === "auto") return "auto";
  const n = toNumber(text);
  if (n < 1 || n > MAX_WORKERS) {
    throw new FlagError(`nutcracker: option --workers requires a number from 1 to ${MAX_WORKERS} or 'auto'`);
  }
  return n;
}

function checkedDrainTimeout(text: string | undefined): number {
  if (text === undefined) return FLAG_DEFAULTS.drainTimeout;
  const n = toNumber(text);
  if (n < 0) throw new FlagError("nutcracker: option --drain-timeout requires a number");
  return n;
}

function nonEmpty(flag: string, text: string | undefined): string | undefined {
  const shown = flag.length === 1 ? `-${flag}` : `--${flag}`;
  if (text === "") throw new FlagError(`nutcracker: option ${shown} requires ${ARG_KIND[flag]}`);
  return text;
}

/** The short letter of a flag given as "-v", "--verbose" or "verbose" ("admin" has none). */
function shortName(flag: string): string {
  const bare = flag.replace(/^--?/, "");
  const option: { short?: string } | undefined = (OPTIONS as Record<string, { short?: string }>)[bare];
  return option?.short ?? bare;
}

/** Turn parseArgs' error into nutcracker's wording where nutcracker has one. */
function describeParseError(err: Error & { code?: string }): string {
  const flag = /'(--?[^' ,]+)/.exec(err.message)?.[1] ?? "";
  const name = shortName(flag);
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return flag.startsWith("--") ? `nutcracker: unrecognized option '${flag}'` : `nutcracker: invalid option -- '${name}'`;
  }
  const missing = err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && /missing|ambiguous/.test(err.message);
  if (missing && ARG_KIND[name]) {
    return `nutcracker: option ${name.length === 1 ? `-${name}` : `--${name}`} requires ${ARG_KIND[name]}`;
  }
  return `nutcracker: ${err.message.split("\n")[0]}`;
}

/**
 * Parse the arguments after the program name.
 * @example parseFlags(["-t", "-c", "conf/demo.yml"]) // { ok: true, flags: { testConf: true, confFile: "conf/demo.yml", ... } }
 */
export function parseFlags(argv: readonly string[]): FlagsResult {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    return { ok: false, error: describeParseError(err as Error & { code?: string }) };
  }
  const text = (key: string) => values[key] as string | undefined;
  try {
    const flags: Flags = {
      help: values.help === true,
      version: values.version === true,
      testConf: values["test-conf"] === true,
      daemonize: values.daemonize === true,
      describeStats: values["describe-stats"] === true,
      verbose: checkedVerbose(text("verbose") ?? text("verbosity")),
      output: nonEmpty("o", text("output")) ?? null,
      confFile: nonEmpty("c", text("conf-file")) ?? FLAG_DEFAULTS.confFile,
      statsPort: checkedPort(text("stats-port")),
      statsAddr: nonEmpty("a", text("stats-addr")) ?? FLAG_DEFAULTS.statsAddr,
      statsInterval: number("i", text("stats-interval"), FLAG_DEFAULTS.statsInterval),
      pidFile: nonEmpty("p", text("pid-file")) ?? null,
      mbufSize: checkedMbuf(text("mbuf-size")),
      admin: nonEmpty("admin", text("admin")) ?? null,
      adminToken: nonEmpty("admin-token", text("admin-token")) ?? null,
      watch: values.watch === true,
      workers: checkedWorkers(text("workers")),
      drainTimeout: checkedDrainTimeout(text("drain-timeout")),
    };
    return { ok: true, flags };
  } catch (err) {
    if (err instanceof FlagError) return { ok: false, error: err.message };
    throw err;
  }
}

/** The usage text printed by -h and after a flag error. */
export function usage(): string {
  const d = FLAG_DEFAULTS;
  return [
    "Usage: nutcracker [-hVdDt] [-v verbosity level] [-o output file]",
    "                  [-c conf file] [-s stats port] [-a stats addr]",
    "                  [-i stats interval] [-p pid file] [-m mbuf size]",
    "                  [--admin addr] [--admin-token file] [--watch]",
    "                  [--workers N|auto] [--drain-timeout msec]",
    "",
    "Options:",
    "  -h, --help             : print this help and exit",
    "  -V, --version          : print the version and exit",
    "  -t, --test-conf        : check the configuration file and exit",
    "  -d, --daemonize        : run in the background",
    "  -D, --describe-stats   : list the stats fields and exit",
    `  -v, --verbose=N        : log level (default: ${d.verbose}, min: ${LOG_MIN}, max: ${LOG_MAX})`,
    "  -o, --output=S         : log file (default: stderr)",
    `  -c, --conf-file=S      : configuration file (default: ${d.confFile})`,
    `  -s, --stats-port=N     : stats port (default: ${d.statsPort})`,
    `  -a, --stats-addr=S     : stats address (default: ${d.statsAddr})`,
    `  -i, --stats-interval=N : stats aggregation interval in msec (default: ${d.statsInterval} msec)`,
    "  -p, --pid-file=S       : pid file (default: off)",
    `  -m, --mbuf-size=N      : mbuf size, accepted for compatibility (no effect), ${MBUF_MIN_SIZE}..${MBUF_MAX_SIZE}` +
    ` (default: ${d.mbufSize} bytes)`,
    "      --admin=S          : HTTP admin API address, host:port (default: off)",
    "      --admin-token=S    : file holding the token the admin API's POST routes need (default: none)",
    "      --watch            : reload the configuration when its file changes (default: off)",
    "      --workers=N|auto   : a supervisor and N worker processes, auto = one per CPU (default: off, one process)",
    `      --drain-timeout=N  : after a restart (SIGUSR2), msec the old workers keep serving their clients (default: ${d.drainTimeout})`,
    "",
  ].join("\n");
}
