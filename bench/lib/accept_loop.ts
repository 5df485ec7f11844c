/**
 * The empty accept loop (empty_loop.ts) as a process of its own, for the idle RSS rows:
 * `<runtime> bench/lib/accept_loop.ts PORT`.
 */
import { listenEmptyLoop } from "./empty_loop.ts";

const g = globalThis as unknown as { Deno?: { args: string[] }; Bun?: { argv: string[] } };
const args = g.Deno?.args ?? g.Bun?.argv ?? process.argv;
const port = Number(args[args.length - 1]);
if (!(port > 0 && port < 65536)) throw new Error(`usage: accept_loop.ts PORT (got ${args.join(" ")})`);
await listenEmptyLoop(port);
