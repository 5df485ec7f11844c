/**
 * Config loading, nutcracker-compatible: `loadConf(text, file)` turns nutcracker.yml
 * text into a frozen Conf or throws a ConfError whose message names file, line, pool
 * and key. Reading the file is the caller's job (the host), so this stays pure.
 */
export { ConfError, loadConf } from "./load.ts";
export { DEFAULTS, DIRECTIVES } from "./directives.ts";
export { atoi, parseListen, parseReplica, parseServer } from "./addr.ts";
export { READ_POLICIES, readPolicyName } from "./replicas.ts";
export { ReadPolicy } from "./types.ts";
export type { Conf, PoolConf, ServerConf, ShardConf } from "./types.ts";
