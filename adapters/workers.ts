/**
 * Worker processes for `--workers N`, on node: modules all three runtimes provide. The
 * supervisor starts each worker as this same program with NUTCRACKER_WORKER=slot.generation
 * in its environment and an IPC channel to it:
 * - Node and Bun: node:cluster.fork, so a worker's listen goes through the supervisor, which
 *   holds one listening socket per address and hands each accepted connection to a worker
 *   (round robin). The socket lives as long as some worker of any generation listens on it,
 *   so a restart refuses nothing.
 * - Deno: its node:cluster loses connections handed to workers while workers come and go
 *   (measured on 2.9.6), so workers are plain child processes with IPC that bind the TCP
 *   ports themselves with SO_REUSEPORT (Deno.listen under --unstable-net, passed here).
 * How the workers' listen shares addresses is adapters/mod.ts loadNet({ shared: true }).
 */
import cluster from "node:cluster";
import { spawn } from "node:child_process";
import os from "node:os";
import process from "node:process";
import type { FromWorker, ToWorker } from "../core/workers/protocol.ts";
import { parseWorkerEnv, WORKER_ENV } from "../core/workers/protocol.ts";
import type { SpawnWorker, WorkerEvents, WorkerHandle } from "../core/workers/supervisor.ts";
import type { WorkerChannel } from "../core/workers/worker.ts";

/** This process's place under a supervisor, or null when it is not a worker. */
export function workerIdentity(): { slot: number; generation: number } | null {
  return parseWorkerEnv(process.env[WORKER_ENV]);
}

/** CPUs this process may use: --workers auto. */
export function cpuCount(): number {
  const available = (os as { availableParallelism?: () => number }).availableParallelism;
  return Math.max(1, typeof available === "function" ? available() : os.cpus().length);
}

/** Signal a pid; one that is already gone is fine. */
function signal(pid: number, sig: "SIGKILL" | "SIGTERM"): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** A send that cannot throw: a worker that just exited drops the message (its exit is reported). */
function safeSend(send: (msg: ToWorker) => void): (msg: ToWorker) => void {
  return (msg) => {
    try {
      send(msg);
    } catch {
      // The channel closed; the exit event follows.
    }
  };
}

function clusterSpawn(slot: number, generation: number, events: WorkerEvents): WorkerHandle {
  const worker = cluster.fork({ [WORKER_ENV]: `${slot}.${generation}` });
  const pid = worker.process.pid ?? -1;
  worker.on("message", (msg: FromWorker) => events.message(msg));
  worker.on("exit", (code: number | null, sig: string | null) => events.exit(code, sig));
  worker.on("error", () => {});
  const send = safeSend((msg) => {
    if (worker.isConnected()) worker.send(msg);
  });
  return { pid, send, kill: (sig) => signal(pid, sig) };
}

function childSpawn(slot: number, generation: number, events: WorkerEvents): WorkerHandle {
  const script = process.argv[1] ?? "";
  const args = ["run", "-A", "--unstable-net", script, ...process.argv.slice(2)];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, [WORKER_ENV]: `${slot}.${generation}` },
  });
  const pid = child.pid ?? -1;
  let exited = false;
  const exit = (code: number | null, sig: string | null) => {
    if (exited) return;
    exited = true;
    events.exit(code, sig);
  };
  child.on("message", (msg) => events.message(msg as FromWorker));
  child.on("exit", (code, sig) => exit(code, sig));
  child.on("error", () => exit(null, "spawn error"));
  const send = safeSend((msg) => {
    if (child.connected) child.send(msg);
  });
  return { pid, send, kill: (sig) => signal(pid, sig) };
}

/**
 * How the supervisor starts a worker on `runtime` ("node", "bun" or "deno"; see the top of
 * this file for why Deno differs).
 */
export function workerSpawner(runtime: string): SpawnWorker {
  return runtime === "deno" ? childSpawn : clusterSpawn;
}

/** The worker's end of the IPC channel, or null when this process has none (not started by a supervisor). */
export function workerChannel(): WorkerChannel | null {
  if (typeof process.send !== "function") return null;
  return {
    send: (msg) => {
      try {
        process.send?.(msg);
      } catch {
        // The supervisor is gone; the disconnect handler stops us.
      }
    },
    receive: (handler) => void process.on("message", (msg) => handler(msg as ToWorker)),
    onDisconnect: (handler) => void process.once("disconnect", handler),
  };
}
