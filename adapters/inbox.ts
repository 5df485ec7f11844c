/**
 * Soft pause for the Deno and Bun adapters, the way Node's sockets behave: while
 * the core has paused a conn, the adapter keeps reading until HIGH_WATER_MARK
 * bytes are held, so a peer that sends FIN or resets is still noticed. Held
 * chunks (and a FIN behind them) reach the core, in order, after resume().
 */
import { HIGH_WATER_MARK } from "./common.ts";

/** The conn an Inbox hands its events to (its methods, not closures: one less pair of objects per conn). */
export interface InboxOwner {
  deliver(chunk: Uint8Array): void;
  endDelivered(): void;
}

/** Chunks read while paused, and whether the peer's FIN is waiting behind them. */
export class Inbox {
  private paused = false;
  private stopped = false;
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private endHeld = false;
  private readonly owner: InboxOwner;

  /** `owner` hands the events to the core's current handlers. */
  constructor(owner: InboxOwner) {
    this.owner = owner;
  }

  /** Paused with this much held: the adapter should stop reading from the socket. */
  get full(): boolean {
    return this.paused && this.heldBytes >= HIGH_WATER_MARK;
  }

  /** A chunk read from the socket: delivered now, or held while paused. */
  data(chunk: Uint8Array): void {
    if (this.stopped) return;
    if (!this.paused && this.held.length === 0) return this.owner.deliver(chunk);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
  }

  /** The peer's FIN: reported at once unless data is held ahead of it (as Node does). */
  end(): void {
    if (this.stopped) return;
    if (this.held.length > 0) {
      this.endHeld = true;
      return;
    }
    this.owner.endDelivered();
  }

  pause(): void {
    this.paused = true;
  }

  /** Hand over what was held on a later microtask, never from inside resume() itself. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.held.length > 0 || this.endHeld) queueMicrotask(() => this.release());
  }

  /** The conn closed: drop whatever is held. */
  stop(): void {
    this.stopped = true;
    this.held = [];
    this.heldBytes = 0;
  }

  private release(): void {
    while (!this.paused && !this.stopped && this.held.length > 0) {
      const chunk = this.held.shift() as Uint8Array;
      this.heldBytes -= chunk.length;
      this.owner.deliver(chunk);
    }
    if (this.paused || this.stopped || !this.endHeld) return;
    this.endHeld = false;
    this.owner.endDelivered();
  }
}
