/**
 * The pool limit keys this project adds to nutcracker.yml (client_max_inflight,
 * client_max_inflight_bytes, client_max_output_bytes, server_max_queue_bytes): read as
 * written, defaulted to the limits the proxy used before they were keys, and rejected
 * like twemproxy's numeric keys with file, line, pool and key in the error.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfError, DEFAULTS, loadConf } from "../core/conf/mod.ts";
import type { PoolConf } from "../core/conf/mod.ts";
import { expectConfError, firstPool } from "./helpers/conf.ts";

const FILE = "conf/limits.yml";

/** Each new key, the PoolConf field it fills, its default and its largest accepted value. */
const LIMITS = [
  { key: "client_max_inflight", field: "clientMaxInflight", dflt: 1024, max: 2147483647 },
  { key: "client_max_inflight_bytes", field: "clientMaxInflightBytes", dflt: 16777216, max: 1099511627776 },
  { key: "client_max_output_bytes", field: "clientMaxOutputBytes", dflt: 268435456, max: 1099511627776 },
  { key: "server_max_queue_bytes", field: "serverMaxQueueBytes", dflt: 67108864, max: 1099511627776 },
] as const;

/** A one-pool config named `name`; `lines` go between listen and servers (line 3 onwards). */
function pool(lines: string[] = [], name = "alpha", port = 22121): string {
  return [`${name}:`, `  listen: 127.0.0.1:${port}`, ...lines.map((l) => `  ${l}`), "  servers:", "   - 127.0.0.1:6379:1", ""]
    .join("\n");
}

function only(text: string): PoolConf {
  return firstPool(text, FILE);
}

/** loadConf must throw a ConfError with exactly this message; returns it. */
function rejects(text: string, message: string): ConfError {
  return expectConfError(text, FILE, message);
}

describe("pool limit keys: accepted values", () => {
  it("reads each limit key as written into its PoolConf field", () => {
    for (const { key, field } of LIMITS) {
      for (const value of [1, 7, 1000, 123456789]) {
        assert.equal(only(pool([`${key}: ${value}`]))[field], value, `${key}: ${value}`);
      }
    }
  });

  it("reads all four limit keys together, each into its own field", () => {
    const p = only(pool([
      "client_max_inflight: 16", "client_max_inflight_bytes: 65536",
      "client_max_output_bytes: 1048576", "server_max_queue_bytes: 4194304",
    ]));
    assert.deepEqual(
      [p.clientMaxInflight, p.clientMaxInflightBytes, p.clientMaxOutputBytes, p.serverMaxQueueBytes],
      [16, 65536, 1048576, 4194304],
    );
  });

  it("accepts each limit key's maximum: 2^31-1 requests, 2^40 bytes", () => {
    for (const { key, field, max } of LIMITS) assert.equal(only(pool([`${key}: ${max}`]))[field], max, key);
  });

  it("reads a quoted value and leading zeros as the number, as twemproxy's numeric keys do", () => {
    assert.equal(only(pool(['client_max_inflight: "64"'])).clientMaxInflight, 64);
    assert.equal(only(pool(["server_max_queue_bytes: 0100"])).serverMaxQueueBytes, 100);
  });

  it("keeps each pool's limits to itself", () => {
    const text = pool(["client_max_inflight: 8"], "alpha", 22121) + pool([], "beta", 22122) +
      pool(["client_max_inflight: 99", "client_max_output_bytes: 5000"], "gamma", 22123);
    const pools = loadConf(text, FILE).pools;
    assert.deepEqual(pools.map((p) => p.clientMaxInflight), [8, 1024, 99]);
    assert.deepEqual(pools.map((p) => p.clientMaxOutputBytes), [268435456, 268435456, 5000]);
  });

  it("freezes the limits with the rest of the pool", () => {
    const p = only(pool(["client_max_inflight: 8"]));
    assert.throws(() => {
      (p as { clientMaxInflight: number }).clientMaxInflight = 9;
    }, TypeError);
  });
});

describe("pool limit keys: defaults", () => {
  it("fills every limit with its default when the file leaves them out", () => {
    const p = only(pool());
    for (const { field, dflt } of LIMITS) assert.equal(p[field], dflt, field);
  });

  it("defaults one limit while another is set", () => {
    const p = only(pool(["client_max_inflight_bytes: 4096"]));
    assert.equal(p.clientMaxInflightBytes, 4096);
    assert.equal(p.clientMaxInflight, 1024);
    assert.equal(p.clientMaxOutputBytes, 268435456);
    assert.equal(p.serverMaxQueueBytes, 67108864);
  });

  it("publishes the defaults in DEFAULTS: 1024 requests, 16 MiB, 256 MiB, 64 MiB, the limits used before they were keys", () => {
    for (const { key, dflt } of LIMITS) assert.equal(DEFAULTS[key], dflt, key);
  });
});

describe("pool limit keys: rejected values", () => {
  const at = (line: number, name = "alpha") => `nutcracker: ${FILE}:${line}: pool '${name}': `;

  it("rejects a non-integer in every limit key with \"is not a number\"", () => {
    const bad = ["-1", "abc", "1.5", "1e3", "0x10", "+5", "16mb", "1_000", "''", "true"];
    for (const { key } of LIMITS) {
      for (const value of bad) {
        const shown = value === "''" ? "" : value;
        rejects(pool(["redis: true", `${key}: ${value}`]), `${at(4)}"${key}" "${shown}" is not a number`);
      }
    }
  });

  it("rejects 0 in every limit key with \"cannot be 0\", as server_connections", () => {
    for (const { key } of LIMITS) {
      for (const zero of ["0", "000"]) rejects(pool([`${key}: ${zero}`]), `${at(3)}"${key}" "${zero}" cannot be 0`);
    }
  });

  it("rejects a value over the maximum, naming the maximum", () => {
    for (const { key, max } of LIMITS) {
      for (const over of [String(max + 1), "99999999999999999999999"]) {
        rejects(pool([`${key}: ${over}`]), `${at(3)}"${key}" "${over}" is greater than the maximum ${max}`);
      }
    }
  });

  it("gives the error the file, line, pool and key it is about", () => {
    const text = pool([], "alpha", 22121) + pool(["timeout: 100", "server_max_queue_bytes: -5"], "beta", 22122);
    const err = rejects(text, `${at(8, "beta")}"server_max_queue_bytes" "-5" is not a number`);
    assert.equal(err.file, FILE);
    assert.equal(err.line, 8);
    assert.equal(err.pool, "beta");
    assert.equal(err.key, "server_max_queue_bytes");
    assert.equal(err.detail, `pool 'beta': "server_max_queue_bytes" "-5" is not a number`);
  });

  it("rejects a limit set twice in one pool, and a list where a number belongs", () => {
    rejects(pool(["client_max_inflight: 4", "hash: md5", "client_max_inflight: 8"]),
      `${at(5)}"client_max_inflight" is a duplicate (first set on line 3)`);
    const list = "alpha:\n  listen: 127.0.0.1:22121\n  client_max_output_bytes:\n    - 5\n  servers:\n   - 127.0.0.1:6379:1\n";
    rejects(list, `${at(3)}"client_max_output_bytes" is not a valid string`);
  });

  it("rejects a misspelt limit key as unknown", () => {
    rejects(pool(["client_max_in_flight: 4"]), `${at(3)}"client_max_in_flight" is unknown`);
  });
});
