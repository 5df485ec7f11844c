/**
 * The memcached meta protocol through the proxy (four real memcached servers, keys
 * spread by md5), compared byte for byte with the same script on one plain memcached
 * 1.6.18: mg/ms/md/ma/mn/me with their flags, base64 keys routed by the decoded key,
 * the opaque O echoed, and quiet mode q (misses and HD hidden, errors shown, mn flushes).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  diffRuns,
  latin1,
  type McPiece,
  type McRig,
  normalizeCas,
  runScript,
  same,
  startRig,
} from "./helpers/memcache-wire.ts";

const encoder = new TextEncoder();

/** `ms <key> <len> <flags>\r\n<data>\r\n` */
const ms = (key: string, data: string, flags = "") => `ms ${key} ${data.length}${flags === "" ? "" : ` ${flags}`}\r\n${data}\r\n`;

/** me's debug line carries times and the cas: keep only their shape. */
function normalizeMe(reply: string): string {
  return normalizeCas(reply).replace(/^ME (\S+) exp=-?\d+ la=\d+ cas=\d+ /gm, "ME $1 exp=<exp> la=<la> cas=<cas> ");
}

/** A TTL flag just read back can lose a second between the two runs. */
function normalizeTtl(reply: string): string {
  return normalizeCas(reply).replace(/ t(99\d|1000)(?= |\r)/g, " t<~1000>");
}

function base64(text: string): string {
  return btoa(text);
}

describe("meta commands through the proxy match a plain memcached", () => {
  let rig: McRig;

  before(async () => {
    rig = await startRig();
  });

  after(async () => {
    await rig?.stop();
  });

  it("mg returns the flags v k f t c s O h as memcached does, on a hit and on a miss", async () => {
    await same(rig, [
      ms("mg:1", "hello", "F7"), "mg mg:1 v k f t c s O123 h\r\n", "mg mg:1 h\r\n", "mg mg:1\r\n", "mg mg:1 k\r\n",
      "mg mg:missing v k O5\r\n", "mg mg:missing\r\n", "mg mg:1 s v\r\n", "mg mg:1 v v\r\n", "mg mg:1 Z\r\n",
      `mg ${"m".repeat(251)} v\r\n`, "mg\r\n",
    ]);
    await same(rig, [ms("mg:2", "ttl", "T1000"), "mg mg:2 t v\r\n", "mg mg:2 T1000 t\r\n"], {}, normalizeTtl);
  });

  it("ms with T, F, I, the M modes, c, k and O replies as memcached does", async () => {
    await same(rig, [
      ms("ms:1", "abc", "T0 F5 c k O123"), "mg ms:1 v f\r\n", ms("ms:1", "xy", "MA"), ms("ms:none", "xy", "MA"),
      ms("ms:1", "xy", "ME"), ms("ms:2", "xy", "ME"), ms("ms:1", "z", "MP"), ms("ms:1", "r", "MR"), ms("ms:none", "r", "MR"),
      ms("ms:3", "s", "MS"), "mg ms:1 v\r\n", "mg ms:2 v\r\n", "mg ms:3 v\r\n", ms("ms:1", "z", "I"), "mg ms:1 v c\r\n",
      ms("ms:4", "", ""), "mg ms:4 v s\r\n", ms("ms:5", "a\r\nb", "F4294967295"), "mg ms:5 v f\r\n",
    ]);
  });

  it("ms with a compare-and-swap C stores with the right cas and answers EX with a stale one", async () => {
    const casOf = async (port: number) => {
      const run = await runScript(port, [ms("ms:cas", "v1"), "mg ms:cas c\r\n"]);
      const m = /^HD c(\d+)\r\n$/.exec(latin1(run.replies[1]));
      assert.ok(m !== null, `mg c answered ${latin1(run.replies[1])}`);
      return m[1];
    };
    const script = (cas: string): McPiece[] => [
      ms("ms:cas", "v2", `C${cas}`), ms("ms:cas", "v3", `C${cas}`), ms("ms:casnone", "v", `C${cas}`), "mg ms:cas v\r\n",
      `md ms:cas C${cas}\r\n`,
    ];
    const [viaCas, plainCas] = await Promise.all([casOf(rig.tp.port()), casOf(rig.plain.port)]);
    const [got, want] = await Promise.all([runScript(rig.tp.port(), script(viaCas)), runScript(rig.plain.port, script(plainCas))]);
    assert.equal(diffRuns(got, want, script(viaCas)), null);
    assert.deepEqual(got.replies.slice(0, 3).map(latin1), ["HD\r\n", "EX\r\n", "NF\r\n"]);
  });

  it("ms errors (unknown flag, bad mode, bad data chunk, too large) reply and resynchronise as memcached does", async () => {
    await same(rig, [
      ms("mse:1", "q", "Z"), "mg mse:1 v\r\n", ms("mse:1", "q", "MX"), "ms mse:1 2\r\nabc\r\n", "mg mse:1 v\r\n",
      "ms mse:1 abc\r\nq\r\n", "ms mse:1\r\n", ms("mse:1", "q", "T1 T2"), ms("mse:1", "q", "Tx"), ms("mse:1", "q", "b"),
      `ms mse:2 ${2 * 1048576}\r\n${"x".repeat(2 * 1048576)}\r\n`, ms("mse:3", "ok"), "mg mse:2 v\r\n", "mg mse:3 v\r\n",
    ]);
  });

  it("md with I, T, C, k and O replies as memcached does, and a stale item shows W and X", async () => {
    await same(rig, [
      ms("md:1", "a"), "md md:1\r\n", "md md:1\r\n", "md md:1 k O7\r\n", ms("md:2", "b"), "md md:2 I T30\r\n",
      "mg md:2 v c\r\n", "mg md:2 v\r\n", "md md:2 C999999999\r\n", "md md:2 Z\r\n", "md md:2 D5\r\n", "md\r\n",
    ]);
  });

  it("ma increments and decrements with N, J, D and the MD mode, wraps at 2^64 and reports errors as memcached does", async () => {
    await same(rig, [
      "ma ma:1\r\n", "ma ma:1 N0 J10 v\r\n", "ma ma:1 v\r\n", "ma ma:1 MD D3 v\r\n", "ma ma:1 MD D100 v\r\n",
      "ma ma:1 MI D18446744073709551615 v\r\n", "ma ma:1 D1 v\r\n", "ma ma:1 v t N0 k O9\r\n", "ma ma:1 D-1\r\n",
      "ma ma:1 J-1 N0\r\n", ms("ma:2", "abc"), "ma ma:2\r\n", "ma ma:1 M+ v\r\n", "ma ma:1 M- v\r\n", "ma ma:1 Mx\r\n",
      ms("ma:3", "18446744073709551615"), "ma ma:3 v\r\n", "ma\r\n",
    ]);
  });

  it("mn answers MN and me returns the item's debug line (times and cas compared by shape)", async () => {
    await same(rig, [ms("me:1", "debug", "T0"), "mn\r\n", "me me:1\r\n", "me me:missing\r\n", "mn\r\n", "me\r\n"], {}, normalizeMe);
  });

  it("base64 keys (b) are routed by the decoded key, to the server that holds the plain key", async () => {
    const pool = rig.tp.proxy.pools[0];
    const owner = (key: string) => {
      const bytes = encoder.encode(key);
      return pool.serverIndexFor(bytes, 0, bytes.length);
    };
    const keys = Array.from({ length: 200 }, (_, i) => `b64:${i}`).filter((k) => owner(k) !== owner(base64(k))).slice(0, 8);
    assert.equal(keys.length, 8, "keys whose plain and base64 forms land on different servers");
    await same(rig, [
      ...keys.map((k, i) => ms(base64(k), `v${i}`, "b")), ...keys.map((k) => `mg ${base64(k)} b v k\r\n`),
      ...keys.map((k) => `mg ${k} v\r\n`), `get ${keys.join(" ")}\r\n`, `md ${base64(keys[0])} b\r\n`, `mg ${keys[0]} v\r\n`,
      `ma ${base64("b64:n")} b N0 J3 v\r\n`, "mg b64:n v\r\n", `me ${base64(keys[1])} b\r\n`, "mg !!!! b v\r\n",
    ], {}, normalizeMe);
    for (const k of keys.slice(1)) {
      const holders: number[] = [];
      for (let b = 0; b < rig.backends.length; b++) {
        const run = await runScript(rig.backends[b].port, [`mg ${k} v\r\n`]);
        if (latin1(run.replies[0]).startsWith("VA ")) holders.push(b);
      }
      assert.deepEqual(holders, [owner(k)], `servers holding ${k}`);
    }
  });

  it("the opaque O is echoed on every meta command, hit, miss or error, as memcached does", async () => {
    await same(rig, [
      ms("op:1", "x", "O1"), "mg op:1 O2 v\r\n", "mg op:missing O3 k\r\n", "md op:missing O4\r\n", "ma op:missing O5\r\n",
      "ma op:1 O6\r\n", "md op:1 O7\r\n", ms("op:1", "x", "ME O8"), ms("op:1", "x", "ME O9"), `mg op:1 O${"9".repeat(40)}\r\n`,
    ]);
  });
});

describe("meta quiet mode (q) through the proxy matches a plain memcached", () => {
  let rig: McRig;

  before(async () => {
    rig = await startRig();
  });

  after(async () => {
    await rig?.stop();
  });

  it("mg with q hides a miss and still answers a hit", async () => {
    const run = await same(rig, [
      ms("qg:1", "hit"), "mg qg:missing v q\r\n", "mg qg:1 v q\r\n", "mg qg:missing k O1 q\r\n", "mg qg:1 q\r\n", "mn\r\n",
    ]);
    assert.deepEqual(run.replies.map(latin1), ["HD\r\n", "VA 3\r\nhit\r\n", "HD\r\n", "MN\r\n"]);
  });

  it("ms with q hides HD, but NS, EX and errors still come", async () => {
    await same(rig, [
      ms("qs:1", "a", "q"), ms("qs:1", "b", "ME q"), ms("qs:2", "c", "MR q"), ms("qs:1", "d", "C999999999 q"), ms("qs:1", "e", "Z q"),
      "ms qs:1 1 q\r\nxyz\r\n", "mg qs:1 v\r\n", "mn\r\n",
    ]);
  });

  it("md with q hides HD; a miss (NF) still comes, as from memcached 1.6.18", async () => {
    await same(rig, [ms("qd:1", "a"), "md qd:1 q\r\n", "md qd:1 q\r\n", "md qd:1 q O3\r\n", "mn\r\n"]);
  });

  it("ma with q hides HD and VA; NF and errors still come", async () => {
    await same(rig, [
      "ma qa:1 q\r\n", ms("qa:1", "5"), "ma qa:1 q\r\n", "ma qa:1 q v\r\n", "ma qa:1 MD D2 q v\r\n", "mg qa:1 v\r\n",
      ms("qa:2", "abc"), "ma qa:2 q\r\n", "ma qa:1 D-1 q\r\n", "ma qa:1 N0 J9 q v\r\n", "mn\r\n",
    ]);
  });

  it("ma with q and N answers when it autovivifies the item, as memcached 1.6.18 does", async () => {
    await same(rig, ["ma qn:1 N0 J5 q\r\n", "ma qn:1 N0 J5 q\r\n", "ma qn:2 N0 J5 q v\r\n", "mg qn:1 v\r\n", "mn\r\n"]);
  });

  it("quiet requests over every server end with mn, which flushes: every shown reply arrives in order", async () => {
    const pieces: McPiece[] = [];
    for (let i = 0; i < 120; i++) {
      const k = `qp:${i % 40}`;
      const pick = [ms(k, `v${i}`, "q"), `mg ${k} v q\r\n`, `mg qp:none${i} v q\r\n`, `md ${k} q\r\n`, "mn\r\n", `mg ${k} k v O${i} q\r\n`];
      pieces.push(pick[i % pick.length]);
    }
    await same(rig, pieces);
    await same(rig, pieces, { chunk: 7 });
  });
});
