/**
 * A small, independent RESP2 client for end-to-end tests: encodes commands as multibulk
 * bytes, reads replies incrementally, and keeps each reply's raw bytes so a test can
 * compare the proxy's answer byte for byte with a plain redis-server's. Uses node:net
 * only (Node, Deno and Bun all run it). Every wait is bounded.
 */
import net from "node:net";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One command argument: text (sent as UTF-8) or raw bytes. */
export type Arg = string | Uint8Array;

/** A decoded RESP2 reply. */
export type Reply =
  | { readonly type: "status"; readonly text: string }
  | { readonly type: "error"; readonly text: string }
  | { readonly type: "int"; readonly value: number }
  | { readonly type: "bulk"; readonly value: Uint8Array | null }
  | { readonly type: "array"; readonly items: Reply[] | null };

/** A reply and the exact bytes it arrived as. */
export interface RawReply {
  readonly reply: Reply;
  readonly raw: Uint8Array;
}

/** Encodes one command as a RESP multibulk request. */
export function encodeCommand(args: readonly Arg[]): Uint8Array {
  const parts = args.map((a) => typeof a === "string" ? encoder.encode(a) : a);
  const chunks: Uint8Array[] = [encoder.encode(`*${parts.length}\r\n`)];
  for (const p of parts) chunks.push(encoder.encode(`$${p.length}\r\n`), p, CRLF);
  return concat(chunks);
}

/** Encodes many commands back to back (one pipeline write). */
export function encodePipeline(cmds: readonly (readonly Arg[])[]): Uint8Array {
  return concat(cmds.map(encodeCommand));
}

/** Joins byte arrays. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Raw reply bytes as readable text (non-printable bytes as \xNN), for assertion messages. */
export function show(raw: Uint8Array, max = 300): string {
  let out = "";
  for (let i = 0; i < raw.length && out.length < max; i++) {
    const b = raw[i];
    out += b === 13 ? "\\r" : b === 10 ? "\\n" : b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return raw.length > max ? `${out}...(${raw.length} bytes)` : out;
}

/** A bulk reply's bytes as text, or null. Throws if the reply is not a bulk string. */
export function bulkText(reply: Reply): string | null {
  if (reply.type !== "bulk") throw new Error(`expected a bulk reply, got ${JSON.stringify(reply)}`);
  return reply.value === null ? null : decoder.decode(reply.value);
}

/** True when two byte arrays hold the same bytes (fast for multi-MB values). */
export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const CRLF = encoder.encode("\r\n");

/**
 * Parses one reply at buf[pos, end). Returns the reply and the offset after it, or
 * null when more bytes are needed. Throws on bytes that are not RESP2.
 */
export function parseReply(buf: Uint8Array, pos: number, end: number): [Reply, number] | null {
  const eol = findCrlf(buf, pos + 1, end);
  if (eol < 0) return null;
  const type = buf[pos];
  const line = decoder.decode(buf.subarray(pos + 1, eol));
  const next = eol + 2;
  if (type === 0x2b) return [{ type: "status", text: line }, next];
  if (type === 0x2d) return [{ type: "error", text: line }, next];
  if (type === 0x3a) return [{ type: "int", value: Number(line) }, next];
  if (type === 0x24) return parseBulk(buf, Number(line), next, end);
  if (type === 0x2a) return parseArray(buf, Number(line), next, end);
  throw new Error(`not a RESP2 reply: ${show(buf.subarray(pos, Math.min(end, pos + 60)))}`);
}

function parseBulk(buf: Uint8Array, size: number, at: number, end: number): [Reply, number] | null {
  if (size < 0) return [{ type: "bulk", value: null }, at];
  if (end < at + size + 2) return null;
  return [{ type: "bulk", value: buf.slice(at, at + size) }, at + size + 2];
}

function parseArray(buf: Uint8Array, count: number, at: number, end: number): [Reply, number] | null {
  if (count < 0) return [{ type: "array", items: null }, at];
  const items: Reply[] = [];
  for (let i = 0; i < count; i++) {
    const got = parseReply(buf, at, end);
    if (got === null) return null;
    items.push(got[0]);
    at = got[1];
  }
  return [{ type: "array", items }, at];
}

function findCrlf(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

interface Waiter {
  resolve(r: RawReply): void;
  reject(e: Error): void;
}

/**
 * One connection. `call` sends a command and resolves with its reply; `pipeline` sends
 * many in one write. Replies are matched to requests in order. A timeout or a close
 * rejects everything pending.
 */
export class RespClient {
  /** True once the peer closed or the socket failed. */
  closed = false;
  /** Resolves when the connection has closed. */
  readonly whenClosed: Promise<void>;
  private readonly sock: net.Socket;
  private buf = new Uint8Array(64 * 1024);
  private start = 0;
  private end = 0;
  private readonly waiters: Waiter[] = [];
  private markClosed!: () => void;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    this.whenClosed = new Promise((resolve) => (this.markClosed = resolve));
    sock.on("data", (chunk: Uint8Array) => this.onData(chunk));
    sock.once("close", () => this.onClose(new Error("connection closed")));
    sock.on("error", (err: Error) => this.onClose(err));
  }

  /** Connects to 127.0.0.1:port (rejects after timeoutMs). */
  static connect(port: number, timeoutMs = 5000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: "127.0.0.1", port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${port} timed out`));
      }, timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        resolve(new RespClient(sock));
      });
      sock.once("error", (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Sends one command; resolves with its decoded reply. */
  async call(args: readonly Arg[], timeoutMs = 10000): Promise<Reply> {
    return (await this.send(encodeCommand(args), 1, timeoutMs))[0].reply;
  }

  /** Sends one command; resolves with the raw bytes of its reply. */
  async callRaw(args: readonly Arg[], timeoutMs = 10000): Promise<Uint8Array> {
    return (await this.send(encodeCommand(args), 1, timeoutMs))[0].raw;
  }

  /** Sends all commands in one write; resolves with every reply, in order. */
  async pipeline(cmds: readonly (readonly Arg[])[], timeoutMs = 20000): Promise<RawReply[]> {
    return await this.send(encodePipeline(cmds), cmds.length, timeoutMs);
  }

  /** Writes raw bytes and waits for `count` replies (bounded by timeoutMs). */
  send(bytes: Uint8Array, count: number, timeoutMs = 10000): Promise<RawReply[]> {
    if (this.closed) return Promise.reject(new Error("connection closed"));
    const replies: Promise<RawReply>[] = [];
    for (let i = 0; i < count; i++) {
      replies.push(new Promise((resolve, reject) => this.waiters.push({ resolve, reject })));
    }
    this.sock.write(bytes);
    return this.bounded(Promise.all(replies), timeoutMs, count);
  }

  /** Closes our side and drops the connection. */
  close(): void {
    this.sock.destroy();
  }

  private bounded<T>(p: Promise<T>, ms: number, count: number): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const left = this.waiters.length;
        this.onClose(new Error(`timed out after ${ms} ms with ${left} of ${count} replies missing`));
        this.sock.destroy();
        reject(new Error(`timed out after ${ms} ms with ${left} of ${count} replies missing`));
      }, ms);
    });
    p.catch(() => {});
    return Promise.race([p, limit]).finally(() => clearTimeout(timer));
  }

  private onData(chunk: Uint8Array): void {
    this.append(chunk);
    while (this.start < this.end) {
      let got: [Reply, number] | null;
      try {
        got = parseReply(this.buf, this.start, this.end);
      } catch (err) {
        this.onClose(err as Error);
        this.sock.destroy();
        return;
      }
      if (got === null) return;
      const raw = this.buf.slice(this.start, got[1]);
      this.start = got[1];
      const waiter = this.waiters.shift();
      if (waiter === undefined) {
        this.onClose(new Error(`unexpected reply ${show(raw)}`));
        this.sock.destroy();
        return;
      }
      waiter.resolve({ reply: got[0], raw });
    }
    this.start = this.end = 0;
  }

  private append(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      if (live + chunk.length <= this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const next = new Uint8Array((live + chunk.length) * 2);
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  private onClose(err: Error): void {
    this.closed = true;
    this.markClosed();
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}

/** Connects, runs one command, closes. */
export async function callOnce(port: number, args: readonly Arg[]): Promise<Reply> {
  const client = await RespClient.connect(port);
  try {
    return await client.call(args);
  } finally {
    client.close();
  }
}
