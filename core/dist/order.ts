/**
 * twemproxy's server order. While validating a pool it sorts the servers by name to
 * find duplicates and never restores config order, so its distributions walk the
 * servers sorted by id: shorter ids first, then byte by byte ("n9" before "n10").
 * Modula's slot order depends on this; ketama and random use it too, to match.
 */
import type { DistServer } from "./types.ts";

/** Length-first, then bytewise comparison of two UTF-8 ids (twemproxy's string_compare). */
function compareIds(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return 0;
}

/**
 * Indexes into `servers`, in the order twemproxy iterates them.
 * @example twemproxyOrder([{ id: "n10", weight: 1 }, { id: "n9", weight: 1 }]) // [1, 0]
 */
export function twemproxyOrder(servers: readonly DistServer[]): number[] {
  const encoder = new TextEncoder();
  const ids = servers.map((s) => encoder.encode(s.id));
  return servers.map((_, i) => i).sort((x, y) => compareIds(ids[x], ids[y]) || x - y);
}
