/**
 * A real Redis Cluster for end-to-end tests: redis-servers started with --cluster-enabled (each
 * with its own --dir, nodes.conf and cluster bus port, all on loopback) joined by
 * `redis-cli --cluster create --cluster-replicas N`, and helpers that ask the cluster itself:
 * a key's slot (CRC16 with {hash tags}, computed here), the owner of a slot (CLUSTER NODES),
 * reads straight from the owners, resharding and rebalancing with redis-cli, CLUSTER FAILOVER,
 * SIGKILL of a master until its replica is promoted. Processes are stopped by PID (servers.ts
 * also kills them when the test process exits). node:child_process, node:fs and node:net only.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports.ts";
import { type ServerProcess, startRedis } from "./servers.ts";
import { type Arg, type Reply, RespClient } from "./resp.ts";
import { waitFor } from "./soak.ts";

const HOST = "127.0.0.1";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Redis Cluster's hash slots. */
export const SLOTS = 16384;

/** One line of CLUSTER NODES. */
export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  /** True for a master (flag "master"), false for a replica. */
  readonly master: boolean;
  /** A replica's master id ("-" for a master). */
  readonly masterId: string;
  /** True when the node is flagged fail (or fail?) by the asked node. */
  readonly failing: boolean;
  /** Owned slot ranges, [from, to] inclusive (migration markers left out). */
  readonly slots: readonly (readonly [number, number])[];
}

export interface ClusterOptions {
  /** Masters (default 3). */
  masters?: number;
  /** Replicas per master (default 1). */
  replicas?: number;
  /** --cluster-node-timeout, ms (default 1000). */
  nodeTimeoutMs?: number;
  /** Prefix of the temporary directory (default "cluster-"). */
  prefix?: string;
}

/**
 * Six (by default) redis-servers joined into one cluster: 3 masters, a replica each.
 * @example
 * const c = await RedisCluster.start();
 * const owner = await c.ownerOf(keySlot("user:1")); // port of the master of that slot
 * await c.reshard(c.ports[0], c.ports[1], 1000);
 * await c.stopAll();
 */
export class RedisCluster {
  /** Every redis-server, in start order (the first `masters` were created as masters). */
  readonly servers: ServerProcess[] = [];
  readonly nodeTimeoutMs: number;
  private readonly root: string;

  private constructor(opts: ClusterOptions) {
    this.nodeTimeoutMs = opts.nodeTimeoutMs ?? 1000;
    this.root = mkdtempSync(path.join(tmpdir(), opts.prefix ?? "cluster-"));
  }

  /** Starts the servers, runs `redis-cli --cluster create`, waits until the cluster is ok everywhere and replicas are in sync. */
  static async start(opts: ClusterOptions = {}): Promise<RedisCluster> {
    const cluster = new RedisCluster(opts);
    const count = (opts.masters ?? 3) * (1 + (opts.replicas ?? 1));
    try {
      await Promise.all(Array.from({ length: count }, (_, i) => cluster.startNode(i)));
      // Start order is creation order: redis-cli makes the first `masters` addresses masters.
      cluster.servers.sort((a, b) => cluster.order.get(a)! - cluster.order.get(b)!);
      const addrs = cluster.servers.map((s) => `${HOST}:${s.port}`);
      await runCli(["--cluster", "create", ...addrs, "--cluster-replicas", String(opts.replicas ?? 1), "--cluster-yes"], 30000);
      await cluster.waitOk(20000);
      await cluster.waitReplicasSynced(20000);
      await cluster.waitSlotsListReplicas(20000);
    } catch (err) {
      await cluster.stopAll();
      throw err;
    }
    return cluster;
  }

  private readonly order = new Map<ServerProcess, number>();

  private async startNode(index: number): Promise<void> {
    const dir = path.join(this.root, `node${index}`);
    mkdirSync(dir);
    const errors: string[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      // The bus port is port+10000 unless set, which may be past 65535 for a free port: set it.
      const [port, bus] = [await freePort(), await freePort()];
      if (port === bus) continue;
      const args = [
        "--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, "nodes.conf"), "--cluster-port", String(bus),
        "--cluster-node-timeout", String(this.nodeTimeoutMs), "--dir", dir, "--repl-diskless-sync-delay", "0",
        // A replica at offset 0 is left out of CLUSTER SLOTS (Redis 7): ping replicas each second,
        // so an idle new cluster's offsets move and its replicas are listed within a second.
        "--repl-ping-replica-period", "1",
      ];
      try {
        const server = await startRedis({ port, args });
        this.order.set(server, index);
        this.servers.push(server);
        return;
      } catch (err) {
        errors.push(String(err));
      }
    }
    throw new Error(`cluster node ${index} did not start:\n${errors.join("\n")}`);
  }

  /** Every server's port, in start order. */
  get ports(): number[] {
    return this.servers.map((s) => s.port);
  }

  /** The server process on `port` (throws when it is not one of ours). */
  serverAt(port: number): ServerProcess {
    const found = this.servers.find((s) => s.port === port);
    if (found === undefined) throw new Error(`no cluster node of this test on port ${port}`);
    return found;
  }

  /** One command to the node on `port`. */
  async call(port: number, args: readonly Arg[], timeoutMs = 5000): Promise<Reply> {
    const client = await RespClient.connect(port, timeoutMs);
    try {
      return await client.call(args, timeoutMs);
    } finally {
      client.close();
    }
  }

  /** CLUSTER NODES as the node on `port` (default: the first running one) sees it. */
  async nodes(port = this.anyRunning()): Promise<ClusterNode[]> {
    return parseNodes(textOf(await this.call(port, ["CLUSTER", "NODES"])));
  }

  /** The masters that own slots, as the node on `port` sees them, by port. */
  async masters(port = this.anyRunning()): Promise<ClusterNode[]> {
    return (await this.nodes(port)).filter((n) => n.master && !n.failing && n.slots.length > 0).sort((a, b) => a.port - b.port);
  }

  /** The healthy replicas of `masterPort` (default: of every master). */
  async replicas(masterPort?: number): Promise<ClusterNode[]> {
    const nodes = await this.nodes();
    const master = masterPort === undefined ? null : nodes.find((n) => n.port === masterPort);
    return nodes.filter((n) => !n.master && !n.failing && (master === null || n.masterId === master?.id));
  }

  /** The master port of every slot (Int32Array of SLOTS; -1 where none), as the node on `port` sees it. */
  async owners(port = this.anyRunning()): Promise<Int32Array> {
    const owners = new Int32Array(SLOTS).fill(-1);
    for (const n of await this.masters(port)) for (const [from, to] of n.slots) owners.fill(n.port, from, to + 1);
    return owners;
  }

  /** The master port owning `slot` now. */
  async ownerOf(slot: number): Promise<number> {
    return (await this.owners())[slot];
  }

  /** Master port of each key, from one CLUSTER NODES. */
  async ownersOfKeys(keys: readonly string[]): Promise<number[]> {
    const owners = await this.owners();
    return keys.map((k) => owners[keySlot(k)]);
  }

  /**
   * Reads every key straight from the master that owns its slot (GET, pipelined per owner);
   * a key the owner does not hold reads as null, and a -MOVED reply as "-MOVED ...".
   */
  async getFromOwners(keys: readonly string[]): Promise<Map<string, string | null>> {
    const owners = await this.ownersOfKeys(keys);
    const byOwner = new Map<number, string[]>();
    keys.forEach((k, i) => byOwner.set(owners[i], [...(byOwner.get(owners[i]) ?? []), k]));
    const out = new Map<string, string | null>();
    for (const [port, group] of byOwner) {
      const client = await RespClient.connect(port);
      try {
        for (let at = 0; at < group.length; at += 1000) {
          const chunk = group.slice(at, at + 1000);
          const replies = await client.pipeline(chunk.map((k) => ["GET", k]));
          chunk.forEach((k, i) => out.set(k, valueOf(replies[i].reply)));
        }
      } finally {
        client.close();
      }
    }
    return out;
  }

  /** The acknowledged (+OK) writes whose value the owner of the key's slot does not hold now. */
  async missingWrites<T extends { key: string; value: string; reply: string }>(records: readonly T[]): Promise<T[]> {
    const acked = records.filter((r) => r.reply === "+OK");
    const found = await this.getFromOwners(acked.map((r) => r.key));
    return acked.filter((r) => found.get(r.key) !== r.value);
  }

  /**
   * Until every running node says cluster_state:ok with all slots ok, and all agree on the owner
   * of every slot and on who replicates whom. Throws with each node's view after ms.
   */
  async waitOk(ms = 15000): Promise<void> {
    let views: string[] = [];
    const ok = await waitFor(async () => {
      const running = this.servers.filter((s) => s.running);
      const seen = await Promise.all(running.map((s) => this.viewOf(s.port).catch((e) => `${s.port}: ${e}`)));
      views = seen;
      return seen.every((v) => v.startsWith("ok ")) && new Set(seen.map((v) => v.slice(v.indexOf(" ", 3)))).size === 1;
    }, ms, 50);
    if (!ok) throw new Error(`the cluster did not settle within ${ms} ms:\n${views.join("\n")}`);
  }

  /** Until every healthy replica reports its link up at its master's replication offset. */
  async waitReplicasSynced(ms = 10000): Promise<void> {
    let last = "";
    const ok = await waitFor(async () => {
      const nodes = await this.nodes();
      const checks = await Promise.all(nodes.filter((n) => !n.master && !n.failing).map(async (r) => {
        const master = nodes.find((n) => n.id === r.masterId);
        if (master === undefined) return `${r.port}: master ${r.masterId} unknown`;
        const [m, s] = await Promise.all([info(master.port, "replication"), info(r.port, "replication")]);
        const good = s.get("master_link_status") === "up" && s.get("slave_repl_offset") === m.get("master_repl_offset");
        return good ? "" : `${r.port}: link ${s.get("master_link_status")} offset ${s.get("slave_repl_offset")}/${m.get("master_repl_offset")}`;
      }));
      last = checks.filter(Boolean).join("; ");
      return last === "";
    }, ms, 50);
    if (!ok) throw new Error(`replicas not in sync within ${ms} ms: ${last}`);
  }

  /** Until CLUSTER SLOTS on every running node lists as many nodes as CLUSTER NODES has healthy ones (replicas included). */
  async waitSlotsListReplicas(ms = 10000): Promise<void> {
    let last = "";
    const ok = await waitFor(async () => {
      const counts = await Promise.all(this.servers.filter((s) => s.running).map(async (s) => {
        const want = (await this.nodes(s.port)).filter((n) => !n.failing && (!n.master || n.slots.length > 0)).length;
        const reply = await this.call(s.port, ["CLUSTER", "SLOTS"]);
        const listed = new Set<string>();
        for (const range of reply.type === "array" ? reply.items ?? [] : []) {
          const nodes = range.type === "array" ? (range.items ?? []).slice(2) : [];
          for (const n of nodes) if (n.type === "array" && n.items !== null) listed.add(JSON.stringify(n.items[1]));
        }
        return listed.size === want ? "" : `${s.port} lists ${listed.size} of ${want}`;
      }));
      last = counts.filter(Boolean).join("; ");
      return last === "";
    }, ms, 50);
    if (!ok) throw new Error(`CLUSTER SLOTS does not list every replica within ${ms} ms: ${last}`);
  }

  /**
   * `redis-cli --cluster reshard`: moves `slots` slots from the master on `fromPort` to the one
   * on `toPort` (keys migrated with MIGRATE). Waits for agreement before and after; returns ms taken.
   */
  async reshard(fromPort: number, toPort: number, slots: number, timeoutMs = 60000): Promise<number> {
    await this.waitOk();
    const [from, to] = await Promise.all([this.idOf(fromPort), this.idOf(toPort)]);
    const started = Date.now();
    await runCli(["--cluster", "reshard", `${HOST}:${fromPort}`, "--cluster-from", from, "--cluster-to", to,
      "--cluster-slots", String(slots), "--cluster-yes"], timeoutMs);
    const took = Date.now() - started;
    await this.waitOk();
    return took;
  }

  /** `redis-cli --cluster rebalance` (equal weights); returns ms taken. */
  async rebalance(timeoutMs = 60000): Promise<number> {
    await this.waitOk();
    const started = Date.now();
    await runCli(["--cluster", "rebalance", `${HOST}:${this.anyRunning()}`], timeoutMs);
    const took = Date.now() - started;
    await this.waitOk();
    return took;
  }

  /** Slots each master owns now, "port:count" joined, for messages and logs. */
  async slotCounts(): Promise<string> {
    return (await this.masters()).map((m) => `${m.port}:${m.slots.reduce((n, [a, b]) => n + b - a + 1, 0)}`).join(" ");
  }

  /** `CLUSTER FAILOVER` on the replica on `replicaPort`; waits until it is a master the whole cluster agrees on. Returns ms taken. */
  async failover(replicaPort: number, ms = 15000): Promise<number> {
    await this.waitOk();
    const started = Date.now();
    const reply = await this.call(replicaPort, ["CLUSTER", "FAILOVER"]);
    if (reply.type !== "status") throw new Error(`CLUSTER FAILOVER on ${replicaPort}: ${JSON.stringify(reply)}`);
    if (!(await waitFor(async () => (await role(replicaPort)) === "master", ms, 10))) {
      throw new Error(`${replicaPort} is not master ${ms} ms after CLUSTER FAILOVER`);
    }
    const took = Date.now() - started;
    await this.waitOk(ms);
    return took;
  }

  /**
   * SIGKILLs the master on `masterPort` and waits until one of its replicas calls itself master
   * and the surviving nodes agree the cluster is ok. Returns the dead process, the promoted
   * replica's port, and when each happened (Date.now()).
   */
  async killMaster(masterPort: number, ms = 20000): Promise<{ killed: ServerProcess; promoted: number; killedAt: number; promotedAt: number }> {
    const candidates = (await this.replicas(masterPort)).map((r) => r.port);
    if (candidates.length === 0) throw new Error(`master ${masterPort} has no replica to promote`);
    const killed = this.serverAt(masterPort);
    killed.kill("SIGKILL");
    const killedAt = Date.now();
    if (!(await waitFor(() => !killed.running, 5000, 5))) throw new Error(`${masterPort} did not exit after SIGKILL`);
    let promoted = -1;
    const ok = await waitFor(async () => {
      const roles = await Promise.all(candidates.map((p) => role(p)));
      promoted = candidates[roles.indexOf("master")] ?? -1;
      return promoted > 0;
    }, ms, 10);
    const promotedAt = Date.now();
    if (!ok) throw new Error(`no replica of ${masterPort} (${candidates.join(", ")}) was promoted within ${ms} ms`);
    await this.waitOk(ms);
    return { killed, promoted, killedAt, promotedAt };
  }

  /** Stops every server by PID (thawing stopped ones) and removes the directories. Safe to call twice. */
  async stopAll(): Promise<void> {
    for (const s of this.servers) if (s.running) s.kill("SIGCONT");
    await Promise.all(this.servers.map((s) => s.stop().catch(() => {})));
    rmSync(this.root, { recursive: true, force: true });
  }

  /** The node id of the server on `port` (CLUSTER MYID). */
  async idOf(port: number): Promise<string> {
    return textOf(await this.call(port, ["CLUSTER", "MYID"]));
  }

  private anyRunning(): number {
    const s = this.servers.find((x) => x.running);
    if (s === undefined) throw new Error("no cluster node is running");
    return s.port;
  }

  /** "ok <epoch> <slot map and replication>" or "not ok ..." as the node on `port` sees the cluster. */
  private async viewOf(port: number): Promise<string> {
    const fields = parseFields(textOf(await this.call(port, ["CLUSTER", "INFO"])));
    const nodes = parseNodes(textOf(await this.call(port, ["CLUSTER", "NODES"])));
    const ok = fields.get("cluster_state") === "ok" && fields.get("cluster_slots_ok") === String(SLOTS);
    const live = nodes.filter((n) => !n.failing && (n.master ? n.slots.length > 0 : true)).sort((a, b) => a.port - b.port);
    const byId = new Map(nodes.map((n) => [n.id, n.port]));
    const map = live.map((n) => n.master ? `${n.port}=${n.slots.map(([a, b]) => `${a}-${b}`).join(",")}` : `${n.port}>${byId.get(n.masterId)}`);
    const pending = nodes.some((n) => n.flags.includes("handshake") || n.flags.includes("noaddr"));
    return `${ok && !pending ? "ok" : "not ok"} ${port}: ${map.join(" ")}`;
  }
}

/** Parses CLUSTER NODES text. */
export function parseNodes(text: string): ClusterNode[] {
  return text.trim().split("\n").filter(Boolean).map((line) => {
    const [id, addr, flagText, masterId, , , , , ...slotText] = line.trim().split(" ");
    const flags = flagText.split(",");
    const hostPort = addr.split("@")[0];
    const slots: [number, number][] = [];
    for (const s of slotText) {
      if (s.startsWith("[")) continue; // [slot->-id] / [slot-<-id]: a migration in progress
      const [from, to] = s.split("-").map(Number);
      slots.push([from, to ?? from]);
    }
    return {
      id,
      port: Number(hostPort.slice(hostPort.lastIndexOf(":") + 1)),
      flags,
      master: flags.includes("master"),
      masterId,
      failing: flags.includes("fail") || flags.includes("fail?"),
      slots,
    };
  });
}

/** CRC16-CCITT (XMODEM), Redis Cluster's key hash, over bytes. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/**
 * The hash slot of a key as Redis Cluster computes it: CRC16 of the text between the first "{"
 * and the next "}" when that is not empty, else of the whole key, mod 16384.
 * @example keySlot("{user1000}.following") === keySlot("{user1000}.followers")
 */
export function keySlot(key: string | Uint8Array): number {
  const bytes = typeof key === "string" ? encoder.encode(key) : key;
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) & (SLOTS - 1);
  }
  return crc16(bytes) & (SLOTS - 1);
}

/** A key `${prefix}${n}` (the first n from `start`) whose slot the owners map gives to `port`. */
export function keyOn(owners: Int32Array, port: number, prefix: string, start = 0): string {
  for (let n = start; n < start + 100000; n++) if (owners[keySlot(`${prefix}${n}`)] === port) return `${prefix}${n}`;
  throw new Error(`no key ${prefix}N owned by ${port}`);
}

/** The `field:value` lines of one INFO section of the server on `port`. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const client = await RespClient.connect(port);
  try {
    return parseFields(textOf(await client.call(["INFO", section], 3000)));
  } finally {
    client.close();
  }
}

/** How many times `command` was executed on the server on `port` (INFO commandstats calls; rejected ones, such as -MOVED, excluded). */
export async function served(port: number, command: string): Promise<number> {
  const stats = (await info(port, "commandstats")).get(`cmdstat_${command}`) ?? "";
  return Number(/(?:^|,)calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** The role the server on `port` reports ("master", "slave"), or "down". */
export async function role(port: number): Promise<string> {
  return (await info(port, "replication").catch(() => null))?.get("role") ?? "down";
}

/** The pool YAML of the cluster contract; `listen: 127.0.0.1:0` gets a free port from startTestProxy. */
export function clusterPoolYaml(seeds: readonly number[], extra: Readonly<Record<string, string | number>> = {}): string {
  const lines = ["alpha:", "  listen: 127.0.0.1:0", "  redis: true", "  distribution: redis_cluster"];
  const settings = { timeout: 1000, ...extra };
  for (const [k, v] of Object.entries(settings)) lines.push(`  ${k}: ${v}`);
  lines.push("  servers:", ...seeds.map((p) => `   - ${HOST}:${p}:1`));
  return lines.join("\n") + "\n";
}

function parseFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** A bulk or status reply as text (throws on an error reply, so a failed admin command is loud). */
function textOf(reply: Reply): string {
  if (reply.type === "bulk") return reply.value === null ? "" : decoder.decode(reply.value);
  if (reply.type === "status") return reply.text;
  throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
}

/** A GET reply as its value, null for nil, or the error text. */
function valueOf(reply: Reply): string | null {
  if (reply.type === "error") return `-${reply.text}`;
  return reply.type === "bulk" && reply.value !== null ? decoder.decode(reply.value) : null;
}

/** Runs `redis-cli <args>` (bounded); rejects on a non-zero exit or an [ERR] line, with the output's tail. */
function runCli(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("redis-cli", [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const keep = (c: Uint8Array) => (out = (out + decoder.decode(c)).slice(-20000));
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code: number | null) => {
      clearTimeout(timer);
      const plain = out.replace(/\x1b\[[0-9;]*m/g, "");
      if (code === 0 && !plain.includes("[ERR]")) resolve(plain);
      else reject(new Error(`redis-cli ${args.slice(0, 3).join(" ")} exited with ${code}:\n${plain.slice(-2000)}`));
    });
  });
}
