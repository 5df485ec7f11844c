/**
 * One control connection to a Redis or Sentinel node: commands answered in order through
 * promises (the control plane, off the request path), and in subscribe mode every reply
 * handed to `onPush`. Closes are reported once; the owner decides whether to reconnect.
 */
import type { Addr, Conn, Net } from "../net.ts";
import { encodeCommand } from "../redis/mod.ts";
import { ReplyFrames } from "../redis/frames.ts";
import { decodeReply, RespError, type RespValue } from "./resp.ts";

const encoder = new TextEncoder();

interface Waiting {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

export class RespLink {
  /** Replies that answer no command (pub/sub messages) go here. */
  onPush: (value: RespValue) => void = () => {};
  /** Fires once, when the connection is gone (refused, reset, closed). */
  onClose: () => void = () => {};
  closed = false;
  private readonly conn: Conn;
  private readonly waiting: Waiting[] = [];
  private readonly frames = new ReplyFrames((reply) => this.deliver(decodeReply(reply)));
  private subscribed = false;

  constructor(net: Net, addr: Addr, timeoutMs: number) {
    this.conn = net.connect(addr, { connectTimeoutMs: timeoutMs });
    this.conn.onData = (chunk) => this.onData(chunk);
    this.conn.onEnd = () => this.conn.destroy();
    this.conn.onClose = () => this.finish();
  }

  /** Send a command; resolves with its reply (an error reply rejects). */
  command(...args: string[]): Promise<RespValue> {
    if (this.closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.conn.write(encodeCommand(args.map((a) => encoder.encode(a))));
    });
  }

  /** SUBSCRIBE to `channels`: from now on every reply goes to onPush. */
  subscribe(channels: readonly string[]): void {
    this.subscribed = true;
    this.conn.write(encodeCommand(["SUBSCRIBE", ...channels].map((a) => encoder.encode(a))));
  }

  close(): void {
    this.conn.destroy();
  }

  private onData(chunk: Uint8Array): void {
    if (!this.frames.push(chunk)) this.close();
  }

  private deliver(value: RespValue): void {
    if (this.subscribed) return this.onPush(value);
    const waiter = this.waiting.shift();
    if (waiter === undefined) return;
    if (value instanceof RespError) waiter.reject(new Error(value.message));
    else waiter.resolve(value);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.reject(new Error("connection closed"));
    this.onClose();
  }
}

/**
 * Open a link, AUTH if a password is given, run one command and close: for the
 * one-off questions (ROLE on a candidate master). Rejects after `timeoutMs`.
 */
export async function askOnce(net: Net, addr: Addr, password: string | null, timeoutMs: number, ...args: string[]): Promise<RespValue> {
  const link = new RespLink(net, addr, timeoutMs);
  try {
    if (password !== null) await link.command("AUTH", password);
    return await link.command(...args);
  } finally {
    link.close();
  }
}
