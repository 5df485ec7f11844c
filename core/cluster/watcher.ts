/**
 * Keeps a Redis Cluster pool's slot map: asks the seeds (then any node it knows) for
 * `CLUSTER SLOTS` at start, periodically (cluster_refresh_interval) and when a redirection
 * or a failure says the map is stale - debounced, one refresh in flight. Each answer becomes
 * a layout (shards: a master and its replicas; slot -> shard) the pool builds its topology on.
 */
import type { Addr, Clock, Net } from "../net.ts";
import { formatAddr } from "../net.ts";
import type { Logger } from "../log.ts";
import type { PoolConf } from "../conf/types.ts";
import { askOnce } from "../sentinel/link.ts";
import type { RespValue } from "../sentinel/resp.ts";
import { SlotMap } from "./slots.ts";

/** One master and its replicas, as the cluster lists them. */
export interface ClusterShard {
  readonly master: Addr;
  readonly replicas: readonly Addr[];
}

/** The cluster's layout: shards, and slot -> index into shards. */
export interface ClusterLayout {
  readonly shards: readonly ClusterShard[];
  readonly slots: SlotMap;
}

export interface ClusterDeps {
  readonly net: Net;
  readonly clock: Clock;
  readonly log: Logger;
  /** A new layout: the pool rebuilds its topology on it. */
  readonly place: (layout: ClusterLayout) => void;
  /** Addresses of the nodes the pool knows now (asked after the seeds). */
  readonly known: () => readonly Addr[];
}

const ASK_TIMEOUT_MS = 1000;
const DEBOUNCE_MS = 20;

export class ClusterWatcher {
  refreshes = 0;
  readonly redirects = { moved: 0, ask: 0 };
  lastRefreshAt: number | null = null;
  /** Refreshes no node answered (the map was kept), and the last one's time and reason. */
  refreshErrors = 0;
  lastErrorAt: number | null = null;
  lastError: string | null = null;
  private conf: PoolConf;
  private readonly deps: ClusterDeps;
  private inFlight: Promise<void> | null = null;
  private soonTimer: unknown = null;
  private periodic: unknown = null;
  private stopped = false;

  constructor(conf: PoolConf, deps: ClusterDeps) {
    this.conf = conf;
    this.deps = deps;
  }

  /** The first refresh; then every cluster_refresh_interval ms. */
  async start(): Promise<void> {
    await this.refresh();
    this.schedule();
  }

  update(conf: PoolConf): Promise<void> {
    this.conf = conf;
    return this.refresh();
  }

  stop(): void {
    this.stopped = true;
    for (const timer of [this.soonTimer, this.periodic]) if (timer !== null) this.deps.clock.clearTimer(timer);
  }

  /** Ask again shortly (a MOVED, a failure): bursts make one refresh. */
  refreshSoon(): void {
    if (this.stopped || this.soonTimer !== null) return;
    this.soonTimer = this.deps.clock.setTimer(() => {
      this.soonTimer = null;
      void this.refresh();
    }, DEBOUNCE_MS);
  }

  /** Refresh now, or join the one in flight. */
  refresh(): Promise<void> {
    this.inFlight ??= this.ask().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  /** Asks the seeds, then every known node, until one answers with a layout. */
  private async ask(): Promise<void> {
    const seen = new Set<string>();
    const failures: string[] = [];
    for (const addr of [...this.conf.shards.map((s) => s.primary.addr), ...this.deps.known()]) {
      const key = formatAddr(addr);
      if (seen.has(key) || this.stopped) continue;
      seen.add(key);
      const layout = await this.askNode(addr, failures);
      if (layout === null) continue;
      this.refreshes++;
      this.lastRefreshAt = this.deps.clock.now();
      this.deps.place(layout);
      return;
    }
    if (this.stopped) return;
    // Kept for the dashboard and /pools: a map that cannot be refreshed may be stale.
    this.refreshErrors++;
    this.lastErrorAt = this.deps.clock.now();
    this.lastError = `no cluster node answered CLUSTER SLOTS (${failures.join("; ") || "no node to ask"})`;
    this.deps.log.warn(`pool '${this.conf.name}': ${this.lastError}; keeping the slot map`);
  }

  /** One node's layout, or null (the reason appended to `failures`). */
  private async askNode(addr: Addr, failures: string[]): Promise<ClusterLayout | null> {
    try {
      const reply = await askOnce(this.deps.net, addr, this.conf.redisAuth, ASK_TIMEOUT_MS, "CLUSTER", "SLOTS");
      const layout = layoutOf(reply);
      if (layout === null) failures.push(`${formatAddr(addr)}: no slot ranges in the answer`);
      return layout;
    } catch (err) {
      failures.push(`${formatAddr(addr)}: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.periodic = this.deps.clock.setTimer(() => {
      void this.refresh().finally(() => this.schedule());
    }, this.conf.clusterRefreshInterval);
  }
}

/** CLUSTER SLOTS: [[start, end, [host, port, id], [replica host, port, id]...], ...]. */
export function layoutOf(reply: RespValue): ClusterLayout | null {
  if (!Array.isArray(reply) || reply.length === 0) return null;
  const shards: ClusterShard[] = [];
  const index = new Map<string, number>();
  const slots = new SlotMap();
  for (const range of reply) {
    if (!Array.isArray(range) || range.length < 3) continue;
    const [from, to] = [range[0], range[1]];
    const nodes = range.slice(2).map(addrOf).filter((a): a is Addr => a !== null);
    if (typeof from !== "number" || typeof to !== "number" || nodes.length === 0) continue;
    const key = formatAddr(nodes[0]);
    let i = index.get(key);
    if (i === undefined) {
      i = shards.length;
      index.set(key, i);
      shards.push({ master: nodes[0], replicas: nodes.slice(1) });
    }
    slots.assign(from, to, i);
  }
  return shards.length === 0 ? null : { shards, slots };
}

function addrOf(node: RespValue): Addr | null {
  if (!Array.isArray(node) || typeof node[0] !== "string" || typeof node[1] !== "number") return null;
  return { kind: "tcp", host: node[0], port: node[1] };
}
