/**
 * RESP2 values for the proxy's own control connections (Sentinels, ROLE checks): a whole
 * reply, framed by the ReplyScanner, decoded into strings, numbers, nulls, errors and
 * arrays. Not on the request path: client replies are forwarded as bytes, never decoded.
 */

/** An error reply ("-ERR ..."). */
export class RespError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

export type RespValue = string | number | null | RespError | RespValue[];

const decoder = new TextDecoder();

/** Decode the one complete reply in `reply` (as the ReplyScanner framed it). */
export function decodeReply(reply: Uint8Array): RespValue {
  return decodeAt(reply, 0)[0];
}

function lineEnd(buf: Uint8Array, pos: number): number {
  for (let i = pos; i + 1 < buf.length; i++) if (buf[i] === 13 && buf[i + 1] === 10) return i;
  throw new Error("RESP: line without CRLF");
}

function decodeAt(buf: Uint8Array, pos: number): [RespValue, number] {
  const eol = lineEnd(buf, pos);
  const text = decoder.decode(buf.subarray(pos + 1, eol));
  const next = eol + 2;
  switch (buf[pos]) {
    case 0x2b: // +
      return [text, next];
    case 0x2d: // -
      return [new RespError(text), next];
    case 0x3a: // :
      return [Number(text), next];
    case 0x24: { // $
      const size = Number(text);
      if (size < 0) return [null, next];
      return [decoder.decode(buf.subarray(next, next + size)), next + size + 2];
    }
    case 0x2a: { // *
      const count = Number(text);
      if (count < 0) return [null, next];
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const [item, after] = decodeAt(buf, at);
        items.push(item);
        at = after;
      }
      return [items, at];
    }
  }
  throw new Error(`RESP: unexpected type byte ${buf[pos]}`);
}

/** The fields of a flat [name, value, name, value...] array (SENTINEL replicas entries). */
export function fieldsOf(value: RespValue): Map<string, string> {
  const out = new Map<string, string>();
  if (!Array.isArray(value)) return out;
  for (let i = 0; i + 1 < value.length; i += 2) {
    const [k, v] = [value[i], value[i + 1]];
    if (typeof k === "string" && typeof v === "string") out.set(k, v);
  }
  return out;
}
