/**
 * The supervisor of `--workers N`: starts N worker processes (a generation), replaces one
 * that exits unexpectedly (with backoff), starts a new generation on restart (SIGUSR2, POST
 * /restart) and drains the old one once the new one listens, applies reloads to every worker
 * all-or-nothing, forwards log signals, and gathers the workers' counters for one stats view.
 * How a worker process is started is the adapter's business (`SpawnWorker`); this file only
 * sees messages and exits, so it runs on every runtime and in unit tests.
 */
import type { Clock } from "../net.ts";
import type { Logger } from "../log.ts";
import { type PoolChange, type ReloadReport, ReloadResult, type Reloader, type ReloadStatus } from "../reload/types.ts";
import { Retired, type SnapshotPart, sumSnapshots } from "../stats/aggregate.ts";
import type { FromWorker, Question, ToWorker, WorkerReport } from "./protocol.ts";
import { Proc, type SpawnWorker, type WorkerInfo } from "./proc.ts";

export type { SpawnWorker, WorkerEvents, WorkerHandle, WorkerInfo, WorkerState } from "./proc.ts";

/** A configuration read and validated by the supervisor: its text goes to the workers. */
export interface ConfText {
  readonly text: string;
  readonly file: string;
}

export interface SupervisorOptions {
  readonly count: number;
  /** ms an old generation keeps serving its clients after a restart (--drain-timeout). */
  readonly drainTimeoutMs: number;
  /** ms in-flight requests get on stop (SIGINT/SIGTERM). */
  readonly graceMs: number;
  /** ms a new worker may take to listen (default 30000). */
  readonly startTimeoutMs?: number;
  /** Workers collect latency histograms and include Prometheus text in reports (the admin API is on). */
  readonly histograms: boolean;
}

export interface SupervisorDeps {
  readonly spawn: SpawnWorker;
  readonly clock: Clock;
  readonly log: Logger;
  /** Read and validate the configuration file; throws ConfError or an Error naming the file. */
  readConf(): ConfText;
}

/** What a restart did. */
export interface RestartReport {
  readonly generation: number;
  readonly pids: readonly number[];
  /** Workers of the previous generation now draining. */
  readonly draining: readonly number[];
}

/** Backoff before a crashed worker's slot is started again: 100 ms doubling up to 10 s. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** A worker that served this long before exiting resets its slot's backoff. */
const STABLE_MS = 10_000;
/** How long a question to a worker may take. */
const ASK_TIMEOUT_MS = 5_000;
const RELOAD_TIMEOUT_MS = 30_000;
/** Past its drain timeout and grace, a worker still alive is killed after this much more. */
const KILL_SLACK_MS = 5_000;

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class Supervisor implements Reloader {
  private readonly opts: SupervisorOptions;
  private readonly deps: SupervisorDeps;
  private conf: ConfText;
  private generation = 0;
  private current: Proc[] = [];
  private readonly draining = new Set<Proc>();
  private readonly failures: number[] = [];
  private readonly timers = new Set<unknown>();
  private stopping = false;
  private seq = 0;
  private turn: Promise<unknown> = Promise.resolve();
  private readonly retired = new Retired();
  private reloadGeneration = 1;
  private readonly reloads = { ok: 0, error: 0 };
  private lastReloadAt: number | null = null;
  private lastReloadError: string | null = null;
  /** Workers started again after exiting unexpectedly. */
  replaced = 0;
  /** Restarts (new generations) completed. */
  restarts = 0;

  constructor(conf: ConfText, opts: SupervisorOptions, deps: SupervisorDeps) {
    this.conf = conf;
    this.opts = opts;
    this.deps = deps;
  }

  /** Start the first generation; rejects with the first worker's error (after stopping the others). */
  async start(): Promise<void> {
    await this.startGeneration();
  }

  /** Workers alive now: the current generation, then the draining ones. */
  workers(): WorkerInfo[] {
    return [...this.current, ...this.draining].filter((p) => p.live).map((p) => ({
      slot: p.slot, generation: p.generation, pid: p.pid, state: p.state, startedAt: p.startedAt,
    }));
  }

  /** The generation of workers serving new connections (0 before the first is up). */
  get currentGeneration(): number {
    return this.current[0]?.generation ?? 0;
  }

  // ---- restart ----------------------------------------------------------------

  /**
   * A new generation from the current executable, source and configuration file: once
   * every new worker listens, the old ones drain. If a new worker fails, the new
   * generation is stopped, the old one keeps serving, and this rejects.
   */
  restart(): Promise<RestartReport> {
    return this.inTurn(async () => {
      const conf = this.deps.readConf();
      this.conf = conf;
      const old = this.current;
      await this.startGeneration();
      for (const proc of old) this.drain(proc);
      this.restarts++;
      const report = { generation: this.generation, pids: this.current.map((p) => p.pid), draining: old.filter((p) => p.live).map((p) => p.pid) };
      this.deps.log.notice(`restart: generation ${report.generation} serves (pids ${report.pids.join(", ")}); ` +
        `generation ${report.generation - 1} drains for up to ${this.opts.drainTimeoutMs} ms`);
      return report;
    });
  }

  private async startGeneration(): Promise<void> {
    const generation = ++this.generation;
    const procs = Array.from({ length: this.opts.count }, (_, slot) => this.spawn(slot, generation));
    try {
      await Promise.all(procs.map((p) => this.bounded(p.ready, this.opts.startTimeoutMs ?? 30_000, `${p.name} to listen`)));
    } catch (err) {
      this.generation--;
      await Promise.all(procs.map((p) => this.stopProc(p, 0)));
      throw new Error(`generation ${generation} failed to start: ${errorText(err)}`);
    }
    this.current = procs;
    this.failures.length = 0;
  }

  private drain(proc: Proc): void {
    if (!proc.live) return;
    proc.state = "draining";
    proc.expected = true;
    this.draining.add(proc);
    proc.handle.send({ t: "drain", timeoutMs: this.opts.drainTimeoutMs });
    this.killAfter(proc, this.opts.drainTimeoutMs + this.opts.graceMs + KILL_SLACK_MS);
  }

  // ---- worker processes ---------------------------------------------------------

  private spawn(slot: number, generation: number): Proc {
    const proc = new Proc(slot, generation, this.deps.clock.now());
    proc.handle = this.deps.spawn(slot, generation, {
      message: (msg) => this.onMessage(proc, msg),
      exit: (code, signal) => this.onExit(proc, code, signal),
    });
    return proc;
  }

  private onMessage(proc: Proc, msg: FromWorker): void {
    if (msg.t === "hello") {
      // The level SIGTTIN/SIGTTOU left the supervisor at, so a new worker logs as the others do.
      proc.handle.send({ t: "start", conf: this.conf.text, file: this.conf.file, logLevel: this.deps.log.level });
    } else if (msg.t === "ready") {
      if (proc.state === "starting") proc.state = "ready";
      proc.readyAt = this.deps.clock.now();
      proc.markReady();
    } else if (msg.t === "failed") {
      proc.error = msg.error;
      proc.markFailed(new Error(`${proc.name}: ${msg.error}`));
    } else if (msg.t === "closed") {
      proc.handle.send({ t: "closed-ack" });
    } else if (msg.t === "final") {
      proc.lastReport = msg.report;
    } else {
      proc.waiters.get(msg.seq)?.resolve(msg);
      proc.waiters.delete(msg.seq);
    }
  }

  private onExit(proc: Proc, code: number | null, signal: string | null): void {
    const was = proc.state;
    proc.state = "exited";
    proc.markExited();
    const how = signal !== null ? `signal ${signal}` : `code ${code}`;
    proc.markFailed(new Error(`${proc.name} exited (${how})${proc.error === null ? "" : `: ${proc.error}`}`));
    for (const waiter of proc.waiters.values()) waiter.reject(new Error(`${proc.name} exited`));
    proc.waiters.clear();
    if (proc.lastReport !== null) this.retired.add(proc.lastReport, proc.lastReport.prometheus);
    this.draining.delete(proc);
    if (was === "draining") return this.deps.log.notice(`${proc.name} drained and exited (${how})`);
    if (proc.expected || this.stopping || !this.current.includes(proc)) return;
    this.replace(proc, how);
  }

  /** A current worker exited unexpectedly: start its slot again after the slot's backoff. */
  private replace(proc: Proc, how: string): void {
    const now = this.deps.clock.now();
    const stable = proc.readyAt > 0 && now - proc.readyAt >= STABLE_MS;
    const failures = stable ? 0 : (this.failures[proc.slot] ?? 0);
    this.failures[proc.slot] = failures + 1;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** failures);
    this.deps.log.error(`${proc.name} exited unexpectedly (${how}); starting a new worker ${proc.slot} in ${delay} ms`);
    this.later(delay, () => {
      if (this.stopping || this.current[proc.slot] !== proc) return;
      const next = this.spawn(proc.slot, proc.generation);
      this.current[proc.slot] = next;
      this.replaced++;
      next.ready.then(
        () => this.deps.log.notice(`${next.name} replaces pid ${proc.pid}`),
        (err) => this.deps.log.error(`${errorText(err)}`),
      );
    });
  }

  private later(ms: number, fn: () => void): void {
    const timer = this.deps.clock.setTimer(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private killAfter(proc: Proc, ms: number): void {
    this.later(ms, () => {
      if (!proc.live) return;
      this.deps.log.warn(`${proc.name} did not exit in ${ms} ms; killing it`);
      proc.handle.kill("SIGKILL");
    });
  }

  /** Ask a worker to stop; SIGKILL it if it is still alive `graceMs` + slack later. Resolves on exit. */
  private stopProc(proc: Proc, graceMs: number): Promise<void> {
    if (!proc.live) return Promise.resolve();
    proc.expected = true;
    if (proc.state !== "draining") proc.state = "stopping";
    proc.handle.send({ t: "stop", graceMs });
    this.killAfter(proc, graceMs + KILL_SLACK_MS);
    return proc.exited;
  }

  private bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.deps.clock.setTimer(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      promise.then(resolve, reject).finally(() => this.deps.clock.clearTimer(timer));
    });
  }

  /** Send `msg` (made with a fresh seq) to `proc` and wait for the answer with that seq. */
  private request(proc: Proc, make: (seq: number) => ToWorker, ms: number): Promise<FromWorker> {
    const seq = ++this.seq;
    const answer = new Promise<FromWorker>((resolve, reject) => proc.waiters.set(seq, { resolve, reject }));
    proc.handle.send(make(seq));
    return this.bounded(answer, ms, `${proc.name} to answer`).finally(() => proc.waiters.delete(seq));
  }

  /** One operation (restart, reload) at a time; later ones wait their turn. */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.catch(() => {});
    return run;
  }

  // ---- stop and signals -----------------------------------------------------------

  /** Stop every worker (in-flight requests get `graceMs`); resolves once all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) this.deps.clock.clearTimer(timer);
    this.timers.clear();
    const all = [...this.current, ...this.draining];
    await Promise.all(all.map((p) => this.stopProc(p, this.opts.graceMs)));
  }

  /** SIGTTIN (+1) / SIGTTOU (-1), SIGHUP: passed on to every live worker. */
  forward(msg: ToWorker & ({ t: "log-level" } | { t: "log-reopen" })): void {
    for (const proc of [...this.current, ...this.draining]) if (proc.live && proc.state !== "starting") proc.handle.send(msg);
  }

  // ---- stats --------------------------------------------------------------------

  private reporting(): Proc[] {
    return [...this.current, ...this.draining].filter((p) => p.state === "ready" || p.state === "draining");
  }

  /** Ask every serving worker for its counters now (with Prometheus text when `prometheus`). */
  async collect(prometheus: boolean): Promise<WorkerReport[]> {
    const procs = this.reporting();
    const answers = await Promise.all(procs.map(async (proc) => {
      try {
        const msg = await this.request(proc, (seq) => ({ t: "report", seq, prometheus }), ASK_TIMEOUT_MS);
        if (msg.t === "report") proc.lastReport = msg.report;
      } catch {
        // Gone or slow: its last report stands in.
      }
      return proc.lastReport;
    }));
    return answers.filter((r): r is WorkerReport => r !== null);
  }

  /** The summed counters of the last reports (collect() refreshes them), exited workers' counters included. */
  snapshot(): SnapshotPart {
    const reports = this.reporting().map((p) => p.lastReport).filter((r): r is WorkerReport => r !== null);
    return sumSnapshots(reports, this.retired);
  }

  /** Counters of exited workers, for merging Prometheus text. */
  get retiredCounters(): Retired {
    return this.retired;
  }

  /**
   * Ask each worker of the current generation `question` (with `args`); their answers with who
   * gave them. A worker silent for `timeoutMs` is left out.
   */
  async ask(
    question: Question,
    args?: Readonly<Record<string, string>>,
    timeoutMs = ASK_TIMEOUT_MS,
  ): Promise<{ slot: number; pid: number; body: unknown }[]> {
    const procs = this.current.filter((p) => p.state === "ready");
    const answers = await Promise.all(procs.map(async (proc) => {
      try {
        const msg = await this.request(proc, (seq) => ({ t: "ask", seq, question, args }), timeoutMs);
        return msg.t === "answer" ? { slot: proc.slot, pid: proc.pid, body: msg.body } : null;
      } catch {
        return null;
      }
    }));
    return answers.filter((a) => a !== null);
  }

  // ---- reload -------------------------------------------------------------------

  /**
   * Validate the file once, then have every worker apply its text. All or nothing: when a
   * worker fails, those that applied it go back to the previous text, the failed ones are
   * replaced by workers on the previous text, and the error is reported.
   */
  reload(opts: { readonly dryRun?: boolean } = {}): Promise<ReloadReport> {
    return this.inTurn(() => this.applyReload(opts.dryRun === true));
  }

  status(): ReloadStatus {
    return {
      generation: this.reloadGeneration,
      reloads: { ...this.reloads },
      lastReloadAt: this.lastReloadAt,
      lastError: this.lastReloadError,
    };
  }

  private async applyReload(dryRun: boolean): Promise<ReloadReport> {
    let next: ConfText;
    try {
      next = this.deps.readConf();
    } catch (err) {
      return this.reloadFailed(dryRun, errorText(err));
    }
    const procs = this.current.filter((p) => p.state === "ready");
    if (dryRun) procs.splice(1);
    const results = await Promise.all(procs.map((proc) => this.reloadOne(proc, next, dryRun)));
    const failed = results.filter((r) => r.report.result !== ReloadResult.Ok);
    if (failed.length > 0) {
      if (!dryRun) await this.rollBack(results);
      const first = failed[0];
      return this.reloadFailed(dryRun, `${first.proc.name}: ${first.report.error}`, failed.some((r) => r.report.conflict));
    }
    const changes: readonly PoolChange[] = results[0]?.report.changes ?? [];
    if (dryRun) return { result: ReloadResult.Ok, dryRun, generation: this.reloadGeneration, changes, error: null, conflict: false };
    this.conf = next;
    this.reloadGeneration++;
    this.record(ReloadResult.Ok, null);
    this.deps.log.notice(`reload applied by ${procs.length} workers, generation ${this.reloadGeneration}`);
    return { result: ReloadResult.Ok, dryRun, generation: this.reloadGeneration, changes, error: null, conflict: false };
  }

  private async reloadOne(proc: Proc, conf: ConfText, dryRun: boolean): Promise<{ proc: Proc; report: ReloadReport }> {
    try {
      const msg = await this.request(proc, (seq) => ({ t: "reload", seq, conf: conf.text, file: conf.file, dryRun }), RELOAD_TIMEOUT_MS);
      if (msg.t === "reloaded") return { proc, report: msg.report };
      throw new Error("unexpected answer");
    } catch (err) {
      const report = { result: ReloadResult.Error, dryRun, generation: this.reloadGeneration, changes: [], error: errorText(err), conflict: false };
      return { proc, report };
    }
  }

  /** Workers that applied the new text go back to the previous one; workers that failed are replaced. */
  private async rollBack(results: readonly { proc: Proc; report: ReloadReport }[]): Promise<void> {
    await Promise.all(results.map(async ({ proc, report }) => {
      if (report.result === ReloadResult.Ok) {
        const back = await this.reloadOne(proc, this.conf, false);
        if (back.report.result === ReloadResult.Ok) return;
      }
      // A worker that refused the file because it is migrating still runs its config: keep it.
      if (report.conflict) return;
      this.deps.log.error(`${proc.name} is replaced by a worker on the previous configuration`);
      await this.stopProc(proc, this.opts.graceMs);
      if (this.stopping || this.current[proc.slot] !== proc) return;
      const next = this.spawn(proc.slot, proc.generation);
      this.current[proc.slot] = next;
    }));
  }

  private reloadFailed(dryRun: boolean, error: string, conflict = false): ReloadReport {
    if (!dryRun) this.record(ReloadResult.Error, error);
    this.deps.log.error(`reload${dryRun ? " (dry run)" : ""} failed, the running config is unchanged: ${error}`);
    return { result: ReloadResult.Error, dryRun, generation: this.reloadGeneration, changes: [], error, conflict };
  }

  private record(result: ReloadResult, error: string | null): void {
    this.reloads[result]++;
    this.lastReloadAt = this.deps.clock.now();
    this.lastReloadError = error;
  }
}
