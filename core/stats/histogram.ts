/**
 * Fixed-bucket histograms for latency and sizes. Observing is a binary search over a
 * small sorted array and three additions: no allocation, so it can sit on the reply
 * path. Counts are kept per bucket and made cumulative only when rendered.
 */

/** Upper bounds in seconds, 1-2.5-5 per decade from 100 µs to 10 s. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Upper bounds in bytes, powers of four from 16 B to 64 MiB. */
export const SIZE_BUCKETS_BYTES: readonly number[] = [
  16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];

/**
 * A histogram over fixed upper bounds; the last bucket (+Inf) is implicit.
 * @example const h = new Histogram(SIZE_BUCKETS_BYTES); h.observe(100); h.cumulative() // [0, 0, 1, 1, ...]
 */
export class Histogram {
  /** Ascending finite upper bounds. */
  readonly bounds: Float64Array;
  /** Observations per bucket (not cumulative); the last entry is the +Inf bucket. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new Error("histogram bounds must be strictly ascending");
    }
    this.bounds = Float64Array.from(bounds);
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Count one value into the first bucket whose bound is >= value (Prometheus `le`). NaN is ignored. */
  observe(value: number): void {
    if (value !== value) return;
    const bounds = this.bounds;
    let lo = 0;
    let hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (value <= bounds[mid]) hi = mid;
      else lo = mid + 1;
    }
    this.counts[lo]++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts, one per bound plus the +Inf bucket (which equals `count`). */
  cumulative(): number[] {
    const out: number[] = new Array(this.counts.length);
    let running = 0;
    for (let i = 0; i < this.counts.length; i++) {
      running += this.counts[i];
      out[i] = running;
    }
    return out;
  }
}

/**
 * The q-quantile of per-bucket counts (not cumulative; the last entry is +Inf), as
 * Prometheus' histogram_quantile() estimates it: linear within the bucket the rank falls
 * in, 0 as the first bucket's lower bound, the highest finite bound for a rank in +Inf.
 * NaN when there are no observations.
 * @example bucketQuantile([1, 2], Float64Array.of(0, 4, 0), 0.5) // 1.5
 */
export function bucketQuantile(bounds: ArrayLike<number>, counts: ArrayLike<number>, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (total <= 0) return NaN;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const here = counts[i];
    if (here > 0 && below + here >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((rank - below) / here);
    }
    below += here;
  }
  return bounds.length > 0 ? bounds[bounds.length - 1] : NaN;
}
