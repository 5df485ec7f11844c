/**
 * Sentinel, the read set (issue 13), with real processes: replicas Sentinel discovers or loses
 * change the proxy's read set live. A replica started later is announced (+slave) and starts
 * receiving reads; a replica that dies (+sdown) costs no read an error; when it comes back
 * (-sdown) it serves reads again. Reads counted with the servers' own INFO commandstats.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadState } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import type { ServerProcess } from "./helpers/servers.ts";
import { sleep } from "./helpers/ports.ts";
import { waitFor } from "./helpers/soak.ts";
import { SentinelEvents, SentinelSetup } from "./helpers/sentinel.ts";
import {
  arrivals,
  caughtUp,
  describeNodes,
  fillKeys,
  proxyReplica,
  sentinelPoolYaml,
  startReadLoad,
} from "./helpers/sentinel-load.ts";

const KEYS = 200;
const READS = "rd";

describe("sentinel: replicas joining and leaving change the read set", () => {
  let setup: SentinelSetup;
  let events: SentinelEvents;
  let tp: TestProxy;
  let added: ServerProcess | null = null;

  before(async () => {
    setup = await SentinelSetup.start({ replicas: 1, prefix: "sentinel-replicas-" });
    const [master, replica] = setup.redises;
    await setup.waitAgreed({ masterPort: master.port });
    await fillKeys(master.port, READS, KEYS);
    assert.ok(await caughtUp(master.port, [replica.port]), "the replica has the read keys");
    events = await setup.subscribe();
    tp = await startTestProxy(sentinelPoolYaml({ sentinels: setup.sentinelPorts, servers: [[master.port, setup.name]] }));
    const ready = await waitFor(() => proxyReplica(tp, replica.port)?.readState === ReadState.Eligible, 10000);
    assert.ok(ready, `the proxy found the replica through Sentinel: ${describeNodes(tp)}`);
  });

  after(async () => {
    await tp?.close();
    await setup?.stopAll();
  });

  /** GETs the server on `port` received during `ms` of read load through the proxy, and the load's tally. */
  async function readsDuring(port: number, ms: number) {
    const before = await arrivals(port, "get");
    const load = startReadLoad(tp.port(), KEYS, { prefix: READS, clients: 2, maxMs: ms + 5000 });
    await sleep(ms);
    const tally = await load.stop();
    return { served: (await arrivals(port, "get")) - before, tally };
  }

  it("a replica started later: Sentinel announces +slave and the proxy starts reading from it", async () => {
    const startedAt = Date.now();
    const replica = added = await setup.addReplica();
    assert.ok(await caughtUp(setup.redises[0].port, [replica.port]), "the new replica synced");
    // Sentinel reads the master's INFO every 10 s: the announcement can take that long.
    const announced = await events.waitEvent("+slave", `:${replica.port} `, startedAt, 15000);
    assert.ok(announced, `Sentinel announces the new replica:\n${events.describe(startedAt)}`);
    const eligible = await waitFor(() => proxyReplica(tp, replica.port)?.readState === ReadState.Eligible, 10000, 10);
    const eligibleAt = Date.now();
    assert.ok(eligible, `the proxy adds the new replica to its read set: ${describeNodes(tp)}`);
    const { served, tally } = await readsDuring(replica.port, 1500);
    console.log(
      `sentinel replicas: +slave ${announced.at - startedAt} ms after the replica started; ` +
        `eligible in the proxy ${eligibleAt - announced.at} ms later; it served ${served} GETs in 1.5 s; ` +
        `read errors ${tally.errors + tally.wrong}`,
    );
    assert.ok(served > 0, "the new replica receives reads");
    assert.equal(tally.errors + tally.wrong, 0, `reads never fail: ${tally.samples.join("; ")}`);
  });

  it("a replica that dies: +sdown costs no read an error and it leaves the read set", async () => {
    assert.ok(added !== null, "the previous test added a replica");
    const replica = added;
    const load = startReadLoad(tp.port(), KEYS, { prefix: READS, clients: 2, maxMs: 15000 });
    await sleep(300);
    const killedAt = Date.now();
    replica.kill("SIGKILL");
    const sdown = await events.waitEvent("+sdown", `:${replica.port} `, killedAt, 5000);
    const out = await waitFor(() => proxyReplica(tp, replica.port)?.readState !== ReadState.Eligible, 5000, 10);
    const outAt = Date.now();
    await sleep(1000);
    const tally = await load.stop();
    console.log(
      `sentinel replicas: a replica SIGKILLed: +sdown after ${sdown === null ? "never" : `${sdown.at - killedAt} ms`}, ` +
        `out of the proxy's read set after ${outAt - killedAt} ms; reads ${tally.replies}, errors ${tally.errors}, wrong ${tally.wrong}`,
    );
    assert.ok(sdown, `Sentinel announces +sdown:\n${events.describe(killedAt)}`);
    assert.ok(out, `the proxy stops reading from it: ${describeNodes(tp)}`);
    assert.equal(tally.errors + tally.wrong, 0, `reads never fail: ${tally.samples.join("; ")}`);
  });

  it("the replica comes back: -sdown, and once caught up it serves reads again", async () => {
    assert.ok(added !== null, "the first test added a replica");
    const replica = added;
    const backAt = Date.now();
    await replica.restart();
    assert.ok(await caughtUp(setup.redises[0].port, [replica.port]), "the replica synced again");
    const eligible = await waitFor(() => proxyReplica(tp, replica.port)?.readState === ReadState.Eligible, 15000, 10);
    const eligibleAt = Date.now();
    assert.ok(eligible, `the proxy reads from it again: ${describeNodes(tp)}\n${events.describe(backAt)}`);
    const { served, tally } = await readsDuring(replica.port, 1500);
    console.log(`sentinel replicas: the replica back: eligible ${eligibleAt - backAt} ms after its restart; served ${served} GETs in 1.5 s`);
    assert.ok(served > 0, "it receives reads again");
    assert.equal(tally.errors + tally.wrong, 0, `reads never fail: ${tally.samples.join("; ")}`);
  });
});
