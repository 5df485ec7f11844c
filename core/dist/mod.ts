/**
 * The key distributions, by their twemproxy config names, in twemproxy's order.
 * The pool builds a Dispatcher over its live servers and rebuilds it when that set changes.
 */
import { buildKetama } from "./ketama.ts";
import { buildModula } from "./modula.ts";
import { buildRandom } from "./random.ts";
import type { DistBuilder, Dispatcher, DistServer } from "./types.ts";

export type { DistBuilder, Dispatcher, DistServer } from "./types.ts";
export { ketamaPointCount } from "./ketama.ts";

/** name -> builder, in twemproxy's order (its default is ketama). */
export const DISTRIBUTIONS = Object.freeze({
  ketama: buildKetama,
  modula: buildModula,
  random: buildRandom,
} as const satisfies Record<string, DistBuilder>);

/** A config `distribution:` value twemproxy accepts. */
export type DistributionName = keyof typeof DISTRIBUTIONS;

/** Whether `name` is one of the DISTRIBUTIONS (own keys only). */
export function isDistributionName(name: string): name is DistributionName {
  return Object.prototype.hasOwnProperty.call(DISTRIBUTIONS, name);
}

/**
 * Builds the `name` distribution over `servers` (any subset; indexes are into this list).
 * `random` feeds the random distribution (default Math.random). Throws on an unknown
 * name: config validation (isDistributionName) rejects those first.
 * @example buildDistribution("ketama", [{ id: "127.0.0.1:6379", weight: 1 }]).pick(42) // 0
 */
export function buildDistribution(
  name: string,
  servers: readonly DistServer[],
  random: () => number = Math.random,
): Dispatcher {
  if (!isDistributionName(name)) throw new Error(`unknown distribution: ${name}`);
  return DISTRIBUTIONS[name](servers, random);
}
