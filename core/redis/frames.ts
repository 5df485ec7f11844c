/**
 * Whole replies out of a stream of chunks, for the proxy's own connections (Sentinel, ROLE
 * checks, pub/sub subscribers): the ReplyScanner finds each end, split replies are joined
 * once. Each reply is a fresh array the receiver may keep.
 */
import { concatBytes } from "../bytes.ts";
import { ReplyScanner } from "./reply.ts";

export class ReplyFrames {
  private readonly scanner = new ReplyScanner();
  private partial: Uint8Array[] = [];
  private readonly onReply: (reply: Uint8Array) => void;

  constructor(onReply: (reply: Uint8Array) => void) {
    this.onReply = onReply;
  }

  /** Feed a chunk; false when the bytes are not RESP (the connection should be closed). */
  push(chunk: Uint8Array): boolean {
    let pos = 0;
    while (pos < chunk.length) {
      const end = this.scanner.scan(chunk, pos);
      if (end === -1) {
        this.partial.push(chunk.subarray(pos));
        return true;
      }
      if (end < 0) return false;
      const reply = concatBytes([...this.partial, chunk.subarray(pos, end)]);
      this.partial = [];
      pos = end;
      this.onReply(reply);
    }
    return true;
  }

  /** A new connection: forget a reply cut off by the last one. */
  reset(): void {
    this.scanner.reset();
    this.partial = [];
  }
}
