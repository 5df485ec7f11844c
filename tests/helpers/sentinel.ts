/**
 * Real Redis Sentinel for end-to-end tests: a master and N replicas (each redis-server in its
 * own --dir, so a full sync's dump.rdb is never shared) watched by Sentinels started as
 * `redis-server <generated sentinel.conf> --sentinel` (each conf in its own directory: Sentinel
 * rewrites it). Helpers ask the Sentinels (authenticated when they require a password), wait
 * until they agree, record every event they publish with its arrival time, force a failover and
 * crash the master. Only node:fs and node:net, so Node, Deno and Bun run it. Every process
 * started here is killed when the test process exits, even if a test fails.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import net from "node:net";
import { type ServerProcess, startRedis } from "./servers.ts";
import { type SentinelProcess, startSentinelProcess } from "./sentinel-process.ts";
import { parseReply, type Reply, RespClient } from "./resp.ts";
import { freeze, waitFor } from "./soak.ts";

export type { SentinelProcess };

const HOST = "127.0.0.1";
const decoder = new TextDecoder();

/** How to build a Sentinel setup; every field has a default suited to fast failovers. */
export interface SentinelSetupOptions {
  /** The Sentinel master name (default "shard1"). */
  name?: string;
  /** Replicas of the master (default 2). */
  replicas?: number;
  /** Sentinels (default 3). */
  sentinels?: number;
  /** Sentinels that must agree the master is down (default 2). */
  quorum?: number;
  /** `down-after-milliseconds` (default 500). */
  downAfterMs?: number;
  /** `failover-timeout` (default 3000). */
  failoverTimeoutMs?: number;
  /** `requirepass` on every Sentinel (what the proxy's `sentinel_auth` sends); default none. */
  password?: string;
  /** Prefix of the temporary directory (default "sentinel-"). */
  prefix?: string;
}

/** A port on 127.0.0.1 (every process here listens on loopback only). */
export type Port = number;

/**
 * A master, its replicas and the Sentinels watching it, all on loopback.
 * @example
 * const s = await SentinelSetup.start({ replicas: 2 });
 * await s.waitAgreed();
 * const events = await s.subscribe();
 * await s.failover();
 * const sw = await events.waitSwitch(0, 10000); // { from, to, at }
 * await s.stopAll();
 */
export class SentinelSetup {
  readonly name: string;
  readonly password: string | null;
  /** Every redis-server: the initial master first, then the replicas (a failover reorders nothing here). */
  readonly redises: ServerProcess[] = [];
  readonly sentinels: SentinelProcess[] = [];
  private readonly root: string;
  private readonly subscribers: SentinelEvents[] = [];

  private constructor(opts: SentinelSetupOptions) {
    this.name = opts.name ?? "shard1";
    this.password = opts.password ?? null;
    this.root = mkdtempSync(path.join(tmpdir(), opts.prefix ?? "sentinel-"));
  }

  /** Starts the master, the replicas (linked), then the Sentinels; does not wait for agreement. */
  static async start(opts: SentinelSetupOptions = {}): Promise<SentinelSetup> {
    const setup = new SentinelSetup(opts);
    try {
      const master = await setup.startRedis([]);
      const replicas = Array.from({ length: opts.replicas ?? 2 }, () => setup.startRedis(["--replicaof", HOST, String(master.port)]));
      await Promise.all(replicas);
      const conf = sentinelConf(setup.name, master.port, opts);
      const sentinels = Array.from({ length: opts.sentinels ?? 3 }, (_, i) => setup.startSentinel(conf, i));
      await Promise.all(sentinels);
    } catch (err) {
      await setup.stopAll();
      throw err;
    }
    return setup;
  }

  /** The Sentinels' ports, in start order. */
  get sentinelPorts(): Port[] {
    return this.sentinels.map((s) => s.port);
  }

  /** The redis-server on `port` (throws when it is not one of ours). */
  redisAt(port: Port): ServerProcess {
    const found = this.redises.find((r) => r.port === port);
    if (found === undefined) throw new Error(`no redis-server of this setup on port ${port}`);
    return found;
  }

  /** One command to the Sentinel on `port` (AUTH first when the Sentinels need it). */
  async call(port: Port, args: readonly string[], timeoutMs = 3000): Promise<Reply> {
    const client = await RespClient.connect(port, timeoutMs);
    try {
      if (this.password !== null) await client.call(["AUTH", this.password], timeoutMs);
      return await client.call(args, timeoutMs);
    } finally {
      client.close();
    }
  }

  /** The master port the Sentinel on `port` names (null when it does not answer or knows none). */
  async masterSeenBy(port: Port): Promise<Port | null> {
    const reply = await this.call(port, ["SENTINEL", "get-master-addr-by-name", this.name]).catch(() => null);
    if (reply?.type !== "array" || reply.items === null || reply.items.length !== 2) return null;
    return Number(text(reply.items[1]));
  }

  /** The master port most running Sentinels name now (throws when none answers). */
  async masterPort(): Promise<Port> {
    const seen = await Promise.all(this.sentinels.filter((s) => s.running).map((s) => this.masterSeenBy(s.port)));
    const votes = new Map<Port, number>();
    for (const p of seen) if (p !== null) votes.set(p, (votes.get(p) ?? 0) + 1);
    const best = [...votes].sort((a, b) => b[1] - a[1])[0];
    if (best === undefined) throw new Error("no Sentinel names a master");
    return best[0];
  }

  /** `SENTINEL replicas <name>` from one Sentinel, each replica's fields as a map. */
  async replicasSeenBy(port: Port): Promise<Map<string, string>[]> {
    return fieldMaps(await this.call(port, ["SENTINEL", "replicas", this.name]));
  }

  /** Other Sentinels the Sentinel on `port` knows of. */
  async peersSeenBy(port: Port): Promise<number> {
    return fieldMaps(await this.call(port, ["SENTINEL", "sentinels", this.name])).length;
  }

  /**
   * Waits until every running Sentinel names the same master (`masterPort` when given), sees
   * `replicas` healthy replicas (flags exactly "slave", link ok) and knows every other running
   * Sentinel: only then can a failover be agreed on. Throws with each Sentinel's view after ms.
   */
  async waitAgreed(opts: { masterPort?: Port; replicas?: number; ms?: number } = {}): Promise<Port> {
    const want = opts.replicas ?? this.redises.filter((r) => r.running).length - 1;
    let views: string[] = [];
    let agreed: Port | null = null;
    const ok = await waitFor(async () => {
      const running = this.sentinels.filter((s) => s.running);
      const failed = (port: Port, e: unknown) => ({ master: null, healthy: 0, peers: 0, line: `sentinel ${port}: ${e}` });
      const all = await Promise.all(running.map((s) => this.viewOf(s.port).catch((e) => failed(s.port, e))));
      views = all.map((v) => v.line);
      const masters = new Set(all.map((v) => v.master));
      agreed = all[0]?.master ?? null;
      return masters.size === 1 && agreed !== null && (opts.masterPort === undefined || agreed === opts.masterPort) &&
        all.every((v) => v.healthy >= want && v.peers >= running.length - 1);
    }, opts.ms ?? 20000, 100);
    if (!ok || agreed === null) throw new Error(`the Sentinels did not agree within ${opts.ms ?? 20000} ms:\n${views.join("\n")}`);
    return agreed;
  }

  /** `SENTINEL FAILOVER <name>` on the first running Sentinel, retried while one is already under way. */
  async failover(ms = 10000): Promise<void> {
    let last = "";
    const ok = await waitFor(async () => {
      const s = this.sentinels.find((x) => x.running);
      if (s === undefined) throw new Error("no Sentinel is running");
      const reply = await this.call(s.port, ["SENTINEL", "FAILOVER", this.name]).catch((e) => ({ type: "error", text: String(e) }) as Reply);
      last = JSON.stringify(reply);
      return reply.type === "status";
    }, ms, 200);
    if (!ok) throw new Error(`SENTINEL FAILOVER ${this.name} was refused for ${ms} ms: ${last}`);
  }

  /** Starts one more replica of the current master (Sentinel finds it through the master's INFO, then publishes +slave). */
  async addReplica(): Promise<ServerProcess> {
    return await this.startRedis(["--replicaof", HOST, String(await this.masterPort())]);
  }

  /** SIGKILLs the current master (as the Sentinels see it), waits for its exit, returns it. */
  async killMaster(): Promise<ServerProcess> {
    const master = this.redisAt(await this.masterPort());
    master.kill("SIGKILL");
    if (!(await waitFor(() => !master.running, 5000, 5))) throw new Error(`master on ${master.port} did not exit after SIGKILL`);
    return master;
  }

  /** SIGSTOPs the current master (a hung process: connections stay open, nothing answers) and returns it; SIGCONT thaws it. */
  async freezeMaster(): Promise<ServerProcess> {
    const master = this.redisAt(await this.masterPort());
    await freeze(master);
    return master;
  }

  /** Subscribes to every event of every running Sentinel (closed by stopAll). */
  async subscribe(): Promise<SentinelEvents> {
    const events = await SentinelEvents.subscribe(this.sentinels.filter((s) => s.running).map((s) => s.port), this.password);
    this.subscribers.push(events);
    return events;
  }

  /** Closes subscriptions, stops every process (thawing stopped ones), removes the directories. */
  async stopAll(): Promise<void> {
    for (const s of this.subscribers) s.close();
    const all = [...this.sentinels, ...this.redises];
    for (const p of all) p.kill("SIGCONT");
    await Promise.all(all.map((p) => p.stop().catch(() => {})));
    rmSync(this.root, { recursive: true, force: true });
  }

  private async viewOf(port: Port): Promise<{ master: Port | null; healthy: number; peers: number; line: string }> {
    const master = await this.masterSeenBy(port);
    const replicas = await this.replicasSeenBy(port);
    const peers = await this.peersSeenBy(port);
    const healthy = replicas.filter((r) => r.get("flags") === "slave" && r.get("master-link-status") === "ok").length;
    const list = replicas.map((r) => `${r.get("port")}(${r.get("flags")},${r.get("master-link-status")})`).join(" ");
    return { master, healthy, peers, line: `sentinel ${port}: master ${master}, replicas ${list || "none"}, peers ${peers}` };
  }

  private async startRedis(extra: string[]): Promise<ServerProcess> {
    const dir = mkdtempSync(path.join(this.root, "redis-"));
    const server = await startRedis({ args: ["--dir", dir, "--repl-diskless-sync-delay", "0", ...extra] });
    this.redises.push(server);
    return server;
  }

  private async startSentinel(conf: string, index: number): Promise<void> {
    const dir = mkdtempSync(path.join(this.root, `sentinel${index}-`));
    this.sentinels.push(await startSentinelProcess(dir, conf, this.password));
  }
}

/** sentinel.conf text for one master (the port and dir lines are added per Sentinel). */
function sentinelConf(name: string, masterPort: Port, opts: SentinelSetupOptions): string {
  const lines = [
    `bind ${HOST}`,
    "sentinel resolve-hostnames no",
    `sentinel monitor ${name} ${HOST} ${masterPort} ${opts.quorum ?? 2}`,
    `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 500}`,
    `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 3000}`,
    `sentinel parallel-syncs ${name} 1`,
    "loglevel warning",
  ];
  // With requirepass and no sentinel-pass, Sentinels also use it to talk to each other.
  if (opts.password !== undefined) lines.push(`requirepass ${opts.password}`);
  return lines.join("\n") + "\n";
}

/** Each SentinelEvent as published: the channel is the event type ("+switch-master", "+sdown", ...). */
export interface SentinelEvent {
  /** Date.now() when it arrived. */
  readonly at: number;
  /** The port of the Sentinel that published it. */
  readonly sentinel: Port;
  readonly channel: string;
  readonly text: string;
}

/** A master switch: `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>`. */
export interface Switch {
  /** When the first Sentinel announced it (Date.now()). */
  readonly at: number;
  readonly name: string;
  readonly from: Port;
  readonly to: Port;
}

/** Every event published by a set of Sentinels (PSUBSCRIBE *), with arrival times. */
export class SentinelEvents {
  readonly events: SentinelEvent[] = [];
  private readonly sockets: net.Socket[] = [];

  /** Subscribes on every port (AUTH first when `password` is set); resolves once all confirmed. */
  static async subscribe(ports: readonly Port[], password: string | null = null): Promise<SentinelEvents> {
    const events = new SentinelEvents();
    try {
      await Promise.all(ports.map((p) => events.listen(p, password)));
    } catch (err) {
      events.close();
      throw err;
    }
    return events;
  }

  /** Master switches since `since` (ms), the earliest announcement of each, in order. */
  switches(since = 0): Switch[] {
    const out: Switch[] = [];
    for (const e of this.events) {
      if (e.channel !== "+switch-master" || e.at < since) continue;
      const [name, , from, , to] = e.text.split(" ");
      const sw = { at: e.at, name, from: Number(from), to: Number(to) };
      if (!out.some((o) => o.from === sw.from && o.to === sw.to)) out.push(sw);
    }
    return out;
  }

  /** The first master switch at or after `since`; throws after ms with the events seen. */
  async waitSwitch(since: number, ms: number): Promise<Switch> {
    if (!(await waitFor(() => this.switches(since).length > 0, ms, 5))) {
      throw new Error(`no +switch-master within ${ms} ms; events: ${this.describe(since)}`);
    }
    return this.switches(since)[0];
  }

  /** The first event on `channel` whose text includes `part`, at or after `since`; null after ms. */
  async waitEvent(channel: string, part: string, since: number, ms: number): Promise<SentinelEvent | null> {
    const find = () => this.events.find((e) => e.at >= since && e.channel === channel && e.text.includes(part));
    await waitFor(() => find() !== undefined, ms, 10);
    return find() ?? null;
  }

  /** The events since `since` as one line per distinct event, relative ms, for messages and logs. */
  describe(since = 0): string {
    const seen = new Set<string>();
    const lines: string[] = [];
    for (const e of this.events) {
      const key = `${e.channel} ${e.text}`;
      if (e.at < since || seen.has(key)) continue;
      seen.add(key);
      lines.push(`+${e.at - since}ms ${key}`);
    }
    return lines.join("\n");
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
  }

  private listen(port: Port, password: string | null): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: HOST, port });
      this.sockets.push(sock);
      let buf: Uint8Array = new Uint8Array(0);
      const timer = setTimeout(() => reject(new Error(`PSUBSCRIBE on Sentinel ${port} not confirmed`)), 5000);
      sock.once("connect", () => {
        const auth = password === null ? "" : `AUTH ${password}\r\n`;
        sock.write(`${auth}PSUBSCRIBE *\r\n`);
      });
      sock.on("error", (err: Error) => reject(err));
      sock.on("data", (chunk: Uint8Array) => {
        buf = joined(buf, chunk);
        let at = 0;
        for (let got = parseReply(buf, at, buf.length); got !== null; got = at < buf.length ? parseReply(buf, at, buf.length) : null) {
          at = got[1];
          const reply = got[0];
          const items = reply.type === "array" ? reply.items ?? [] : [];
          const kind = items.length > 0 ? text(items[0]) : "";
          if (reply.type === "error") reject(new Error(`Sentinel ${port}: ${reply.text}`));
          if (kind === "psubscribe") {
            clearTimeout(timer);
            resolve();
          }
          if (kind === "pmessage") this.events.push({ at: Date.now(), sentinel: port, channel: text(items[2]), text: text(items[3]) });
        }
        buf = buf.slice(at);
      });
    });
  }
}
/** An array reply of arrays of field/value pairs (SENTINEL replicas, sentinels, masters) as maps. */
export function fieldMaps(reply: Reply): Map<string, string>[] {
  if (reply.type !== "array" || reply.items === null) throw new Error(`expected an array, got ${JSON.stringify(reply)}`);
  return reply.items.map((entry) => {
    const fields = new Map<string, string>();
    const items = entry.type === "array" ? entry.items ?? [] : [];
    for (let i = 0; i + 1 < items.length; i += 2) fields.set(text(items[i]), text(items[i + 1]));
    return fields;
  });
}

/** A bulk or status reply as text ("" for anything else). */
function text(reply: Reply): string {
  if (reply.type === "bulk") return reply.value === null ? "" : decoder.decode(reply.value);
  if (reply.type === "status" || reply.type === "error") return reply.text;
  if (reply.type === "int") return String(reply.value);
  return "";
}

function joined(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
