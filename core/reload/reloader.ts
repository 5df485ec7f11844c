/**
 * Reload: read and validate the whole file first, then let the proxy apply it. A bad file
 * or a failed bind changes nothing; the error is logged and reported. One reload runs at
 * a time: SIGUSR1, --watch and POST /reload calls that overlap wait their turn.
 */
import type { Conf } from "../conf/types.ts";
import type { Clock } from "../net.ts";
import type { Logger } from "../log.ts";
import type { Proxy } from "../proxy/mod.ts";
import {
  type PoolChange, PoolAction, ReloadConflictError, type ReloadReport, ReloadResult, type Reloader, type ReloadStatus,
} from "./types.ts";

export interface ReloaderDeps {
  readonly clock: Clock;
  readonly log: Logger;
}

/**
 * A Reloader over `proxy`, re-reading the config with `readConf` (which throws a
 * ConfError, or an Error naming the file, when it cannot).
 * @example const reloader = createReloader(proxy, () => loadConf(readFile(path), path), { clock, log });
 */
export function createReloader(proxy: Proxy, readConf: () => Conf, deps: ReloaderDeps): Reloader {
  let generation = 1;
  const reloads = { ok: 0, error: 0 };
  let lastReloadAt: number | null = null;
  let lastError: string | null = null;
  let turn: Promise<unknown> = Promise.resolve();

  const attempt = async (dryRun: boolean): Promise<ReloadReport> => {
    let changes: readonly PoolChange[];
    try {
      changes = await proxy.apply(readConf(), dryRun);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (!dryRun) record(ReloadResult.Error, error);
      deps.log.error(`reload${dryRun ? " (dry run)" : ""} failed, the running config is unchanged: ${error}`);
      const conflict = err instanceof ReloadConflictError;
      return { result: ReloadResult.Error, dryRun, generation, changes: [], error, conflict };
    }
    if (!dryRun) {
      generation++;
      record(ReloadResult.Ok, null);
      deps.log.notice(`reload applied, generation ${generation}: ${summary(changes)}`);
    }
    return { result: ReloadResult.Ok, dryRun, generation, changes, error: null, conflict: false };
  };

  const record = (result: ReloadResult, error: string | null) => {
    reloads[result]++;
    lastReloadAt = deps.clock.now();
    lastError = error;
  };

  return {
    reload(opts = {}) {
      const run = turn.then(() => attempt(opts.dryRun === true));
      turn = run.catch(() => {});
      return run;
    },
    status: (): ReloadStatus => ({ generation, reloads: { ...reloads }, lastReloadAt, lastError }),
  };
}

/** "alpha changed (hash fnv1a_64 -> md5), beta unchanged". */
function summary(changes: readonly PoolChange[]): string {
  if (changes.length === 0) return "no pools";
  return changes.map((c) => {
    const what = c.action === PoolAction.Unchanged || c.details.length === 0 ? "" : ` (${c.details.join(", ")})`;
    return `${c.pool} ${c.action}${what}`;
  }).join("; ");
}
