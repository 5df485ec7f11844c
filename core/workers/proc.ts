/**
 * A worker process as the supervisor sees it: the handle the adapter gives (send, kill), the
 * events it reports (messages, exit), and what the supervisor tracks per worker (state,
 * readiness, last counters, questions awaiting an answer).
 */
import type { FromWorker, ToWorker, WorkerReport } from "./protocol.ts";

/** A started worker process, as the adapter gives it. */
export interface WorkerHandle {
  readonly pid: number;
  send(msg: ToWorker): void;
  kill(signal: "SIGKILL" | "SIGTERM"): void;
}

/** What the adapter reports about a worker process it started. */
export interface WorkerEvents {
  message(msg: FromWorker): void;
  exit(code: number | null, signal: string | null): void;
}

/** Start worker `slot` of `generation`; its messages and exit go to `events`. */
export type SpawnWorker = (slot: number, generation: number, events: WorkerEvents) => WorkerHandle;

/** A worker's state: starting -> ready -> draining (an old generation) or stopping -> exited. */
export type WorkerState = "starting" | "ready" | "draining" | "stopping" | "exited";

/** One worker, as /workers lists it. */
export interface WorkerInfo {
  readonly slot: number;
  readonly generation: number;
  readonly pid: number;
  readonly state: WorkerState;
  /** Clock ms when it was started. */
  readonly startedAt: number;
}

/** One worker process and what the supervisor knows about it. */
export class Proc {
  state: WorkerState = "starting";
  lastReport: WorkerReport | null = null;
  error: string | null = null;
  readyAt = 0;
  /** Exited on purpose (stopped, drained, replaced after a failed reload): not a crash. */
  expected = false;
  handle!: WorkerHandle;
  readonly waiters = new Map<number, { resolve(msg: FromWorker): void; reject(err: Error): void }>();
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  markReady!: () => void;
  markFailed!: (err: Error) => void;
  markExited!: () => void;

  constructor(readonly slot: number, readonly generation: number, readonly startedAt: number) {
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.markFailed = reject;
    });
    this.ready.catch(() => {});
    this.exited = new Promise((resolve) => (this.markExited = resolve));
  }

  get pid(): number {
    return this.handle.pid;
  }

  get name(): string {
    return `worker ${this.slot} (pid ${this.pid}, generation ${this.generation})`;
  }

  get live(): boolean {
    return this.state !== "exited";
  }
}
