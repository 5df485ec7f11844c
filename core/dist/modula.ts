/**
 * Modula distribution as twemproxy builds it: every server appears `weight` times,
 * servers in twemproxy's order (sorted by id, see order.ts), and a hash picks slot
 * `hash % slots`.
 */
import type { Dispatcher, DistServer } from "./types.ts";
import { EMPTY_DISPATCHER } from "./types.ts";
import { twemproxyOrder } from "./order.ts";

/**
 * Builds the modula table over `servers`.
 * @example buildModula([{ id: "a", weight: 1 }, { id: "b", weight: 2 }]).pick(4) // 1 (slots a,b,b)
 */
export function buildModula(servers: readonly DistServer[]): Dispatcher {
  const slots: number[] = [];
  for (const index of twemproxyOrder(servers)) {
    for (let w = 0; w < servers[index].weight; w++) slots.push(index);
  }
  if (slots.length === 0) return EMPTY_DISPATCHER;
  const table = Uint32Array.from(slots);
  return { pick: (hash: number) => table[(hash >>> 0) % table.length] };
}
