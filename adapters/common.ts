/**
 * Small pieces all three adapters share: buffer sizes, the default handlers a
 * fresh Conn starts with, and unix socket file housekeeping (node:fs works in
 * Node, Deno and Bun alike).
 */
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import type { Addr } from "../core/net.ts";
import { netError } from "./errors.ts";

/** write() returns false once more than this many bytes wait in user space. */
export const HIGH_WATER_MARK = 64 * 1024;

/**
 * end() sends our FIN once the queue is flushed, then waits for the peer's FIN
 * (so the peer reads the whole reply instead of a reset). A peer that neither
 * reads nor closes cannot hold the connection longer than this.
 */
export const END_TIMEOUT_MS = 5_000;

/** Until the core assigns its handlers, events go nowhere. */
export function noop(): void {}

/** A view that is a plain Uint8Array (Node hands out Buffers, whose slice() does not copy; Bun is asked for Uint8Arrays). */
export function plainBytes(chunk: Uint8Array): Uint8Array {
  if (chunk.constructor === Uint8Array) return chunk;
  return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Run a synchronous setup step as a promise; a throw becomes a normalized rejection. */
export function settle<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(netError(err));
  }
}

/** Join queued chunks into one write, so many small writes cost one syscall. */
export function concatChunks(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Remove a socket file left behind by a process that died, so listen() can bind.
 * Only sockets are removed: a regular file at the path still makes listen fail.
 */
export function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there (or not ours to remove): listen() reports the real problem.
  }
}

/** Apply the permission bits from a "path mode" listen line after binding. */
export function applyUnixMode(addr: Addr): void {
  if (addr.kind === "unix" && addr.mode !== undefined) chmodSync(addr.path, addr.mode);
}

/** Delete our socket file when the listener closes (Node does this itself; the others do not). */
export function removeSocketFile(path: string): void {
  removeStaleSocket(path);
}
