/**
 * Loopback port helpers for tests: ask the kernel for a free port and wait until
 * something listens on one. Uses node:net only, which Node, Deno and Bun all provide.
 */
import net from "node:net";

const HOST = "127.0.0.1";

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close).
 * Another process may take it before you bind; callers that spawn servers retry on failure.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      server.close(() => port > 0 ? resolve(port) : reject(new Error("freePort: no port assigned")));
    });
  });
}

/** Resolves true when a TCP connection to 127.0.0.1:port succeeds, false on refusal or after timeoutMs. */
export function canConnect(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/**
 * Polls 127.0.0.1:port until a connection succeeds. Rejects after timeoutMs.
 * @example await waitForPort(proxyPort, 5000);
 */
export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await canConnect(port, Math.min(500, Math.max(1, deadline - Date.now())))) return;
    await sleep(20);
  }
  throw new Error(`waitForPort: nothing listening on ${HOST}:${port} after ${timeoutMs} ms`);
}

/** Resolves after ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
