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

/** How loadNet's listen behaves. */
export interface NetOptions {
  /**
   * Listen on addresses shared by several worker processes (--workers): through
   * node:cluster on Node and Bun (the supervisor holds each listening socket and hands
   * connections out; Bun's own Bun.listen cannot take part, so listening goes through its
   * node:net and connections are node:net sockets), and with SO_REUSEPORT on Deno (its
   * node:cluster loses handed-over connections while workers come and go; see README
   * "Workers and restarts").
   */
  readonly shared?: boolean;
}

/**
 * Load the Net of the running runtime. Each adapter is imported only on its own
 * runtime, so Node never parses Deno or Bun code and vice versa (except a Bun worker,
 * which listens through node.ts: see NetOptions.shared).
 * @example const net = await loadNet(); const l = await net.listen(addr, onConn);
 */
export async function loadNet(opts: NetOptions = {}): Promise<Net> {
  const runtime = detectRuntime();
  const shared = opts.shared === true;
  if (runtime === "deno") return (await import("./deno.ts")).createNet({ reusePort: shared });
  if (runtime === "bun") {
    const bun = (await import("./bun.ts")).createNet();
    if (!shared) return bun;
    return { ...bun, listen: (await import("./node.ts")).createNet({ shared }).listen };
  }
  return (await import("./node.ts")).createNet({ shared });
}
