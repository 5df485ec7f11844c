/**
 * A subscriber connection to one shard's master for one client: the proxy's SUBSCRIBE and
 * PSUBSCRIBE go out on it, and the messages that come back (message, pmessage, smessage)
 * are handed on as they arrived, unchanged. The server's own confirmations are dropped:
 * the proxy confirms to the client itself, with the client's totals over every shard.
 * A lost connection is reopened with backoff to wherever the shard's master is then, and
 * the owner re-sends its subscriptions.
 */
import type { Addr, Clock, Conn, Net } from "../net.ts";
import { ReplyFrames } from "../redis/frames.ts";

const encoder = new TextEncoder();
const MESSAGE_HEADS = ["*3\r\n$7\r\nmessage\r\n", "*4\r\n$8\r\npmessage\r\n", "*3\r\n$8\r\nsmessage\r\n"].map((h) => encoder.encode(h));
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 2000;

/** What a push link needs: where to connect now, what to send first, and where messages go. */
export interface PushLinkDeps {
  readonly net: Net;
  readonly clock: Clock;
  /** The shard master's address now (it may have moved since the last connect). */
  address(): Addr;
  /** AUTH, sent first on every connection. */
  readonly preamble: readonly Uint8Array[];
  /** A message for the client. */
  onMessage(reply: Uint8Array): void;
  /** The connection was reopened: send the subscriptions again. */
  onReconnect(): void;
}

export class PushLink {
  private conn: Conn | null = null;
  private readonly frames: ReplyFrames;
  private closed = false;
  private backoff = RECONNECT_MIN_MS;
  private timer: unknown = null;
  private readonly deps: PushLinkDeps;

  constructor(deps: PushLinkDeps) {
    this.deps = deps;
    this.frames = new ReplyFrames((reply) => {
      if (isMessage(reply)) deps.onMessage(reply);
    });
    this.open();
  }

  send(bytes: Uint8Array): void {
    this.conn?.write(bytes);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) this.deps.clock.clearTimer(this.timer);
    this.conn?.destroy();
  }

  private open(): void {
    const conn = this.deps.net.connect(this.deps.address(), {});
    this.conn = conn;
    conn.onConnect = () => (this.backoff = RECONNECT_MIN_MS);
    conn.onData = (chunk) => this.onData(chunk);
    conn.onEnd = () => conn.destroy();
    conn.onClose = () => this.lost(conn);
    for (const bytes of this.deps.preamble) conn.write(bytes);
  }

  private lost(conn: Conn): void {
    if (this.conn !== conn) return;
    this.conn = null;
    this.frames.reset();
    if (this.closed) return;
    this.timer = this.deps.clock.setTimer(() => {
      this.timer = null;
      this.open();
      this.deps.onReconnect();
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, RECONNECT_MAX_MS);
  }

  private onData(chunk: Uint8Array): void {
    if (!this.frames.push(chunk)) this.conn?.destroy();
  }
}

function isMessage(reply: Uint8Array): boolean {
  return MESSAGE_HEADS.some((head) => reply.length > head.length && head.every((byte, i) => reply[i] === byte));
}
