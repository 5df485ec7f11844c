/**
 * read_your_writes for one client: per shard it wrote to, the replica-check round a replica
 * must have reached to serve this client's reads. While a write is still unanswered the
 * fence is unreachable (reads go to the master, behind the write on the same connection);
 * once answered, the next round that starts will see the write on the master.
 */
import type { Shard } from "../topology.ts";

/** A round no replica reaches: the master serves. */
const WRITE_PENDING = Number.MAX_SAFE_INTEGER;

interface Fence {
  /** Writes sent and not yet answered. */
  pending: number;
  /** The round a replica must have reached once no write is pending. */
  round: number;
}

export class Fences {
  private readonly byShard = new Map<Shard, Fence>();

  /** A write to `shard` was sent. */
  sent(shard: Shard): void {
    const fence = this.byShard.get(shard);
    if (fence === undefined) this.byShard.set(shard, { pending: 1, round: 0 });
    else fence.pending++;
  }

  /** A write to `shard` was answered (or failed); `nextRound` is the next check round to start. */
  answered(shard: Shard, nextRound: number): void {
    const fence = this.byShard.get(shard);
    if (fence === undefined) return;
    fence.pending = Math.max(0, fence.pending - 1);
    fence.round = nextRound;
  }

  /** The round a replica must have reached to serve this client's read of `shard` (0: any). */
  of(shard: Shard): number {
    const fence = this.byShard.get(shard);
    if (fence === undefined) return 0;
    return fence.pending > 0 ? WRITE_PENDING : fence.round;
  }
}
