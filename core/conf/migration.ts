/** The `migration` key: names as written in YAML, their codes, and the default per protocol. */
import { codeNames } from "./codes.ts";
import { MigrationMode } from "./types.ts";

/** `migration` names as written in YAML -> their MigrationMode code. */
export const MIGRATION_MODES: Readonly<Record<string, MigrationMode>> = {
  none: MigrationMode.None,
  cache: MigrationMode.Cache,
  store: MigrationMode.Store,
};

const MODES = codeNames(MIGRATION_MODES, "is not a valid migration mode (none, cache or store)");

/**
 * The YAML name of a MigrationMode code, for messages and the admin API.
 * @example migrationModeName(MigrationMode.Store) // "store"
 */
export const migrationModeName = MODES.name;

/** conf_set_* for `migration`: one of MIGRATION_MODES' names. */
export const parseMigrationMode = MODES.parse;

/** Without the key: memcached pools keep their cache warm; redis pools switch at once, as twemproxy. */
export function defaultMigration(redis: boolean): MigrationMode {
  return redis ? MigrationMode.None : MigrationMode.Cache;
}
