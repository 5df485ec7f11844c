// Distributions: every placement recorded from twemproxy 0.5.0, plus random and live-subset behaviour.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HASHES, hashWithTag } from "../core/hash/mod.ts";
import { buildDistribution, DISTRIBUTIONS, isDistributionName, ketamaPointCount } from "../core/dist/mod.ts";
import { md5Digest } from "../core/hash/md5.ts";
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

/**
 * [weight, total weight, live servers, points in twemproxy, points if computed in double].
 * twemproxy 0.5.0 (src/hashkit/nc_ketama.c) computes, with `pct` a float:
 *   pct = (float)weight / (float)total_weight;
 *   points = floorf((float)(pct * 160 / 4 * (float)nlive + 0.0000000001)) * 4;
 * The fourth column is that expression compiled by gcc on x86-64 (FLT_EVAL_METHOD 0); the
 * fifth is the same with double and floor. Worked example, (1, 25, 5): (float)1/25 is
 * 0.039999999105930328; times 160 is 13421772.5 units of 2^-21, a tie that rounds to even,
 * 6.3999996185; /4*5 gives 7.9999995232, which the 1e-10 cannot lift to 8: floor 7, 28 points.
 * In double, 1/25*160/4*5 + 1e-10 is just over 8: 32 points.
 */
const KETAMA_POINTS: readonly (readonly [number, number, number, number, number])[] = [
  [1, 25, 5, 28, 32],
  [2, 25, 5, 60, 64],
  [6, 25, 5, 188, 192],
  [8, 25, 5, 252, 256],
  [29, 60, 3, 228, 232],
  [61, 120, 3, 240, 244],
  [29, 120, 3, 112, 116],
  [22, 28, 7, 876, 880],
  [25, 48, 6, 496, 500],
  // Weights where float and double agree.
  [7, 25, 5, 224, 224],
  [30, 120, 3, 120, 120],
  [1, 2, 2, 160, 160],
  [1, 3, 3, 160, 160],
  [2, 3, 2, 212, 212],
  [1, 1, 1, 160, 160],
  [1, 31, 3, 12, 12],
  [25, 31, 3, 384, 384],
  [5, 31, 3, 76, 76],
];

/** The same formula in double precision, as a naive port would write it. */
function doublePointCount(weight: number, total: number, nlive: number): number {
  return Math.floor(weight / total * 160 / 4 * nlive + 0.0000000001) * 4;
}

/** The four continuum values twemproxy takes from the MD5 of "<id>-<n>". */
function ketamaPoints(id: string, n: number): number[] {
  const label = enc(`${id}-${n}`);
  const d = md5Digest(label, 0, label.length);
  return [0, 4, 8, 12].map((o) => (d[o] | (d[o + 1] << 8) | (d[o + 2] << 16) | (d[o + 3] << 24)) >>> 0);
}

describe("ketama points per server", () => {
  it("ketamaPointCount() matches twemproxy's single-precision result where double precision differs", () => {
    for (const [weight, total, nlive, float, double] of KETAMA_POINTS) {
      const args = `(${weight}, ${total}, ${nlive})`;
      assert.equal(doublePointCount(weight, total, nlive), double, `double precision ${args}`);
      assert.equal(ketamaPointCount(weight, total, nlive), float, `ketamaPointCount${args}`);
    }
    assert.equal(KETAMA_POINTS.filter(([, , , f, d]) => f !== d).length, 9, "nine rows tell float from double");
  });

  it("weights 1,6,6,6,6 give the ring 28 points for the first server and 188 for the others, not 32 and 192", () => {
    const servers = [{ id: "s1", weight: 1 }, ...["s2", "s3", "s4", "s5"].map((id) => ({ id, weight: 6 }))];
    const ring = buildDistribution("ketama", servers);
    // Points exist for digests 0..6 of s1 (28 = 7 x 4) and 0..46 of s2 (188 = 47 x 4): a hash
    // equal to a point picks its server. Digest 7 of s1 and 47 of s2 exist only with double
    // arithmetic; their values pick whichever server owns the next point.
    for (let n = 0; n < 7; n++) assert.deepEqual(ketamaPoints("s1", n).map((v) => ring.pick(v)), [0, 0, 0, 0], `s1-${n}`);
    assert.ok(ketamaPoints("s1", 7).every((v) => ring.pick(v) !== 0), "no point for s1-7");
    for (let n = 0; n < 47; n++) assert.deepEqual(ketamaPoints("s2", n).map((v) => ring.pick(v)), [1, 1, 1, 1], `s2-${n}`);
    assert.ok(ketamaPoints("s2", 47).every((v) => ring.pick(v) !== 1), "no point for s2-47");
  });
});
