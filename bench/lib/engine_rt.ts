/**
 * Full engine round trip without sockets: startProxy on the in-memory Net of the tests,
 * two canned backends that answer GET/SET/MGET at once, and 50 clients each sending one
 * request per round (like redis-benchmark -c 50 -P 1). Measures ns per request for
 * client parse -> route -> server queue -> reply scan -> merge -> client write, plus the
 * in-memory Net's own cost (a copy per write, a microtask per chunk).
 */
import { loadConf } from "../../core/conf/mod.ts";
import { createLogger } from "../../core/log.ts";
import type { Conn } from "../../core/net.ts";
import { systemClock } from "../../core/net.ts";
import { startProxy } from "../../core/proxy/mod.ts";
import { parseRequest, RequestSlots } from "../../core/redis/mod.ts";
import { MemNet } from "../../tests/helpers/memnet.ts";
import { type Case, POOL_YAML } from "./parse_cases.ts";

const enc = new TextEncoder();
const CLIENTS = 50;
const BULK32 = enc.encode(`$32\r\n${"v".repeat(32)}\r\n`);
const OK = enc.encode("+OK\r\n");

/** A backend that answers every request in a chunk with one write: +OK for SET, canned 32 B values otherwise. */
function cannedBackend(conn: Conn): void {
  const slots = new RequestSlots();
  let pending = new Uint8Array(0);
  conn.onData = (chunk) => {
    let buf = chunk;
    if (pending.length > 0) {
      buf = new Uint8Array(pending.length + chunk.length);
      buf.set(pending);
      buf.set(chunk, pending.length);
    }
    const replies: Uint8Array[] = [];
    let pos = 0;
    for (let i = 0; i < 100000; i++) {
      const end = parseRequest(buf, pos, slots);
      if (end < 0) break;
      replies.push(...replyFor(buf, slots));
      pos = end;
    }
    pending = buf.slice(pos);
    if (replies.length > 0) conn.write(join(replies));
  };
}

function replyFor(buf: Uint8Array, slots: RequestSlots): Uint8Array[] {
  const first = buf[slots.argStart[0]] | 0x20;
  if (first === 0x73) return [OK]; // set
  if (first === 0x67) return [BULK32]; // get
  const keys = slots.argc - 1; // mget
  return [enc.encode(`*${keys}\r\n`), ...Array.from({ length: keys }, () => BULK32)];
}

function join(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Median ns per request over 3 timed runs of about `runMs` each (every loop bounded). */
export async function engineNsPerRequest(c: Case, runMs = 400): Promise<number> {
  const net = new MemNet();
  await net.listen({ kind: "tcp", host: "127.0.0.1", port: 7001 }, cannedBackend);
  await net.listen({ kind: "tcp", host: "127.0.0.1", port: 7002 }, cannedBackend);
  const proxy = await startProxy(loadConf(POOL_YAML, "bench.yml"), { net, clock: systemClock, log: createLogger(() => {}, 0) });
  let remaining = 0;
  let wake: () => void = () => {};
  const clients = Array.from({ length: CLIENTS }, () => {
    const conn = net.connect({ kind: "tcp", host: "127.0.0.1", port: 22121 });
    conn.onData = (chunk) => {
      remaining -= chunk.length;
      if (remaining <= 0) wake();
    };
    return conn;
  });
  let failed = false;
  const watchdog = setTimeout(() => {
    failed = true;
    wake();
  }, 30000);
  const reqs = c.requests;
  let next = 0;
  const round = () => {
    remaining = CLIENTS * c.replyBytes;
    const done = new Promise<void>((resolve) => (wake = resolve));
    for (const conn of clients) conn.write(reqs[next++ & (reqs.length - 1)]);
    return done;
  };
  const timed = async (ms: number, maxRounds: number) => {
    const t0 = performance.now();
    let rounds = 0;
    while (rounds < maxRounds && performance.now() - t0 < ms && !failed) {
      await round();
      rounds++;
    }
    if (failed || remaining !== 0) throw new Error(`engine round trip (${c.name}) stalled or got unexpected bytes`);
    return ((performance.now() - t0) * 1e6) / (rounds * CLIENTS);
  };
  try {
    await timed(runMs / 2, 20000);
    const runs = [await timed(runMs, 200000), await timed(runMs, 200000), await timed(runMs, 200000)];
    return runs.sort((a, b) => a - b)[1];
  } finally {
    clearTimeout(watchdog);
    for (const conn of clients) conn.destroy();
    await proxy.close(0);
  }
}
