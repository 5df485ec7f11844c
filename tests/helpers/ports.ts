/**
 * Loopback port helpers for tests: ask the kernel for a free port and wait until
 * something listens on one. Uses node:net only, which Node, Deno and Bun all provide.
 */
import net from "node:net";
import { rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

/** True when nothing listens on 127.0.0.1:port and we may bind it. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/**
 * Take fixed ports for a suite (the routing vectors were recorded on fixed ports, and a
 * server's ring identity includes its port). Suites that run at the same time take turns
 * through a lock file; the ports must then be free. Throws after `timeoutMs` so a busy
 * port fails the suite loudly instead of skipping it. Returns the release function.
 */
export async function takeFixedPorts(ports: readonly number[], timeoutMs = 120_000): Promise<() => void> {
  const lock = join(tmpdir(), `twemproxy-ts-ports-${ports.join("-")}.lock`);
  const deadline = Date.now() + timeoutMs;
  while (!tryLock(lock)) {
    if (Date.now() > deadline) throw new Error(`ports ${ports.join(",")}: lock ${lock} still held after ${timeoutMs} ms`);
    await sleep(200);
  }
  const release = () => rmSync(lock, { force: true });
  while (!(await Promise.all(ports.map(portFree))).every(Boolean)) {
    if (Date.now() > deadline) {
      release();
      throw new Error(`the routing vectors need 127.0.0.1:${ports.join(",")} free, and one is busy`);
    }
    await sleep(200);
  }
  return release;
}

/** Create the lock file exclusively; a lock left by a dead process (older than 5 min) is broken. */
function tryLock(path: string): boolean {
  try {
    writeFileSync(path, String(process.pid), { flag: "wx" });
    return true;
  } catch {
    try {
      if (Date.now() - statSync(path).mtimeMs > 5 * 60_000) rmSync(path, { force: true });
    } catch {
      // Released meanwhile: the next try takes it.
    }
    return false;
  }
}
