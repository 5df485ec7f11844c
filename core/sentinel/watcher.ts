/**
 * Follows a pool's masters through Redis Sentinel. Each server's name is a Sentinel master
 * name: the watcher asks every Sentinel where that master is and which replicas it has,
 * takes the majority answer, confirms with ROLE that the node really is a master, and hands
 * the pool the shard's new addresses. It stays subscribed to every Sentinel: a
 * +switch-master moves the shard at once; other events (+sdown, +slave, +failover-end...)
 * re-ask that shard; a periodic re-ask is the backstop. The ring is built from the names,
 * so no key ever moves.
 */
import type { Addr, Clock, Net } from "../net.ts";
import { formatAddr } from "../net.ts";
import type { Logger } from "../log.ts";
import type { PoolConf } from "../conf/types.ts";
import { askOnce, RespLink } from "./link.ts";
import { fieldsOf, type RespValue } from "./resp.ts";

/** Where Sentinel says a shard's master and replicas are. */
export interface ShardPlacement {
  readonly master: Addr;
  readonly replicas: readonly Addr[];
}

/** What /pools and /metrics show of the Sentinel view of one shard. */
export interface ShardView {
  master: string | null;
  failovers: number;
  /** Clock ms of the last master switch this proxy applied, or null. */
  lastSwitchAt: number | null;
}

export interface SentinelDeps {
  readonly net: Net;
  readonly clock: Clock;
  readonly log: Logger;
  /** Apply a shard's placement (the pool rebuilds its topology). */
  readonly place: (shard: string, placement: ShardPlacement) => void;
}

const EVENTS = ["+switch-master", "+sdown", "-sdown", "+odown", "-odown", "+slave", "+failover-end", "+reset-master", "+convert-to-slave"];
const ASK_TIMEOUT_MS = 1000;
const REPOLL_MS = 5000;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;
/** Events come in bursts (+sdown, +odown, +failover-end...): one re-ask per shard per burst. */
const DEBOUNCE_MS = 50;

export class SentinelWatcher {
  /** Per shard (master name): the Sentinel view. */
  readonly shards = new Map<string, ShardView>();
  private conf: PoolConf;
  private readonly deps: SentinelDeps;
  private subscriptions: RespLink[] = [];
  private readonly connected = new Set<RespLink>();
  private readonly pending = new Map<string, unknown>();
  /** The last placement applied per shard. */
  private readonly placed = new Map<string, ShardPlacement>();
  private repoll: unknown = null;
  private stopped = false;

  constructor(conf: PoolConf, deps: SentinelDeps) {
    this.conf = conf;
    this.deps = deps;
    for (const shard of conf.shards) this.shards.set(shard.primary.name!, { master: null, failovers: 0, lastSwitchAt: null });
  }

  /** Sentinels with a live subscription now. */
  get reachable(): number {
    return this.connected.size;
  }

  /** Subscribe to every Sentinel and ask for every shard; resolves once every shard was asked (or failed). */
  async start(): Promise<void> {
    this.subscriptions = this.conf.sentinels.map((addr) => this.subscribe(addr, RECONNECT_MIN_MS));
    await this.resolveAll();
    this.schedulePoll();
  }

  /** A reload: new Sentinel list or servers. Subscriptions are remade only when the Sentinels changed. */
  async update(conf: PoolConf): Promise<void> {
    const sameSentinels = conf.sentinels.map(formatAddr).join() === this.conf.sentinels.map(formatAddr).join();
    this.conf = conf;
    for (const shard of conf.shards) {
      if (!this.shards.has(shard.primary.name!)) this.shards.set(shard.primary.name!, { master: null, failovers: 0, lastSwitchAt: null });
    }
    if (!sameSentinels) {
      for (const link of this.subscriptions) link.close();
      this.subscriptions = conf.sentinels.map((addr) => this.subscribe(addr, RECONNECT_MIN_MS));
    }
    await this.resolveAll();
  }

  stop(): void {
    this.stopped = true;
    if (this.repoll !== null) this.deps.clock.clearTimer(this.repoll);
    for (const timer of this.pending.values()) this.deps.clock.clearTimer(timer);
    for (const link of this.subscriptions) link.close();
  }

  /** The master of `shard` refused a write (-READONLY): it was demoted; ask again now. */
  demoted(shard: string): void {
    this.soon(shard);
  }

  private async resolveAll(): Promise<void> {
    await Promise.all(this.conf.shards.map((shard) => this.resolve(shard.primary.name!)));
  }

  /** Ask every Sentinel about `name`; apply the majority answer once ROLE confirms it. */
  private async resolve(name: string): Promise<void> {
    const answers = await Promise.all(this.conf.sentinels.map((addr) => this.ask(addr, name)));
    const placement = majority(answers.filter((a): a is ShardPlacement => a !== null));
    if (placement === null) {
      const known = this.shards.get(name)?.master;
      this.deps.log.warn(`pool '${this.conf.name}': no Sentinel answered for '${name}'; keeping ${known ?? "the configured address"}`);
      return;
    }
    await this.apply(name, placement);
  }

  private async ask(sentinel: Addr, name: string): Promise<ShardPlacement | null> {
    const { net } = this.deps;
    const auth = this.conf.sentinelAuth;
    try {
      const [master, replicas] = await Promise.all([
        this.bounded(askOnce(net, sentinel, auth, ASK_TIMEOUT_MS, "SENTINEL", "get-master-addr-by-name", name)),
        this.bounded(askOnce(net, sentinel, auth, ASK_TIMEOUT_MS, "SENTINEL", "replicas", name)),
      ]);
      const addr = addrOf(master);
      return addr === null ? null : { master: addr, replicas: replicasOf(replicas) };
    } catch {
      return null;
    }
  }

  /** Switch the shard when ROLE on the node says master (a node just demoted must not get writes). */
  private async apply(name: string, placement: ShardPlacement): Promise<void> {
    if (this.stopped) return;
    const view = this.shards.get(name);
    if (view === undefined) return;
    const text = formatAddr(placement.master);
    if (view.master !== text && !(await this.isMaster(placement.master))) {
      this.deps.log.warn(`pool '${this.conf.name}': Sentinel names ${text} master of '${name}' but ROLE disagrees; asking again`);
      return this.soon(name, 500);
    }
    if (view.master !== null && view.master !== text) {
      view.failovers++;
      view.lastSwitchAt = this.deps.clock.now();
      this.deps.log.notice(`pool '${this.conf.name}': master of '${name}' moved ${view.master} -> ${text}`);
    }
    view.master = text;
    this.placed.set(name, placement);
    this.deps.place(name, placement);
  }

  private async isMaster(addr: Addr): Promise<boolean> {
    try {
      const role = await this.bounded(askOnce(this.deps.net, addr, this.conf.redisAuth, ASK_TIMEOUT_MS, "ROLE"));
      return Array.isArray(role) && role[0] === "master";
    } catch {
      return false;
    }
  }

  private subscribe(addr: Addr, backoff: number): RespLink {
    const link = new RespLink(this.deps.net, addr, ASK_TIMEOUT_MS);
    if (this.conf.sentinelAuth !== null) link.command("AUTH", this.conf.sentinelAuth).catch(() => {});
    link.subscribe(EVENTS);
    link.onPush = (value) => {
      // Reachable once it confirmed the subscription (an AUTH it refused is no confirmation).
      if (Array.isArray(value) && (value[0] === "subscribe" || value[0] === "message")) this.connected.add(link);
      this.onEvent(value);
    };
    link.onClose = () => {
      this.connected.delete(link);
      if (this.stopped || !this.subscriptions.includes(link)) return;
      this.deps.clock.setTimer(() => this.resubscribe(link, addr, backoff), backoff);
    };
    return link;
  }

  private resubscribe(old: RespLink, addr: Addr, backoff: number): void {
    const i = this.subscriptions.indexOf(old);
    if (this.stopped || i < 0) return;
    this.subscriptions[i] = this.subscribe(addr, Math.min(backoff * 2, RECONNECT_MAX_MS));
  }

  /** ["message", channel, payload] from a Sentinel. */
  private onEvent(value: RespValue): void {
    if (!Array.isArray(value) || value[0] !== "message") return;
    const [channel, payload] = [value[1], value[2]];
    if (typeof channel !== "string" || typeof payload !== "string") return;
    const words = payload.split(" ");
    if (channel === "+switch-master") return this.switched(words);
    // "<type> <name> <ip> <port> @ <master-name> <ip> <port>", or "master <name> <ip> <port>".
    const at = words.indexOf("@");
    const shard = at >= 0 ? words[at + 1] : words[1];
    if (shard !== undefined && this.shards.has(shard)) this.soon(shard);
  }

  /**
   * "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>": move now (the old
   * master joins the replicas, as Sentinel will make it one), then ask for the replicas.
   */
  private switched(words: string[]): void {
    const [name, oldHost, oldPort, host, port] = words;
    if (!this.shards.has(name) || host === undefined) return;
    const master: Addr = { kind: "tcp", host, port: Number(port) };
    const old: Addr = { kind: "tcp", host: oldHost, port: Number(oldPort) };
    const known = this.placed.get(name)?.replicas ?? [];
    const replicas = [...known, old].filter((r) => formatAddr(r) !== formatAddr(master));
    void this.apply(name, { master, replicas }).then(() => this.soon(name));
  }

  private soon(shard: string, ms = DEBOUNCE_MS): void {
    if (this.stopped || this.pending.has(shard)) return;
    this.pending.set(shard, this.deps.clock.setTimer(() => {
      this.pending.delete(shard);
      void this.resolve(shard);
    }, ms));
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.repoll = this.deps.clock.setTimer(() => {
      void this.resolveAll().finally(() => this.schedulePoll());
    }, REPOLL_MS);
  }

  private bounded<T>(promise: Promise<T>): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = this.deps.clock.setTimer(() => reject(new Error("timed out")), ASK_TIMEOUT_MS);
      promise.then(resolve, reject).finally(() => this.deps.clock.clearTimer(timer));
    });
  }
}

/** ["host", "port"] -> Addr. */
function addrOf(value: RespValue): Addr | null {
  if (!Array.isArray(value) || typeof value[0] !== "string" || typeof value[1] !== "string") return null;
  return { kind: "tcp", host: value[0], port: Number(value[1]) };
}

function replicasOf(value: RespValue): Addr[] {
  if (!Array.isArray(value)) return [];
  const out: Addr[] = [];
  for (const entry of value) {
    const fields = fieldsOf(entry);
    const host = fields.get("ip");
    const port = Number(fields.get("port"));
    if (host !== undefined && port > 0) out.push({ kind: "tcp", host, port });
  }
  return out;
}

/** The master address most Sentinels gave (ties: the first seen), with the replicas that Sentinel listed. */
function majority(answers: readonly ShardPlacement[]): ShardPlacement | null {
  const votes = new Map<string, { count: number; placement: ShardPlacement }>();
  for (const answer of answers) {
    const key = formatAddr(answer.master);
    const seen = votes.get(key);
    if (seen === undefined) votes.set(key, { count: 1, placement: answer });
    else seen.count++;
  }
  let best: { count: number; placement: ShardPlacement } | null = null;
  for (const vote of votes.values()) if (best === null || vote.count > best.count) best = vote;
  return best?.placement ?? null;
}
