/**
 * Ketama consistent hashing, point for point as twemproxy builds its continuum:
 * each server gets points in proportion to its weight share (computed in C float),
 * four points per MD5 digest of "<id>-<n>", sorted by value; a hash goes to the
 * first point at or above it, wrapping to the first point.
 */
import { md5Digest } from "../hash/md5.ts";
import type { Dispatcher, DistServer } from "./types.ts";
import { EMPTY_DISPATCHER } from "./types.ts";
import { twemproxyOrder } from "./order.ts";

/** Points per server at equal weights (40 digests x 4). */
const POINTS_PER_SERVER = 160;
/** Points taken from one MD5 digest. */
const POINTS_PER_HASH = 4;
/** twemproxy formats "<id>-<n>" into an 86-byte buffer: at most 85 bytes are hashed. */
const MAX_HOST_BYTES = 85;

/**
 * How many points a server gets, reproducing twemproxy's single-precision arithmetic
 * (a double result would differ at some weight ratios and move keys).
 */
export function ketamaPointCount(weight: number, totalWeight: number, nservers: number): number {
  const f = Math.fround;
  const pct = f(f(weight) / f(totalWeight));
  const perHashCount = f(f(f(pct * POINTS_PER_SERVER) / 4) * f(nservers));
  return Math.floor(f(perHashCount + 0.0000000001)) * POINTS_PER_HASH;
}

/** The bytes twemproxy hashes for point group `n` of a server, truncated like snprintf. */
function pointLabel(id: string, n: number): Uint8Array {
  const bytes = new TextEncoder().encode(`${id}-${n}`);
  return bytes.length > MAX_HOST_BYTES ? bytes.subarray(0, MAX_HOST_BYTES) : bytes;
}

/**
 * Builds twemproxy's ketama continuum over `servers`; pick() is a binary search.
 * @example buildKetama([{ id: "a", weight: 1 }, { id: "b", weight: 1 }]).pick(123) // 0 or 1
 */
export function buildKetama(servers: readonly DistServer[]): Dispatcher {
  if (servers.length === 0) return EMPTY_DISPATCHER;
  const totalWeight = servers.reduce((sum, s) => sum + s.weight, 0);
  const points: { value: number; index: number }[] = [];
  // Points go in in twemproxy's server order so that equal values tie-break as it does.
  for (const index of twemproxyOrder(servers)) {
    const server = servers[index];
    const count = ketamaPointCount(server.weight, totalWeight, servers.length);
    for (let n = 0; n < count / POINTS_PER_HASH; n++) {
      const label = pointLabel(server.id, n);
      const digest = md5Digest(label, 0, label.length);
      for (let x = 0; x < POINTS_PER_HASH; x++) {
        const o = x * 4;
        const value = (digest[o] | (digest[o + 1] << 8) | (digest[o + 2] << 16) | (digest[o + 3] << 24)) >>> 0;
        points.push({ value, index });
      }
    }
  }
  if (points.length === 0) return EMPTY_DISPATCHER; // only if every weight is 0, which conf rejects
  // Array.prototype.sort is stable: equal values (vanishingly rare) keep the insertion order.
  points.sort((a, b) => a.value - b.value);
  const values = Uint32Array.from(points, (p) => p.value);
  const indexes = Uint32Array.from(points, (p) => p.index);
  return { pick: (hash: number) => indexes[ketamaSearch(values, hash >>> 0)] };
}

/** Index of the first value >= hash, or 0 when hash is above every point (the ring wraps). */
function ketamaSearch(values: Uint32Array, hash: number): number {
  let left = 0;
  let right = values.length;
  while (left < right) {
    const middle = (left + right) >>> 1;
    if (values[middle] < hash) left = middle + 1;
    else right = middle;
  }
  return right === values.length ? 0 : right;
}
