/**
 * Multi-key Redis commands (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH): split into one
 * command per server and merged back as twemproxy does — MGET values in key order,
 * counts summed, MSET OK only if every part is OK, otherwise the first error.
 */
import type { RequestSlots } from "../redis/request.ts";
import {
  arrayElements,
  arrayHeader,
  type CommandSpec,
  encodeCommandParts,
  errorReply,
  integerReply,
  isError,
  isOk,
  readInteger,
} from "../redis/mod.ts";
import type { Req } from "./req.ts";
import type { Route, SessionHost } from "./protocol.ts";

/** Builds a parent's reply from its answered fragments. */
export type Merger = (parent: Req) => Uint8Array;

/**
 * Sends one fragment per server for a multi-key command. Returns false when the
 * command has a single key (then it is forwarded unchanged, as twemproxy does).
 */
export function fragmentMultiKey(
  spec: CommandSpec, buf: Uint8Array, slots: RequestSlots, clientBytes: number, host: SessionHost,
): boolean {
  const step = spec.keyStep ?? 1;
  const keyCount = (slots.argc - 1) / step;
  if (keyCount <= 1) return false;
  const groups = groupKeysByShard(buf, slots, step, keyCount, host);
  const parent = host.newReq(EMPTY, clientBytes);
  parent.command = spec.name;
  parent.merge = spec.name === "mget" ? mergeMget : spec.name === "mset" ? mergeMset : mergeSum;
  parent.frags = [];
  host.enqueue(parent);
  parent.fragsLeft = groups.size;
  for (const { route, keys } of groups.values()) {
    const frag = host.newReq(encodeFragment(buf, slots, step, keys), 0);
    frag.command = spec.name;
    frag.read = spec.readonly;
    frag.parent = parent;
    frag.fragKeys = keys;
    parent.frags.push(frag);
    host.send(frag, route);
  }
  return true;
}

/**
 * Key numbers (0-based, in request order) by the part they travel in: one per shard, or in a
 * Redis Cluster one per hash slot (a node refuses a multi-key command spanning its slots).
 */
function groupKeysByShard(
  buf: Uint8Array, slots: RequestSlots, step: number, keyCount: number, host: SessionHost,
): Map<Route | null | number, { route: Route | null; keys: number[] }> {
  const groups = new Map<Route | null | number, { route: Route | null; keys: number[] }>();
  for (let k = 0; k < keyCount; k++) {
    const arg = 1 + k * step;
    const start = slots.argStart[arg];
    const end = slots.argEnd[arg];
    const route = host.route(buf, start, end);
    const slot = host.slotOf(buf, start, end);
    const group = groups.get(slot >= 0 ? slot : route);
    if (group === undefined) groups.set(slot >= 0 ? slot : route, { route, keys: [k] });
    else group.keys.push(k);
  }
  return groups;
}

/** The command name + each of this server's keys (with values for MSET), copied once from the client's buffer. */
function encodeFragment(buf: Uint8Array, slots: RequestSlots, step: number, keys: number[]): Uint8Array {
  const pick: number[] = [0];
  for (const k of keys) for (let j = 0; j < step; j++) pick.push(1 + k * step + j);
  return encodeCommandParts(NO_HEAD, buf, slots.argStart, slots.argEnd, pick);
}

/** The first fragment's error (or a stand-in for a fragment left without a reply), else null. */
export function firstError(parent: Req): Uint8Array | null {
  for (const frag of parent.frags!) {
    if (frag.reply === null || isError(frag.reply)) return frag.reply ?? BAD_FRAGMENT;
  }
  return null;
}

const mergeMget: Merger = (parent) => {
  const error = firstError(parent);
  if (error !== null) return error;
  const values: Uint8Array[] = [];
  for (const frag of parent.frags!) {
    const elements = arrayElements(frag.reply!);
    if (elements === null || elements.length !== frag.fragKeys!.length) return BAD_FRAGMENT;
    frag.fragKeys!.forEach((k, i) => values[k] = elements[i]);
  }
  return joinArray(values);
};

/** Integer replies summed (DEL, EXISTS, DBSIZE). */
export const mergeSum: Merger = (parent) => {
  const error = firstError(parent);
  if (error !== null) return error;
  let total = 0;
  for (const frag of parent.frags!) {
    const n = readInteger(frag.reply!);
    if (n === null) return BAD_FRAGMENT;
    total += n;
  }
  return integerReply(total);
};

const mergeMset: Merger = (parent) => {
  for (const frag of parent.frags!) {
    if (frag.reply === null || !isOk(frag.reply)) return frag.reply ?? BAD_FRAGMENT;
  }
  return parent.frags![0].reply!;
};

/** An array reply of already encoded elements. */
export function joinArray(values: Uint8Array[]): Uint8Array {
  const header = arrayHeader(values.length);
  let size = header.length;
  for (const value of values) size += value.length;
  const out = new Uint8Array(size);
  out.set(header, 0);
  let at = header.length;
  for (const value of values) {
    out.set(value, at);
    at += value.length;
  }
  return out;
}

const EMPTY = new Uint8Array(0);
const NO_HEAD: Uint8Array[] = [];
export const BAD_FRAGMENT = errorReply("ERR unexpected reply from a server for a fragment");
