/**
 * The dashboard under `--workers N`: the supervisor serves the same page as one process,
 * over the sum of its workers. Once a second it asks every worker for its PoolParts
 * (Question.Dashboard), merges them (core/admin/dashboard/parts.ts) and samples its own
 * History over the sums, so the charts are full when a page opens; GET /api/dashboard asks
 * again and answers the merged view with live rates against that History.
 *
 * Sums must not go backwards when a worker is slow, restarted or replaced (a rate would
 * read 0, then a spike): the counters of a worker that did not answer this time are its last
 * answer's, and those of a worker that exited are kept (as aggregate.ts's Retired does for
 * the stats port).
 */
import type { Clock } from "../net.ts";
import type { ReloadStatus } from "../reload/types.ts";
import { History, HISTORY_STEP_MS, type HistoryPool } from "../stats/history.ts";
import {
  countedLatency,
  countedPool,
  dashboardHeader,
  type DashboardState,
  historyView,
  mergeParts,
  type NodePart,
  type PoolPart,
  poolView,
} from "../admin/dashboard/mod.ts";
import { Question } from "./protocol.ts";
import type { WorkerInfo } from "./proc.ts";

/** What the dashboard needs of the supervisor. */
export interface DashboardSupervisor {
  ask(question: Question): Promise<{ slot: number; pid: number; body: unknown }[]>;
  workers(): WorkerInfo[];
  status(): ReloadStatus;
}

export interface WorkersDashboardOptions {
  readonly clock: Clock;
  readonly startedAt: number;
  readonly version: string;
  readonly source: string;
}

/** The merged view and the History sampled over it. */
export class WorkersDashboard {
  private readonly sup: DashboardSupervisor;
  private readonly opts: WorkersDashboardOptions;
  private readonly history: History;
  /** What History samples: the last merged view's counters. */
  private counted: HistoryPool[] = [];
  /** Each worker's last answer, by pid. */
  private readonly last = new Map<number, readonly PoolPart[]>();
  /** The last answers of workers that exited, merged into one (only its counters are used). */
  private retired: PoolPart[] = [];
  private timer: unknown = null;
  private stopped = false;

  constructor(sup: DashboardSupervisor, opts: WorkersDashboardOptions) {
    this.sup = sup;
    this.opts = opts;
    this.history = new History(() => this.counted, countedLatency);
  }

  /** Sample every HISTORY_STEP_MS until stop(). */
  start(): void {
    const loop = async () => {
      const merged = await this.merged();
      if (this.stopped) return;
      // No answer at all (every worker restarting): skip the sample rather than drop the series.
      if (merged !== null) {
        this.counted = merged.map(countedPool);
        this.history.sample(this.opts.clock.now());
      }
      this.timer = this.opts.clock.setTimer(() => void loop(), HISTORY_STEP_MS);
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.opts.clock.clearTimer(this.timer);
  }

  /** The document, as one process's /api/dashboard answers it. */
  async state(since: number | null): Promise<DashboardState> {
    const merged = (await this.merged()) ?? [];
    const now = this.opts.clock.now();
    const pools = merged.map((part) => {
      const counted = countedPool(part);
      return poolView(part, this.history.livePool(counted, now), counted.servers.map((n) => this.history.liveNode(counted, n, now)));
    });
    const status = this.sup.status();
    const header = dashboardHeader({ ...this.opts, now, reload: status, reloadAvailable: true });
    return { ...header, workers: this.last.size, pools, history: historyView(this.counted, this.history, since) };
  }

  /** Ask the workers and merge; null when none answered. */
  private async merged(): Promise<PoolPart[] | null> {
    const answers = await this.sup.ask(Question.Dashboard);
    const alive = new Set(this.sup.workers().map((w) => w.pid));
    for (const [pid, parts] of this.last) {
      if (alive.has(pid)) continue;
      this.retired = mergeParts([this.retired, parts]);
      this.last.delete(pid);
    }
    if (answers.length === 0) return null;
    const answered = new Set<number>();
    for (const { pid, body } of answers) {
      this.last.set(pid, body as PoolPart[]);
      answered.add(pid);
    }
    const silent = [...this.last].filter(([pid]) => !answered.has(pid)).map(([, parts]) => parts);
    const merged = mergeParts(answers.map((a) => a.body as PoolPart[]));
    return withCounters(merged, [...silent, this.retired]);
  }
}

/** `parts` with the counters of `extra` (other processes' parts) added, for the pools and nodes `parts` has. */
function withCounters(parts: readonly PoolPart[], extra: readonly (readonly PoolPart[])[]): PoolPart[] {
  if (extra.length === 0) return [...parts];
  return parts.map((part) => {
    const others = extra.flatMap((e) => e.filter((p) => p.name === part.name));
    if (others.length === 0) return part;
    return {
      ...part,
      client_requests: part.client_requests + sum(others, (p) => p.client_requests),
      forward_error: part.forward_error + sum(others, (p) => p.forward_error),
      nodes: part.nodes.map((node) => withNodeCounters(node, others.flatMap((p) => p.nodes.filter((n) => n.name === node.name)))),
    };
  });
}

function withNodeCounters(node: NodePart, others: readonly NodePart[]): NodePart {
  if (others.length === 0) return node;
  const latency = [...node.latency];
  for (const other of others) other.latency.forEach((count, i) => (latency[i] = (latency[i] ?? 0) + count));
  return { ...node, requests: node.requests + sum(others, (n) => n.requests), latency };
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}
