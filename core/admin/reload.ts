/**
 * Reload through the admin API: `POST /reload[?dry_run=1]`, `GET /reload` (the running
 * status), the status fields /pools shows; and the log line naming what triggered a reload.
 */
import type { Context } from "hono";
import type { Logger } from "../log.ts";
import type { ReloadReport, Reloader, ReloadStatus } from "../reload/types.ts";

/** The reload fields of a /pools entry (and of GET /reload). */
export interface ReloadFields {
  readonly generation: number;
  /** ISO time of the last reload attempt (not a dry run), or null. */
  readonly last_reload_at: string | null;
  /** The last attempt's error, or null. */
  readonly last_reload_error: string | null;
}

/** The status of a proxy with no reloader: the config it started with, never reloaded. */
export const NEVER_RELOADED: ReloadStatus = { generation: 1, reloads: { ok: 0, error: 0 }, lastReloadAt: null, lastError: null };

/** ReloadStatus under /pools' snake_case names. */
export function reloadFields(status: ReloadStatus): ReloadFields {
  return {
    generation: status.generation,
    last_reload_at: status.lastReloadAt === null ? null : new Date(status.lastReloadAt).toISOString(),
    last_reload_error: status.lastError,
  };
}

const NO_RELOADER = "reload is not available: this proxy was started without a reloader";
const DRY_RUN_VALUES: Readonly<Record<string, boolean>> = { "": true, "1": true, "true": true, "yes": true, "0": false, "false": false, "no": false };

/**
 * POST /reload: 200 with the report when it applied (or would apply), 400 with it when the new
 * config was refused, 409 when it is valid but a pool is still migrating to its last servers.
 */
export async function postReload(c: Context, reloader: Reloader | null): Promise<Response> {
  if (reloader === null) return c.json({ error: NO_RELOADER }, 503);
  const flag = c.req.query("dry_run");
  const dryRun = flag === undefined ? false : DRY_RUN_VALUES[flag.toLowerCase()];
  if (dryRun === undefined) return c.json({ error: `dry_run must be 1 or 0, not '${flag}'` }, 400);
  let report: ReloadReport;
  try {
    report = await reloader.reload({ dryRun });
  } catch (err) {
    return c.json({ error: `reload failed: ${err instanceof Error ? err.message : String(err)}` }, 500);
  }
  return c.json(report, report.result === "ok" ? 200 : report.conflict ? 409 : 400);
}

/** GET /reload: the running status. */
export function getReload(c: Context, reloader: Reloader | null): Response {
  const status = reloader?.status() ?? NEVER_RELOADED;
  return c.json({ ...reloadFields(status), reloads: status.reloads, available: reloader !== null });
}

/**
 * The same reloader, logging which trigger asked for each reload ("signal 10 (SIGUSR1)
 * received", "POST /reload", "configuration file changed"); the reloader itself logs
 * the result (notice with the changes, or error with the message).
 * @example withTrigger(reloader, log, "POST /reload").reload({ dryRun: true })
 */
export function withTrigger(reloader: Reloader, log: Logger, why: string): Reloader {
  return {
    status: () => reloader.status(),
    reload(opts) {
      log.notice(`${why}: ${opts?.dryRun ? "checking (dry run)" : "reloading"} the configuration`);
      return reloader.reload(opts);
    },
  };
}
