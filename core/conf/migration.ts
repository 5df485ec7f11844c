/** The `migration` key: names as written in YAML, their codes, and the default per protocol. */
import type { Parsed } from "./addr.ts";
import { MigrationMode } from "./types.ts";

/** `migration` names as written in YAML -> their MigrationMode code. */
export const MIGRATION_MODES: Readonly<Record<string, MigrationMode>> = {
  none: MigrationMode.None,
  cache: MigrationMode.Cache,
  store: MigrationMode.Store,
};

/**
 * The YAML name of a MigrationMode code, for messages and the admin API.
 * @example migrationModeName(MigrationMode.Store) // "store"
 */
export function migrationModeName(code: MigrationMode): string {
  return Object.keys(MIGRATION_MODES).find((name) => MIGRATION_MODES[name] === code) ?? String(code);
}

/** conf_set_* for `migration`: one of MIGRATION_MODES' names. */
export function parseMigrationMode(text: string): Parsed<MigrationMode> {
  return Object.hasOwn(MIGRATION_MODES, text)
    ? { ok: true, value: MIGRATION_MODES[text] }
    : { ok: false, phrase: "is not a valid migration mode (none, cache or store)" };
}

/** Without the key: memcached pools keep their cache warm; redis pools switch at once, as twemproxy. */
export function defaultMigration(redis: boolean): MigrationMode {
  return redis ? MigrationMode.None : MigrationMode.Cache;
}
