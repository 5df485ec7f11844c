/**
 * Redis Cluster's key space: 16384 hash slots, a key's slot being CRC16 of its hash tag
 * (the part between the first "{" and the next "}", when not empty) or of the whole key.
 * A SlotRing maps each slot to the shard that owns it, as the cluster last said.
 */
import { crc16 } from "../hash/crc16.ts";

export const SLOTS = 16384;

/** The hash slot of key buf[start, end), as Redis Cluster computes it. */
export function keySlot(buf: Uint8Array, start: number, end: number): number {
  for (let open = start; open < end; open++) {
    if (buf[open] !== 0x7b) continue; // {
    for (let close = open + 1; close < end; close++) {
      if (buf[close] !== 0x7d) continue; // }
      if (close > open + 1) return crc16(buf, open + 1, close) & (SLOTS - 1);
      break;
    }
    break;
  }
  return crc16(buf, start, end) & (SLOTS - 1);
}

/** Slot -> owner index (into the shard list it was built with); -1 where no node owns the slot. */
export class SlotMap {
  readonly owners = new Int16Array(SLOTS).fill(-1);

  /** Give slots [from, to] to owner `index`. */
  assign(from: number, to: number, index: number): void {
    this.owners.fill(index, from, to + 1);
  }

  /** Ranges per owner, for /pools: "0-5460,10923". */
  ranges(index: number): string {
    const out: string[] = [];
    for (let slot = 0; slot < SLOTS; slot++) {
      if (this.owners[slot] !== index) continue;
      let last = slot;
      while (last + 1 < SLOTS && this.owners[last + 1] === index) last++;
      out.push(last === slot ? `${slot}` : `${slot}-${last}`);
      slot = last;
    }
    return out.join(",");
  }
}
