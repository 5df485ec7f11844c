/**
 * JavaScript memory per idle client, measured inside one process after full garbage
 * collections: the heap and external bytes per connection of the proxy (started in this
 * process through the runtime's adapter) next to the same runtime's empty accept loop
 * (empty_loop.ts), measured the same way. RSS (idle.ts) also counts garbage not yet collected
 * and allocator pages, which move it by about 1 KB per connection from one run to the next;
 * this does not, but it sees only what lives in the JavaScript heap and its buffers, not the
 * runtime's native socket state. The client sockets live in this process too: they cost the
 * same in both measurements and cancel out in the difference.
 * Run as `<runtime, gc exposed> bench/lib/idle_heap.ts COUNT`; prints one JSON line (HeapResult).
 */
import { loadNet } from "../../adapters/mod.ts";
import { loadConf } from "../../core/conf/mod.ts";
import { createLogger } from "../../core/log.ts";
import { systemClock } from "../../core/net.ts";
import { startProxy } from "../../core/proxy/mod.ts";
import { listenEmptyLoop } from "./empty_loop.ts";
import { closeAll, openMany, pingAll } from "./idle.ts";
import { freePort, sleep } from "./proc.ts";

/** Bytes per connection: open and idle, then after one PING each. */
export interface HeapResult {
  runtime: string;
  count: number;
  loopOpen: number;
  loopPinged: number;
  proxyOpen: number;
  proxyPinged: number;
}

const HOST = "127.0.0.1";
const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(full: boolean): void }; Deno?: { args: string[] } };

function collect(): void {
  for (let i = 0; i < 4; i++) {
    if (g.gc !== undefined) g.gc();
    else if (g.Bun !== undefined) g.Bun.gc(true);
    else throw new Error("run with the garbage collector exposed (node --expose-gc, deno --v8-flags=--expose-gc)");
  }
}

async function jsBytes(): Promise<number> {
  await sleep(300);
  collect();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Open `count` clients on `port`, read the memory, PING each, read it again, close them. */
async function measure(port: number, count: number): Promise<{ open: number; pinged: number }> {
  const base = await jsBytes();
  const { socks, note } = await openMany(HOST, port, count, 500);
  if (note !== "") throw new Error(note);
  const open = await jsBytes();
  const answered = await pingAll(socks, 30000);
  if (answered !== socks.length) throw new Error(`${socks.length - answered} clients got no PONG`);
  const pinged = await jsBytes();
  closeAll(socks);
  await sleep(500);
  return { open: (open - base) / count, pinged: (pinged - base) / count };
}

async function startIdleProxy(): Promise<number> {
  const port = await freePort();
  // No request reaches a server: PING is answered by the proxy, and it connects to servers lazily.
  const yml = `idle:\n  listen: ${HOST}:${port}\n  redis: true\n  servers:\n   - ${HOST}:${await freePort()}:1\n`;
  const net = await loadNet();
  await startProxy(loadConf(yml, "idle-heap.yml"), { net, clock: systemClock, log: createLogger(() => {}, 0) });
  return port;
}

const args = g.Deno?.args ?? process.argv;
const count = Number(args[args.length - 1]);
if (!(count > 0)) throw new Error(`usage: idle_heap.ts COUNT (got ${args.join(" ")})`);
const loopPort = await listenEmptyLoop(0);
const proxyPort = await startIdleProxy();
// A first small round on each, so code compiled and caches filled on first use are not counted per connection.
await measure(loopPort, 200);
await measure(proxyPort, 200);
const loop = await measure(loopPort, count);
const proxy = await measure(proxyPort, count);
const runtime = g.Deno !== undefined ? "deno" : g.Bun !== undefined ? "bun" : "node";
const result: HeapResult = { runtime, count, loopOpen: loop.open, loopPinged: loop.pinged, proxyOpen: proxy.open, proxyPinged: proxy.pinged };
console.log(JSON.stringify(result));
process.exit(0);
