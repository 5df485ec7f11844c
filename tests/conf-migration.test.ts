/**
 * The online expansion keys (`migration`, `migration_rate`, `migration_warmup`): defaults
 * by protocol, values read as codes, and config errors naming file, line, pool and key.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MigrationMode } from "../core/conf/types.ts";
import { migrationModeName } from "../core/conf/migration.ts";
import { expectConfError, firstPool } from "./helpers/conf.ts";

const FILE = "conf/migration.yml";

/** A one-server pool; `lines` (indented as pool keys) start on line 6. */
function pool(redis: boolean, lines: string[] = []): string {
  return ["alpha:", "  listen: 127.0.0.1:22121", `  redis: ${redis}`, "  servers:", "   - 127.0.0.1:6379:1", ...lines.map((l) => `  ${l}`), ""]
    .join("\n");
}

const at = (line: number) => `nutcracker: ${FILE}:${line}: pool 'alpha': `;

describe("config: migration keys", () => {
  it("defaults: cache for memcached pools, none for redis pools (twemproxy's switch at once); 5000 keys/s; 1 h warmup", () => {
    const mc = firstPool(pool(false), FILE);
    assert.equal(mc.migration, MigrationMode.Cache);
    assert.equal(firstPool(pool(true), FILE).migration, MigrationMode.None);
    assert.equal(mc.migrationRate, 5000);
    assert.equal(mc.migrationWarmup, 3_600_000);
  });

  it("reads every mode by name, a rate of 0 (unlimited) and a warmup", () => {
    for (const name of ["none", "cache", "store"]) {
      assert.equal(migrationModeName(firstPool(pool(true, [`migration: ${name}`]), FILE).migration), name);
    }
    const conf = firstPool(pool(true, ["migration: store", "migration_rate: 0", "migration_warmup: 1000"]), FILE);
    assert.deepEqual([conf.migrationRate, conf.migrationWarmup], [0, 1000]);
  });

  it("refuses an unknown mode, store in a memcached pool, any mode with redis_cluster, and rates that are not numbers", () => {
    expectConfError(pool(true, ["migration: fast"]), FILE, `${at(6)}"migration" "fast" is not a valid migration mode (none, cache or store)`);
    expectConfError(pool(false, ["migration: store"]), FILE,
      `${at(6)}"migration" "store" is only valid for a redis pool (store moves keys with MIGRATE)`);
    expectConfError(pool(true, ["distribution: redis_cluster", "migration: cache"]), FILE,
      `${at(7)}"migration" "cache" cannot be set with distribution redis_cluster: the cluster moves its slots itself`);
    expectConfError(pool(true, ["migration_rate: -1"]), FILE, `${at(6)}"migration_rate" "-1" is not a number`);
    expectConfError(pool(true, ["migration_warmup: 1h"]), FILE, `${at(6)}"migration_warmup" "1h" is not a number`);
  });

  it("allows migration: none with redis_cluster (it changes nothing)", () => {
    assert.equal(firstPool(pool(true, ["distribution: redis_cluster", "migration: none"]), FILE).migration, MigrationMode.None);
  });
});
