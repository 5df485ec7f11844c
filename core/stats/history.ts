/**
 * The dashboard's memory: per pool and per node, the request rate and p99 latency of every
 * second of the last 15 minutes, so charts are full when a page opens. A timer samples the
 * counters the proxy keeps anyway (pool.stats.client_requests and forward_error,
 * server.stats.requests, the latency histograms) once a second; nothing is added to the
 * request path. A pool's rate counts client requests (a multi-key request once, a PING
 * answered by the proxy too); a node's counts the requests sent to it (each fragment).
 * A pool's latency is its nodes' histograms together.
 *
 * Cost: per series two Float64Array(900) plus 11 snapshots of the latency buckets
 * (about 16 KB per node); per sample a walk over the nodes and their command histograms.
 * Series are keyed by pool name and node name, so they survive a reload that keeps them;
 * a node or pool no longer in the config loses its series at the next sample.
 */
import type { Clock } from "../net.ts";
import { bucketQuantile, LATENCY_BUCKETS_SECONDS } from "./histogram.ts";

/** Sample spacing, in ms. */
export const HISTORY_STEP_MS = 1000;
/** Samples kept: 15 minutes at one per second. */
export const HISTORY_POINTS = 900;
/** Samples the live p50/p99 are computed over (the last 10 s). */
export const QUANTILE_WINDOW = 10;

const BUCKETS = LATENCY_BUCKETS_SECONDS.length + 1;

/** What History reads of a node (a Server). */
export interface HistoryNode {
  readonly conf: { readonly id: string };
  readonly stats: { readonly requests: number };
}

/** What History reads of a pool (a Pool). */
export interface HistoryPool {
  readonly conf: { readonly name: string };
  readonly stats: { readonly forward_error: number; readonly client_requests: number };
  readonly servers: readonly HistoryNode[];
}

/** Adds a node's latency bucket counts (seconds buckets, +Inf last) into `out`; Metrics.addLatencyCounts. */
export type LatencyReader = (node: HistoryNode, out: Float64Array) => void;

/** Rates and quantiles of one pool or node right now. */
export interface LiveRates {
  /** Requests per second over the last 0.25-1.25 s: read from clients (pools), sent to it (nodes). */
  readonly rate: number;
  /** forward_error per second over the same span (pools; 0 for nodes). */
  readonly errors: number;
  /** Latency quantiles in ms over the last ~10 s; NaN without replies. */
  readonly p50: number;
  readonly p99: number;
}

/** The points of one series: aligned with History's `times`, NaN where unknown. */
export interface SeriesPoints {
  readonly rate: number[];
  readonly p99: number[];
}

/** Cumulative counters at one sample time. */
class Snapshot {
  t = NaN;
  requests = 0;
  errors = 0;
  readonly latency = new Float64Array(BUCKETS);

  copy(from: Snapshot): void {
    this.t = from.t;
    this.requests = from.requests;
    this.errors = from.errors;
    this.latency.set(from.latency);
  }
}

/** One pool's or node's history. */
class Series {
  readonly rate = new Float64Array(HISTORY_POINTS).fill(NaN);
  readonly p99 = new Float64Array(HISTORY_POINTS).fill(NaN);
  /** The last QUANTILE_WINDOW + 1 samples, newest at `snapHead`. */
  readonly snaps: Snapshot[] = Array.from({ length: QUANTILE_WINDOW + 1 }, () => new Snapshot());
  snapHead = -1;
  /** The sample number that last wrote this series. */
  seen = -1;

  /** The snapshot `back` samples ago (0 = newest), or null when not taken. */
  snap(back: number): Snapshot | null {
    if (this.snapHead < 0 || back > QUANTILE_WINDOW) return null;
    const s = this.snaps[(this.snapHead - back + this.snaps.length) % this.snaps.length];
    return Number.isNaN(s.t) ? null : s;
  }
}

const scratch = new Snapshot();
const delta = new Float64Array(BUCKETS);

/**
 * Per-second history of every pool and node; `start` samples on a timer, `tick` samples when a
 * step is due (an app without the timer samples when asked).
 * @example const h = new History(() => proxy.pools, (n, out) => metrics.addLatencyCounts(n as Server, out)); h.start(clock);
 */
export class History {
  /** Sample times (clock ms), a ring aligned with every series' arrays. */
  readonly times = new Float64Array(HISTORY_POINTS).fill(NaN);
  private head = -1;
  private samples = 0;
  private readonly series = new Map<string, Series>();
  private readonly pools: () => readonly HistoryPool[];
  private readonly latency: LatencyReader;
  private timer: unknown = null;
  private clock: Clock | null = null;

  constructor(pools: () => readonly HistoryPool[], latency: LatencyReader) {
    this.pools = pools;
    this.latency = latency;
  }

  /** Sample now and then every HISTORY_STEP_MS until stop(). */
  start(clock: Clock): void {
    if (this.timer !== null) return;
    this.clock = clock;
    const loop = () => {
      this.sample(clock.now());
      this.timer = clock.setTimer(loop, HISTORY_STEP_MS);
    };
    loop();
  }

  stop(): void {
    if (this.timer !== null && this.clock !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
  }

  /** Sample when the last sample is a step old (or there is none). */
  tick(now: number): void {
    const last = this.head < 0 ? -Infinity : this.times[this.head];
    if (now - last >= HISTORY_STEP_MS) this.sample(now);
  }

  /** Clock ms of the newest sample, or null before the first. */
  get newest(): number | null {
    return this.head < 0 ? null : this.times[this.head];
  }

  /** Take one sample of every pool and node at clock `now`. */
  sample(now: number): void {
    this.head = (this.head + 1) % HISTORY_POINTS;
    this.times[this.head] = now;
    const n = ++this.samples;
    for (const pool of this.pools()) {
      const poolSeries = this.seriesFor(pool.conf.name);
      const total = new Snapshot();
      total.t = now;
      total.errors = pool.stats.forward_error;
      total.requests = pool.stats.client_requests;
      for (const node of pool.servers) {
        readNode(node, this.latency, scratch, now);
        for (let i = 0; i < BUCKETS; i++) total.latency[i] += scratch.latency[i];
        this.record(this.seriesFor(nodeKey(pool.conf.name, node.conf.id)), scratch, n);
      }
      this.record(poolSeries, total, n);
    }
    for (const [key, series] of this.series) {
      if (series.seen !== n) this.series.delete(key);
    }
  }

  /** A pool's rates now. */
  livePool(pool: HistoryPool, now: number): LiveRates {
    const live = new Snapshot();
    live.t = now;
    live.errors = pool.stats.forward_error;
    live.requests = pool.stats.client_requests;
    for (const node of pool.servers) {
      readNode(node, this.latency, scratch, now);
      for (let i = 0; i < BUCKETS; i++) live.latency[i] += scratch.latency[i];
    }
    return rates(this.series.get(pool.conf.name), live);
  }

  /** A node's rates now. */
  liveNode(pool: HistoryPool, node: HistoryNode, now: number): LiveRates {
    const live = new Snapshot();
    readNode(node, this.latency, live, now);
    return rates(this.series.get(nodeKey(pool.conf.name, node.conf.id)), live);
  }

  /** Indexes into the ring of the samples newer than `since` (compared in whole ms), oldest first. */
  indexesSince(since: number): number[] {
    const out: number[] = [];
    const count = Math.min(this.samples, HISTORY_POINTS);
    for (let back = count - 1; back >= 0; back--) {
      const i = (this.head - back + HISTORY_POINTS) % HISTORY_POINTS;
      if (Math.round(this.times[i]) > since) out.push(i);
    }
    return out;
  }

  /** The points of a pool's series at ring `indexes`, or null when it has none. */
  poolPoints(pool: string, indexes: readonly number[]): SeriesPoints | null {
    return pointsOf(this.series.get(pool), indexes);
  }

  /** The points of a node's series at ring `indexes`, or null when it has none. */
  nodePoints(pool: string, node: string, indexes: readonly number[]): SeriesPoints | null {
    return pointsOf(this.series.get(nodeKey(pool, node)), indexes);
  }

  private seriesFor(key: string): Series {
    let series = this.series.get(key);
    if (series === undefined) {
      series = new Series();
      this.series.set(key, series);
    }
    return series;
  }

  /** Store one sample: the rate and p99 since the previous sample, and the snapshot. */
  private record(series: Series, now: Snapshot, n: number): void {
    const prev = series.seen === n - 1 ? series.snap(0) : null;
    let rate = NaN;
    let p99 = NaN;
    if (prev !== null && now.t > prev.t) {
      rate = (Math.max(0, now.requests - prev.requests) * 1000) / (now.t - prev.t);
      p99 = quantileBetween(prev, now, 0.99);
    }
    series.rate[this.head] = rate;
    series.p99[this.head] = p99;
    series.snapHead = (series.snapHead + 1) % series.snaps.length;
    series.snaps[series.snapHead].copy(now);
    series.seen = n;
  }
}

/** The key of a node's series. */
function nodeKey(pool: string, node: string): string {
  return `${pool}\u0000${node}`;
}

function readNode(node: HistoryNode, latency: LatencyReader, into: Snapshot, now: number): void {
  into.t = now;
  into.requests = node.stats.requests;
  into.errors = 0;
  into.latency.fill(0);
  latency(node, into.latency);
}

/** Quantile `q` in ms of the replies between two snapshots; NaN without any. */
function quantileBetween(from: Snapshot, to: Snapshot, q: number): number {
  for (let i = 0; i < BUCKETS; i++) delta[i] = Math.max(0, to.latency[i] - from.latency[i]);
  return bucketQuantile(LATENCY_BUCKETS_SECONDS, delta, q) * 1000;
}

/** Rates of `live` against a series' snapshots: the rate over the newest snapshot at least 250 ms old. */
function rates(series: Series | undefined, live: Snapshot): LiveRates {
  if (series === undefined) return { rate: NaN, errors: NaN, p50: NaN, p99: NaN };
  let base: Snapshot | null = null;
  for (let back = 0; back <= QUANTILE_WINDOW; back++) {
    const s = series.snap(back);
    if (s === null) break;
    base = s;
    if (live.t - s.t >= 250) break;
  }
  let oldest: Snapshot | null = null;
  for (let back = QUANTILE_WINDOW; back >= 0 && oldest === null; back--) oldest = series.snap(back);
  const span = base === null ? 0 : live.t - base.t;
  const perSecond = (now: number, then: number) => (span > 0 ? (Math.max(0, now - then) * 1000) / span : NaN);
  return {
    rate: base === null ? NaN : perSecond(live.requests, base.requests),
    errors: base === null ? NaN : perSecond(live.errors, base.errors),
    p50: oldest === null ? NaN : quantileBetween(oldest, live, 0.5),
    p99: oldest === null ? NaN : quantileBetween(oldest, live, 0.99),
  };
}

function pointsOf(series: Series | undefined, indexes: readonly number[]): SeriesPoints | null {
  if (series === undefined) return null;
  return { rate: indexes.map((i) => series.rate[i]), p99: indexes.map((i) => series.p99[i]) };
}
