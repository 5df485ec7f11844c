/**
 * Sentinel, starting up (issue 13), with real processes: Sentinels that require a password
 * (the pool's `sentinel_auth`) correct a server line whose address is only a wrong guess;
 * with a wrong password, or with no Sentinel answering at all, the proxy still starts on the
 * configured addresses and logs why.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { freePort } from "./helpers/ports.ts";
import { waitFor } from "./helpers/soak.ts";
import { callOnce } from "./helpers/resp.ts";
import { SentinelSetup } from "./helpers/sentinel.ts";
import {
  describeNodes,
  missingOn,
  proxyMasterPort,
  sentinelPoolYaml,
  sentinelReachable,
  startWriteLoad,
  tallyWrites,
} from "./helpers/sentinel-load.ts";

const PASSWORD = "s3cret";

describe("sentinel: starting up", () => {
  let setup: SentinelSetup;
  const proxies: TestProxy[] = [];

  before(async () => {
    setup = await SentinelSetup.start({ replicas: 1, password: PASSWORD, prefix: "sentinel-conf-" });
    await setup.waitAgreed({ masterPort: setup.redises[0].port });
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await setup?.stopAll();
  });

  async function start(yml: string): Promise<{ tp: TestProxy; ms: number }> {
    const t0 = Date.now();
    const tp = await startTestProxy(yml);
    proxies.push(tp);
    return { tp, ms: Date.now() - t0 };
  }

  /** A few writes through the proxy; all must succeed and be on the server on `port`. */
  async function writesLandOn(tp: TestProxy, port: number, prefix: string): Promise<void> {
    const load = startWriteLoad(tp.port(), { prefix, clients: 1, maxPerClient: 20, maxMs: 5000 });
    await waitFor(() => load.result.length >= 20, 5000);
    const records = await load.stop();
    const tally = tallyWrites(records);
    assert.equal(tally.errors, 0, `writes succeed: ${tally.samples.join(" | ")}`);
    assert.equal((await missingOn(port, records)).length, 0, `the writes are on 127.0.0.1:${port}`);
  }

  it("with sentinel_auth, a server line naming the replica's address is only a starting guess: writes go to the master", async () => {
    const [master, replica] = setup.redises;
    const yml = sentinelPoolYaml({ sentinels: setup.sentinelPorts, servers: [[replica.port, setup.name]], auth: PASSWORD });
    const { tp, ms } = await start(yml);
    console.log(`sentinel conf: started in ${ms} ms with authenticated Sentinels; nodes ${describeNodes(tp)}`);
    assert.ok(await waitFor(() => proxyMasterPort(tp) === master.port, 5000), `the proxy's master is the one Sentinel names: ${describeNodes(tp)}`);
    await writesLandOn(tp, master.port, "auth");
    if (sentinelReachable(tp) !== undefined) {
      assert.ok(await waitFor(() => sentinelReachable(tp) === 3, 5000), `the proxy subscribed to all three (${sentinelReachable(tp)})`);
    }
  });

  it("with a wrong sentinel_auth the proxy starts on the configured address and logs it", async () => {
    const master = setup.redises[0];
    const yml = sentinelPoolYaml({ sentinels: setup.sentinelPorts, servers: [[master.port, setup.name]], auth: "wrong" });
    const { tp, ms } = await start(yml);
    const lines = tp.logs.filter((l) => /sentinel/i.test(l));
    console.log(`sentinel conf: wrong password: started in ${ms} ms; logged: ${lines.slice(0, 2).join(" / ")}; reachable ${sentinelReachable(tp)}`);
    assert.ok(ms < 10000, `startup is bounded (${ms} ms)`);
    assert.equal(proxyMasterPort(tp), master.port, "the configured address");
    assert.ok(lines.length > 0, `the proxy logs that no Sentinel answered: ${tp.logs.join(" / ")}`);
    await writesLandOn(tp, master.port, "wrong-auth");
    const reachable = sentinelReachable(tp);
    if (reachable !== undefined) assert.equal(reachable, 0, "a Sentinel that refuses our password does not count as reachable");
  });

  it("the proxy starts when no Sentinel answers, serves the configured addresses and logs it", async () => {
    const master = setup.redises[0];
    const nobody = [await freePort(), await freePort(), await freePort()];
    const { tp, ms } = await start(sentinelPoolYaml({ sentinels: nobody, servers: [[master.port, setup.name]] }));
    const lines = tp.logs.filter((l) => /sentinel/i.test(l));
    console.log(`sentinel conf: no Sentinel listening: started in ${ms} ms; logged: ${lines.slice(0, 2).join(" / ")}`);
    assert.ok(ms < 10000, `startup is bounded (${ms} ms)`);
    assert.equal(proxyMasterPort(tp), master.port, "the configured address");
    assert.ok(lines.length > 0, `the proxy logs that no Sentinel answered: ${tp.logs.join(" / ")}`);
    assert.equal((await callOnce(tp.port(), ["PING"])).type, "status");
    await writesLandOn(tp, master.port, "nobody");
    const reachable = sentinelReachable(tp);
    if (reachable !== undefined) assert.equal(reachable, 0, "no Sentinel is reachable");
  });
});
