// Distributions: every placement recorded from twemproxy 0.5.0, plus random and live-subset behaviour.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HASHES, hashWithTag } from "../core/hash/mod.ts";
import { buildDistribution, DISTRIBUTIONS, isDistributionName } from "../core/dist/mod.ts";
import type { DistServer } from "../core/dist/mod.ts";
import { loadKeys, loadPlacementCases, serverId } from "./helpers/vectors.ts";
import type { PlacementCase } from "./helpers/vectors.ts";

const keys = loadKeys();
const cases = loadPlacementCases();
const enc = (s: string) => new TextEncoder().encode(s);

function serversOf(c: PlacementCase): DistServer[] {
  return c.servers.map((s) => ({ id: serverId(s), weight: s.weight }));
}

/** Routes every key of keys.json through the case's pool: hash_tag, hash, distribution. */
function route(c: PlacementCase, servers: readonly DistServer[] = serversOf(c)): number[] {
  const hash = HASHES[c.hash as keyof typeof HASHES];
  const tag = c.hash_tag === null ? null : enc(c.hash_tag);
  const dispatcher = buildDistribution(c.distribution, servers);
  return keys.map((key) => dispatcher.pick(hashWithTag(hash, key, 0, key.length, tag)));
}

describe("placement matches twemproxy 0.5.0", () => {
  it("the vectors hold 72 cases over 1000 keys", () => {
    assert.equal(cases.length, 72);
    assert.equal(keys.length, 1000);
    for (const c of cases) assert.equal(c.assign.length, keys.length, c.id);
  });

  for (const c of cases) {
    it(`${c.id} puts all 1000 keys on the recorded server`, () => {
      const got = route(c);
      const bad = got.flatMap((server, i) => (String(server) === c.assign[i] ? [] : [i]));
      const first = bad.length === 0 ? "" : `; first bad key #${bad[0]}: got ${got[bad[0]]}, want ${c.assign[bad[0]]}`;
      assert.equal(bad.length, 0, `${c.id}: ${bad.length} of 1000 keys misplaced${first}`);
      const counts = c.servers.map((_, s) => got.filter((x) => x === s).length);
      assert.deepEqual(counts, c.counts, `${c.id}: per-server counts`);
    });
  }
});

describe("DISTRIBUTIONS", () => {
  it("lists ketama, modula and random, in twemproxy's order", () => {
    assert.deepEqual(Object.keys(DISTRIBUTIONS), ["ketama", "modula", "random"]);
    assert.ok(Object.isFrozen(DISTRIBUTIONS));
  });

  it("isDistributionName() rejects unknown and inherited names", () => {
    assert.ok(isDistributionName("ketama"));
    for (const name of ["Ketama", "consistent", "", "toString"]) assert.ok(!isDistributionName(name), name);
  });

  it("buildDistribution() throws on an unknown name", () => {
    assert.throws(() => buildDistribution("vnode", [{ id: "a", weight: 1 }]), /unknown distribution: vnode/);
  });

  it("a dispatcher over no servers picks -1 under every distribution", () => {
    for (const name of Object.keys(DISTRIBUTIONS)) {
      assert.equal(buildDistribution(name, []).pick(12345), -1, name);
    }
  });

  it("a dispatcher over one server always picks it", () => {
    for (const name of Object.keys(DISTRIBUTIONS)) {
      const d = buildDistribution(name, [{ id: "127.0.0.1:6379", weight: 3 }]);
      for (const h of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff]) assert.equal(d.pick(h), 0, `${name} hash ${h}`);
    }
  });
});

describe("random distribution", () => {
  const servers = serversOf(cases[0]);

  it("keeps 10000 Math.random picks in range and reaches every server", () => {
    const d = buildDistribution("random", servers);
    const seen = new Set<number>();
    for (let i = 0; i < 10000; i++) {
      const s = d.pick(0);
      assert.ok(Number.isInteger(s) && s >= 0 && s < servers.length, `pick ${s}`);
      seen.add(s);
    }
    assert.equal(seen.size, servers.length);
  });

  it("gives each server one slot whatever its weight, as twemproxy's random_update does", () => {
    let step = 0;
    const n = servers.length;
    const d = buildDistribution("random", servers, () => (step++ + 0.5) / n);
    const picks = Array.from({ length: n }, () => d.pick(0)).sort();
    assert.deepEqual(picks, servers.map((_, i) => i));
  });

  it("stays in range when the injected random returns its extremes", () => {
    for (const r of [0, 0.9999999999, 1]) {
      const s = buildDistribution("random", servers, () => r).pick(99);
      assert.ok(s >= 0 && s < servers.length, `random() = ${r} picked ${s}`);
    }
  });
});

describe("dispatchers over a live subset", () => {
  for (const c of cases.filter((x) => x.hash === "fnv1a_64")) {
    it(`${c.id} with any one server removed never picks the removed server`, () => {
      const all = serversOf(c);
      for (let removed = 0; removed < all.length; removed++) {
        const live = all.filter((_, i) => i !== removed);
        for (const picked of route(c, live)) {
          assert.ok(picked >= 0 && picked < live.length, `${c.id} without #${removed}: index ${picked}`);
          assert.notEqual(live[picked].id, all[removed].id, `${c.id} picked removed ${all[removed].id}`);
        }
      }
    });
  }

  it("random over a subset never picks outside it", () => {
    const all = serversOf(cases[0]);
    for (let removed = 0; removed < all.length; removed++) {
      const live = all.filter((_, i) => i !== removed);
      const d = buildDistribution("random", live);
      for (let i = 0; i < 1000; i++) {
        const picked = d.pick(i);
        assert.ok(picked >= 0 && picked < live.length, `without #${removed}: index ${picked}`);
      }
    }
  });

  for (const id of ["named-ketama-fnv1a_64", "named-modula-fnv1a_64"]) {
    it(`${id} places keys on the same server ids when the list is given in reverse`, () => {
      const c = cases.find((x) => x.id === id);
      assert.ok(c);
      const all = serversOf(c);
      const reversed = [...all].reverse();
      const a = route(c, all).map((i) => all[i].id);
      const b = route(c, reversed).map((i) => reversed[i].id);
      assert.deepEqual(b, a);
    });
  }
});
