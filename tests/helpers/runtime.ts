/**
 * Which runtime runs the tests, and how to start the real CLI (mod.ts) on that same
 * runtime as a child process. Tests use this instead of touching Deno or Bun globals.
 */
import process from "node:process";
import { fileURLToPath } from "node:url";

export type RuntimeName = "node" | "deno" | "bun";

/** The repository root (absolute, no trailing slash). */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

/** The CLI entry file. */
export const MOD = `${ROOT}/mod.ts`;

/** The runtime running this test file. */
export function runtimeName(): RuntimeName {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) return "deno";
  if (versions.bun) return "bun";
  return "node";
}

/**
 * argv that runs mod.ts on the current runtime; append the CLI flags.
 * @example spawn(...cliCommand("-t", "-c", "conf/demo.yml"))  // via [cmd, args]
 */
export function cliCommand(...flags: string[]): [string, string[]] {
  const exec = process.execPath;
  const prefix: Record<RuntimeName, string[]> = {
    node: ["--import", "tsx", MOD],
    deno: ["run", "-A", MOD],
    bun: ["run", MOD],
  };
  return [exec, [...prefix[runtimeName()], ...flags]];
}
