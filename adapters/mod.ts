/**
 * Picks the socket adapter for the running runtime. This is the only place in the
 * project that looks at runtime globals; everything else receives a Net.
 */
import type { Net } from "../core/net.ts";

/** Which adapter fits the current process: "deno", "bun" or "node". */
export function detectRuntime(): "deno" | "bun" | "node" {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}

/**
 * Load the Net of the running runtime. Each adapter is imported only on its own
 * runtime, so Node never parses Deno or Bun code and vice versa.
 * @example const net = await loadNet(); const l = await net.listen(addr, onConn);
 */
export async function loadNet(): Promise<Net> {
  const runtime = detectRuntime();
  if (runtime === "deno") return (await import("./deno.ts")).createNet();
  if (runtime === "bun") return (await import("./bun.ts")).createNet();
  return (await import("./node.ts")).createNet();
}
