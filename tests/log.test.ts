/**
 * core/log.ts: nutcracker's twelve levels (nc_log.h: LOG_EMERG 0 .. LOG_PVERB 11, default
 * LOG_NOTICE), level filtering and clamping, and the `[YYYY-MM-DD HH:MM:SS.mmm] msg` line.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { clampLevel, createLogger, formatLogTime, LEVEL_NAMES, LOG_DEFAULT, LOG_LEVELS } from "../core/log.ts";

/** A logger writing into an array, at a fixed time. */
function capture(level: number, at = new Date(2026, 10, 25, 10, 11, 12, 345).getTime()) {
  const lines: string[] = [];
  const log = createLogger((line) => lines.push(line), level, { now: () => at });
  return { lines, log };
}

describe("log levels", () => {
  it("numbers nutcracker's twelve levels from EMERG 0 to PVERB 11", () => {
    assert.deepEqual(LEVEL_NAMES, [
      "EMERG", "ALERT", "CRIT", "ERR", "WARN", "NOTICE", "INFO", "DEBUG", "VERB", "VVERB", "VVVERB", "PVERB",
    ]);
    LEVEL_NAMES.forEach((name, i) => assert.equal(LOG_LEVELS[name as keyof typeof LOG_LEVELS], i));
    assert.equal(LOG_DEFAULT, LOG_LEVELS.NOTICE);
  });

  it("clampLevel keeps a level inside 0..11", () => {
    assert.deepEqual([-3, 0, 5, 11, 12, 99].map(clampLevel), [0, 0, 5, 11, 11, 11]);
    assert.equal(clampLevel(Number.NaN), LOG_DEFAULT);
  });
});

describe("createLogger", () => {
  it("writes messages at or below its level and drops the rest", () => {
    const { lines, log } = capture(LOG_LEVELS.NOTICE);
    log.error("e");
    log.warn("w");
    log.notice("n");
    log.info("i");
    log.debug("d");
    assert.deepEqual(lines.map((l) => l.split("] ")[1]), ["e", "w", "n"]);
  });

  it("maps error, warn, notice, info and debug to ERR, WARN, NOTICE, INFO and DEBUG", () => {
    const methods = ["error", "warn", "notice", "info", "debug"] as const;
    const levels = [LOG_LEVELS.ERR, LOG_LEVELS.WARN, LOG_LEVELS.NOTICE, LOG_LEVELS.INFO, LOG_LEVELS.DEBUG];
    methods.forEach((method, i) => {
      const below = capture(levels[i] - 1);
      below.log[method]("x");
      assert.equal(below.lines.length, 0, `${method} written below its level`);
      const exact = capture(levels[i]);
      exact.log[method]("x");
      assert.equal(exact.lines.length, 1, `${method} dropped at its level`);
    });
  });

  it("always writes level 0, even with the level set to 0", () => {
    const { lines, log } = capture(0);
    log.log(LOG_LEVELS.EMERG, "always");
    log.log(LOG_LEVELS.ALERT, "not now");
    assert.equal(lines.length, 1);
  });

  it("lets the level change at run time, clamped to 0..11, and enabled() follows it", () => {
    const { lines, log } = capture(LOG_LEVELS.NOTICE);
    assert.equal(log.enabled(LOG_LEVELS.INFO), false);
    log.level = log.level + 1;
    assert.equal(log.level, LOG_LEVELS.INFO);
    assert.equal(log.enabled(LOG_LEVELS.INFO), true);
    log.info("now visible");
    assert.equal(lines.length, 1);
    log.level = 40;
    assert.equal(log.level, LOG_LEVELS.PVERB);
    log.level = -1;
    assert.equal(log.level, LOG_LEVELS.EMERG);
    assert.equal(log.enabled(LOG_LEVELS.ALERT), false);
  });

  it("clamps the starting level too", () => {
    assert.equal(capture(15).log.level, LOG_LEVELS.PVERB);
    assert.equal(capture(-2).log.level, LOG_LEVELS.EMERG);
  });

  it("prefixes each line with the clock's local time as [YYYY-MM-DD HH:MM:SS.mmm]", () => {
    const { lines, log } = capture(LOG_LEVELS.NOTICE);
    log.notice("ready");
    assert.deepEqual(lines, ["[2026-11-25 10:11:12.345] ready"]);
  });
});

describe("formatLogTime", () => {
  it("zero-pads every field", () => {
    assert.equal(formatLogTime(new Date(2026, 0, 2, 3, 4, 5, 6).getTime()), "[2026-01-02 03:04:05.006]");
    assert.equal(formatLogTime(new Date(1999, 11, 31, 23, 59, 59, 999).getTime()), "[1999-12-31 23:59:59.999]");
  });
});
