/**
 * Replicas per shard with real replication (redis-server --replicaof): writes reach the
 * master, reads follow read_policy, and a replica that is not ready (its link to the
 * master is down) gets no reads. Counted with the servers' own INFO commandstats.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { PipeClient, waitFor } from "./helpers/soak.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/** A full sync writes an RDB file: each server keeps its own in a temporary directory, not the working tree. */
const DIR = mkdtempSync(path.join(tmpdir(), "replicas-"));
let dirs = 0;
const ownDir = () => ["--dir", mkdtempSync(path.join(DIR, `s${dirs++}-`))];

/** `calls` of one command in a server's INFO commandstats (0 when never called). */
async function calls(port: number, command: string): Promise<number> {
  const text = await redisCli(port, "INFO", "commandstats");
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(text)?.[1] ?? 0);
}

async function offset(port: number, field: string): Promise<number> {
  return Number(new RegExp(`${field}:(\\d+)`).exec(await redisCli(port, "INFO", "replication"))?.[1] ?? -1);
}

/** Until every replica has applied everything the master has. */
async function caughtUp(master: ServerProcess, replicas: ServerProcess[]): Promise<boolean> {
  return await waitFor(async () => {
    const want = await offset(master.port, "master_repl_offset");
    for (const r of replicas) if (await offset(r.port, "slave_repl_offset") !== want) return false;
    return true;
  }, 10000, 50);
}

function poolYaml(master: number, replicas: string[], policy: string): string {
  return `alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  timeout: 2000\n  read_policy: ${policy}\n` +
    `  replica_check_interval: 100\n  servers:\n    - 127.0.0.1:${master}:1 shard1\n` +
    `  replicas:\n    shard1:\n${replicas.map((r) => `      - ${r}\n`).join("")}`;
}

describe("replicas: read/write splitting with real replication", () => {
  let master: ServerProcess;
  let replicas: ServerProcess[] = [];
  let broken: ServerProcess;
  let tp: TestProxy | undefined;
  before(async () => {
    master = await startRedis({ args: ownDir() });
    const replicaOf = (port: number) => startRedis({ args: [...ownDir(), "--replicaof", "127.0.0.1", String(port)] });
    replicas = await Promise.all([0, 1].map(() => replicaOf(master.port)));
    // A replica of a master that does not exist: its link stays down, it must get no reads.
    // Port 1: nothing listens there, and no other test can take it meanwhile.
    broken = await replicaOf(1);
    const linked = async () => (await Promise.all(replicas.map((r) => redisCli(r.port, "INFO", "replication"))))
      .every((text) => text.includes("master_link_status:up"));
    assert.ok(await waitFor(linked, 20000, 100), "the replicas finished their first sync");
  });
  after(async () => {
    await tp?.close();
    await Promise.all([master, ...replicas, broken].map((s) => s?.stop()));
    rmSync(DIR, { recursive: true, force: true });
  });

  async function start(policy: string): Promise<TestProxy> {
    await tp?.close();
    const lines = [...replicas, broken].map((r) => `127.0.0.1:${r.port}:1`);
    tp = await startTestProxy(poolYaml(master.port, lines, policy));
    const ready = () => tp!.proxy.pools[0].servers.filter((s) => s.readState === 0).length === 3; // master + 2 replicas
    assert.ok(await waitFor(ready, 10000), "both real replicas become eligible; the broken one does not");
    return tp;
  }

  /** 100 SETs, wait for replication, then 300 GETs; returns GET calls on master, replicas, broken. */
  async function readLoad(proxy: TestProxy, prefix: string): Promise<number[]> {
    const client = await PipeClient.connect(proxy.port());
    const sets = Array.from({ length: 100 }, (_, i) => ["SET", `${prefix}:${i}`, `v${i}`]);
    const setReplies = await client.exchange(encodePipeline(sets), 100);
    assert.ok(setReplies.every((r) => r === "+OK\r\n"), "every write succeeded, so it reached the master (replicas are read-only)");
    assert.ok(await caughtUp(master, replicas), "replicas caught up");
    const before = await Promise.all([master, ...replicas, broken].map((s) => calls(s.port, "get")));
    const gets = Array.from({ length: 300 }, (_, i) => ["GET", `${prefix}:${i % 100}`]);
    const got = await client.exchange(encodePipeline(gets), 300);
    got.forEach((reply, i) => assert.equal(reply, `$${`v${i % 100}`.length}\r\nv${i % 100}\r\n`, `GET ${i}`));
    client.destroy();
    const afterCalls = await Promise.all([master, ...replicas, broken].map((s) => calls(s.port, "get")));
    return afterCalls.map((n, i) => n - before[i]);
  }

  it("read_policy prefer_replica: every read goes to the two caught-up replicas, none to the master or the broken one", async () => {
    const [onMaster, r1, r2, onBroken] = await readLoad(await start("prefer_replica"), "pr");
    assert.equal(onMaster, 0, "no reads on the master");
    assert.equal(onBroken, 0, "no reads on the replica whose link is down");
    assert.equal(r1 + r2, 300);
    assert.ok(r1 > 0 && r2 > 0, `both replicas serve reads (${r1} / ${r2})`);
  });

  it("read_policy master: every read goes to the master", async () => {
    const [onMaster, r1, r2, onBroken] = await readLoad(await start("master"), "m");
    assert.deepEqual([onMaster, r1, r2, onBroken], [300, 0, 0, 0]);
  });

  it("shows replicas as extra stats servers named shard/host:port, with their read state", async () => {
    const proxy = await start("prefer_replica");
    const names = proxy.proxy.pools[0].servers.map((s) => s.conf.id);
    assert.deepEqual(names, ["shard1", ...[...replicas, broken].map((r) => `shard1/127.0.0.1:${r.port}`)]);
    const brokenNode = proxy.proxy.pools[0].servers[3];
    assert.equal(brokenNode.readState, 4, "the broken replica is LinkDown");
  });
});
