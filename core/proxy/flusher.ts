/**
 * Coalesces writes: connections that queued output mark themselves dirty, and one
 * deferred run per loop turn flushes them all, so a pipeline of N requests, or N
 * clients' requests read in the same turn, cost one write per connection instead of N.
 */

export interface Flushable {
  dirty: boolean;
  flush(): void;
}

export class Flusher {
  private list: Flushable[] = [];
  private scheduled = false;
  private readonly runBound = () => this.run();
  private readonly schedule: (fn: () => void) => void;

  constructor(schedule: (fn: () => void) => void) {
    this.schedule = schedule;
  }

  /** Queue `target` for the next flush (once, however often it is marked). */
  mark(target: Flushable): void {
    if (target.dirty) return;
    target.dirty = true;
    this.list.push(target);
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(this.runBound);
  }

  /** Flush every dirty target; targets marked while flushing are flushed in the same run. */
  run(): void {
    this.scheduled = false;
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const target = list[i];
      target.dirty = false;
      target.flush();
    }
    list.length = 0;
  }
}

/** Join chunks into one buffer (one write), unless they are big enough that copying costs more. */
export function joinChunks(chunks: Uint8Array[], total: number): Uint8Array[] {
  if (chunks.length === 1 || total > JOIN_LIMIT) return chunks;
  const joined = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.length;
  }
  return [joined];
}

const JOIN_LIMIT = 256 * 1024;
