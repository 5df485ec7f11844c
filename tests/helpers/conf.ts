/**
 * Config test helpers: the first pool of a file, and the exact ConfError a file must fail with.
 */
import assert from "node:assert/strict";
import { ConfError, loadConf } from "../../core/conf/mod.ts";
import type { PoolConf } from "../../core/conf/mod.ts";

/** The first pool of `text`, loaded as `file`. */
export function firstPool(text: string, file: string): PoolConf {
  return loadConf(text, file).pools[0];
}

/** The ConfError loadConf(text, file) throws (the test fails when it throws none). */
export function confErrorOf(text: string, file: string): ConfError {
  let caught: unknown = null;
  try {
    loadConf(text, file);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfError, `expected a ConfError for:\n${text}`);
  return caught;
}

/** loadConf(text, file) must throw a ConfError with exactly `message`; returns it. */
export function expectConfError(text: string, file: string, message: string): ConfError {
  const caught = confErrorOf(text, file);
  assert.equal(caught.message, message);
  return caught;
}
