/**
 * The supervisor's decisions (core/workers/supervisor.ts) over scripted workers, in-process:
 * a crashed worker's slot is started again with doubling backoff, a restart whose new
 * generation fails leaves the old one serving, a reload is validated once and applied all
 * or nothing (a worker that fails is replaced, the others go back to the previous text).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import type { FromWorker, ToWorker } from "../core/workers/protocol.ts";
import { type ConfText, Supervisor, type WorkerEvents, type WorkerHandle } from "../core/workers/supervisor.ts";

/** How a scripted worker behaves. */
interface Script {
  /** Fail to start with this error. */
  failStart?: string;
  /** Refuse to apply a configuration whose text includes this. */
  refuseReload?: string;
}

class FakeWorker implements WorkerHandle {
  readonly received: ToWorker[] = [];
  conf = "";
  alive = true;

  constructor(readonly pid: number, private readonly events: WorkerEvents, private readonly script: Script) {
    setTimeout(() => this.reply({ t: "hello" }), 1);
  }

  send(msg: ToWorker): void {
    if (!this.alive) return;
    this.received.push(msg);
    if (msg.t === "start") {
      if (this.script.failStart !== undefined) {
        this.reply({ t: "failed", error: this.script.failStart });
        return this.exit(1, null);
      }
      this.conf = msg.conf;
      this.reply({ t: "ready" });
    } else if (msg.t === "reload") {
      const refused = this.script.refuseReload !== undefined && msg.conf.includes(this.script.refuseReload);
      if (!refused && !msg.dryRun) this.conf = msg.conf;
      const report = refused
        ? { result: "error" as const, dryRun: msg.dryRun, generation: 1, changes: [], error: "Address already in use" }
        : { result: "ok" as const, dryRun: msg.dryRun, generation: 2, changes: [], error: null };
      this.reply({ t: "reloaded", seq: msg.seq, report });
    } else if (msg.t === "stop") {
      this.exit(0, null);
    } else if (msg.t === "drain") {
      this.reply({ t: "closed" });
    } else if (msg.t === "closed-ack") {
      this.exit(0, null);
    }
  }

  kill(signal: "SIGKILL" | "SIGTERM"): void {
    this.exit(null, signal);
  }

  /** Messages sent before an exit arrive before it, as on a real channel. */
  private reply(msg: FromWorker): void {
    if (this.alive) setTimeout(() => this.events.message(msg), 1);
  }

  private exit(code: number | null, signal: string | null): void {
    if (!this.alive) return;
    this.alive = false;
    setTimeout(() => this.events.exit(code, signal), 1);
  }
}

function rig(count: number, scriptFor: (generation: number, started: number) => Script = () => ({})) {
  const spawned: FakeWorker[] = [];
  const lines: string[] = [];
  let file: ConfText = { text: "v1", file: "x.yml" };
  const sup = new Supervisor(file, { count, drainTimeoutMs: 50, graceMs: 50, histograms: false }, {
    spawn: (_slot, generation, events) => {
      const worker = new FakeWorker(1000 + spawned.length, events, scriptFor(generation, spawned.length));
      spawned.push(worker);
      return worker;
    },
    clock: systemClock,
    log: createLogger((line) => lines.push(line), 11),
    readConf: () => {
      if (file.text.includes("invalid")) throw new Error("x.yml:1: bad");
      return file;
    },
  });
  return { sup, spawned, lines, setFile: (text: string) => (file = { text, file: "x.yml" }) };
}

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(check(), what);
};

describe("Supervisor", () => {
  it("starts every worker on the configuration text, and reports the first failure of a start", async () => {
    const { sup, spawned } = rig(3);
    await sup.start();
    assert.deepEqual(sup.workers().map((w) => [w.slot, w.state]), [[0, "ready"], [1, "ready"], [2, "ready"]]);
    assert.ok(spawned.every((w) => w.conf === "v1"));
    await sup.stop();
    assert.ok(spawned.every((w) => !w.alive));
    const bad = rig(2, (_g, n) => (n === 1 ? { failStart: "Address already in use" } : {}));
    await assert.rejects(bad.sup.start(), /generation 1 failed to start: worker 1 .*Address already in use/);
    await until(() => bad.spawned.every((w) => !w.alive), "the other worker stopped");
  });

  it("starts a crashed worker's slot again, waiting longer after each quick failure", async () => {
    const { sup, spawned, lines } = rig(1);
    await sup.start();
    spawned[0].kill("SIGKILL");
    await until(() => spawned.length === 2 && sup.workers()[0]?.state === "ready", "a new worker 0");
    spawned[1].kill("SIGKILL");
    await until(() => spawned.length === 3 && sup.workers()[0]?.state === "ready", "another new worker 0");
    assert.equal(sup.replaced, 2);
    const delays = lines.filter((l) => l.includes("exited unexpectedly")).map((l) => /in (\d+) ms/.exec(l)![1]);
    assert.deepEqual(delays, ["100", "200"]);
    await sup.stop();
  });

  it("restart: a new generation serves once it is ready and the old one drains; a failed one leaves the old serving", async () => {
    let failing = false;
    const { sup, spawned } = rig(2, () => (failing ? { failStart: "boom" } : {}));
    await sup.start();
    const report = await sup.restart();
    assert.equal(report.generation, 2);
    assert.deepEqual(report.draining, [1000, 1001]);
    await until(() => !spawned[0].alive && !spawned[1].alive, "the old generation to exit");
    assert.deepEqual(spawned[0].received.map((m) => m.t), ["start", "drain", "closed-ack"]);
    failing = true;
    await assert.rejects(sup.restart(), /generation 3 failed to start: .*boom/);
    assert.equal(sup.currentGeneration, 2);
    assert.deepEqual(sup.workers().map((w) => w.pid), [1002, 1003]);
    assert.equal(sup.restarts, 1);
    await sup.stop();
  });

  it("reload: all or nothing; an invalid file reaches no worker", async () => {
    const { sup, spawned, setFile } = rig(2, (_g, n) => (n === 1 ? { refuseReload: "v3" } : {}));
    await sup.start();
    setFile("v2");
    assert.equal((await sup.reload()).result, "ok");
    assert.deepEqual(spawned.map((w) => w.conf), ["v2", "v2"]);
    assert.equal(sup.status().generation, 2);
    setFile("v3");
    const failed = await sup.reload();
    assert.equal(failed.result, "error");
    assert.match(failed.error!, /worker 1 .*Address already in use/);
    // Worker 0 applied v3 and went back to v2; worker 1 was replaced by a worker on v2.
    assert.equal(spawned[0].conf, "v2");
    await until(() => spawned.length === 3 && sup.workers().every((w) => w.state === "ready"), "worker 1 replaced");
    assert.equal(spawned[2].conf, "v2");
    assert.deepEqual(sup.status().reloads, { ok: 1, error: 1 });
    setFile("invalid");
    const invalid = await sup.reload();
    assert.match(invalid.error!, /x\.yml:1: bad/);
    assert.equal(spawned[0].received.filter((m) => m.t === "reload").length, 3, "no reload sent for the invalid file");
    await sup.stop();
  });
});
