/**
 * Config errors: ConfError (what loadConf throws) and the Reporter that builds them in
 * twemproxy's wording, so every check - in load.ts or replicas.ts - names file, line, pool
 * and key the same way.
 */

/**
 * A config that nutcracker would refuse. `message` reads like
 * `nutcracker: conf/bad.yml:7: pool 'alpha': "hash" "foo" is not a valid hash`.
 */
export class ConfError extends Error {
  readonly file: string;
  readonly line: number;
  readonly pool: string | null;
  readonly key: string | null;
  /** The message without the "nutcracker: file:line: " prefix. */
  readonly detail: string;
  constructor(file: string, line: number, pool: string | null, key: string | null, detail: string) {
    super(`nutcracker: ${file}:${line}: ${detail}`);
    this.name = "ConfError";
    this.file = file;
    this.line = line;
    this.pool = pool;
    this.key = key;
    this.detail = detail;
  }
}

/** Quote a value for a message, as twemproxy prints it: in double quotes, as written. */
const q = (text: string) => `"${text}"`;

/**
 * Builds ConfErrors for one file (and one pool, once known).
 * @example new Reporter("a.yml").key("alpha", 3, "hash", "foo", "is not a valid hash")
 */
export class Reporter {
  readonly file: string;
  constructor(file: string) {
    this.file = file;
  }
  /** An error about the file as a whole. */
  whole(line: number, detail: string): ConfError {
    return new ConfError(this.file, line, null, null, detail);
  }
  /** An error about a pool itself (its name, its missing keys). */
  pool(pool: string, line: number, detail: string, key: string | null = null): ConfError {
    return new ConfError(this.file, line, pool, key, `pool '${pool}': ${detail}`);
  }
  /** An error about one directive: `pool 'p': "key" "value" phrase` (value omitted when null). */
  key(pool: string, line: number, key: string, value: string | null, phrase: string): ConfError {
    const what = value === null ? q(key) : `${q(key)} ${q(value)}`;
    return this.pool(pool, line, `${what} ${phrase}`, key);
  }
}
