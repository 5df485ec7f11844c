/**
 * Meta-command flag checks (mg ms md ma), mirroring memcached 1.6's flag pre-parse:
 * every flag token is judged by its first byte; a repeated flag or a byte >= 127 is a
 * duplicate, an unknown letter is invalid (both stop at once), and flags that carry
 * numbers have them checked, the last failure naming the error. The proxy runs the same
 * checks so that stripping `q` never turns a request memcached would refuse into one
 * it accepts, and so `b` keys are known to decode before they are hashed.
 */
import { decodeBase64Into } from "./base64.ts";
import { CNum, readCNumber } from "./cnum.ts";

/** Memcached's default error text for a meta command line it cannot use. */
export const BAD_FORMAT = "CLIENT_ERROR bad command line format";
const BAD_TOKEN = "CLIENT_ERROR bad token in command line format";

/** What a flag's token must satisfy; error "" keeps the previous error text (memcached's 'F'). */
interface FlagRule {
  check: (buf: Uint8Array, start: number, end: number) => boolean;
  error: string;
}

const anything = (): boolean => true;
const signed = (buf: Uint8Array, s: number, e: number) => !Number.isNaN(readCNumber(buf, s + 1, e, CNum.Signed));
const unsigned = (buf: Uint8Array, s: number, e: number) => !Number.isNaN(readCNumber(buf, s + 1, e, CNum.Unsigned));
const FREE: FlagRule = { check: anything, error: "" };

/** The flags memcached 1.6.18 knows, by first byte. */
const RULES: Record<string, FlagRule> = {
  N: { check: signed, error: BAD_TOKEN },
  T: { check: signed, error: BAD_TOKEN },
  R: { check: signed, error: BAD_TOKEN },
  F: { check: unsigned, error: "" },
  C: { check: unsigned, error: BAD_TOKEN },
  M: { check: (_b, s, e) => e - s === 2, error: "CLIENT_ERROR incorrect length for M token" },
  J: { check: unsigned, error: "CLIENT_ERROR invalid numeric initial value" },
  D: { check: unsigned, error: "CLIENT_ERROR invalid numeric delta value" },
};
for (const c of "lOPLkstcfvhuqI") RULES[c] = FREE;

const RULE_BY_BYTE: (FlagRule | undefined)[] = (() => {
  const table: (FlagRule | undefined)[] = new Array(128).fill(undefined);
  for (const c of Object.keys(RULES)) table[c.charCodeAt(0)] = RULES[c];
  return table;
})();

const B = 0x62;
const Q = 0x71;

/** Result of checking one meta command's flags; reused per parse. */
export class MetaFlags {
  /** "" when the flags are acceptable, else memcached's error line. */
  error = "";
  /** Token index of the `q` flag, or -1. */
  quietToken = -1;
  /** True when a `b` flag asks for a base64 key. */
  base64 = false;
}

const seen = new Uint8Array(128);

/**
 * Checks flag tokens tokS/tokE[from, count) of a meta command whose key token is keyS..keyE.
 * Fills `out`; the caller maps a failure to the command's own error text.
 */
export function checkMetaFlags(
  buf: Uint8Array,
  tokS: number[],
  tokE: number[],
  from: number,
  count: number,
  keyS: number,
  keyE: number,
  out: MetaFlags,
): void {
  out.error = "";
  out.quietToken = -1;
  out.base64 = false;
  seen.fill(0);
  let error = "";
  for (let t = from; t < count; t++) {
    const flag = buf[tokS[t]];
    if (flag >= 127 || seen[flag] !== 0) {
      out.error = "CLIENT_ERROR duplicate flag";
      return;
    }
    seen[flag] = 1;
    if (flag === B) {
      out.base64 = true;
      if (decodeBase64Into(buf, keyS, keyE, null) < 0) error = "CLIENT_ERROR error decoding key";
      continue;
    }
    const rule = RULE_BY_BYTE[flag];
    if (rule === undefined) {
      out.error = "CLIENT_ERROR invalid flag";
      return;
    }
    if (flag === Q) out.quietToken = t;
    if (!rule.check(buf, tokS[t], tokE[t])) error = rule.error === "" ? (error || BAD_FORMAT) : rule.error;
  }
  out.error = error;
}
