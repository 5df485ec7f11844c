/**
 * Multi-key get/gets/gat/gats: one command per server, merged back in the client's
 * key order with a single END, as twemproxy does. A failed fragment fails the whole
 * request with that fragment's error.
 */
import { McCmd, type McRequest } from "../memcache/request.ts";
import { encodeFragment } from "../memcache/encode.ts";
import { isErrorReply, splitValues } from "../memcache/reply.ts";
import type { Req } from "./req.ts";
import type { Route, SessionHost } from "./protocol.ts";

const encoder = new TextEncoder();
const END = encoder.encode("END\r\n");

export function fragmentMultiGet(parsed: McRequest, buf: Uint8Array, clientBytes: number, host: SessionHost): void {
  const keys: Uint8Array[] = [];
  for (let k = 0; k < parsed.keyCount; k++) keys.push(buf.subarray(parsed.keyStart[k], parsed.keyEnd[k]));
  const groups = new Map<Route | null, number[]>();
  for (let k = 0; k < keys.length; k++) {
    const route = host.route(buf, parsed.keyStart[k], parsed.keyEnd[k]);
    const group = groups.get(route);
    if (group === undefined) groups.set(route, [k]);
    else group.push(k);
  }
  const parent = host.newReq(END, clientBytes);
  parent.kind = parsed.cmd;
  parent.merge = (p) => mergeValues(p, keys);
  parent.frags = [];
  parent.fragsLeft = groups.size;
  host.enqueue(parent);
  for (const [route, group] of groups) {
    const frag = host.newReq(encodeFragment(buf, parsed, group), 0);
    frag.kind = parsed.cmd;
    frag.read = parsed.cmd === McCmd.Get || parsed.cmd === McCmd.Gat;
    frag.parent = parent;
    frag.fragKeys = group;
    parent.frags.push(frag);
    host.send(frag, route);
  }
}

function mergeValues(parent: Req, keys: Uint8Array[]): Uint8Array {
  const values: (Uint8Array | undefined)[] = new Array(keys.length);
  for (const frag of parent.frags!) {
    const reply = frag.reply;
    if (reply === null || isErrorReply(reply)) return reply ?? END;
    let next = 0;
    const items = splitValues(reply);
    for (const k of frag.fragKeys!) {
      if (next < items.length && sameBytes(items[next].key, keys[k])) values[k] = items[next++].bytes;
    }
  }
  return joinValues(values);
}

function joinValues(values: (Uint8Array | undefined)[]): Uint8Array {
  let size = END.length;
  for (const value of values) size += value?.length ?? 0;
  const out = new Uint8Array(size);
  let at = 0;
  for (const value of values) {
    if (value === undefined) continue;
    out.set(value, at);
    at += value.length;
  }
  out.set(END, at);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
