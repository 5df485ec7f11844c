/**
 * The empty accept loop of the idle-memory rows: a bare TCP server on one runtime,
 * written with the API that runtime's adapter uses (node:net, Deno.listen, Bun.listen),
 * that accepts connections, keeps reading them and answers every chunk read with
 * "+PONG\r\n". Nothing else: its RSS per idle connection is the runtime's own floor,
 * to put next to the proxy's. Run as `<runtime> bench/lib/accept_loop.ts PORT`.
 */
import net from "node:net";

const PONG = new TextEncoder().encode("+PONG\r\n");
/** Per-connection read buffer on Deno: the same first size as adapters/deno.ts (READ_MIN). */
const DENO_READ = 4 * 1024;

interface DenoConnLike {
  read(buf: Uint8Array): Promise<number | null>;
  write(buf: Uint8Array): Promise<number>;
  close(): void;
}
interface DenoLike {
  args: string[];
  listen(o: { hostname: string; port: number }): AsyncIterable<DenoConnLike>;
}
interface BunSocketLike {
  write(data: Uint8Array): number;
}
interface BunLike {
  argv: string[];
  listen(o: {
    hostname: string;
    port: number;
    socket: { data(s: BunSocketLike, chunk: Uint8Array): void; open(s: BunSocketLike): void; close(s: BunSocketLike): void };
  }): unknown;
}

const g = globalThis as unknown as { Deno?: DenoLike; Bun?: BunLike };

function port(args: string[]): number {
  const p = Number(args[args.length - 1]);
  if (!(p > 0 && p < 65536)) throw new Error(`usage: accept_loop.ts PORT (got ${args.join(" ")})`);
  return p;
}

async function denoLoop(deno: DenoLike): Promise<void> {
  const listener = deno.listen({ hostname: "127.0.0.1", port: port(deno.args) });
  for await (const conn of listener) serveDeno(conn);
}

async function serveDeno(conn: DenoConnLike): Promise<void> {
  const buf = new Uint8Array(DENO_READ);
  try {
    while ((await conn.read(buf)) !== null) await conn.write(PONG);
  } catch {
    // reset by the peer
  }
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function bunLoop(bun: BunLike): void {
  const noop = () => {};
  bun.listen({ hostname: "127.0.0.1", port: port(bun.argv), socket: { data: (s) => void s.write(PONG), open: noop, close: noop } });
}

function nodeLoop(): void {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on("data", () => socket.write(PONG));
    socket.on("error", () => {});
  });
  server.listen(port(process.argv), "127.0.0.1");
}

if (g.Deno !== undefined) await denoLoop(g.Deno);
else if (g.Bun !== undefined) bunLoop(g.Bun);
else nodeLoop();
