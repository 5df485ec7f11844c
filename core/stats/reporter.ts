/**
 * The stats aggregator: every interval it snapshots the pools' counters, like
 * twemproxy's stats thread, and writes the JSON on request from the last snapshot.
 * The stats port and the admin API's /stats both read it, so they always agree.
 */
import type { Clock } from "../net.ts";
import type { Pool } from "../proxy/pool.ts";
import { connectionTotals, type PoolSnapshot, renderStatsJson, takeSnapshot } from "./snapshot.ts";

/** What the header shows and how often to aggregate. */
export interface ReporterOptions {
  /** Host name for `source`. */
  readonly source: string;
  /** Version for `version` ("0.5.0"). */
  readonly version: string;
  /** Aggregation interval in ms (nutcracker's -i, default 30000). */
  readonly intervalMs: number;
  /** Clock ms when the proxy started; default: when the reporter is made. */
  readonly startedAt?: number;
}

export class StatsReporter {
  private readonly pools: () => readonly Pool[];
  private readonly opts: ReporterOptions;
  private readonly clock: Clock;
  private readonly startedAt: number;
  private last: PoolSnapshot[];
  private timer: unknown = null;

  /** `pools` is read at each snapshot, so a reload that swaps pools is picked up. */
  constructor(pools: () => readonly Pool[], opts: ReporterOptions, clock: Clock) {
    this.pools = pools;
    this.opts = opts;
    this.clock = clock;
    this.startedAt = opts.startedAt ?? clock.now();
    this.last = takeSnapshot(pools());
  }

  /** Snapshot now (the interval timer does this; tests may too). */
  aggregate(): void {
    this.last = takeSnapshot(this.pools());
  }

  /** Start snapshotting every interval. */
  start(): void {
    if (this.timer !== null) return;
    const tick = () => {
      this.aggregate();
      this.timer = this.clock.setTimer(tick, this.opts.intervalMs);
    };
    this.timer = this.clock.setTimer(tick, this.opts.intervalMs);
  }

  stop(): void {
    if (this.timer === null) return;
    this.clock.clearTimer(this.timer);
    this.timer = null;
  }

  /** The stats JSON: header as of now, pools as of the last snapshot. */
  json(): string {
    const header = { source: this.opts.source, version: this.opts.version, startedAt: this.startedAt, now: this.clock.now() };
    return renderStatsJson(header, connectionTotals(this.pools()), this.last);
  }
}
