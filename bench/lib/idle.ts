/**
 * Client-side socket work for the benchmark: a quick correctness check of a target
 * before it is measured, and the idle-connection memory test (open many client
 * connections in batches, read the proxy's RSS, PING each once, read it again).
 */
import net from "node:net";
import { sleep, vmBytes } from "./proc.ts";
import type { Target } from "./targets.ts";

/** Send `request` on a fresh connection; resolve with the reply text once `done(text)` or after `timeoutMs`. */
export function exchange(host: string, port: number, request: string, done: (text: string) => boolean, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let text = "";
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(text);
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.setEncoding("latin1");
    sock.once("connect", () => sock.write(request));
    sock.on("data", (s: string) => {
      text += s;
      if (done(text)) finish();
    });
    sock.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once("close", finish);
  });
}

const REDIS_CHECK =
  "*3\r\n$3\r\nSET\r\n$11\r\nbench:check\r\n$5\r\nhello\r\n" +
  "*5\r\n$4\r\nMSET\r\n$7\r\nbench:a\r\n$1\r\n1\r\n$7\r\nbench:b\r\n$1\r\n2\r\n" +
  "*4\r\n$4\r\nMGET\r\n$11\r\nbench:check\r\n$7\r\nbench:a\r\n$7\r\nbench:b\r\n";
const REDIS_EXPECT = "+OK\r\n+OK\r\n*3\r\n$5\r\nhello\r\n$1\r\n1\r\n$1\r\n2\r\n";

/** Throws unless SET, MSET and MGET through the target give Redis's answers. */
export async function checkRedis(t: Target): Promise<void> {
  const got = await exchange(t.host, t.port, REDIS_CHECK, (s) => s.length >= REDIS_EXPECT.length);
  if (got !== REDIS_EXPECT) throw new Error(`${t.name}: redis check failed, got ${JSON.stringify(got)}`);
}

const MC_CHECK = "set bench:check 0 0 5\r\nhello\r\nget bench:check\r\n";
const MC_EXPECT = "STORED\r\nVALUE bench:check 0 5\r\nhello\r\nEND\r\n";

/** Throws unless set and get through the memcached address work. */
export async function checkMemcache(host: string, port: number, name: string): Promise<void> {
  const got = await exchange(host, port, MC_CHECK, (s) => s.length >= MC_EXPECT.length);
  if (got !== MC_EXPECT) throw new Error(`${name}: memcache check failed, got ${JSON.stringify(got)}`);
}

/** Memory of one process as idle connections come and go, bytes. */
export interface IdleResult {
  name: string;
  /** Connections actually opened. */
  count: number;
  before: number;
  /** After all connections are open (nothing sent). */
  connected: number;
  /** After one PING/PONG on each, then idle. */
  pinged: number;
  /** After closing them all. */
  closed: number;
  note: string;
}

/** Open up to `count` connections in batches (each batch bounded by 10 s). */
export async function openMany(host: string, port: number, count: number, batch: number): Promise<{ socks: net.Socket[]; note: string }> {
  const socks: net.Socket[] = [];
  while (socks.length < count) {
    const n = Math.min(batch, count - socks.length);
    const opened = await Promise.all(Array.from({ length: n }, () => openOne(host, port)));
    const ok = opened.filter((s): s is net.Socket => s !== null);
    socks.push(...ok);
    if (ok.length < n) return { socks, note: `only ${socks.length} of ${count} connected` };
  }
  return { socks, note: "" };
}

function openOne(host: string, port: number): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(null);
    }, 10000);
    sock.once("connect", () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once("error", () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

/** PING every socket once; resolves with how many answered +PONG within `timeoutMs`. */
export function pingAll(socks: net.Socket[], timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let answered = 0;
    const timer = setTimeout(() => resolve(answered), timeoutMs);
    for (const sock of socks) {
      let text = "";
      const onData = (chunk: Uint8Array) => {
        text += String.fromCharCode(...chunk);
        if (!text.includes("+PONG\r\n")) return;
        sock.off("data", onData);
        if (++answered === socks.length) {
          clearTimeout(timer);
          resolve(answered);
        }
      };
      sock.on("data", onData);
      sock.write("PING\r\n");
    }
  });
}

/** Close with RST so 10,000 client ports do not sit in TIME_WAIT. */
export function closeAll(socks: net.Socket[]): void {
  for (const sock of socks) {
    const s = sock as net.Socket & { resetAndDestroy?: () => void };
    if (typeof s.resetAndDestroy === "function") s.resetAndDestroy();
    else sock.destroy();
  }
}

/** The idle-connection memory test on `target` (RSS summed over its PIDs: a supervisor and its workers). */
export async function idleRss(target: Target, count: number, settleMs = 1500): Promise<IdleResult> {
  const pids = target.pids.length > 0 ? target.pids : [-1];
  const rss = () => pids.reduce((sum, pid) => sum + vmBytes(pid, "VmRSS"), 0);
  await sleep(settleMs);
  const before = rss();
  const { socks, note } = await openMany(target.host, target.port, count, 500);
  try {
    await sleep(settleMs);
    const connected = rss();
    const answered = await pingAll(socks, 30000);
    await sleep(settleMs);
    const pinged = rss();
    const pingNote = answered < socks.length ? `${answered} of ${socks.length} answered PING` : "";
    closeAll(socks);
    await sleep(settleMs);
    return { name: target.name, count: socks.length, before, connected, pinged, closed: rss(), note: [note, pingNote].filter(Boolean).join("; ") };
  } finally {
    closeAll(socks);
  }
}
