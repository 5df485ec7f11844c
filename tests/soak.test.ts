/**
 * Randomised soak: several clients pipeline SET/GET/INCR/MGET/DEL through the proxy to
 * three redis-servers (auto_eject on) while faults are injected at random: SIGSTOP and
 * SIGCONT a server, SIGKILL and restart one on its port, clients that vanish mid-pipeline,
 * clients that send garbage. Every reply is checked against a model of what is acceptable.
 *
 * Each client owns its keys, and every write carries a unique value, so a reply that
 * belongs to another request is always detectable. A reply must be exact whenever no fault
 * could have touched it: the "stamp" (fault actions + the proxy's failure counters, or -1
 * while a fault is active or a server is ejected) was the same when the key's last write was
 * sent and when this reply was read. Otherwise a value must be one this client wrote to the
 * key (or nil), or one of the proxy's failure errors.
 *
 * Bounded by SOAK_SECONDS (default 60); the seed is printed and SOAK_SEED replays its choices.
 * The test sets its own timeout from that length: Bun's per-test default (60 s) is too short.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { rawExchange, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { sleep } from "./helpers/ports.ts";
import { type Arg, encodePipeline, parseReply, type Reply } from "./helpers/resp.ts";
import { freeze, ownerOf, PipeClient, Rng, text, waitFor } from "./helpers/soak.ts";
import type { Pool } from "../core/proxy/pool.ts";

const SECONDS = Number(process.env.SOAK_SECONDS) > 0 ? Number(process.env.SOAK_SECONDS) : 60;
/** Room after the deadline: the last fault healing, settle(), the final checks and closing clients. */
const TIMEOUT_MS = (SECONDS + 90) * 1000;
const SEED = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) >>> 0 : (Date.now() * 7919) >>> 0;
const WORKERS = 6;
const KEYS = 12;
const POOL = "  timeout: 600\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 600\n  hash: md5\n";
const FAILURES = new Set(["Connection timed out", "Connection refused", "Connection reset by peer", "Broken pipe", "No server available"]
  .map((t) => `ERR ${t}`));
const decoder = new TextDecoder();

/** Shared state: the fault clock every check reads, and what was seen. */
class Soak {
  calm = false;
  actions = 0;
  readonly violations: string[] = [];
  readonly errors = new Map<string, number>();
  readonly faults: Record<string, number> = { stop: 0, kill: 0, vanish: 0, garbage: 0 };
  requests = 0;
  exact = 0;
  /** Longest wait for one pipeline's replies, ms. */
  slowest = 0;
  pool!: Pool;

  /** Changes whenever anything could have moved or lost a key; -1 while not calm. */
  stamp(): number {
    if (!this.calm) return -1;
    let n = this.actions + this.pool.stats.server_ejects;
    for (const s of this.pool.servers) {
      if (s.ejectedUntil !== 0) return -1;
      n += s.stats.server_timedout + s.stats.server_err + s.stats.server_eof;
    }
    return n;
  }

  violate(message: string): void {
    if (this.violations.length < 50) this.violations.push(message);
  }

  setCalm(calm: boolean): void {
    this.calm = calm;
    this.actions++;
  }
}

interface KeyState {
  written: Set<string>;
  value: string | null;
  /** Stamp of the pipeline that made `value` certain; -1 = unknown. */
  stamp: number;
}

/** Checks one reply; `s0` is the stamp when its pipeline was written, `clean` that it is unchanged now. */
type Check = (reply: Reply, s0: number, clean: boolean) => string | null;

/** One client with its own keys, pipelining random commands and checking each reply as it arrives. */
class Worker {
  private readonly rng: Rng;
  private readonly keys: string[];
  private readonly model = new Map<string, KeyState>();
  private readonly counter = { issued: 0, value: 0, stamp: -1 };
  private readonly soak: Soak;
  private readonly id: number;
  private seq = 0;
  sent = 0;
  client!: PipeClient;

  constructor(soak: Soak, id: number) {
    this.soak = soak;
    this.id = id;
    this.rng = new Rng(SEED + id + 1);
    this.keys = Array.from({ length: KEYS }, (_, i) => `soak:${SEED}:${id}:${i}`);
    for (const key of this.keys) this.model.set(key, { written: new Set(), value: null, stamp: -1 });
  }

  async run(port: number, until: number): Promise<void> {
    this.client = await PipeClient.connect(port);
    const first = this.soak.stamp();
    for (const state of this.model.values()) state.stamp = first;
    this.counter.stamp = first;
    while (Date.now() < until && !this.client.closed) await this.round();
  }

  /** One pipeline: write it, then check each reply in order against the model. */
  async round(cmds: Arg[][] = [], checks: Check[] = []): Promise<void> {
    if (cmds.length === 0) this.build(cmds, checks);
    const base = this.sent;
    const s0 = this.soak.stamp();
    this.client.onReply = (n) => {
      const i = n - 1 - base;
      const reply = parseReply(this.client.replies[n - 1], 0, this.client.replies[n - 1].length)?.[0];
      if (i >= checks.length || reply === undefined) return this.soak.violate(`client ${this.id}: extra reply ${text(this.client.replies[n - 1])}`);
      const s = this.soak.stamp();
      const problem = this.checkError(reply, s0, s) ?? checks[i](reply, s0, s0 !== -1 && s === s0);
      if (problem !== null) this.soak.violate(`client ${this.id} request ${base + i} (${cmds[i].map(String).join(" ").slice(0, 60)}): ${problem}`);
    };
    this.sent += cmds.length;
    this.soak.requests += cmds.length;
    const started = Date.now();
    this.client.write(encodePipeline(cmds));
    await this.client.waitReplies(this.sent, 20000).catch((err: Error) => {
      this.soak.violate(`client ${this.id}: ${err.message}`);
      this.client.destroy();
    });
    const took = Date.now() - started;
    this.soak.slowest = Math.max(this.soak.slowest, took);
    // Every request is answered or failed within about one timeout (600 ms): a long wait is a hang.
    if (took > 5000) this.soak.violate(`client ${this.id}: a pipeline of ${cmds.length} waited ${took} ms`);
  }

  /** Proxy failure errors are acceptable only for requests a fault could have touched. */
  private checkError(reply: Reply, s0: number, s: number): string | null {
    if (reply.type !== "error") return null;
    this.soak.errors.set(reply.text, (this.soak.errors.get(reply.text) ?? 0) + 1);
    if (!FAILURES.has(reply.text)) return `unexpected error -${reply.text}`;
    if (s0 !== -1 && s === s0) return `-${reply.text} while no fault was active`;
    return null;
  }

  private build(cmds: Arg[][], checks: Check[]): void {
    const n = 1 + this.rng.int(80);
    for (let i = 0; i < n; i++) {
      const op = this.rng.int(100);
      const key = this.rng.pick(this.keys);
      if (op < 30) this.set(key, cmds, checks);
      else if (op < 60) this.get([key], cmds, checks);
      else if (op < 75) this.incr(cmds, checks);
      else if (op < 90) this.get([key, this.rng.pick(this.keys), this.rng.pick(this.keys)], cmds, checks);
      else this.del(key, cmds, checks);
    }
  }

  private set(key: string, cmds: Arg[][], checks: Check[]): void {
    const value = `${key}=${++this.seq}:${"v".repeat(this.rng.int(300))}`;
    const state = this.model.get(key)!;
    state.written.add(value);
    cmds.push(["SET", key, value]);
    checks.push((reply, s0, clean) => {
      state.stamp = -1;
      if (reply.type === "error") return null;
      if (reply.type !== "status" || reply.text !== "OK") return `SET got ${JSON.stringify(reply)}`;
      if (clean) [state.value, state.stamp] = [value, s0];
      return null;
    });
  }

  /** GET for one key, MGET for several. */
  private get(keys: string[], cmds: Arg[][], checks: Check[]): void {
    cmds.push(keys.length === 1 ? ["GET", keys[0]] : ["MGET", ...keys]);
    checks.push((reply, s0, clean) => {
      if (reply.type === "error") return null;
      const items = keys.length === 1 ? [reply] : reply.type === "array" ? reply.items : null;
      if (items === null || items.length !== keys.length) return `got ${JSON.stringify(reply).slice(0, 200)}`;
      for (let i = 0; i < keys.length; i++) {
        const problem = this.checkValue(keys[i], items[i], s0, clean);
        if (problem !== null) return problem;
      }
      return null;
    });
  }

  private checkValue(key: string, item: Reply, s0: number, clean: boolean): string | null {
    if (item.type !== "bulk") return `${key}: not a bulk reply: ${JSON.stringify(item).slice(0, 200)}`;
    const state = this.model.get(key)!;
    const value = item.value === null ? null : decoder.decode(item.value);
    if (value !== null && !state.written.has(value)) return `${key}: ${value.slice(0, 60)} was never written to this key`;
    if (!clean || state.stamp !== s0) return null;
    this.soak.exact++;
    return value === state.value ? null : `${key}: got ${value?.slice(0, 60)}, want ${state.value?.slice(0, 60)}`;
  }

  private incr(cmds: Arg[][], checks: Check[]): void {
    const counter = this.counter;
    const issued = ++counter.issued;
    cmds.push(["INCR", `soak:${SEED}:${this.id}:ctr`]);
    checks.push((reply, s0, clean) => {
      const exact = clean && counter.stamp === s0;
      counter.stamp = -1;
      if (reply.type === "error") return null;
      if (reply.type !== "int" || reply.value < 1 || reply.value > issued) return `INCR got ${JSON.stringify(reply)} after ${issued} INCRs`;
      if (exact && reply.value !== counter.value + 1) return `INCR got ${reply.value}, want ${counter.value + 1}`;
      if (exact) this.soak.exact++;
      if (clean) [counter.value, counter.stamp] = [reply.value, s0];
      return null;
    });
  }

  private del(key: string, cmds: Arg[][], checks: Check[]): void {
    const state = this.model.get(key)!;
    cmds.push(["DEL", key]);
    checks.push((reply, s0, clean) => {
      const exact = clean && state.stamp === s0;
      state.stamp = -1;
      if (reply.type === "error") return null;
      if (reply.type !== "int" || (reply.value !== 0 && reply.value !== 1)) return `DEL got ${JSON.stringify(reply)}`;
      if (exact && reply.value !== (state.value === null ? 0 : 1)) return `DEL got ${reply.value}, value was ${state.value?.slice(0, 60)}`;
      if (exact) this.soak.exact++;
      if (clean) [state.value, state.stamp] = [null, s0];
      return null;
    });
  }

  /** A last pipeline that reads every key, run once the servers are healthy. */
  async finalCheck(): Promise<void> {
    const cmds: Arg[][] = [];
    const checks: Check[] = [];
    for (const key of this.keys) this.get([key], cmds, checks);
    await this.round(cmds, checks);
  }
}

const GARBAGE = ["*x\r\n", "*1\r\n$abc\r\n", "*2\r\n$3\r\nGET\r\n:5\r\n", "*-7x\r\n", "*1\r\n$-5\r\n"];

describe("randomised soak under faults", () => {
  const servers: ServerProcess[] = [];
  let tp: TestProxy;
  const soak = new Soak();

  before(async () => {
    console.log(`soak: seed ${SEED} (replay with SOAK_SEED=${SEED}), ${SECONDS} s`);
    servers.push(...await Promise.all([0, 1, 2].map(() => startRedis())));
    tp = await startTestProxy(redisPoolYaml(servers.map((s) => s.port), POOL));
    soak.pool = tp.proxy.pools[0];
  });
  after(async () => {
    for (const s of servers) s.kill("SIGCONT");
    await tp?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  /** Wait out stale requests, then for every server to be back in the distribution. */
  async function settle(): Promise<void> {
    await sleep(300);
    // Routing a key is what brings a server back once its retry time has passed.
    const back = () => ownerOf(soak.pool, "probe") >= 0 && soak.pool.servers.every((s) => s.ejectedUntil === 0);
    await waitFor(back, 5000);
    soak.setCalm(true);
  }

  async function inject(rng: Rng, until: number): Promise<void> {
    const port = tp.port();
    // The last fault starts early enough to be healed by the deadline.
    while (Date.now() < until - 2500) {
      await sleep(300 + rng.int(900));
      const kind = rng.pick(["stop", "stop", "kill", "vanish", "garbage"] as const);
      soak.faults[kind]++;
      const victim = servers[rng.int(servers.length)];
      if (kind === "stop") {
        soak.setCalm(false);
        await freeze(victim);
        await sleep(200 + rng.int(1300));
        victim.kill("SIGCONT");
        await settle();
      } else if (kind === "kill") {
        soak.setCalm(false);
        victim.kill("SIGKILL");
        await waitFor(() => !victim.running, 3000);
        await sleep(100 + rng.int(700));
        await victim.restart();
        await settle();
      } else if (kind === "vanish") {
        const c = await PipeClient.connect(port);
        const keys = Array.from({ length: 40 }, (_, i) => `soak:${SEED}:${rng.int(WORKERS)}:${i % KEYS}`);
        const cmds = Array.from({ length: 500 + rng.int(20000) }, (_, i) => i % 3 ? ["GET", keys[i % 40]] : ["SET", `gone:${i}`, "x"]);
        c.write(encodePipeline(cmds));
        await sleep(rng.int(20));
        c.destroy();
      } else {
        const reply = await rawExchange(port, rng.pick(GARBAGE), { timeoutMs: 3000 });
        const shown = decoder.decode(reply.data);
        if (!shown.startsWith("-ERR") || !reply.closed) soak.violate(`garbage client got ${JSON.stringify(shown)}, closed ${reply.closed}`);
      }
    }
  }

  it("gives every request exactly one acceptable reply, in order, while faults are injected", { timeout: TIMEOUT_MS }, async () => {
    const until = Date.now() + SECONDS * 1000;
    await settle();
    const workers = Array.from({ length: WORKERS }, (_, i) => new Worker(soak, i));
    await Promise.all([inject(new Rng(SEED), until), ...workers.map((w) => w.run(tp.port(), until))]);
    for (const s of servers) s.kill("SIGCONT");
    await settle();
    for (const w of workers) await w.finalCheck();
    await sleep(200);
    const errors = [...soak.errors].map(([t, n]) => `${n} × ${t}`).join(", ") || "none";
    console.log(`soak: seed ${SEED}: ${soak.requests} requests, ${soak.exact} checked exactly, errors: ${errors}; ` +
      `faults: ${Object.entries(soak.faults).map(([k, n]) => `${n} ${k}`).join(", ")}; ${soak.pool.stats.server_ejects} ejections; ` +
      `slowest pipeline ${soak.slowest} ms`);
    for (const w of workers) {
      if (w.client.replies.length !== w.sent) soak.violate(`a client got ${w.client.replies.length} replies for ${w.sent} requests`);
      if (w.client.leftover !== 0) soak.violate(`a client has ${w.client.leftover} bytes of an incomplete reply`);
      w.client.destroy();
    }
    assert.deepEqual(soak.violations, [], `seed ${SEED}`);
    assert.ok(soak.exact > 0, "some replies were checked exactly");
    const idle = () => soak.pool.stats.client_connections === 0;
    assert.ok(await waitFor(idle, 5000), `client connections left open: ${soak.pool.stats.client_connections} (seed ${SEED})`);
  });
});
