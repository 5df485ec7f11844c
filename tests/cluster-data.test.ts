/**
 * Redis Cluster behind the proxy (issue 15), keys and commands, with a real cluster of
 * 3 masters and 3 replicas: the harness itself (slots, directories, keySlot against CLUSTER
 * KEYSLOT), discovery from two seeds, 10,000 keys each found on the master owning its slot,
 * MGET/MSET/DEL/EXISTS split over slots and merged, hash tags, -CROSSSLOT for RENAME across
 * slots, and prefer_replica reads counted on the replicas by their own INFO commandstats.
 * Pool 0 (alpha) reads from masters, pool 1 (beta) prefers replicas.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Role, ReadState } from "../core/proxy/server.ts";
import type { Server } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type Arg, bulkText, type Reply, RespClient } from "./helpers/resp.ts";
import { waitFor } from "./helpers/soak.ts";
import { clusterPoolYaml, keyOn, keySlot, RedisCluster, served, SLOTS } from "./helpers/cluster.ts";
import { clusterState } from "../core/admin/pools.ts";
import { renderPrometheus } from "../core/stats/prometheus.ts";
import { createMetrics } from "../core/stats/metrics.ts";

const POOL = { masters: 0, replicas: 1 } as const;
const KEYS = 10_000;

describe("redis cluster behind the proxy: keys, multi-key commands, replica reads", () => {
  let cluster: RedisCluster;
  let started: Promise<TestProxy> | null = null;
  let startedAt = 0;

  before(async () => {
    cluster = await RedisCluster.start({ prefix: "cluster-data-" });
  });

  after(async () => {
    if (started !== null) await (await started.catch(() => null))?.close();
    await cluster?.stopAll();
  });

  /** The proxy, started on first use (so the harness tests run without it): two seeds, a master and a replica. */
  async function proxy(): Promise<TestProxy> {
    started ??= (async () => {
      const masters = await cluster.masters();
      const seeds = [masters[0].port, (await cluster.replicas(masters[1].port))[0].port];
      const yml = clusterPoolYaml(seeds) + clusterPoolYaml(seeds, { read_policy: "prefer_replica" }).replace("alpha:", "beta:");
      const tp = await startTestProxy(yml);
      startedAt = Date.now();
      return tp;
    })();
    return await started;
  }

  /** One command through pool `pool`. */
  async function call(args: readonly Arg[], pool: number = POOL.masters): Promise<Reply> {
    const client = await RespClient.connect((await proxy()).port(pool));
    try {
      return await client.call(args);
    } finally {
      client.close();
    }
  }

  it("harness: 3 masters with a replica each, every slot covered, each node in its own directory", async () => {
    const masters = await cluster.masters();
    assert.equal(masters.length, 3);
    for (const m of masters) assert.equal((await cluster.replicas(m.port)).length, 1, `one replica of ${m.port}`);
    const covered = await cluster.owners();
    assert.equal(covered.filter((p) => p > 0).length, SLOTS, "all 16384 slots have an owner");
    const dirs = await Promise.all(cluster.ports.map(async (p) => {
      const reply = await cluster.call(p, ["CONFIG", "GET", "dir"]);
      return reply.type === "array" ? bulkText(reply.items![1]) : null;
    }));
    assert.equal(new Set(dirs).size, 6, `six directories: ${dirs.join(" ")}`);
  });

  it("harness: keySlot() agrees with CLUSTER KEYSLOT, hash tags and non-ASCII keys included", async () => {
    const keys = ["", "foo", "{user1000}.following", "{user1000}.followers", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}", "{", "}{x}", "ключ"];
    for (let i = 0; i < 200; i++) keys.push(`k:${i * 7919}`, `{t${i}}rest`);
    const client = await RespClient.connect(cluster.ports[0]);
    try {
      const replies = await client.pipeline(keys.map((k) => ["CLUSTER", "KEYSLOT", k]));
      keys.forEach((k, i) => assert.deepEqual(replies[i].reply, { type: "int", value: keySlot(k) }, `slot of ${JSON.stringify(k)}`));
    } finally {
      client.close();
    }
  });

  it("discovers every node from two seeds: the three masters, then the three replicas", async () => {
    const tp = await proxy();
    const all = () => [POOL.masters, POOL.replicas].every((i) => tp.proxy.pools[i].servers.length === 6);
    const found = await waitFor(all, 5000, 5);
    console.log(`cluster: the proxy knew all 6 nodes ${Date.now() - startedAt} ms after it started`);
    assert.ok(found, `the proxy discovers all 6 nodes: ${describeNodes(tp, 0)} | ${describeNodes(tp, 1)}`);
    const masters = (await cluster.masters()).map((m) => m.port).sort();
    const replicas = (await cluster.replicas()).map((r) => r.port).sort();
    for (const pool of [POOL.masters, POOL.replicas]) {
      const servers = tp.proxy.pools[pool].servers;
      const byRole = (role: Role) => servers.filter((s) => s.role === role).map(portOf).sort();
      assert.deepEqual([byRole(Role.Master), byRole(Role.Replica)], [masters, replicas], describeNodes(tp, pool));
      assert.deepEqual(servers.slice(0, 3).map((s) => s.role), [Role.Master, Role.Master, Role.Master], "masters first");
    }
  });

  it("writes 10,000 keys through the proxy and reads them back; each key is on the master owning its slot", async () => {
    const tp = await proxy();
    const keys = Array.from({ length: KEYS }, (_, i) => `tenk:${i}`);
    const client = await RespClient.connect(tp.port(POOL.masters));
    const t0 = Date.now();
    let got: Reply[] = [];
    try {
      for (let at = 0; at < KEYS; at += 1000) {
        const sets = await client.pipeline(keys.slice(at, at + 1000).map((k) => ["SET", k, `val:${k}`]));
        sets.forEach((r, i) => assert.deepEqual(r.reply, { type: "status", text: "OK" }, `SET ${keys[at + i]}`));
      }
      const wrote = Date.now() - t0;
      for (let at = 0; at < KEYS; at += 1000) {
        got = got.concat((await client.pipeline(keys.slice(at, at + 1000).map((k) => ["GET", k]))).map((r) => r.reply));
      }
      console.log(`cluster: 10,000 SETs through the proxy in ${wrote} ms, 10,000 GETs in ${Date.now() - t0 - wrote} ms (pipelined 1000)`);
    } finally {
      client.close();
    }
    const wrong = keys.filter((k, i) => got[i].type !== "bulk" || bulkText(got[i]) !== `val:${k}`);
    assert.equal(wrong.length, 0, `read back through the proxy: ${wrong.slice(0, 5).join(" ")}`);
    const direct = await cluster.getFromOwners(keys);
    const misplaced = keys.filter((k) => direct.get(k) !== `val:${k}`);
    assert.equal(misplaced.length, 0, `on their owners: ${misplaced.slice(0, 5).map((k) => `${k}=${direct.get(k)}`).join(" ")}`);
    // The owners' own counts: every slot our keys fell in holds exactly our keys there.
    const perSlot = new Map<number, number>();
    for (const k of keys) perSlot.set(keySlot(k), (perSlot.get(keySlot(k)) ?? 0) + 1);
    const owners = await cluster.owners();
    const perOwner = new Map<number, [number, number][]>();
    for (const [slot, want] of perSlot) perOwner.set(owners[slot], [...(perOwner.get(owners[slot]) ?? []), [slot, want]]);
    const bad: string[] = [];
    for (const [port, slots] of perOwner) {
      const owner = await RespClient.connect(port);
      try {
        const counted = await owner.pipeline(slots.map(([slot]) => ["CLUSTER", "COUNTKEYSINSLOT", String(slot)]));
        slots.forEach(([slot, want], i) => {
          if (counted[i].reply.type !== "int" || counted[i].reply.value !== want) bad.push(`slot ${slot} on ${port}: ${JSON.stringify(counted[i].reply)} != ${want}`);
        });
      } finally {
        owner.close();
      }
    }
    console.log(`cluster: 10,000 keys over ${perSlot.size} slots, per master ${[...perOwner].map(([p, slots]) => `${p}:${slots.reduce((n, [, k]) => n + k, 0)}`).join(" ")}`);
    assert.deepEqual(bad, [], "CLUSTER COUNTKEYSINSLOT on each owner");
    assert.equal(perOwner.size, 3, "every master holds some");
  });

  it("MSET and MGET across slots on every master are split by owner and merged in order", async () => {
    const owners = await cluster.owners();
    const ports = (await cluster.masters()).map((m) => m.port);
    // 30 keys, ten per master, interleaved so neighbours live on different nodes.
    const keys = Array.from({ length: 30 }, (_, i) => keyOn(owners, ports[i % 3], `multi:${i}:`));
    assert.equal(new Set(keys.map(keySlot)).size, 30, "thirty slots");
    const mset = await call(["MSET", ...keys.flatMap((k) => [k, `m:${k}`])]);
    assert.deepEqual(mset, { type: "status", text: "OK" });
    const asked = [...keys.slice(0, 10), "multi:absent", ...keys.slice(10)];
    const mget = await call(["MGET", ...asked]);
    assert.equal(mget.type, "array");
    const values = mget.type === "array" ? mget.items!.map(bulkText) : [];
    assert.deepEqual(values, asked.map((k) => (k === "multi:absent" ? null : `m:${k}`)));
    const direct = await cluster.getFromOwners(keys);
    assert.deepEqual(keys.filter((k) => direct.get(k) !== `m:${k}`), [], "each value is on its owner");
    assert.deepEqual(await call(["EXISTS", keys[0], keys[1], keys[0], "multi:absent", keys[2]]), { type: "int", value: 4 });
    assert.deepEqual(await call(["TOUCH", ...keys.slice(0, 6), "multi:absent"]), { type: "int", value: 6 });
    assert.deepEqual(await call(["DEL", ...keys.slice(0, 12), "multi:absent"]), { type: "int", value: 12 });
    assert.deepEqual(await call(["UNLINK", ...keys.slice(12, 20)]), { type: "int", value: 8 });
    const left = await cluster.getFromOwners(keys);
    assert.deepEqual(keys.map((k) => left.get(k) !== null), keys.map((_, i) => i >= 20), "DEL and UNLINK removed exactly theirs");
  });

  it("hash tags put keys in one slot on one node, and commands naming several of them run there", async () => {
    const tag = "{user:42}";
    const keys = ["name", "email", "visits", "tags", "friends"].map((f) => `${tag}:${f}`);
    const slot = keySlot(tag.slice(1, -1));
    assert.ok(keys.every((k) => keySlot(k) === slot), "the same slot by the tag");
    const owner = await cluster.ownerOf(slot);
    const count = async () => await cluster.call(owner, ["CLUSTER", "COUNTKEYSINSLOT", String(slot)]);
    const before = await count(); // an earlier test's key may share the slot
    assert.deepEqual(await call(["MSET", ...keys.flatMap((k) => [k, `t:${k}`])]), { type: "status", text: "OK" });
    assert.deepEqual(await count(), { type: "int", value: (before.type === "int" ? before.value : NaN) + 5 });
    const listed = await cluster.call(owner, ["CLUSTER", "GETKEYSINSLOT", String(slot), "100"]);
    const ours = listed.type === "array" ? listed.items!.map(bulkText).filter((k) => k!.startsWith(tag)).sort() : listed;
    assert.deepEqual(ours, [...keys].sort(), "the owner lists them in the tag's slot");
    assert.deepEqual(await call(["RENAME", `${tag}:name`, `${tag}:fullname`]), { type: "status", text: "OK" });
    assert.deepEqual(await call(["SADD", `${tag}:a`, "x", "y"]), { type: "int", value: 2 });
    assert.deepEqual(await call(["SADD", `${tag}:b`, "y", "z"]), { type: "int", value: 2 });
    assert.deepEqual(await call(["SUNIONSTORE", `${tag}:u`, `${tag}:a`, `${tag}:b`]), { type: "int", value: 3 });
    assert.deepEqual(await call(["MSETNX", `${tag}:n1`, "1", `${tag}:n2`, "2"]), { type: "int", value: 1 });
    const there = await cluster.getFromOwners([`${tag}:fullname`, `${tag}:name`, `${tag}:n2`]);
    assert.deepEqual([...there.values()], [`t:${tag}:name`, null, "2"]);
  });

  it("RENAME across slots gets -CROSSSLOT, keys on two masters or on one; nothing is renamed", async () => {
    const owners = await cluster.owners();
    const [m0, m1] = (await cluster.masters()).map((m) => m.port);
    const pairs = [
      [keyOn(owners, m0, "xs:a"), keyOn(owners, m1, "xs:b")],
      [keyOn(owners, m0, "xs:c"), keyOn(owners, m0, "xs:d")],
    ];
    for (const [from, to] of pairs) {
      assert.notEqual(keySlot(from), keySlot(to));
      assert.deepEqual(await call(["SET", from, "stay"]), { type: "status", text: "OK" });
      const reply = await call(["RENAME", from, to]);
      assert.ok(reply.type === "error" && reply.text.startsWith("CROSSSLOT"), `RENAME ${from} ${to}: ${JSON.stringify(reply)}`);
      const there = await cluster.getFromOwners([from, to]);
      assert.deepEqual([there.get(from), there.get(to)], ["stay", null]);
    }
  });

  it("prefer_replica: reads go to the replicas (counted by each node's INFO commandstats) and return the masters' values", async () => {
    const tp = await proxy();
    const keys = Array.from({ length: 300 }, (_, i) => `rr:${i}`);
    const client = await RespClient.connect(tp.port(POOL.masters));
    try {
      await client.pipeline(keys.map((k) => ["SET", k, `r:${k}`]));
    } finally {
      client.close();
    }
    await cluster.waitReplicasSynced();
    const pool = tp.proxy.pools[POOL.replicas];
    const eligible = await waitFor(() => pool.servers.filter((s) => s.role === Role.Replica && s.readState === ReadState.Eligible).length === 3, 10000);
    const ports = cluster.ports;
    const before = await Promise.all(ports.map((p) => served(p, "get")));
    const reader = await RespClient.connect(tp.port(POOL.replicas));
    const bad: string[] = [];
    try {
      for (let round = 0; round < 10; round++) {
        const replies = await reader.pipeline(keys.map((k) => ["GET", k]));
        replies.forEach((r, i) => {
          if (r.reply.type !== "bulk" || bulkText(r.reply) !== `r:${keys[i]}`) bad.push(`${keys[i]} -> ${JSON.stringify(r.reply)}`);
        });
      }
    } finally {
      reader.close();
    }
    const deltas = (await Promise.all(ports.map((p) => served(p, "get")))).map((n, i) => n - before[i]);
    const replicaPorts = new Set((await cluster.replicas()).map((r) => r.port));
    const onReplicas = ports.reduce((n, p, i) => n + (replicaPorts.has(p) ? deltas[i] : 0), 0);
    const total = deltas.reduce((a, b) => a + b, 0);
    console.log(`cluster prefer_replica: 3000 GETs; served per node ${ports.map((p, i) => `${p}${replicaPorts.has(p) ? "(R)" : "(M)"}:${deltas[i]}`).join(" ")}; ` +
      `replicas eligible in the proxy: ${eligible}; ${describeNodes(tp, POOL.replicas)}`);
    assert.deepEqual(bad.slice(0, 5), [], "every read returns the written value");
    assert.equal(total, 3000, "each GET executed once somewhere");
    assert.ok(onReplicas >= 0.95 * total, `at least 95% of the GETs on replicas (${onReplicas}/${total})`);
    for (const p of replicaPorts) assert.ok(deltas[ports.indexOf(p)] > 0, `replica ${p} served reads`);
  });
  it("/pools shows each master's slot ranges and the refreshes; /metrics counts redirects and refreshes", async () => {
    const tp = await proxy();
    const pool = tp.proxy.pools[POOL.masters];
    const state = clusterState(pool)!;
    const slots = state.slots as Record<string, string>;
    const owners = await cluster.owners();
    const masters = (await cluster.masters()).map((m) => `127.0.0.1:${m.port}`).sort();
    assert.deepEqual(Object.keys(slots).sort(), masters, "one entry per master");
    for (const [node, ranges] of Object.entries(slots)) {
      for (const range of ranges.split(",")) {
        const [from, to] = range.split("-").map(Number);
        for (const slot of [from, to ?? from]) assert.equal(`127.0.0.1:${owners[slot]}`, node, `slot ${slot}`);
      }
    }
    assert.ok((state.refreshes as number) >= 1, "at least the first refresh");
    const text = renderPrometheus({ pools: tp.proxy.pools, metrics: createMetrics(), version: "0.5.0", source: "h", uptimeSeconds: 1, now: Date.now() });
    assert.match(text, /^nutcracker_cluster_refreshes_total\{pool="alpha"\} [1-9]\d*$/m);
    assert.match(text, /^nutcracker_cluster_redirects_total\{pool="alpha",type="moved"\} \d+$/m);
    assert.match(text, /^nutcracker_cluster_redirects_total\{pool="alpha",type="ask"\} \d+$/m);
  });
});

function portOf(server: Server): number {
  return server.conf.addr.kind === "tcp" ? server.conf.addr.port : -1;
}

/** Pool `pool`'s nodes as "port/M|R/readState", for messages. */
function describeNodes(tp: TestProxy, pool: number): string {
  return tp.proxy.pools[pool].servers.map((s) => `${portOf(s)}/${s.role === Role.Master ? "M" : "R"}/${s.readState}`).join(" ");
}
