/**
 * End-to-end memcached ASCII commands through the proxy (four real memcached servers,
 * keys spread by md5), compared reply for reply, byte for byte, with the same script
 * sent to one plain memcached: storage, retrieval, cas, delete, incr/decr, touch, gat,
 * noreply, bad input and how the stream recovers, the commands the proxy answers
 * itself, binary values up to 1.5 MB, and long pipelines mixing every command.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rawExchange } from "./helpers/servers.ts";
import { concat, show } from "./helpers/resp.ts";
import { Rng } from "./helpers/soak.ts";
import {
  diffRuns,
  latin1,
  type McPiece,
  type McRig,
  runScript,
  same as sameOnBoth,
  type ScriptOptions,
  type ScriptRun,
  startRig,
  storageCmd,
} from "./helpers/memcache-wire.ts";

const encoder = new TextEncoder();
/** The proxy's answer to commands it does not forward (core/proxy/memcache.ts). */
const UNSUPPORTED = "SERVER_ERROR command not supported by the proxy\r\n";

/** A rig for one describe: started in before(), stopped by PID in after(). */
function rig(args: string[] = []): { current: McRig } {
  const r = { current: null as unknown as McRig };
  before(async () => {
    r.current = await startRig(args);
  });
  after(async () => {
    await r.current?.stop();
  });
  return r;
}

type Rig = { current: McRig };

function same(r: Rig, pieces: McPiece[], opts: ScriptOptions = {}): Promise<ScriptRun> {
  return sameOnBoth(r.current, pieces, opts);
}

const set = (key: string | Uint8Array, data: string | Uint8Array, flags = 0, exptime = 0, tail = "") =>
  storageCmd("set", key, data, flags, exptime, tail);

/** Seeded random bytes, with CRLF, END and a fake VALUE line in the middle. */
function binaryValue(size: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.int(256);
  const tricky = encoder.encode("\r\nEND\r\nVALUE x 0 1\r\n");
  if (size >= tricky.length * 2) out.set(tricky, Math.floor(size / 2));
  return out;
}

describe("memcached ASCII commands through the proxy match a plain memcached", () => {
  const r = rig();

  it("set, add, replace, append and prepend with flags and exptime reply as memcached does", async () => {
    await same(r, [
      set("st:1", "hello"), "get st:1\r\n", storageCmd("add", "st:1", "x"), storageCmd("add", "st:2", "two", 7, 0),
      storageCmd("replace", "st:3", "x"), storageCmd("replace", "st:1", "hi", 42, 1000), storageCmd("append", "st:1", " world"),
      storageCmd("prepend", "st:1", ">> "), storageCmd("append", "st:none", "x"), storageCmd("prepend", "st:none", "x"),
      "get st:1 st:2 st:3 st:none\r\n", set("st:4", "max flags", 4294967295), "get st:4\r\n",
      set("st:5", "gone", 0, -1), "get st:5\r\n", set("st:6", "old absolute time", 0, 2592001), "get st:6\r\n",
      set("st:7", ""), "get st:7\r\n", set("st:8", "x", 4294967296), set("st:9", "x", 0, 0, " extra"), "get st:8 st:9\r\n",
    ]);
  });

  it("get and gets with many keys on several servers reply as memcached does (cas shape compared)", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `gm:${i}`);
    const sets = keys.filter((_, i) => i % 3 !== 0).map((k, i) => set(k, `value-${i}`, i));
    const run = await same(r, [...sets, `get ${keys.join(" ")}\r\n`, `gets ${keys.join(" ")}\r\n`, "gets gm:1\r\n", "get gm:0\r\n"]);
    const gets = latin1(run.replies[sets.length + 1]);
    assert.match(gets, /^(VALUE gm:\d+ \d+ \d+ \d+\r\nvalue-\d+\r\n)+END\r\n$/);
  });

  it("cas stores with the right unique, answers EXISTS with a stale one and NOT_FOUND for a missing key", async () => {
    const casOf = async (port: number) => {
      const run = await runScript(port, [set("cas:1", "v1"), "gets cas:1\r\n"]);
      const m = /^VALUE cas:1 0 2 (\d+)\r\n/.exec(latin1(run.replies[1]));
      assert.ok(m !== null, `gets answered ${show(run.replies[1])}`);
      return m[1];
    };
    const script = (cas: string): McPiece[] => [
      storageCmd("cas", "cas:1", "v2", 5, 0, ` ${cas}`), storageCmd("cas", "cas:1", "v3", 0, 0, ` ${cas}`),
      storageCmd("cas", "cas:none", "v", 0, 0, ` ${cas}`), storageCmd("cas", "cas:1", "v4", 0, 0, " abc"), "get cas:1\r\n",
      storageCmd("cas", "cas:1", "v", 0, 0, ""),
    ];
    const [viaCas, plainCas] = await Promise.all([casOf(r.current.tp.port()), casOf(r.current.plain.port)]);
    const [got, want] = await Promise.all([runScript(r.current.tp.port(), script(viaCas)), runScript(r.current.plain.port, script(plainCas))]);
    assert.equal(diffRuns(got, want, script(viaCas)), null);
    assert.deepEqual(got.replies.slice(0, 3).map(latin1), ["STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n"]);
  });

  it("binary values with CRLF, END and VALUE inside, and keys with high and control bytes, round-trip exactly", async () => {
    const keys = ["bin:\xff\xfe", "bin:\x01\x02", "bin:a\tb", "bin:\x7f", "bin:é"].map((k) => Uint8Array.from(k, (c) => c.charCodeAt(0)));
    const pieces: McPiece[] = [];
    keys.forEach((k, i) => pieces.push(set(k, binaryValue(100 + i * 37, i)), concat([encoder.encode("get "), k, encoder.encode("\r\n")])));
    pieces.push(concat([encoder.encode("get "), ...keys.flatMap((k) => [k, encoder.encode(" ")]), encoder.encode("\r\n")]));
    const run = await same(r, pieces);
    assert.equal(run.replies.length, pieces.length);
  });

  it("delete, including the legacy hold time 0 and the usage error, replies as memcached does", async () => {
    await same(r, [
      set("del:1", "x"), "delete del:1\r\n", "delete del:1\r\n", set("del:2", "x"), "delete del:2 0\r\n",
      set("del:3", "x"), "delete del:3 5\r\n", "delete del:3 0 noreply\r\n", "get del:3\r\n", "delete\r\n",
      "delete del:3 x y z\r\n",
    ]);
  });

  it("incr and decr reply as memcached does: wrap at 2^64, floor at 0, non-numeric values and bad deltas", async () => {
    await same(r, [
      set("n:1", "10"), "incr n:1 5\r\n", "decr n:1 20\r\n", "incr n:1 18446744073709551615\r\n", "incr n:1 1\r\n",
      set("n:2", "18446744073709551615"), "incr n:2 1\r\n", "get n:2\r\n", "incr n:missing 1\r\n", "decr n:missing 1\r\n",
      set("n:3", "abc"), "incr n:3 1\r\n", "decr n:3 1\r\n", "incr n:1 abc\r\n", "incr n:1 -1\r\n",
      "incr n:1 18446744073709551616\r\n", set("n:4", "99"), "incr n:4 1\r\n", "get n:4\r\n", "decr n:4 91\r\n", "get n:4\r\n",
      set("n:5", "18446744073709551616"), "incr n:5 1\r\n", "incr n:1\r\n", "incr\r\n",
    ]);
  });

  it("touch, gat and gats (one key and many across servers) reply as memcached does", async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `gat:${i}`);
    await same(r, [
      ...keys.slice(0, 8).map((k) => set(k, k.toUpperCase())), "touch gat:0 100\r\n", "touch gat:missing 100\r\n",
      "touch gat:0 abc\r\n", "gat 100 gat:1\r\n", `gat 100 ${keys.join(" ")}\r\n`, `gats 100 ${keys.join(" ")}\r\n`,
      "gat -1 gat:2\r\n", "get gat:2\r\n", "gat abc gat:3\r\n", "gat 100\r\n", "gats\r\n", "gat 100 gat:missing\r\n",
    ]);
  });

  it("noreply on every storage command, delete, incr, decr and touch sends nothing and keeps replies in step", async () => {
    const nr = " noreply";
    const pieces: McPiece[] = [
      set("nr:1", "a", 0, 0, nr), "get nr:1\r\n", storageCmd("add", "nr:1", "b", 0, 0, nr), storageCmd("add", "nr:2", "b", 0, 0, nr),
      storageCmd("replace", "nr:2", "c", 0, 0, nr), storageCmd("append", "nr:2", "d", 0, 0, nr),
      storageCmd("prepend", "nr:2", "e", 0, 0, nr), "get nr:1 nr:2\r\n", storageCmd("cas", "nr:2", "f", 0, 0, ` 999999999${nr}`),
      "get nr:2\r\n", set("nr:3", "5", 0, 0, nr), `incr nr:3 10${nr}\r\n`, `decr nr:3 3${nr}\r\n`, "get nr:3\r\n",
      `touch nr:3 100${nr}\r\n`, `delete nr:1${nr}\r\n`, `delete nr:missing${nr}\r\n`, "get nr:1 nr:3\r\n",
      `incr nr:missing 1${nr}\r\n`, "get nr:3\r\n",
    ];
    const run = await same(r, pieces);
    assert.equal(run.replies.length, pieces.filter((p) => typeof p === "string" && p.startsWith("get")).length);
  });

  it("noreply on a request memcached refuses (bad delta, exptime or length, long key) sends nothing, as from memcached", async () => {
    await same(r, [
      "incr nr:x abc noreply\r\n", "get nr:x\r\n", "touch nr:x abc noreply\r\n", "get nr:x\r\n",
      "set nr:x 0 0 abc noreply\r\nx\r\n", "get nr:x\r\n", set("nr:y", "abc"), "incr nr:y 1 noreply\r\n", "get nr:y\r\n",
      storageCmd("set", "k".repeat(251), "x", 0, 0, " noreply"), "get nr:y\r\n",
    ]);
  });

  it("keys of 250 bytes work and keys of 251 bytes get memcached's error, in get, set and a multi-get", async () => {
    const ok = "k".repeat(250);
    const long = "k".repeat(251);
    await same(r, [
      set(ok, "x"), `get ${ok}\r\n`, `get ${long}\r\n`, set(long, "x"), `delete ${long}\r\n`, `incr ${long} 1\r\n`,
      `touch ${long} 1\r\n`, set("kl:1", "v"), "get kl:1\r\n",
    ]);
    // First on its connection: memcached 1.6.18 also drops the unsent replies of earlier
    // pipelined requests when a multi-get fails (the proxy need not copy that).
    const run = await same(r, [`get kl:1 ${long} kl:2\r\n`, "get kl:1\r\n"]);
    assert.equal(latin1(run.replies[0]), "CLIENT_ERROR bad command line format\r\n");
  });

  it("a value over 1 MB gets SERVER_ERROR object too large and the stream stays in step (whole and in pieces)", async () => {
    const big = binaryValue(1048577, 1);
    const huge = binaryValue(3 * 1048576, 2);
    const pieces: McPiece[] = [set("big:1", big), "get big:1\r\n", set("big:2", "small"), set("big:3", huge), "get big:2 big:3\r\n"];
    await same(r, pieces);
    await same(r, pieces, { chunk: 65536, pauseMs: 2 });
  });

  it("a bad data chunk gets CLIENT_ERROR bad data chunk and later requests are answered as memcached does", async () => {
    await same(r, [
      "set bc:1 0 0 3\r\nabcde\r\n", "get bc:1\r\n", "set bc:2 0 0 5\r\nab\r\nget bc:2\r\n", "get bc:2\r\n",
      "set bc:3 0 0 2\r\nxy\n", "get bc:3\r\n", set("bc:4", "fine"), "get bc:4\r\n",
    ]);
  });

  it("unknown commands and malformed lines get ERROR as from memcached, and the connection stays usable", async () => {
    await same(r, [
      "bogus\r\n", "GET x\r\n", "\r\n", "g\r\n", "get\r\n", "set\r\n", "set uk 0 0\r\n", "sets uk 0 0 1\r\nx\r\n",
      "   get uk\r\n", "get uk\n", set("uk", "v"), "get uk\r\n",
    ]);
  });

  it("flush_all, stats and verbosity get the proxy's SERVER_ERROR and the connection stays usable", async () => {
    const run = await runScript(r.current.tp.port(), ["flush_all\r\n", "stats\r\n", "stats items\r\n", "verbosity 1\r\n", set("adm", "v"), "get adm\r\n"]);
    assert.deepEqual(run.replies.map(latin1), [UNSUPPORTED, UNSUPPORTED, UNSUPPORTED, UNSUPPORTED, "STORED\r\n", "VALUE adm 0 1\r\nv\r\nEND\r\n"]);
  });

  it("flush_all, verbosity and cache_memlimit with noreply send nothing, so the next reply matches the next request", async () => {
    const run = await runScript(r.current.tp.port(), [
      "flush_all noreply\r\n", "get adm:nr\r\n", "verbosity 1 noreply\r\n", "cache_memlimit 64 noreply\r\n", "get adm:nr\r\n",
    ]);
    assert.deepEqual(run.replies.map(latin1), ["END\r\n", "END\r\n"]);
  });

  it("gat and gats with 300 keys (a command line over 2 KB, sent whole) are answered as memcached does", async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `gat-long:${i}`);
    await same(r, [...keys.slice(0, 50).map((k) => set(k, k)), `gat 100 ${keys.join(" ")}\r\n`, `gats 100 ${keys.join(" ")}\r\n`, "get gat-long:1\r\n"]);
  });

  it("a script sent one byte per write gets the same replies as memcached", async () => {
    await same(r, mixedScript(3, 40, 10), { chunk: 1 });
  });

  it("version is answered by the proxy with a VERSION line", async () => {
    const run = await runScript(r.current.tp.port(), ["version\r\n", "get ver\r\n"]);
    assert.match(latin1(run.replies[0]), /^VERSION \S+\r\n$/);
    assert.equal(latin1(run.replies[1]), "END\r\n");
  });

  it("quit closes the connection after the earlier replies, as memcached does", async () => {
    const script = "set quit:1 0 0 1\r\nx\r\nget quit:1\r\nquit\r\nget quit:1\r\n";
    const [got, want] = await Promise.all([r.current.tp.port(), r.current.plain.port].map((port) => rawExchange(port, script, { timeoutMs: 3000 })));
    assert.equal(latin1(got.data), latin1(want.data));
    assert.equal(latin1(got.data), "STORED\r\nVALUE quit:1 0 1\r\nx\r\nEND\r\n");
    assert.deepEqual([got.closed, want.closed], [true, true]);
  });

  it("a long non-get line with its newline, and a 0x80 byte after the first request, get memcached's answers and the stream goes on", async () => {
    const magicLine = Uint8Array.from([0x80, 0x61, 0x62, 0x63, 0x0d, 0x0a]);
    const run = await same(r, [set("long:1", "v"), `delete ${"d".repeat(2100)}\r\n`, "get long:1\r\n", magicLine, "get long:1\r\n"]);
    assert.deepEqual(run.replies.map(latin1).slice(1, 4), ["CLIENT_ERROR bad command line format\r\n", "VALUE long:1 0 1\r\nv\r\nEND\r\n", "ERROR\r\n"]);
  });

  it("a binary-protocol request (first byte 0x80) gets an error line and the connection is closed", async () => {
    const header = new Uint8Array(24);
    header[0] = 0x80;
    header[1] = 0x0b; // version
    const got = await rawExchange(r.current.tp.port(), header, { timeoutMs: 3000 });
    assert.equal(latin1(got.data), "CLIENT_ERROR binary protocol not supported\r\n");
    assert.equal(got.closed, true);
  });
});

describe("binary values up to 1.5 MB through the proxy to memcached -I 2m (the server, not the proxy, sets the size limit)", () => {
  const r = rig(["-I", "2m"]);
  const SIZES = [0, 1, 2, 1000, 65536, 500000, 1048575, 1048576, 1048577, 1500000];

  it("every value is read back byte for byte, alone and in one multi-get over the servers", async () => {
    const keys = SIZES.map((n) => `large:${n}`);
    const values = SIZES.map((n, i) => binaryValue(n, 100 + i));
    const pieces: McPiece[] = [...keys.map((k, i) => set(k, values[i], i)), ...keys.map((k) => `get ${k}\r\n`), `get ${keys.join(" ")}\r\n`];
    const run = await runScript(r.current.tp.port(), pieces, { timeoutMs: 30000 });
    const item = (i: number) => concat([encoder.encode(`VALUE ${keys[i]} ${i} ${SIZES[i]}\r\n`), values[i], encoder.encode("\r\n")]);
    const want = [
      ...keys.map(() => "STORED\r\n"),
      ...keys.map((_, i) => latin1(concat([item(i), encoder.encode("END\r\n")]))),
      latin1(concat([...keys.map((_, i) => item(i)), encoder.encode("END\r\n")])),
    ];
    const got = run.replies.map(latin1);
    assert.equal(got.length, want.length);
    got.forEach((reply, i) => assert.ok(reply === want[i], `reply ${i}: ${reply.length} bytes, want ${want[i].length}: ${show(run.replies[i], 80)}`));
    await same(r, pieces, { timeoutMs: 30000, chunk: 100000 });
  });
});

/** Seeded script of `count` requests mixing every command over `keys` keys. */
function mixedScript(seed: number, count: number, keys: number): McPiece[] {
  const rng = new Rng(seed);
  const key = () => `mix:${rng.int(keys)}`;
  const tail = () => rng.int(5) === 0 ? " noreply" : "";
  const many = () => Array.from({ length: 1 + rng.int(8) }, key).join(" ");
  const makers: (() => McPiece)[] = [
    () => set(key(), `v${rng.int(1000)}`, rng.int(10), 0, tail()),
    () => storageCmd("add", key(), `a${rng.int(100)}`, 0, 0, tail()),
    () => storageCmd("replace", key(), `r${rng.int(100)}`, 0, 0, tail()),
    () => storageCmd("append", key(), "+", 0, 0, tail()),
    () => storageCmd("prepend", key(), "-", 0, 0, tail()),
    () => storageCmd("cas", key(), "c", 0, 0, ` ${999999990 + rng.int(3)}${tail()}`),
    () => `get ${many()}\r\n`,
    () => `gets ${many()}\r\n`,
    () => `delete ${key()}${tail()}\r\n`,
    () => set(key(), String(rng.int(100)), 0, 0, tail()),
    () => `incr ${key()} ${rng.int(50)}${tail()}\r\n`,
    () => `decr ${key()} ${rng.int(50)}${tail()}\r\n`,
    () => `touch ${key()} 1000${tail()}\r\n`,
    () => `gat 1000 ${many()}\r\n`,
    () => `gats 1000 ${many()}\r\n`,
    () => `mg ${key()} v f k${rng.int(2) === 0 ? " q" : ""}\r\n`,
    () => `ms ${key()} 2 F${rng.int(9)}${rng.int(3) === 0 ? " q" : ""}\r\nms\r\n`,
    () => `md ${key()}${rng.int(2) === 0 ? " q" : ""}\r\n`,
    () => `ma ${key()} v${rng.int(2) === 0 ? " MD" : ""}\r\n`,
    () => "mn\r\n",
    () => "bogus command\r\n",
  ];
  return Array.from({ length: count }, () => rng.pick(makers)());
}

describe("pipelines mixing every command through the proxy match a plain memcached", () => {
  const r = rig();

  it("600 requests over 60 keys in one write get the same replies, in order", async () => {
    const pieces = mixedScript(7, 600, 60);
    await same(r, pieces);
  });

  it("1000 requests over 200 keys written in 1 KB pieces get the same replies, in order", async () => {
    const pieces = mixedScript(11, 1000, 200);
    await same(r, pieces, { chunk: 1024 });
  });
});
