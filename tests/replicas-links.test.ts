/**
 * Replicas that must get no reads because they do not follow their shard's master, with
 * real servers: one whose master's port is closed, one whose master refuses its AUTH, one
 * replicating a different master, and a standalone server listed as a replica. Checks the
 * read state the replica check decides for each and, with INFO commandstats, that reads go
 * only to the replica that really follows the master.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadState } from "../core/proxy/server.ts";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import type { ServerProcess } from "./helpers/servers.ts";
import { canConnect, sleep } from "./helpers/ports.ts";
import { encodePipeline } from "./helpers/resp.ts";
import { PipeClient } from "./helpers/soak.ts";
import {
  bulk,
  caughtUp,
  cli,
  deltas,
  describeStates,
  fillKeys,
  getCounts,
  keyOf,
  nodeAt,
  NOTHING_LISTENS,
  Redises,
  replicaPoolYaml,
  valueOf,
  waitLinked,
  waitStates,
} from "./helpers/replicas.ts";

const KEYS = 100;
const PREFIX = "links";
const PASSWORD = "s3cret";
const POOL = { links: 0, auth: 1 } as const;

describe("replicas: replicas that do not follow the shard's master", () => {
  const redis = new Redises("links-");
  let master: ServerProcess;
  /** Follows `master`: the only replica of pool `links` that may serve. */
  let linked: ServerProcess;
  /** A replica of a port nothing listens on. */
  let closedPort: ServerProcess;
  /** Another standalone master, and a replica of it listed under `master`'s shard. */
  let other: ServerProcess;
  let ofOther: ServerProcess;
  /** Pool `auth`: a master with a password, a replica that knows it and one that does not. */
  let authMaster: ServerProcess;
  let authLinked: ServerProcess;
  let authRefused: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    assert.equal(await canConnect(NOTHING_LISTENS), false, `nothing listens on port ${NOTHING_LISTENS}`);
    const pass = ["--requirepass", PASSWORD];
    [master, other, authMaster] = await Promise.all([redis.master(), redis.master(), redis.master(pass)]);
    [linked, closedPort, ofOther, authLinked, authRefused] = await Promise.all([
      redis.replica(master.port),
      redis.replica(NOTHING_LISTENS),
      redis.replica(other.port),
      redis.replica(authMaster.port, [...pass, "--masterauth", PASSWORD]),
      redis.replica(authMaster.port, pass),
    ]);
    assert.ok(await waitLinked([linked, ofOther, authLinked]), "the linked replicas finished their first sync");
    await Promise.all([fillKeys(master, PREFIX, KEYS), fillKeys(authMaster, PREFIX, KEYS)]);
    // The other master holds the same keys with other values: a read it served would show.
    await cli(other.port, "EVAL", "for i = 0, 99 do redis.call('SET', 'links:' .. i, 'other') end", "0");
    assert.ok(await caughtUp(master, [linked]) && await caughtUp(authMaster, [authLinked]) && await caughtUp(other, [ofOther]));
    tp = await startTestProxy(
      replicaPoolYaml({
        name: "links",
        master: master.port,
        replicas: [linked.port, closedPort.port, ofOther.port, other.port],
        policy: "prefer_replica",
      }) +
        replicaPoolYaml({
          name: "auth",
          master: authMaster.port,
          replicas: [authLinked.port, authRefused.port],
          policy: "prefer_replica",
          extra: { redis_auth: PASSWORD },
        }),
    );
    assert.ok(await waitStates(tp, POOL.links, [[linked.port, ReadState.Eligible]], 10000), describeStates(tp, POOL.links));
    assert.ok(await waitStates(tp, POOL.auth, [[authLinked.port, ReadState.Eligible]], 10000), describeStates(tp, POOL.auth));
    await sleep(300); // a few more checks (every 100 ms), so every state is settled
  });

  after(async () => {
    await tp?.close();
    await redis.stopAll();
  });

  /** 200 GETs through pool `pool`; returns GET arrivals on `servers` and the replies that were not the master's value. */
  async function reads(pool: number, servers: ServerProcess[]): Promise<{ counts: number[]; wrong: string[] }> {
    const before = await getCounts(servers);
    const client = await PipeClient.connect(tp.port(pool));
    const wrong: string[] = [];
    try {
      // A pool with redis_auth asks its clients for the password too (as twemproxy).
      if (pool === POOL.auth) assert.deepEqual(await client.exchange(encodePipeline([["AUTH", PASSWORD]]), 1), ["+OK\r\n"]);
      const ids = Array.from({ length: 200 }, (_, i) => i % KEYS);
      const got = await client.exchange(encodePipeline(ids.map((i) => ["GET", keyOf(PREFIX, i)])), ids.length);
      got.forEach((reply, k) => {
        if (reply !== bulk(valueOf(PREFIX, ids[k]))) wrong.push(`GET ${keyOf(PREFIX, ids[k])} -> ${JSON.stringify(reply)}`);
      });
    } finally {
      client.destroy();
    }
    return { counts: deltas(before, await getCounts(servers)), wrong };
  }

  it("a replica of a port nothing listens on gets no reads and is LinkDown (or NotReplica: it follows another address)", async () => {
    const state = nodeAt(tp, POOL.links, closedPort.port).readState;
    const { counts: [onClosed] } = await reads(POOL.links, [closedPort]);
    assert.equal(onClosed, 0, "no GET reached it");
    assert.ok(state === ReadState.LinkDown || state === ReadState.NotReplica, `read state ${state}: ${describeStates(tp, POOL.links)}`);
  });

  it("a replica of the shard's own master that refuses its AUTH gets no reads, its peer serves them all, and it is LinkDown", async () => {
    const state = nodeAt(tp, POOL.auth, authRefused.port).readState;
    const { counts: [onMaster, onLinked, onRefused], wrong } = await reads(POOL.auth, [authMaster, authLinked, authRefused]);
    assert.deepEqual(wrong.slice(0, 3), [], "every read got the master's value");
    assert.deepEqual([onMaster, onLinked, onRefused], [0, 200, 0], "GETs on master, linked replica, refused replica");
    const why = "it follows this shard's master (its replid is its own until a first sync), only its link is down";
    assert.equal(state, ReadState.LinkDown, `read state ${state}, expected LinkDown (4): ${why}; ${describeStates(tp, POOL.auth)}`);
  });

  it("a standalone server listed as a replica gets no reads and is NotReplica", async () => {
    const state = nodeAt(tp, POOL.links, other.port).readState;
    const { counts: [onOther] } = await reads(POOL.links, [other]);
    assert.equal(onOther, 0, "no GET reached it");
    assert.equal(state, ReadState.NotReplica, describeStates(tp, POOL.links));
  });

  it("a replica of a different master gets no reads and is not eligible (NotReplica or LinkDown)", async () => {
    const state = nodeAt(tp, POOL.links, ofOther.port).readState;
    const { counts: [onOfOther], wrong } = await reads(POOL.links, [ofOther]);
    const reached = `${onOfOther} of 200 GETs reached it, ${wrong.length} replies were its master's values (${wrong.slice(0, 2).join("; ")})`;
    assert.equal(onOfOther, 0, `${reached}; read state ${state}; states ${describeStates(tp, POOL.links)}`);
    assert.ok(state === ReadState.NotReplica || state === ReadState.LinkDown, `read state ${state}, expected NotReplica (6) or LinkDown (4)`);
  });
});
