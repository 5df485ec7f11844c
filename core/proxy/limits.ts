/**
 * How much a client and a server connection may hold. Four of these are pool keys
 * (client_max_inflight, client_max_inflight_bytes, client_max_output_bytes,
 * server_max_queue_bytes), reloadable; the rest are fixed here. See README "Limits".
 */
import type { PoolConf } from "../conf/types.ts";

/** Per-client bounds, plus the per-server-connection queue mark. */
export interface ClientLimits {
  /** Stop reading from a client with this many requests awaiting replies. */
  maxInflight: number;
  /** Stop reading from a client whose requests awaiting replies add up to this many bytes. */
  maxInflightBytes: number;
  /** Stop reading from a client with this many reply bytes not yet taken by its socket. */
  pauseOutputBytes: number;
  /** Close a client whose unsent replies exceed this (it is not reading at all). */
  maxOutputBytes: number;
  /** Close a client that sends a single request larger than this without completing it. */
  maxRequestBytes: number;
  /**
   * Per server connection, not per client: once this many request bytes wait there for
   * replies, every client that sends to it stops being read until it is half as full.
   */
  maxServerQueueBytes: number;
}

/** The bounds no config key sets. */
const FIXED = {
  pauseOutputBytes: 4 * 1024 * 1024,
  maxRequestBytes: 600 * 1024 * 1024,
} as const;

/** A pool's limits: its config keys (defaults applied by the loader), then `overrides`. */
export function limitsFor(conf: PoolConf, overrides: Partial<ClientLimits>): ClientLimits {
  return {
    ...FIXED,
    // Pause before the close point, or a slow reader is closed without ever being held back.
    pauseOutputBytes: Math.min(FIXED.pauseOutputBytes, Math.floor(conf.clientMaxOutputBytes / 2)),
    maxInflight: conf.clientMaxInflight,
    maxInflightBytes: conf.clientMaxInflightBytes,
    maxOutputBytes: conf.clientMaxOutputBytes,
    maxServerQueueBytes: conf.serverMaxQueueBytes,
    ...overrides,
  };
}
