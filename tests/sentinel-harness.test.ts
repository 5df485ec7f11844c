/**
 * The Sentinel test harness itself, with no proxy: three real Sentinels agree on a master and
 * its replica, SENTINEL FAILOVER promotes the replica, and the subscriber sees +switch-master.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SentinelSetup } from "./helpers/sentinel.ts";
import { info } from "./helpers/sentinel-load.ts";

describe("sentinel harness: real Sentinels watching a master", () => {
  let setup: SentinelSetup;

  before(async () => {
    setup = await SentinelSetup.start({ replicas: 1, prefix: "sentinel-harness-" });
  });

  after(async () => {
    await setup?.stopAll();
  });

  it("SENTINEL FAILOVER promotes the replica and every subscribed Sentinel announces +switch-master", async () => {
    const [master, replica] = setup.redises;
    const t0 = Date.now();
    assert.equal(await setup.waitAgreed(), master.port, "the Sentinels agree on the configured master");
    console.log(`sentinel harness: 3 Sentinels agreed on the master and its replica in ${Date.now() - t0} ms`);
    const events = await setup.subscribe();
    const started = Date.now();
    await setup.failover();
    const sw = await events.waitSwitch(started, 15000);
    console.log(`sentinel harness: +switch-master ${sw.at - started} ms after SENTINEL FAILOVER`);
    assert.deepEqual([sw.name, sw.from, sw.to], [setup.name, master.port, replica.port]);
    assert.equal(await setup.masterPort(), replica.port, "the Sentinels now name the replica");
    assert.equal((await info(replica.port, "replication")).get("role"), "master", "the replica was promoted");
    const announced = await events.waitEvent("+switch-master", setup.name, started, 5000);
    assert.ok(announced, "the event is recorded with its text");
    const sentinelsAnnouncing = new Set(events.events.filter((e) => e.channel === "+switch-master").map((e) => e.sentinel));
    assert.ok(await waitUntil(() => new Set(events.events.filter((e) => e.channel === "+switch-master").map((e) => e.sentinel)).size === 3, 5000),
      `every Sentinel announces the switch (so far ${sentinelsAnnouncing.size}):\n${events.describe(started)}`);
  });
});

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
