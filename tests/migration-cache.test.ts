/**
 * Online expansion, cache mode, with real memcached servers: a memcached pool grows from 2 to
 * 3 servers and shrinks from 3 to 2 by a reload while a client keeps writing. Every key that
 * existed and was not deleted is still a hit (a miss on its new owner falls back to the old
 * one and copies the value with its remaining TTL); an overwrite during the move is never
 * undone by a fallback; abort brings the old ring back with the same rules.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ServerProcess, startMemcached, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { ringOf } from "./helpers/migration.ts";
import { memcacheFramer, PipeClient, waitFor } from "./helpers/soak.ts";
import {
  freePorts, ownerOn, poolYaml, redisProbe, type ReloadRig, type RingSpec, ringServers, startReloadProxy,
} from "./helpers/reload.ts";
import { rawText } from "./helpers/servers.ts";

const KEYS = 20_000;
const TTL_S = 300;
const BATCH = 500;

const setCmd = (key: string, value: string, ttl = 0) => `set ${key} 0 ${ttl} ${value.length}\r\n${value}\r\n`;
const valueOf = (key: string) => `v-${key}`;
/** Every 10th key has a TTL. */
const ttlOf = (i: number) => (i % 10 === 0 ? TTL_S : 0);

describe("migration: cache mode, memcached 2 -> 3 -> 2 under writes", () => {
  let m: ServerProcess[];
  let port = 0;
  let rig: ReloadRig;
  let client: PipeClient;
  const keys = Array.from({ length: KEYS }, (_, i) => `ck:${i}`);
  const yaml = (servers: ServerProcess[], extra: Record<string, string | number> = {}) =>
    poolYaml("mc", port, servers.map((s) => s.port), { redis: false, migration_warmup: 600000, ...extra });
  const ring = (servers: ServerProcess[]): RingSpec => ({ hash: "fnv1a_64", distribution: "ketama", servers: ringServers(servers.map((s) => s.port)) });

  /** GET every key through the proxy; the keys whose reply is not their expected value. */
  async function misses(expected: (key: string) => string): Promise<string[]> {
    const wrong: string[] = [];
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      const replies = await client.exchange(batch.map((k) => `get ${k}\r\n`).join(""), batch.length, 30000);
      replies.forEach((reply, j) => {
        const v = expected(batch[j]);
        if (reply !== `VALUE ${batch[j]} 0 ${v.length}\r\n${v}\r\nEND\r\n`) wrong.push(batch[j]);
      });
    }
    return wrong;
  }

  /** When the keys were first written (their TTLs count from here). */
  let writtenAt = 0;

  before(async () => {
    m = await Promise.all([startMemcached(), startMemcached(), startMemcached()]);
    [port] = await freePorts(1);
    rig = await startReloadProxy(yaml([m[0], m[1]]));
    client = await PipeClient.connect(port, memcacheFramer);
    writtenAt = Date.now();
    for (let i = 0; i < KEYS; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      const replies = await client.exchange(batch.map((k, j) => setCmd(k, valueOf(k), ttlOf(i + j))).join(""), batch.length, 30000);
      assert.ok(replies.every((r) => r === "STORED\r\n"));
    }
  });

  after(async () => {
    client?.destroy();
    await rig?.close();
    await Promise.all((m ?? []).map((s) => s?.stop()));
  });

  it("2 -> 3: no miss for any key, TTLs kept within 1 s, overwrites made during the move stay", async () => {
    const writer = await PipeClient.connect(port, memcacheFramer);
    const overwritten = new Map<string, string>();
    let writing = true;
    // Overwrites running through the reload: each is acknowledged before the next.
    const load = (async () => {
      for (let n = 0; writing && n < 2000; n++) {
        const key = keys[(n * 7919) % KEYS];
        const value = `w${n}-${key}`;
        const [reply] = await writer.exchange(setCmd(key, value), 1);
        if (reply === "STORED\r\n") overwritten.set(key, value);
      }
    })();
    // Reads running through the reload: every key exists (overwritten, never deleted), so none may miss.
    const reader = await PipeClient.connect(port, memcacheFramer);
    const readMisses: string[] = [];
    const reads = (async () => {
      for (let n = 0; writing && n < 5000; n++) {
        const key = keys[(n * 104729) % KEYS];
        const [reply] = await reader.exchange(`get ${key}\r\n`, 1);
        if (reply === "END\r\n") readMisses.push(key);
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    const report = await rig.reload(yaml([m[0], m[1], m[2]]));
    assert.equal(report.result, "ok", report.error ?? "");
    const migration = rig.pool("mc").migration;
    assert.ok(migration !== null, "a reload that changes the ring of a memcached pool starts a cache migration");
    await new Promise((r) => setTimeout(r, 100));
    writing = false;
    await Promise.all([load, reads]);
    writer.destroy();
    reader.destroy();
    assert.deepEqual(readMisses.slice(0, 5), [], `${readMisses.length} reads missed during the change`);

    const wrong = await misses((k) => overwritten.get(k) ?? valueOf(k));
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} keys missed or stale`);
    const status = rig.pool("mc").migrationStatus()!;
    assert.equal(status.mode, "cache");
    assert.equal(status.phase, "warmup");
    assert.ok(status.fallback_hits > 0, "moving keys were found on their old owners");

    // The keys that moved to m3 are on m3 now, with their TTL (within 1 s of what is left).
    const moved = keys.map((k, i) => ({ k, i })).filter(({ k }) => ownerOn(ring([m[0], m[1], m[2]]), k) === 2);
    assert.ok(moved.length > KEYS / 5, `${moved.length} keys move to the new server`);
    const withTtl = moved.filter(({ k, i }) => ttlOf(i) > 0 && !overwritten.has(k)).slice(0, 20);
    const direct = await PipeClient.connect(m[2].port, memcacheFramer);
    for (const { k } of withTtl) {
      const [meta] = await direct.exchange(`mg ${k} t\r\n`, 1);
      const ttl = Number(/ t(-?\d+)/.exec(meta)?.[1]);
      const left = TTL_S - (Date.now() - writtenAt) / 1000;
      // Within 1 s, plus memcached's one-second clock on each side.
      assert.ok(Math.abs(ttl - left) <= 2, `${k}: TTL ${ttl} s on the new owner, ${left.toFixed(1)} s left (${meta.trim()})`);
    }
    direct.destroy();
  });

  it("an overwrite of a moving key deletes it on the old owner: no fallback brings the old value back", async () => {
    const r2 = ring([m[0], m[1]]);
    const r3 = ring([m[0], m[1], m[2]]);
    const key = keys.find((k) => ownerOn(r3, k) === 2 && ownerOn(r2, k) === 1)!;
    assert.deepEqual(await client.exchange(setCmd(key, "fresh"), 1), ["STORED\r\n"]);
    assert.equal(await rawText(m[1].port, `get ${key}\r\n`, { untilEnds: "END\r\n" }), "END\r\n", "the old owner no longer has it");
    await rawText(m[2].port, `delete ${key}\r\n`, { untilEnds: "\r\n" }); // evicted from the new owner
    assert.deepEqual(await client.exchange(`get ${key}\r\n`, 1), ["END\r\n"], "a miss, not the value from before the overwrite");
    assert.deepEqual(await client.exchange(setCmd(key, valueOf(key)), 1), ["STORED\r\n"]);
  });

  it("a reload that changes the ring again while migrating is refused as a conflict; finish ends the warmup", async () => {
    const refused = await rig.reload(yaml([m[0], m[2]]));
    assert.equal(refused.result, "error");
    assert.equal(refused.conflict, true);
    assert.match(refused.error ?? "", /finish or abort/);
    assert.equal(await rig.pool("mc").migration!.finish(), "done");
    assert.equal(rig.pool("mc").migration, null);
    assert.equal(rig.pool("mc").migrationStatus()?.phase, "done");
  });

  it("3 -> 2, then abort half way: no miss either way", async () => {
    const base = new Map(keys.map((k) => [k, valueOf(k)]));
    for (let i = 0; i < KEYS; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      await client.exchange(batch.map((k) => setCmd(k, base.get(k)!)).join(""), batch.length, 30000);
    }
    const report = await rig.reload(yaml([m[0], m[2]]));
    assert.equal(report.result, "ok", report.error ?? "");
    assert.deepEqual((await misses((k) => base.get(k)!)).slice(0, 5), []);
    assert.ok(rig.pool("mc").abortMigration(), "abort starts the way back");
    const back = rig.pool("mc").migrationStatus()!;
    assert.equal(back.reverse, true);
    assert.deepEqual((await misses((k) => base.get(k)!)).slice(0, 5), [], "after abort, every key is found through the old ring");
    assert.equal(await rig.pool("mc").migration!.finish(), "done");
    assert.ok(await waitFor(() => rig.pool("mc").migration === null, 1000));
  });
});

describe("migration: cache mode, a redis pool used as a cache", () => {
  let r: ServerProcess[];
  let port = 0;
  let rig: ReloadRig;
  let client: PipeClient;
  const keys = Array.from({ length: 3000 }, (_, i) => `rc:${i}`);
  const yaml = (servers: ServerProcess[]) => poolYaml("rc", port, servers.map((s) => s.port), { migration: "cache", migration_warmup: 600000 });

  before(async () => {
    r = await Promise.all([startRedis(), startRedis(), startRedis()]);
    [port] = await freePorts(1);
    rig = await startReloadProxy(yaml([r[0], r[1]]));
    client = await PipeClient.connect(port);
    // Strings with a TTL, and hashes (a miss on a hash reads as an empty reply, not a nil).
    const cmds = keys.flatMap((k, i) => (i % 2 === 0 ? [["SET", k, `v-${k}`, "EX", "300"]] : [["HSET", k, "f", `h-${k}`]]));
    await client.exchange(encodePipeline(cmds), cmds.length, 30000);
  });

  after(async () => {
    client?.destroy();
    await rig?.close();
    await Promise.all((r ?? []).map((s) => s?.stop()));
  });

  it("2 -> 3: every string and hash is found through the new ring, copied with its TTL", async () => {
    const report = await rig.reload(yaml([r[0], r[1], r[2]]));
    assert.equal(report.result, "ok", report.error ?? "");
    const cmds = keys.map((k, i) => (i % 2 === 0 ? ["GET", k] : ["HGETALL", k]));
    const replies = await client.exchange(encodePipeline(cmds), cmds.length, 30000);
    const wrong = keys.filter((k, i) =>
      replies[i] !== (i % 2 === 0 ? `$${`v-${k}`.length}\r\nv-${k}\r\n` : `*2\r\n$1\r\nf\r\n$${`h-${k}`.length}\r\nh-${k}\r\n`)
    );
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} keys missed`);
    const moved = keys.filter((k, i) => i % 2 === 0 && ownerOn(ringOf([r[0], r[1], r[2]]), k) === 2).slice(0, 10);
    assert.ok(moved.length > 0);
    for (const key of moved) {
      const [ttl] = await redisProbe(r[2].port, [["TTL", key]]);
      assert.ok(ttl.type === "int" && ttl.value > 290 && ttl.value <= 300, `${key}: TTL ${JSON.stringify(ttl)} on the new owner`);
    }
    assert.ok(rig.pool("rc").migrationStatus()!.fallback_hits > 0);
  });
});
