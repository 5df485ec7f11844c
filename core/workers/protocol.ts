/**
 * The messages between the supervisor and its workers (`--workers N`), as plain JSON objects
 * over the runtime's IPC channel. The supervisor reads and validates the configuration and
 * hands its text to the workers, so every worker runs the same bytes; workers report their
 * counters when asked, and answer the admin API's questions (health, pools) about themselves.
 */
import type { ConnectionTotals, PoolSnapshot } from "../stats/snapshot.ts";
import type { ReloadReport } from "../reload/types.ts";

/** What a worker knows about itself for the summed stats view. */
export interface WorkerReport {
  /** Every pool's and server's values, as takeSnapshot makes them. */
  readonly pools: readonly PoolSnapshot[];
  readonly totals: ConnectionTotals;
  /** The worker's Prometheus text, when it was asked for (null otherwise). */
  readonly prometheus: string | null;
}

/**
 * The questions the admin API asks a worker; the answer is the JSON body of the route.
 * Dashboard: the worker's PoolParts (core/admin/dashboard/parts.ts) with latency buckets.
 * Migrations: each pool's MigrationView or null ({ pool, migration }[]).
 * MigrationAction (args pool, action): apply it here; answered with an ActionAnswer
 * (core/admin/migration.ts), which the supervisor merges over the workers.
 */
export const Question = {
  Health: "health",
  Pools: "pools",
  Dashboard: "dashboard",
  Migrations: "migrations",
  MigrationAction: "migration-action",
} as const;
export type Question = typeof Question[keyof typeof Question];

/** Supervisor -> worker. */
export type ToWorker =
  /** Start serving this configuration (text of `file`, already validated), logging at `logLevel`. */
  | { readonly t: "start"; readonly conf: string; readonly file: string; readonly logLevel: number }
  /** Send a report now; with `prometheus`, include the Prometheus text. */
  | { readonly t: "report"; readonly seq: number; readonly prometheus: boolean }
  | { readonly t: "ask"; readonly seq: number; readonly question: Question; readonly args?: Readonly<Record<string, string>> }
  /** Apply (or with dryRun, plan) this configuration; answered with a ReloadReport. */
  | { readonly t: "reload"; readonly seq: number; readonly conf: string; readonly file: string; readonly dryRun: boolean }
  /** A new generation listens: stop accepting, serve the clients for up to `timeoutMs`, then close them and exit. */
  | { readonly t: "drain"; readonly timeoutMs: number }
  /** Shut down as SIGTERM does in one process: stop accepting, finish in-flight requests for up to `graceMs`, exit. */
  | { readonly t: "stop"; readonly graceMs: number }
  /** The supervisor has read the worker's "closed": no connection can be handed to it any more. */
  | { readonly t: "closed-ack" }
  /** SIGTTIN (+1) / SIGTTOU (-1) reached the supervisor. */
  | { readonly t: "log-level"; readonly delta: number }
  /** SIGHUP reached the supervisor: reopen the log file. */
  | { readonly t: "log-reopen" };

/** Worker -> supervisor. */
export type FromWorker =
  /** The worker listens for messages (one sent earlier could be lost): the supervisor answers "start". */
  | { readonly t: "hello" }
  /** Every pool listens. */
  | { readonly t: "ready" }
  /** Could not start (bad config, a bind error); the worker exits next. */
  | { readonly t: "failed"; readonly error: string }
  | { readonly t: "report"; readonly seq: number; readonly report: WorkerReport }
  | { readonly t: "answer"; readonly seq: number; readonly body: unknown }
  | { readonly t: "reloaded"; readonly seq: number; readonly report: ReloadReport }
  /** Draining: every listener is closed (the supervisor answers closed-ack). */
  | { readonly t: "closed" }
  /** The last counters of a worker about to exit, so the sums keep them. */
  | { readonly t: "final"; readonly report: WorkerReport };

/** The environment variable that makes a process started by the supervisor a worker: "slot.generation". */
export const WORKER_ENV = "NUTCRACKER_WORKER";

/** "3.2" -> { slot: 3, generation: 2 }; anything else -> null. */
export function parseWorkerEnv(value: string | undefined): { slot: number; generation: number } | null {
  const match = /^(\d+)\.(\d+)$/.exec(value ?? "");
  return match === null ? null : { slot: Number(match[1]), generation: Number(match[2]) };
}
