/** Keys whose value is one of a few names stored as a code (`read_policy`, `migration`). */
import type { Parsed } from "./addr.ts";

/**
 * The name of each code (for messages and the admin API) and the parser of the YAML value.
 * @example codeNames({ none: 0, cache: 1 }, "is not a valid mode").parse("cache") // { ok: true, value: 1 }
 */
export function codeNames<C extends number>(
  table: Readonly<Record<string, C>>, phrase: string,
): { name(code: C): string; parse(text: string): Parsed<C> } {
  return {
    name: (code) => Object.keys(table).find((name) => table[name] === code) ?? String(code),
    parse: (text) => (Object.hasOwn(table, text) ? { ok: true, value: table[text] } : { ok: false, phrase }),
  };
}
