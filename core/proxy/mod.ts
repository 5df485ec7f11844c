/**
 * Starts the proxy: one Pool and one listener per configured pool, all sharing one
 * write flusher. The Proxy handle is what the CLI, stats and admin API see.
 */
import type { Clock, Net } from "../net.ts";
import type { Conf, PoolConf } from "../conf/types.ts";
import type { Logger } from "../log.ts";
import { Flusher } from "./flusher.ts";
import { Pool } from "./pool.ts";
import { Listening } from "./listening.ts";
import { type ClientLimits, DEFAULT_LIMITS } from "./client.ts";
import type { Protocol } from "./protocol.ts";
import type { Req } from "./req.ts";
import type { Server } from "./server.ts";
import { redisProtocol } from "./redis.ts";
import { memcacheProtocol } from "./memcache.ts";

/** Called once per answered request (latency and size metrics). */
export type Observer = (pool: Pool, server: Server, req: Req, reply: Uint8Array, now: number) => void;

export interface ProxyDeps {
  net: Net;
  clock: Clock;
  log: Logger;
  limits?: Partial<ClientLimits>;
  observe?: Observer;
}

/** A running proxy. */
export interface Proxy {
  readonly pools: readonly Pool[];
  /** Each pool's bound listen address, in config order. */
  readonly listeners: readonly Listening[];
  /** Stop accepting, let in-flight requests finish for up to `graceMs`, then close everything. */
  close(graceMs?: number): Promise<void>;
}

/** Listen on every pool's address; rejects (after closing what opened) if any listen fails. */
export async function startProxy(conf: Conf, deps: ProxyDeps): Promise<Proxy> {
  const net = deps.net;
  const flusher = new Flusher((fn) => net.defer(fn));
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  const listeners = conf.pools.map((poolConf) => makeListening(poolConf, deps, flusher, limits));
  try {
    for (const listening of listeners) await listening.start(deps.net);
  } catch (err) {
    await closeAll(listeners, 0, deps.clock);
    throw err;
  }
  for (const listening of listeners) {
    if (listening.pool.conf.preconnect) listening.pool.preconnect();
  }
  return {
    pools: listeners.map((l) => l.pool),
    listeners,
    close: (graceMs = 5000) => closeAll(listeners, graceMs, deps.clock),
  };
}

function makeListening(conf: PoolConf, deps: ProxyDeps, flusher: Flusher, limits: ClientLimits): Listening {
  const protocol: Protocol = conf.redis ? redisProtocol : memcacheProtocol;
  const observe = deps.observe;
  const clock = deps.clock;
  const env = {
    queueMark: limits.maxServerQueueBytes,
    net: deps.net,
    clock,
    log: deps.log,
    flusher,
    protocol,
    observe: observe === undefined
      ? null
      : (server: Server, req: Req, reply: Uint8Array, now: number) => observe(pool, server, req, reply, now),
  };
  const pool: Pool = new Pool(conf, env, protocol.preamble(conf));
  return new Listening(pool, protocol, flusher, deps.log, limits);
}

async function closeAll(listeners: Listening[], graceMs: number, clock: Clock): Promise<void> {
  await Promise.all(listeners.map((l) => l.stopAccepting()));
  await Promise.all(listeners.map((l) => l.drain(graceMs, clock)));
  for (const listening of listeners) listening.pool.close();
}
