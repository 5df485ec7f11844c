/**
 * The parser micro-benchmark's workloads: GET, SET (32 B and 4 KB) and MGET of 10 keys
 * as RESP bytes with many different keys, and two ways through the core without I/O:
 * parse -> route (parseRequest, lookupCommand, checkArity, Pool.serverIndexFor per key)
 * and the full Redis session (RedisSession.handle with a stub host, which also builds
 * Req objects and MGET fragments as the engine does).
 */
import { loadConf } from "../../core/conf/mod.ts";
import type { PoolConf } from "../../core/conf/types.ts";
import { createLogger } from "../../core/log.ts";
import { systemClock } from "../../core/net.ts";
import { checkArity, Kind, lookupCommand, parseRequest, RequestSlots } from "../../core/redis/mod.ts";
import { Flusher } from "../../core/proxy/flusher.ts";
import { Pool } from "../../core/proxy/pool.ts";
import type { SessionHost } from "../../core/proxy/protocol.ts";
import { redisProtocol, RedisSession } from "../../core/proxy/redis.ts";
import { Req } from "../../core/proxy/req.ts";
import { MemNet } from "../../tests/helpers/memnet.ts";
import type { Batch } from "./timing.ts";

const enc = new TextEncoder();

/** The pool every case routes through: 2 servers, fnv1a_64, ketama (what `npm run bench` configures). */
export const POOL_YAML = `bench:
  listen: 127.0.0.1:22121
  redis: true
  hash: fnv1a_64
  distribution: ketama
  servers:
   - 127.0.0.1:7001:1
   - 127.0.0.1:7002:1
`;

/** RESP multibulk of `args`. */
export function command(args: (string | Uint8Array)[]): Uint8Array {
  const parts = args.map((a) => (typeof a === "string" ? enc.encode(a) : a));
  const head = enc.encode(`*${parts.length}\r\n`);
  const chunks: Uint8Array[] = [head];
  for (const p of parts) chunks.push(enc.encode(`$${p.length}\r\n`), p, enc.encode("\r\n"));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** redis-benchmark style key "key:000000012345" for a number. */
function key(n: number): string {
  return `key:${String(n).padStart(12, "0")}`;
}

/** One workload: VARIANTS requests of the same command with different keys. */
export interface Case {
  name: string;
  requests: Uint8Array[];
  /** Exact reply bytes a backend sends for one request (used by the engine round trip). */
  replyBytes: number;
}

const VARIANTS = 256;

function variants(make: (i: number) => Uint8Array): Uint8Array[] {
  // Spread keys like -r 100000 does, deterministically.
  return Array.from({ length: VARIANTS }, (_, i) => make((i * 7919) % 100000));
}

/** The four workloads of issue 7. */
export function cases(): Case[] {
  const v32 = "x".repeat(32);
  const v4k = "x".repeat(4096);
  const bulk32 = 5 + 32 + 2; // "$32\r\n" + value + "\r\n"
  return [
    { name: "GET", requests: variants((n) => command(["GET", key(n)])), replyBytes: bulk32 },
    { name: "SET 32 B", requests: variants((n) => command(["SET", key(n), v32])), replyBytes: 5 },
    { name: "SET 4 KB", requests: variants((n) => command(["SET", key(n), v4k])), replyBytes: 5 },
    {
      name: "MGET 10 keys",
      requests: variants((n) => command(["MGET", ...Array.from({ length: 10 }, (_, k) => key((n + k * 1009) % 100000))])),
      replyBytes: 5 + 10 * bulk32,
    },
  ];
}

/** The pool's config and a real Pool on an unused in-memory Net (nothing connects while routing). */
export function benchPool(): { conf: PoolConf; pool: Pool } {
  const conf = loadConf(POOL_YAML, "bench.yml").pools[0];
  const env = {
    net: new MemNet(),
    clock: systemClock,
    log: createLogger(() => {}, 0),
    flusher: new Flusher(queueMicrotask),
    protocol: redisProtocol,
    observe: () => {},
    limitOverrides: {},
  };
  return { conf, pool: new Pool(conf, env) };
}

/** parse -> route: what the engine does before a request reaches a server queue, minus the Req. */
export function parseRouteBatch(c: Case, pool: Pool): Batch {
  const slots = new RequestSlots();
  const reqs = c.requests;
  const mask = reqs.length - 1;
  return (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const buf = reqs[i & mask];
      const end = parseRequest(buf, 0, slots);
      const argBuf = slots.argBuf;
      const spec = lookupCommand(argBuf, slots.argStart[0], slots.argEnd[0]);
      if (spec === undefined || !checkArity(spec, slots.argc)) return -1;
      if (spec.kind === Kind.MultiKey) {
        const step = spec.keyStep ?? 1;
        for (let k = 1; k < slots.argc; k += step) acc += pool.serverIndexFor(argBuf, slots.argStart[k], slots.argEnd[k]);
      } else {
        acc += pool.serverIndexFor(argBuf, slots.argStart[spec.firstKey], slots.argEnd[spec.firstKey]);
      }
      acc += end;
    }
    return acc;
  };
}

/**
 * The Redis session on a stub host: routes and builds Reqs/fragments, sends nothing.
 * Routed Reqs are kept in a ring, as a server queue would keep them, so the JIT cannot
 * optimise their allocation away.
 */
export function sessionBatch(c: Case, conf: PoolConf, pool: Pool): Batch {
  const session = new RedisSession(conf);
  const reqs = c.requests;
  const mask = reqs.length - 1;
  const kept: (Req | null)[] = new Array(1024).fill(null);
  let routed = 0;
  const keep = (req: Req) => {
    kept[routed++ & 1023] = req;
  };
  const empty = new Uint8Array(0);
  const host: SessionHost = {
    pool: conf,
    replyLocal: (bytes) => new Req(null, bytes ?? empty),
    route: (buf, start, end) => pool.route(buf, start, end),
    shards: () => pool.shards,
    slotOf: () => -1,
    pin: () => false,
    unpin: () => {},
    pinned: null,
    pushLink: () => {
      throw new Error("no pub/sub in the parse benchmark");
    },
    id: 0,
    remote: "bench",
    about: { version: "", runtime: "bench", pid: null, startedAt: 0, now: () => 0, pools: [pool] },
    send: (req) => keep(req),
    enqueue: (req) => keep(req),
    closeAfterReplies: () => {},
    newReq: (bytes) => new Req(null, bytes),
  };
  return (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += session.handle(reqs[i & mask], 0, host);
    return acc + routed;
  };
}
