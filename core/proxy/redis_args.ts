/** Small readers over a parsed request's argument spans (local commands and routing). */
import type { RequestSlots } from "../redis/request.ts";

/** Argument i as a view into buf. */
export function argBytes(buf: Uint8Array, slots: RequestSlots, i: number): Uint8Array {
  return buf.subarray(slots.argStart[i], slots.argEnd[i]);
}

/** Argument i as a decimal integer, or NaN when it is not one. */
export function argInt(buf: Uint8Array, slots: RequestSlots, i: number): number {
  const start = slots.argStart[i];
  const end = slots.argEnd[i];
  if (start >= end || end - start > 15) return NaN;
  let sign = 1;
  let at = start;
  if (buf[at] === 0x2d) {
    sign = -1;
    at++;
    if (at === end) return NaN;
  }
  let value = 0;
  for (; at < end; at++) {
    const digit = buf[at] - 0x30;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return sign * value;
}

/** Case-insensitive compare of argument i with a lower-case ASCII word. */
export function argEquals(buf: Uint8Array, slots: RequestSlots, i: number, word: string): boolean {
  const start = slots.argStart[i];
  if (slots.argEnd[i] - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if ((buf[start + k] | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}

/** Constant-time-ish compare of argument i with a password. */
export function argIsSecret(buf: Uint8Array, slots: RequestSlots, i: number, secret: Uint8Array): boolean {
  const start = slots.argStart[i];
  const length = slots.argEnd[i] - start;
  let diff = length ^ secret.length;
  for (let k = 0; k < secret.length; k++) diff |= (k < length ? buf[start + k] : 0) ^ secret[k];
  return diff === 0;
}
