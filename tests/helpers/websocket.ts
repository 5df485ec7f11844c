/**
 * A minimal RFC 6455 WebSocket client for text messages on node:net (Node 20 has no global
 * WebSocket; Node, Deno and Bun all have node:net): the upgrade handshake with its accept-key
 * check, masked client frames, fragmented and 16/64-bit-length server frames, ping/pong and
 * close. Enough to speak the DevTools protocol (helpers/cdp.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A client WebSocket carrying text messages (enough for CDP). */
export class TextSocket {
  onMessage: (text: string) => void = () => {};
  onClose: () => void = () => {};
  private buffer = new Uint8Array(0);
  private fragments: Uint8Array[] = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Uint8Array) => this.receive(chunk));
    socket.on("close", () => this.finish());
    socket.on("error", () => this.finish());
  }

  /** Open ws://host:port/path; rejects unless the server answers 101 with the right accept key. */
  static open(url: string, timeoutMs = 10_000): Promise<TextSocket> {
    const u = new URL(url);
    const key = randomBytes(16).toString("base64");
    const expected = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: u.hostname, port: Number(u.port) });
      let head = "";
      const timer = setTimeout(() => fail(new Error(`WebSocket ${url}: no handshake in ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once("error", fail);
      socket.once("connect", () => {
        socket.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      const onData = (chunk: Uint8Array) => {
        head += Buffer.from(chunk).toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        clearTimeout(timer);
        socket.off("error", fail);
        const lines = head.slice(0, end).split("\r\n");
        const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.split(":")[1]?.trim();
        if (!/^HTTP\/1\.1 101 /.test(lines[0]) || accept !== expected) return fail(new Error(`WebSocket ${url}: ${lines[0]}`));
        const ws = new TextSocket(socket);
        const rest = Buffer.from(head.slice(end + 4), "latin1");
        resolve(ws);
        if (rest.length > 0) ws.receive(new Uint8Array(rest));
      };
      socket.on("data", onData);
    });
  }

  send(text: string): void {
    if (this.closed) throw new Error("WebSocket closed");
    this.socket.write(frame(0x1, encoder.encode(text)));
  }

  close(): void {
    if (!this.closed) this.socket.write(frame(0x8, new Uint8Array(0)));
    this.socket.end();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  private receive(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer);
    joined.set(chunk, this.buffer.length);
    let at = 0;
    for (;;) {
      const parsed = parseFrame(joined, at);
      if (parsed === null) break;
      at = parsed.next;
      this.handle(parsed.fin, parsed.opcode, parsed.payload);
    }
    this.buffer = joined.slice(at);
  }

  private handle(fin: boolean, opcode: number, payload: Uint8Array): void {
    if (opcode === 0x9) return void this.socket.write(frame(0xa, payload));
    if (opcode === 0x8) return void this.socket.end();
    if (opcode !== 0x1 && opcode !== 0x0) return;
    this.fragments.push(payload);
    if (!fin) return;
    const total = this.fragments.reduce((n, f) => n + f.length, 0);
    const whole = new Uint8Array(total);
    let off = 0;
    for (const f of this.fragments) {
      whole.set(f, off);
      off += f.length;
    }
    this.fragments = [];
    this.onMessage(decoder.decode(whole));
  }
}

/** A masked client frame. */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const headLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = new Uint8Array(headLen + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out[2] = len >> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(len));
  }
  const mask = randomBytes(4);
  out.set(mask, headLen);
  for (let i = 0; i < len; i++) out[headLen + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/** One server frame at `at`, or null when it is not complete yet. */
function parseFrame(buf: Uint8Array, at: number): { fin: boolean; opcode: number; payload: Uint8Array; next: number } | null {
  if (buf.length - at < 2) return null;
  const fin = (buf[at] & 0x80) !== 0;
  const opcode = buf[at] & 0x0f;
  const masked = (buf[at + 1] & 0x80) !== 0;
  let len = buf[at + 1] & 0x7f;
  let off = at + 2;
  if (len === 126) {
    if (buf.length - off < 2) return null;
    len = (buf[off] << 8) | buf[off + 1];
    off += 2;
  } else if (len === 127) {
    if (buf.length - off < 8) return null;
    len = Number(new DataView(buf.buffer, buf.byteOffset + off, 8).getBigUint64(0));
    off += 8;
  }
  const maskAt = off;
  if (masked) off += 4;
  if (buf.length - off < len) return null;
  const payload = buf.slice(off, off + len);
  if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskAt + (i & 3)];
  return { fin, opcode, payload, next: off + len };
}
