/**
 * memcached wire helpers for the memcache end-to-end tests: a reply framer that knows
 * classic (VALUE ... END) and meta (VA <size>) replies, a runner that sends a script of
 * requests on one connection and collects every reply up to a trailing `mn` sentinel,
 * and normalisers for the parts of a reply that differ between servers (cas values).
 * Uses node:net (through PipeClient) only, so Node, Deno and Bun all run it.
 */
import assert from "node:assert/strict";
import { memcachePoolYaml, startTestProxy, type TestProxy } from "./proxy.ts";
import { type ServerProcess, startMemcached } from "./servers.ts";
import { concat, show } from "./resp.ts";
import { PipeClient, waitFor } from "./soak.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");

/** One request of a script: text (UTF-8) or raw bytes, sent as is. */
export type McPiece = string | Uint8Array;

/** The bytes of a piece. */
export function pieceBytes(piece: McPiece): Uint8Array {
  return typeof piece === "string" ? encoder.encode(piece) : piece;
}

function findCrlf(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  return -1;
}

function startsWith(buf: Uint8Array, pos: number, end: number, text: string): boolean {
  if (end - pos < text.length) return false;
  for (let i = 0; i < text.length; i++) if (buf[pos + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** The decimal token number `index` of the line buf[start, eol), or NaN. */
function lineNumber(buf: Uint8Array, start: number, eol: number, index: number): number {
  const token = decoder.decode(buf.subarray(start, eol)).split(" ")[index];
  return token !== undefined && /^\d+$/.test(token) ? Number(token) : NaN;
}

/**
 * Frames memcached replies: one line; VALUE items up to END; or a meta `VA <size>`
 * line with its data block. Returns the offset past one reply, or -1 for more bytes.
 */
export function mcFramer(buf: Uint8Array, start: number, end: number): number {
  let pos = start;
  for (;;) {
    const eol = findCrlf(buf, pos, end);
    if (eol < 0) return -1;
    const value = startsWith(buf, pos, eol, "VALUE ");
    if (!value && !startsWith(buf, pos, eol, "VA ")) return eol + 2;
    const size = lineNumber(buf, pos, eol, value ? 3 : 1);
    if (Number.isNaN(size)) return eol + 2;
    const next = eol + 2 + size + 2;
    if (next > end) return -1;
    if (!value) return next;
    pos = next;
  }
}

/** A reply as latin1 text (one char per byte), for exact comparisons in assertions. */
export function latin1(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * Replaces what legitimately differs between two memcached servers given the same
 * commands: the cas unique of `VALUE k f n <cas>` lines and of meta `c<cas>` tokens.
 */
export function normalizeCas(reply: string): string {
  return reply
    .replace(/^(VALUE \S+ \d+ \d+) \d+\r\n/gm, "$1 <cas>\r\n")
    .replace(/^(?:VA|HD|EN|NF|NS|EX)(?: [^\r\n]*)?\r\n/gm, (line) => line.replace(/ c\d+(?= |\r)/g, " c<cas>"));
}

/** What one script run returned. */
export interface ScriptRun {
  /** Every reply before the sentinel, in order. */
  replies: Uint8Array[];
  /** Bytes received after the last complete reply (0 when in step). */
  leftover: number;
}

/** Options for runScript. */
export interface ScriptOptions {
  /** Bound on the whole run, ms (default 15000). */
  timeoutMs?: number;
  /** Write the script in pieces of at most this many bytes (default: one write). */
  chunk?: number;
  /** Pause between pieces, ms (default 0: the next timer tick). */
  pauseMs?: number;
}

/**
 * Sends the requests on one new connection followed by a sentinel `mn`, and returns the
 * replies that came before the sentinel's `MN`. `mn` requests inside the script are
 * counted from the pieces, so each piece must hold whole requests.
 */
export async function runScript(port: number, pieces: readonly McPiece[], opts: ScriptOptions = {}): Promise<ScriptRun> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  const bytes = concat([...pieces.map(pieceBytes), encoder.encode("mn\r\n")]);
  const sentinels = 1 + pieces.filter((p) => /^mn(\r?\n| )/.test(typeof p === "string" ? p : latin1(p.subarray(0, 3)))).length;
  const client = await PipeClient.connect(port, mcFramer);
  try {
    await writeInChunks(client, bytes, opts.chunk ?? bytes.length, opts.pauseMs ?? 0);
    const mnCount = () => client.replies.filter(isMn).length;
    const ok = await waitFor(() => mnCount() >= sentinels || client.closed, timeoutMs);
    if (!ok || mnCount() < sentinels) {
      const last = client.replies.slice(-3).map((r) => show(r, 200)).join(" | ");
      throw new Error(`runScript on port ${port}: ${client.replies.length} replies, no sentinel MN (${ok ? "closed" : "timed out"}); last: ${last}`);
    }
    const replies = client.replies.slice(0, client.replies.length - 1);
    return { replies, leftover: client.leftover };
  } finally {
    client.destroy();
  }
}

function isMn(reply: Uint8Array): boolean {
  return reply.length === 4 && startsWith(reply, 0, 4, "MN\r\n");
}

async function writeInChunks(client: PipeClient, bytes: Uint8Array, chunk: number, pauseMs: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += chunk) {
    client.write(bytes.subarray(at, Math.min(bytes.length, at + chunk)));
    if (at + chunk < bytes.length) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/**
 * Asserts two runs of the same script gave the same replies (after `normalize`),
 * naming the first request whose reply differs.
 */
export function diffRuns(
  got: ScriptRun,
  want: ScriptRun,
  pieces: readonly McPiece[],
  normalize: (reply: string) => string = normalizeCas,
): string | null {
  const a = got.replies.map((r) => normalize(latin1(r)));
  const b = want.replies.map((r) => normalize(latin1(r)));
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    const context = pieces.map((p) => show(pieceBytes(p), 80)).slice(0, 400).join(" ");
    return `reply #${i} differs: proxy ${JSON.stringify(a[i]?.slice(0, 300))} vs memcached ${JSON.stringify(b[i]?.slice(0, 300))}` +
      ` (proxy ${a.length} replies, memcached ${b.length}); script: ${context.slice(0, 1500)}`;
  }
  if (got.leftover !== want.leftover) return `leftover bytes: proxy ${got.leftover}, memcached ${want.leftover}`;
  return null;
}

/** "<verb> <key> <flags> <exptime> <bytes>[ noreply]\r\n<data>\r\n" as bytes. */
export function storageCmd(verb: string, key: string | Uint8Array, data: string | Uint8Array, flags = 0, exptime = 0, tail = ""): Uint8Array {
  const k = pieceBytes(key);
  const d = pieceBytes(data);
  return concat([encoder.encode(`${verb} `), k, encoder.encode(` ${flags} ${exptime} ${d.length}${tail}\r\n`), d, encoder.encode("\r\n")]);
}

/** Backends behind a proxy, and one plain memcached to compare the proxy with. */
export interface McRig {
  backends: ServerProcess[];
  plain: ServerProcess;
  tp: TestProxy;
  /** Stops the proxy, then every server by PID. */
  stop(): Promise<void>;
}

/**
 * Starts `count` backends and one plain memcached (all with `args`) and a proxy over
 * the backends with the pool lines `extra` (default `hash: md5`, so keys spread).
 */
export async function startRig(args: string[] = [], count = 4, extra = "  hash: md5\n"): Promise<McRig> {
  const servers = await Promise.all(Array.from({ length: count + 1 }, () => startMemcached({ args })));
  const plain = servers.pop()!;
  const stopServers = () => Promise.all([...servers, plain].map((s) => s.stop())).then(() => {});
  try {
    const tp = await startTestProxy(memcachePoolYaml(servers.map((b) => b.port), extra));
    return { backends: servers, plain, tp, stop: () => tp.close().finally(stopServers) };
  } catch (err) {
    await stopServers();
    throw err;
  }
}

/** Runs the script through the proxy and on the plain memcached; asserts equal (normalised) replies. */
export async function same(
  rig: McRig,
  pieces: McPiece[],
  opts: ScriptOptions = {},
  normalize: (reply: string) => string = normalizeCas,
): Promise<ScriptRun> {
  const [got, want] = await Promise.all([runScript(rig.tp.port(), pieces, opts), runScript(rig.plain.port, pieces, opts)]);
  assert.equal(diffRuns(got, want, pieces, normalize), null);
  return got;
}
