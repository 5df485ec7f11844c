/**
 * twemproxy's failure policy, as its server_failure / server_ok: a server that fails
 * `limit` times in a row is ejected for `retryTimeout` ms (when auto_eject_hosts is on);
 * any reply resets the count.
 */
import type { PoolConf } from "../conf/types.ts";

/** The pool settings the policy reads. */
export type FailurePolicy = Pick<PoolConf, "autoEjectHosts" | "serverFailureLimit" | "serverRetryTimeout">;

/** The per-server health the policy keeps. */
export interface Health {
  /** Consecutive transport failures (reset by any reply). */
  failures: number;
  /** Clock ms until which the server is ejected; 0 = live. */
  ejectedUntil: number;
}

/**
 * Count one transport failure (refused, reset, timed out). Returns true when this failure
 * ejected the server: the caller rebuilds the ring without it.
 */
export function serverFailure(health: Health, policy: FailurePolicy, now: number): boolean {
  if (!policy.autoEjectHosts) return false;
  health.failures++;
  if (health.failures < policy.serverFailureLimit) return false;
  health.failures = 0;
  health.ejectedUntil = now + policy.serverRetryTimeout;
  return true;
}

/** A reply arrived: the server is healthy again. */
export function serverOk(health: Health): void {
  health.failures = 0;
}
