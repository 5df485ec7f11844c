/**
 * Micro-benchmark timing: warm up, calibrate a batch to ~50 ms, take the median of
 * several timed batches (performance.now), and estimate heap bytes allocated per
 * iteration where the runtime exposes a V8 heap and gc() (Node; Deno with
 * --v8-flags=--expose-gc). Every loop is bounded in count and time.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Runs `n` iterations of the work and returns something derived from it (kept, so nothing is optimised away). */
export type Batch = (n: number) => number;

/** Where the sink goes; read at the end so the JIT cannot drop the work. */
let sink = 0;
/** The accumulated sink value (print it or compare it, so work stays observable). */
export function sinkValue(): number {
  return sink;
}

/** Median ns per iteration of `run`. */
export function nsPerIter(run: Batch, opts: { warmupMs?: number; batchMs?: number; reps?: number; maxIters?: number } = {}): number {
  const warmupMs = opts.warmupMs ?? 150;
  const batchMs = opts.batchMs ?? 50;
  const reps = opts.reps ?? 7;
  const maxIters = opts.maxIters ?? 5_000_000;
  // Warm up and calibrate: double n until one batch takes batchMs (bounded).
  let n = 16;
  const warmEnd = performance.now() + warmupMs;
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now();
    sink += run(n);
    const dt = performance.now() - t0;
    if (dt >= batchMs && performance.now() >= warmEnd) break;
    if (dt < batchMs) n = Math.min(maxIters, n * 2);
    if (n === maxIters && performance.now() >= warmEnd) break;
  }
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    sink += run(n);
    times.push(((performance.now() - t0) * 1e6) / n);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

type Gc = () => void;

/** gc() if this runtime can expose it (Node: turned on at run time; Deno: needs --v8-flags=--expose-gc). */
export function findGc(): Gc | null {
  const g = (globalThis as { gc?: Gc }).gc;
  if (typeof g === "function") return g;
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun !== undefined || versions.deno !== undefined) return null;
  try {
    setFlagsFromString("--expose-gc");
    const fn = runInNewContext("gc") as unknown;
    return typeof fn === "function" ? (fn as Gc) : null;
  } catch {
    return null;
  }
}

/**
 * Approximate heap bytes allocated per iteration: full GC, heapUsed, run `n`, heapUsed
 * again, minus the same for an empty batch (reading heapUsed allocates a little); the
 * median of 5 tries (a scavenge inside one try makes that try read low). `n` is sized
 * from a small first estimate so one try allocates about 512 KB, inside the young generation.
 * NaN when the runtime cannot tell (no gc, or not a V8 heap).
 */
export function bytesPerIter(run: Batch, gc: Gc | null): number {
  const versions = process.versions as Record<string, string | undefined>;
  if (gc === null || versions.bun !== undefined) return NaN;
  sink += run(1000); // the first runs may allocate inline caches and lazy tables
  const rough = (heapGrowth(run, gc, 64) - heapGrowth(EMPTY_BATCH, gc, 64)) / 64;
  const n = Math.max(64, Math.min(20000, Math.floor(524288 / Math.max(rough, 1))));
  const tries: number[] = [];
  for (let t = 0; t < 5; t++) tries.push((heapGrowth(run, gc, n) - heapGrowth(EMPTY_BATCH, gc, n)) / n);
  tries.sort((a, b) => a - b);
  return Math.max(0, tries[2]);
}

const EMPTY_BATCH: Batch = (n) => n;

function heapGrowth(run: Batch, gc: Gc, n: number): number {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  sink += run(n);
  return process.memoryUsage().heapUsed - before;
}
