/**
 * Sentinel, a graceful failover and lost Sentinels (issue 13), with real processes: a master
 * and two replicas watched by three Sentinels, the proxy following them (prefer_replica).
 * SENTINEL FAILOVER under a read and write load costs (almost) no client error, and no write
 * sent after the switch lands on the demoted master, which Sentinel leaves a writable master
 * for about ten seconds. Then one Sentinel, then all of them, go away: the proxy keeps serving
 * the topology it knows and says so; when they come back it follows the next failover.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadState } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { sleep } from "./helpers/ports.ts";
import { waitFor } from "./helpers/soak.ts";
import { SentinelEvents, SentinelSetup, type Switch } from "./helpers/sentinel.ts";
import {
  arrivals,
  caughtUp,
  describeNodes,
  failoversOnceEach,
  masterChanges,
  fillKeys,
  firstOkAfter,
  missingOn,
  proxyMasterPort,
  proxyReplica,
  roleOf,
  sentinelPoolYaml,
  sentinelReachable,
  startReadLoad,
  startWriteLoad,
  tallyWrites,
  traceNodes,
} from "./helpers/sentinel-load.ts";

const KEYS = 200;
const READS = "rd";
/** Write clients: at most one request each in flight on the old master at the switch. */
const WRITERS = 4;

describe("sentinel: SENTINEL FAILOVER under load, then Sentinels lost and back", () => {
  let setup: SentinelSetup;
  let events: SentinelEvents;
  let tp: TestProxy;
  let first: Switch | null = null;
  /** When the proxy started: the +switch-master it may count are those since. */
  let proxyStartedAt = 0;

  before(async () => {
    // down-after 2 s, not 500 ms: on a busy machine a master merely slow to answer PING for 500 ms was failed over
    // besides the failover under test, and writes acknowledged by it were then lost to the resync.
    setup = await SentinelSetup.start({ replicas: 2, downAfterMs: 2000, prefix: "sentinel-failover-" });
    const [master, ...replicas] = setup.redises;
    await setup.waitAgreed({ masterPort: master.port });
    await fillKeys(master.port, READS, KEYS);
    assert.ok(await caughtUp(master.port, replicas.map((r) => r.port)), "the replicas have the read keys");
    events = await setup.subscribe();
    proxyStartedAt = Date.now();
    tp = await startTestProxy(sentinelPoolYaml({ sentinels: setup.sentinelPorts, servers: [[master.port, setup.name]] }));
    const ready = await waitFor(() => replicas.every((r) => proxyReplica(tp, r.port)?.readState === ReadState.Eligible), 10000);
    assert.ok(ready, `the proxy found both replicas through Sentinel and checked them: ${describeNodes(tp)}`);
  });

  after(async () => {
    await tp?.close();
    await setup?.stopAll();
  });

  /** A short mixed load through the proxy; returns its write records and read tally. */
  async function briefLoad(prefix: string, ms: number) {
    const reads = startReadLoad(tp.port(), KEYS, { prefix: READS, clients: 2, maxMs: ms + 5000 });
    const writes = startWriteLoad(tp.port(), { prefix, clients: 2, maxMs: ms + 5000 });
    await sleep(ms);
    const [readTally, records] = await Promise.all([reads.stop(), writes.stop()]);
    return { readTally, records, tally: tallyWrites(records) };
  }

  it("SENTINEL FAILOVER: no read fails, writes fail at most while in flight, none lands on the demoted master after the switch", async () => {
    const oldMaster = setup.redises[0];
    const reads = startReadLoad(tp.port(), KEYS, { prefix: READS, clients: 2, maxMs: 30000 });
    const writes = startWriteLoad(tp.port(), { prefix: "f1", clients: WRITERS, maxMs: 30000 });
    const trace = traceNodes(tp);
    await sleep(500);
    const started = Date.now();
    await setup.failover();
    const sw = first = await events.waitSwitch(started, 15000);
    const moved = await waitFor(() => proxyMasterPort(tp) === sw.to, 10000, 2) ? Date.now() : null;
    // Sentinel makes the old master a replica only ~10 s after the switch: until then it takes writes.
    await sleep(Math.max(0, sw.at + 1000 - Date.now()));
    const setsAtGrace = await arrivals(oldMaster.port, "set");
    await sleep(Math.max(0, sw.at + 4000 - Date.now()));
    const [setsLater, roleLater] = [await arrivals(oldMaster.port, "set"), await roleOf(oldMaster.port)];
    const [readTally, records] = await Promise.all([reads.stop(), writes.stop()]);
    const nodes = trace.stop(sw.at);

    const tally = tallyWrites(records);
    const rel = (t: number | null) => (t === null ? "never" : `${t - sw.at} ms`);
    const promoted = events.events.find((e) => e.at >= started && e.channel === "+failover-state-wait-promotion")?.at ?? null;
    const window = records.filter((r) => promoted !== null && r.sentAt >= promoted && r.sentAt <= sw.at + 1000);
    const lostInWindow = await missingOn(sw.to, window);
    const afterGrace = records.filter((r) => r.sentAt > sw.at + 1000);
    const lostAfter = await missingOn(sw.to, afterGrace);
    console.log(
      `sentinel failover: +switch-master ${sw.at - started} ms after SENTINEL FAILOVER (replica promoted at ${rel(promoted)}); ` +
        `proxy master moved ${rel(moved)}; first write acknowledged after the switch at ${rel(firstOkAfter(records, sw.at))}; ` +
        `client errors: writes ${tally.errors}/${tally.total} (${tally.samples.join(" | ")}), ` +
        `reads ${readTally.errors + readTally.wrong}/${readTally.replies}; ` +
        `acknowledged writes lost from the promotion to 1 s after the switch: ${lostInWindow.length}/${window.length}; ` +
        `SETs on the demoted master from 1 s to 4 s after the switch: ${setsLater - setsAtGrace} (its role then: ${roleLater})`,
    );
    const failures = `\nproxy nodes, ms from +switch-master:\n${nodes}\nSentinel events:\n${events.describe(started)}`;
    assert.deepEqual([sw.from, proxyMasterPort(tp)], [oldMaster.port, sw.to], "the proxy follows the switch");
    assert.ok(moved !== null && moved - sw.at <= 5000, `the proxy moved the master within 5 s (${rel(moved)})`);
    assert.equal(readTally.errors + readTally.wrong, 0, `prefer_replica reads never fail: ${readTally.samples.join("; ")}${failures}`);
    const inFlight = `at most the writes in flight on the old master fail (${tally.errors}: ${tally.samples.join(" | ")})`;
    assert.ok(tally.errors <= WRITERS, inFlight + failures);
    if (roleLater === "master") assert.equal(setsLater - setsAtGrace, 0, `no write reached the demoted master from 1 s after the switch${failures}`);
    const lostKeys = lostAfter.slice(0, 3).map((r) => r.key).join(" ");
    assert.equal(lostAfter.length, 0, `every write sent from 1 s after the switch is on the new master: ${lostKeys}`);
    // One failover counted for each +switch-master: this one, and any other a busy machine made Sentinel do.
    const changes = () => masterChanges(events.switches(proxyStartedAt), oldMaster.port);
    const failovers = await failoversOnceEach(tp, changes);
    if (failovers !== undefined) {
      const announced = events.switches(proxyStartedAt).map((s) => `${s.from} -> ${s.to}`).join(", ");
      assert.equal(failovers, changes(), `the proxy counted one failover per master change Sentinel announced (${announced})`);
    }
  });

  it("one of three Sentinels down: the proxy keeps serving and reaches the other two", async () => {
    assert.ok(first !== null, "the previous test switched the master");
    await setup.sentinels[0].stop();
    const { readTally, records, tally } = await briefLoad("one-down", 1500);
    const bad = readTally.errors + readTally.wrong;
    console.log(
      `sentinel failover: one Sentinel down: writes ${tally.ok}/${tally.total} ok, ` +
        `reads ${readTally.replies} with ${bad} bad; reachable ${sentinelReachable(tp)}`,
    );
    assert.equal(tally.errors, 0, `writes keep succeeding: ${tally.samples.join(" | ")}`);
    assert.equal(readTally.errors + readTally.wrong, 0, `reads keep succeeding: ${readTally.samples.join("; ")}`);
    assert.equal(proxyMasterPort(tp), first.to, "the master is unchanged");
    assert.equal((await missingOn(first.to, records)).length, 0, "the writes are on the master");
    if (sentinelReachable(tp) !== undefined) {
      assert.ok(await waitFor(() => sentinelReachable(tp) === 2, 5000), `the proxy reports 2 reachable Sentinels (${sentinelReachable(tp)})`);
    }
  });

  it("all Sentinels down: the proxy keeps serving the last known topology and reports it", async () => {
    assert.ok(first !== null, "the first test switched the master");
    const downAt = tp.logs.length;
    await Promise.all(setup.sentinels.map((s) => s.stop()));
    const { readTally, records, tally } = await briefLoad("all-down", 2000);
    assert.equal(tally.errors, 0, `writes keep succeeding: ${tally.samples.join(" | ")}`);
    assert.equal(readTally.errors + readTally.wrong, 0, `reads keep succeeding: ${readTally.samples.join("; ")}`);
    assert.equal(proxyMasterPort(tp), first.to, "the master is the last one Sentinel named");
    assert.equal((await missingOn(first.to, records)).length, 0, "the writes are on that master");
    if (sentinelReachable(tp) !== undefined) {
      assert.ok(await waitFor(() => sentinelReachable(tp) === 0, 5000), `the proxy reports no reachable Sentinel (${sentinelReachable(tp)})`);
    }
    // The periodic re-ask (the backstop) finds nobody and says so.
    const said = await waitFor(() => tp.logs.slice(downAt).some((l) => /sentinel/i.test(l)), 8000, 50);
    const lines = tp.logs.slice(downAt).filter((l) => /sentinel/i.test(l));
    console.log(
      `sentinel failover: all Sentinels down: writes ${tally.ok}/${tally.total} ok, reads ${readTally.replies}; ` +
        `logged: ${lines.slice(0, 3).join(" / ")}`,
    );
    assert.ok(said, `the proxy logs that no Sentinel answers: ${tp.logs.slice(downAt).join(" / ")}`);
  });

  it("the Sentinels come back: the proxy subscribes again and follows the next failover", async () => {
    assert.ok(first !== null, "the first test switched the master");
    await Promise.all(setup.sentinels.map((s) => s.restart()));
    const backAt = Date.now();
    const again = await setup.subscribe();
    await setup.waitAgreed({ masterPort: first.to, replicas: 1, ms: 20000 });
    if (sentinelReachable(tp) !== undefined) {
      const ok = await waitFor(() => sentinelReachable(tp) === 3, 15000);
      console.log(`sentinel failover: the proxy reached all three Sentinels again ${Date.now() - backAt} ms after they restarted`);
      assert.ok(ok, `the proxy reconnects to every Sentinel (${sentinelReachable(tp)})`);
    }
    const started = Date.now();
    await setup.failover();
    const sw = await again.waitSwitch(started, 15000);
    const moved = await waitFor(() => proxyMasterPort(tp) === sw.to, 5000, 2);
    console.log(`sentinel failover: second switch ${sw.from} -> ${sw.to}; proxy moved ${moved ? "yes" : "no"}`);
    assert.ok(moved, `the proxy follows the second switch to ${sw.to}: ${describeNodes(tp)}`);
    const { tally } = await briefLoad("second", 1000);
    assert.equal(tally.errors, 0, `writes succeed on the new master: ${tally.samples.join(" | ")}`);
    // Every +switch-master since the proxy started: those before the Sentinels went down and those since they are back.
    const switches = () => [...events.switches(proxyStartedAt), ...again.switches(backAt)];
    const changes = () => masterChanges(switches(), setup.redises[0].port);
    const failovers = await failoversOnceEach(tp, changes);
    if (failovers !== undefined) {
      const announced = switches().map((s) => `${s.from} -> ${s.to}`).join(", ");
      assert.equal(failovers, changes(), `the proxy counted one failover per master change Sentinel announced (${announced})`);
    }
  });
});
