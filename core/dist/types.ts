/** Shapes shared by the distributions: what a ring is built from, and what picks from it. */

/** A server as a distribution sees it: ring identity (name, else "host:port") and weight. */
export interface DistServer {
  readonly id: string;
  readonly weight: number;
}

/** Maps a key hash to a server: the index into the server list the dispatcher was built from. */
export interface Dispatcher {
  /** Server index for `hash` (unsigned 32-bit); -1 only when built over no servers. */
  pick(hash: number): number;
}

/** Builds a Dispatcher over `servers` (any subset, e.g. the live ones); may allocate. */
export type DistBuilder = (servers: readonly DistServer[], random: () => number) => Dispatcher;

/** The dispatcher of an empty server list: nothing to pick (twemproxy: no live servers). */
export const EMPTY_DISPATCHER: Dispatcher = Object.freeze({ pick: (_hash: number) => -1 });
