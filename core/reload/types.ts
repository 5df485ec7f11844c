/**
 * The reload contract shared by the proxy core, the CLI (SIGUSR1, --watch) and the admin
 * API (POST /reload): what a reload changed per pool, and the running reload state.
 */

/** What a reload does to one pool (matched by name first, then by listen address). */
export const PoolAction = {
  /** Same settings and servers: nothing happens, not even a reconnect. */
  Unchanged: "unchanged",
  /** Settings or servers changed: same listener and clients, a new topology for new requests. */
  Changed: "changed",
  /** New listen address: bound first; the old one closes; its clients close after their replies. */
  Moved: "moved",
  /** A pool renamed (or reshuffled) on the same listen address: the listener is handed over. */
  HandedOver: "handed_over",
  Added: "added",
  Removed: "removed",
} as const;
export type PoolAction = typeof PoolAction[keyof typeof PoolAction];

/** One pool's entry in a reload's diff. */
export interface PoolChange {
  /** The pool's name in the new file (the old name for a removed pool). */
  readonly pool: string;
  readonly action: PoolAction;
  /** The old pool's name when it differs (handed over or matched by listen address). */
  readonly from?: string;
  /** Human-readable list of what changed ("hash fnv1a_64 -> md5", "server + 127.0.0.1:6380"). */
  readonly details: readonly string[];
}

/** Outcome label of a reload, as the metric `nutcracker_config_reloads_total{result}` uses it. */
export const ReloadResult = { Ok: "ok", Error: "error" } as const;
export type ReloadResult = typeof ReloadResult[keyof typeof ReloadResult];

/** What one reload call did. */
export interface ReloadReport {
  readonly result: ReloadResult;
  /** True for a validation-only call (`POST /reload?dry_run=1`): nothing was applied. */
  readonly dryRun: boolean;
  /** The config generation in force after the call (1 at start, +1 per applied reload that changed something or not). */
  readonly generation: number;
  /** The per-pool diff (empty when result is error). */
  readonly changes: readonly PoolChange[];
  /** The error (a ConfError's message with file:line, pool and key; or a bind failure), else null. */
  readonly error: string | null;
  /** The file is valid but conflicts with the running state (a pool still migrating): try again later. */
  readonly conflict?: boolean;
}

/** A valid config the proxy cannot take now (a pool still migrating would change its ring again). */
export class ReloadConflictError extends Error {}

/** The running reload state, for /pools, /metrics and the dashboard. */
export interface ReloadStatus {
  /** 1 at start; +1 for every applied (non dry-run, successful) reload. */
  readonly generation: number;
  /** Applied reload attempts by result (dry runs are not counted). */
  readonly reloads: { readonly ok: number; readonly error: number };
  /** Clock ms of the last reload attempt (not dry run), or null when there was none. */
  readonly lastReloadAt: number | null;
  /** The last attempt's error, or null when it succeeded (or there was none). */
  readonly lastError: string | null;
}

/** Re-reads the config file and applies it; one reload runs at a time (later calls wait their turn). */
export interface Reloader {
  reload(opts?: { readonly dryRun?: boolean }): Promise<ReloadReport>;
  status(): ReloadStatus;
}
