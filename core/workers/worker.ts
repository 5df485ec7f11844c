/**
 * One worker process under `--workers N`: a full proxy over the configuration text the
 * supervisor sends, listening on the shared addresses (the Net it is given shares them:
 * see adapters/mod.ts loadNet), reporting its counters and answering health, pools,
 * dashboard and migration questions (and applying migration actions) when asked. It ends in one of two ways: `stop` (SIGTERM of the whole proxy: stop
 * accepting, finish in-flight requests for up to a grace period) or `drain` (a restart: stop
 * accepting, keep serving the clients it has until they leave or the drain timeout passes,
 * then close each once its replies are written).
 */
import { type Clock, formatAddr, type Net } from "../net.ts";
import type { Logger } from "../log.ts";
import { LOG_LEVELS } from "../log.ts";
import { loadConf } from "../conf/mod.ts";
import type { Conf } from "../conf/types.ts";
import { type Proxy, startProxy } from "../proxy/mod.ts";
import { createReloader } from "../reload/reloader.ts";
import type { Reloader } from "../reload/types.ts";
import { createMetrics, type Metrics } from "../stats/metrics.ts";
import { connectionTotals, takeSnapshot } from "../stats/snapshot.ts";
import { renderPrometheus } from "../stats/prometheus.ts";
import { HealthChecker } from "../admin/health.ts";
import { describePools } from "../admin/pools.ts";
import { poolPart, type PoolPart } from "../admin/dashboard/parts.ts";
import { migrationAction, migrationView } from "../admin/migration.ts";
import type { LatencyReader } from "../stats/history.ts";
import type { Server } from "../proxy/server.ts";
import { type FromWorker, Question, type ToWorker, type WorkerReport } from "./protocol.ts";

/** How a worker talks to its supervisor. */
export interface WorkerChannel {
  send(msg: FromWorker): void;
  /** Deliver every message from the supervisor to `handler`. */
  receive(handler: (msg: ToWorker) => void): void;
  /** Called once if the supervisor goes away (the channel closed). */
  onDisconnect(handler: () => void): void;
}

export interface WorkerDeps {
  readonly net: Net;
  readonly clock: Clock;
  readonly log: Logger;
  readonly channel: WorkerChannel;
  /** Reported in the Prometheus text (`nutcracker_info`) and INFO. */
  readonly version: string;
  readonly nutcrackerVersion: string;
  readonly source: string;
  readonly pid: number;
  /** Collect latency histograms (the supervisor serves /metrics). */
  readonly histograms: boolean;
  /** SIGHUP forwarded: reopen the log file; returns an error or null. */
  reopenLog(): string | null;
}

/** How often a draining worker looks whether its clients have all left (ms). */
const DRAIN_POLL_MS = 50;
/** After the drain timeout, how long clients get to receive the replies still owed to them. */
const DRAIN_GRACE_MS = 5000;

/** A running worker. */
export interface Worker {
  /** Resolves with the exit code: 0 after a stop or drain, 1 when it could not start. */
  readonly done: Promise<number>;
  /** Stop as SIGTERM does in one process (a drain in progress ends early). */
  stop(graceMs: number): Promise<void>;
}

/**
 * Start a worker: it waits for the supervisor's "start" and serves until stopped or drained.
 * @example const worker = startWorker({ net, clock, log, channel, ... }); host.exit(await worker.done);
 */
export function startWorker(deps: WorkerDeps): Worker {
  const run = new WorkerRun(deps);
  return { done: run.run(), stop: (graceMs) => run.stop(graceMs) };
}

class WorkerRun {
  private readonly deps: WorkerDeps;
  private proxy: Proxy | null = null;
  private reloader: Reloader | null = null;
  private readonly metrics: Metrics = createMetrics();
  private health: HealthChecker | null = null;
  private pending: { readonly text: string; readonly file: string } | null = null;
  /** serving -> draining (a restart) and/or stopping (stop, or the supervisor gone). */
  private state: "serving" | "draining" | "stopping" = "serving";
  private finished: (code: number) => void = () => {};
  private closedAck: (() => void) | null = null;
  private readonly early: ToWorker[] = [];
  private readonly startedAt: number;

  constructor(deps: WorkerDeps) {
    this.deps = deps;
    this.startedAt = deps.clock.now();
  }

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finished = resolve));
    this.deps.channel.receive((msg) => this.onMessage(msg));
    this.deps.channel.send({ t: "hello" });
    this.deps.channel.onDisconnect(() => {
      this.deps.log.warn("the supervisor went away; stopping");
      this.closedAck?.();
      void this.stop(DRAIN_GRACE_MS);
    });
    return done;
  }

  /** Stop as SIGTERM does: stop accepting, let in-flight requests finish for up to `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    const was = this.state;
    if (was === "stopping") return;
    this.state = "stopping";
    // A drain in progress ends at its next look and closes the proxy itself.
    if (was === "draining") return;
    this.deps.log.notice(`stopping: in-flight requests get up to ${graceMs} ms`);
    await this.proxy?.close(graceMs);
    this.finished(0);
  }

  private onMessage(msg: ToWorker): void {
    if (msg.t === "start") {
      this.deps.log.level = msg.logLevel;
      return void this.start(msg.conf, msg.file);
    }
    if (msg.t === "closed-ack") return this.closedAck?.();
    if (msg.t === "stop") return void this.stop(msg.graceMs);
    if (msg.t === "log-level") return this.logLevel(msg.delta);
    if (msg.t === "log-reopen") {
      const failed = this.deps.reopenLog();
      if (failed !== null) this.deps.log.error(`reopening log file failed, ignored: ${failed}`);
      return;
    }
    // The rest need the proxy; a question that arrives while starting waits for it.
    if (this.proxy === null) return void this.early.push(msg);
    this.serve(msg);
  }

  private serve(msg: ToWorker): void {
    const { channel } = this.deps;
    if (msg.t === "report") channel.send({ t: "report", seq: msg.seq, report: this.report(msg.prometheus) });
    else if (msg.t === "ask") void this.answer(msg.seq, msg.question, msg.args ?? {});
    else if (msg.t === "reload") void this.reload(msg.seq, msg.conf, msg.file, msg.dryRun);
    else if (msg.t === "drain") void this.drain(msg.timeoutMs);
  }

  private async start(text: string, file: string): Promise<void> {
    const { net, clock, log, channel } = this.deps;
    let proxy: Proxy;
    try {
      const conf = loadConf(text, file);
      const observe = this.deps.histograms ? this.metrics.observe : undefined;
      proxy = await startProxy(conf, { net, clock, log, observe, identity: { version: this.deps.version, pid: this.deps.pid } });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      log.log(LOG_LEVELS.EMERG, `failed to start the proxy: ${error}`);
      channel.send({ t: "failed", error });
      this.finished(1);
      return;
    }
    this.proxy = proxy;
    this.reloader = createReloader(proxy, () => this.takeNextConf(), { clock, log });
    channel.send({ t: "ready" });
    for (const msg of this.early.splice(0)) this.serve(msg);
  }

  private takeNextConf(): Conf {
    const pending = this.pending;
    if (pending === null) throw new Error("no configuration to apply");
    return loadConf(pending.text, pending.file);
  }

  private report(prometheus: boolean): WorkerReport {
    const pools = this.proxy!.pools;
    return {
      pools: takeSnapshot(pools),
      totals: connectionTotals(pools),
      prometheus: prometheus ? this.prometheus() : null,
    };
  }

  private prometheus(): string {
    const now = this.deps.clock.now();
    return renderPrometheus({
      pools: this.proxy!.pools,
      metrics: this.metrics,
      version: this.deps.nutcrackerVersion,
      source: this.deps.source,
      uptimeSeconds: Math.floor((now - this.startedAt) / 1000),
      now,
      reload: this.reloader!.status(),
    });
  }

  /** What the supervisor's dashboard merges: every pool's part, latency buckets included. */
  private dashboardParts(proxy: Proxy): PoolPart[] {
    const now = this.deps.clock.now();
    const latency: LatencyReader = (node, out) => this.metrics.addLatencyCounts(node as Server, out);
    return proxy.listeners.map((l) => poolPart(l.pool, formatAddr(l.address), now, latency));
  }

  private async answer(seq: number, question: Question, args: Readonly<Record<string, string>>): Promise<void> {
    const proxy = this.proxy!;
    let body: unknown;
    if (question === Question.Migrations) {
      body = proxy.pools.map((pool) => ({ pool: pool.conf.name, migration: migrationView(pool) }));
    } else if (question === Question.MigrationAction) {
      body = await migrationAction(proxy, args.pool ?? "", args.action ?? "");
    } else if (question === Question.Health) {
      this.health ??= new HealthChecker(this.deps.net, this.deps.clock);
      body = await this.health.check(proxy.pools);
    } else if (question === Question.Dashboard) {
      body = this.dashboardParts(proxy);
    } else {
      body = describePools(proxy, this.deps.clock.now(), this.reloader!.status());
    }
    this.deps.channel.send({ t: "answer", seq, body });
  }

  private async reload(seq: number, text: string, file: string, dryRun: boolean): Promise<void> {
    // A text that does not load is reported by the reloader like any other failure.
    this.pending = { text, file };
    const report = await this.reloader!.reload({ dryRun });
    this.deps.channel.send({ t: "reloaded", seq, report });
  }

  /**
   * A newer generation listens: stop accepting, tell the supervisor (it answers once no
   * connection can be handed to this process any more), serve the clients we have until
   * they all left or `timeoutMs` passed, then close each once its replies are written.
   */
  private async drain(timeoutMs: number): Promise<void> {
    if (this.state !== "serving") return;
    this.state = "draining";
    const { clock, log, channel } = this.deps;
    const proxy = this.proxy!;
    await Promise.all(proxy.listeners.map((l) => l.stopAccepting()));
    await new Promise<void>((resolve) => {
      this.closedAck = resolve;
      channel.send({ t: "closed" });
    });
    const clients = () => proxy.listeners.reduce((n, l) => n + l.clientCount, 0);
    log.notice(`draining: stopped accepting; ${clients()} clients, closed at the latest in ${timeoutMs} ms`);
    const deadline = clock.now() + timeoutMs;
    while (clients() > 0 && clock.now() < deadline && this.state === "draining") {
      await new Promise<void>((resolve) => clock.setTimer(resolve, DRAIN_POLL_MS));
    }
    const left = clients();
    if (left > 0) log.notice(`drain timeout: closing ${left} clients once their replies are written`);
    await proxy.close(DRAIN_GRACE_MS);
    channel.send({ t: "final", report: this.report(true) });
    log.notice("drained");
    this.finished(0);
  }

  private logLevel(delta: number): void {
    const log = this.deps.log;
    log.level = log.level + delta;
    log.log(LOG_LEVELS.EMERG, `log level ${delta > 0 ? "raised" : "lowered"} to ${log.level}`);
  }
}
