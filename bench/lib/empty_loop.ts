/**
 * The empty accept loop: a bare TCP server on one runtime, written with the API that runtime's
 * adapter uses (node:net, Deno.listen, Bun.listen), that accepts connections, keeps reading
 * them and answers every chunk read with "+PONG\r\n". Nothing else: its memory per idle
 * connection is the runtime's own floor, to put next to the proxy's. Run as a process by
 * accept_loop.ts (the RSS rows) and in-process by idle_heap.ts (the JS heap rows).
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
interface DenoListenerLike extends AsyncIterable<DenoConnLike> {
  addr: { port: number };
}
interface DenoLike {
  listen(o: { hostname: string; port: number }): DenoListenerLike;
}
interface BunSocketLike {
  write(data: Uint8Array): number;
}
interface BunLike {
  listen(o: {
    hostname: string;
    port: number;
    socket: { data(s: BunSocketLike, chunk: Uint8Array): void; open(s: BunSocketLike): void; close(s: BunSocketLike): void };
  }): { port: number };
}

const g = globalThis as unknown as { Deno?: DenoLike; Bun?: BunLike };

/** Listen on 127.0.0.1:`port` (0 = any free port) with the running runtime's own API; resolves with the bound port. */
export function listenEmptyLoop(port: number): Promise<number> {
  if (g.Deno !== undefined) return Promise.resolve(denoLoop(g.Deno, port));
  if (g.Bun !== undefined) return Promise.resolve(bunLoop(g.Bun, port));
  return nodeLoop(port);
}

function denoLoop(deno: DenoLike, port: number): number {
  const listener = deno.listen({ hostname: "127.0.0.1", port });
  void (async () => {
    for await (const conn of listener) void serveDeno(conn);
  })();
  return listener.addr.port;
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

function bunLoop(bun: BunLike, port: number): number {
  const noop = () => {};
  const server = bun.listen({ hostname: "127.0.0.1", port, socket: { data: (s) => void s.write(PONG), open: noop, close: noop } });
  return server.port;
}

function nodeLoop(port: number): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on("data", () => socket.write(PONG));
    socket.on("error", () => {});
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}
