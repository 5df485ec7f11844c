/**
 * nutcracker's logger: twelve levels (0 EMERG .. 11 PVERB), one line per message,
 * `[YYYY-MM-DD HH:MM:SS.mmm] message`, in local time as nutcracker writes it. Where the
 * lines go is the caller's sink (stderr, a log file the host can reopen on SIGHUP).
 */

/** The level numbers, as `-v N` takes them. */
export const LOG_LEVELS = {
  EMERG: 0,
  ALERT: 1,
  CRIT: 2,
  ERR: 3,
  WARN: 4,
  NOTICE: 5,
  INFO: 6,
  DEBUG: 7,
  VERB: 8,
  VVERB: 9,
  VVVERB: 10,
  PVERB: 11,
} as const;

/** Level names by number: LEVEL_NAMES[5] === "NOTICE". */
export const LEVEL_NAMES: readonly string[] = Object.keys(LOG_LEVELS);

export const LOG_MIN = LOG_LEVELS.EMERG;
export const LOG_MAX = LOG_LEVELS.PVERB;
/** nutcracker's default level (-v 5). */
export const LOG_DEFAULT = LOG_LEVELS.NOTICE;

/** What a line is written to; the logger adds no newline. */
export type LogSink = (line: string) => void;

/** A leveled logger. Build messages behind `enabled(level)` when they cost anything. */
export interface Logger {
  /** Current level; setting it clamps to 0..11. Messages above it are dropped. */
  level: number;
  /** Whether a message at `level` would be written. */
  enabled(level: number): boolean;
  /** Write `msg` if `level` is enabled. Level 0 (EMERG) is always written, like nutcracker's loga. */
  log(level: number, msg: string): void;
  error(msg: string): void;
  warn(msg: string): void;
  notice(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/**
 * `[YYYY-MM-DD HH:MM:SS.mmm]` for a time in ms since the epoch, in local time.
 * @example formatLogTime(Date.UTC(2026, 10, 25, 10, 11, 12, 345)) // "[2026-11-25 10:11:12.345]" in UTC
 */
export function formatLogTime(ms: number): string {
  const d = new Date(ms);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1, 2)}-${pad(d.getDate(), 2)}`;
  const time = `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}`;
  return `[${date} ${time}.${pad(d.getMilliseconds(), 3)}]`;
}

/** Clamp to a valid level, as nutcracker's log_init does. */
export function clampLevel(level: number): number {
  if (!Number.isFinite(level)) return LOG_DEFAULT;
  return Math.max(LOG_MIN, Math.min(LOG_MAX, Math.trunc(level)));
}

/**
 * A logger writing to `sink` at `level`. `clock` defaults to Date.now.
 * @example const log = createLogger((l) => lines.push(l), 5); log.notice("ready");
 */
export function createLogger(sink: LogSink, level: number, clock: { now(): number } = Date): Logger {
  let current = clampLevel(level);
  const write = (lvl: number, msg: string) => {
    if (lvl <= current) sink(`${formatLogTime(clock.now())} ${msg}`);
  };
  return {
    get level() {
      return current;
    },
    set level(value: number) {
      current = clampLevel(value);
    },
    enabled: (lvl) => lvl <= current,
    log: write,
    error: (msg) => write(LOG_LEVELS.ERR, msg),
    warn: (msg) => write(LOG_LEVELS.WARN, msg),
    notice: (msg) => write(LOG_LEVELS.NOTICE, msg),
    info: (msg) => write(LOG_LEVELS.INFO, msg),
    debug: (msg) => write(LOG_LEVELS.DEBUG, msg),
  };
}
