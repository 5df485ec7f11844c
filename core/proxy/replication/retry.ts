/**
 * Reads are idempotent, so a read that a node could not serve (its connection failed or
 * timed out, or it answered -LOADING / -MASTERDOWN) is sent once to another node of the
 * shard, and the node is set aside until the next replica check says otherwise.
 */
import { ReadState, type Server } from "../server.ts";

const LOADING = new TextEncoder().encode("-LOADING");
const MASTERDOWN = new TextEncoder().encode("-MASTERDOWN");

/** A failure another node may not have: the transport, or a node not ready to serve. */
export function retryableFailure(reply: Uint8Array | null, transportFailed: boolean): boolean {
  if (transportFailed) return true;
  return reply !== null && reply[0] === 0x2d && (startsWith(reply, LOADING) || startsWith(reply, MASTERDOWN));
}

/** Take `node` out of the read choice until its next check. */
export function setAside(node: Server, reply: Uint8Array | null, transportFailed: boolean): void {
  if (transportFailed) node.readState = ReadState.Down;
  else if (reply !== null && startsWith(reply, LOADING)) node.readState = ReadState.Loading;
  else node.readState = ReadState.LinkDown;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
