/**
 * Where a Redis command's keys are: Redis 7's key specs (COMMAND INFO), written once per
 * command that names a key in a small notation, and keyPositions(), which finds them in a
 * parsed request the way Redis's getKeysUsingKeySpecs does. The proxy forwards a command
 * naming several keys only when they all live on one server; tests check this table
 * against a live redis-server's key specs and COMMAND GETKEYS.
 *
 * Notation, one spec per word (Redis's begin_search + find_keys):
 *   `1`          argv[1]                        (index 1, range lastkey 0)
 *   `1+1`        argv[1] and argv[2]            (range lastkey 1: LCS)
 *   `1..`        argv[1] to the last argument   (lastkey -1); `1..-2` stops before the last
 *   `1../2`      every second one from argv[1]  (keystep 2: MSET, MSETNX)
 *   `2#`         argv[2] is numkeys, that many keys follow it (keynum)
 *   `STORE@6`    the argument after the word STORE, searched from argv[6] on (negative: from
 *                the end, backwards); `STREAMS@1..%2`: the first half of what follows it
 *   `sort-store` SORT's STORE destination, found as Redis's sortGetKeys finds it
 */
import { latin1Bytes, readInt } from "../bytes.ts";
import type { RequestSlots } from "./request.ts";

/** One key spec: where the keys begin, and how to find them from there. */
export interface KeySpec {
  /** begin_search index: the first key (or numkeys) argument; 0 for a keyword search. */
  readonly index: number;
  /** begin_search keyword, lower-case; null for an index. */
  readonly keyword: Uint8Array | null;
  /** Where the keyword search starts: argv[startFrom] on, or (< 0) from argc+startFrom backwards. */
  readonly startFrom: number;
  /** find_keys keynum: the argument at the beginning is numkeys; the keys follow it. */
  readonly keynum: boolean;
  /** find_keys range: the last key relative to the first (>= 0), or to the end (-1: the last argument). */
  readonly lastKey: number;
  readonly step: number;
  /** With lastKey -1: only the first 1/limit of the arguments from the first key are keys (XREAD). */
  readonly limit: number;
  /** SORT ... STORE destination (Redis's key spec says "unknown" and sortGetKeys finds it). */
  readonly sortStore: boolean;
}

/**
 * Every command whose keys are not simply argv[firstKey] (the command table's routing key),
 * including refused ones, so the table is true to Redis everywhere.
 */
const KEY_NOTATION: Readonly<Record<string, string>> = {
  // Two fixed keys.
  rename: "1 2", renamenx: "1 2", rpoplpush: "1 2", smove: "1 2", lmove: "1 2", copy: "1 2",
  zrangestore: "1 2", geosearchstore: "1 2", brpoplpush: "1 2", blmove: "1 2", lcs: "1+1",
  // Every argument from argv[1] (or after a destination) is a key.
  mget: "1..", del: "1..", unlink: "1..", exists: "1..", touch: "1..", watch: "1..",
  sdiff: "1..", sinter: "1..", sunion: "1..", pfcount: "1..",
  sdiffstore: "1 2..", sinterstore: "1 2..", sunionstore: "1 2..", pfmerge: "1 2..", bitop: "2 3..",
  mset: "1../2", msetnx: "1../2",
  // Blocking pops: every argument but the timeout.
  blpop: "1..-2", brpop: "1..-2", bzpopmin: "1..-2", bzpopmax: "1..-2",
  // numkeys, then the keys.
  zdiff: "1#", zinter: "1#", zunion: "1#", sintercard: "1#", zintercard: "1#", lmpop: "1#", zmpop: "1#",
  zdiffstore: "1 2#", zinterstore: "1 2#", zunionstore: "1 2#", blmpop: "2#", bzmpop: "2#",
  eval: "2#", evalsha: "2#", eval_ro: "2#", evalsha_ro: "2#", fcall: "2#", fcall_ro: "2#",
  // A destination after a keyword.
  georadius: "1 STORE@6 STOREDIST@6", georadiusbymember: "1 STORE@5 STOREDIST@5", sort: "1 sort-store",
  xread: "STREAMS@1..%2", xreadgroup: "STREAMS@4..%2", migrate: "3 KEYS@-2..",
  // Refused single-key commands whose routing key the table leaves at 0.
  memory: "2", pfdebug: "2", "restore-asking": "1",
  // Channels, not keys (Redis flags the sharded ones' specs not_key), whatever routes them.
  publish: "", spublish: "", ssubscribe: "", sunsubscribe: "", subscribe: "", unsubscribe: "",
};

const WORD = /^(?:(\d+)|([A-Z]+)@(-?\d+))(?:(#)|\+(\d+)|\.\.(-\d+)?(?:\/(\d+))?(?:%(\d+))?)?$/;

function parseSpec(word: string): KeySpec {
  const base = { index: 0, keyword: null, startFrom: 0, keynum: false, lastKey: 0, step: 1, limit: 0, sortStore: false };
  if (word === "sort-store") return { ...base, sortStore: true };
  const m = WORD.exec(word);
  if (m === null) throw new Error("bad key spec " + word);
  const [, index, keyword, startFrom, keynum, plus, until, step, limit] = m;
  const range = word.includes("..");
  return {
    ...base,
    index: index === undefined ? 0 : Number(index),
    keyword: keyword === undefined ? null : latin1Bytes(keyword.toLowerCase()),
    startFrom: startFrom === undefined ? 0 : Number(startFrom),
    keynum: keynum !== undefined,
    lastKey: plus !== undefined ? Number(plus) : range ? Number(until ?? -1) : 0,
    step: step === undefined ? 1 : Number(step),
    limit: limit === undefined ? 0 : Number(limit),
  };
}

/**
 * The key specs of command `name` whose routing key is argv[firstKey] (0: keyless).
 * @example keySpecsOf("rename", 1).length // 2
 */
export function keySpecsOf(name: string, firstKey: number): readonly KeySpec[] {
  const notation = Object.hasOwn(KEY_NOTATION, name) ? KEY_NOTATION[name] : firstKey > 0 ? String(firstKey) : "";
  return notation === "" ? [] : notation.split(" ").map(parseSpec);
}

/** True when the specs may name more than one key (the proxy then checks they share a server). */
export function namesSeveralKeys(specs: readonly KeySpec[]): boolean {
  return specs.length > 1 || specs.some((s) => s.keynum || s.lastKey !== 0 || s.sortStore);
}

/** The notation of every command listed explicitly (tests compare it with Redis). */
export const KEY_NOTATIONS: Readonly<Record<string, string>> = KEY_NOTATION;

/**
 * Fill `out` with the argument numbers of the request's keys, in spec order, and return
 * how many there are; -1 when a numkeys argument is not a count that fits the arguments
 * (then Redis itself answers with its error). Specs that find nothing (an absent keyword,
 * PFMERGE with no source) are skipped, as COMMAND GETKEYS does for a partial search.
 */
export function keyPositions(specs: readonly KeySpec[], buf: Uint8Array, slots: RequestSlots, out: number[]): number {
  out.length = 0;
  const argc = slots.argc;
  for (const spec of specs) {
    if (spec.sortStore) {
      sortStore(buf, slots, out);
      continue;
    }
    const first = spec.keyword === null ? spec.index : keywordEnd(spec, buf, slots);
    if (first <= 0 || first >= argc) continue;
    if (spec.keynum) {
      const n = readInt(buf, slots.argStart[first], slots.argEnd[first]);
      if (!(n >= 0) || first + n >= argc) return -1;
      for (let i = first + 1; i <= first + n; i++) out.push(i);
      continue;
    }
    const last = lastOf(spec, first, argc);
    if (last >= argc || last < first) continue;
    for (let i = first; i <= last; i += spec.step) out.push(i);
  }
  return out.length;
}

function lastOf(spec: KeySpec, first: number, argc: number): number {
  if (spec.lastKey >= 0) return first + spec.lastKey;
  if (spec.limit === 0) return argc + spec.lastKey;
  return first + Math.floor((argc - first) / spec.limit) + spec.lastKey;
}

/** The argument after the spec's keyword (searched as Redis searches it), or 0 when absent. */
function keywordEnd(spec: KeySpec, buf: Uint8Array, slots: RequestSlots): number {
  const argc = slots.argc;
  if (spec.startFrom > 0) {
    for (let i = spec.startFrom; i < argc - 1; i++) if (argIs(buf, slots, i, spec.keyword!)) return i + 1;
    return 0;
  }
  for (let i = argc + spec.startFrom; i > 1 && i < argc; i--) if (argIs(buf, slots, i, spec.keyword!)) return i + 1;
  return 0;
}

const LIMIT = latin1Bytes("limit");
const GET = latin1Bytes("get");
const BY = latin1Bytes("by");
const STORE = latin1Bytes("store");

/** SORT key [BY p] [LIMIT o c] [GET p ...] [ASC|DESC] [ALPHA] [STORE dst]: the last STORE's destination. */
function sortStore(buf: Uint8Array, slots: RequestSlots, out: number[]): void {
  let store = 0;
  for (let i = 2; i < slots.argc; i++) {
    if (argIs(buf, slots, i, LIMIT)) i += 2;
    else if (argIs(buf, slots, i, GET) || argIs(buf, slots, i, BY)) i += 1;
    else if (argIs(buf, slots, i, STORE) && i + 1 < slots.argc) store = i + 1;
  }
  if (store > 0) out.push(store);
}

/** Case-insensitive compare of argument i with a lower-case ASCII word. */
function argIs(buf: Uint8Array, slots: RequestSlots, i: number, word: Uint8Array): boolean {
  const start = slots.argStart[i];
  if (slots.argEnd[i] - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if ((buf[start + k] | 0x20) !== word[k]) return false;
  return true;
}
