/**
 * Requests larger than a client's in-flight byte limit (16 MiB), pipelined with others,
 * through real sockets to a real redis-server and memcached: every request behind a large
 * one is still read, forwarded and answered in order (issue 10: the bytes buffered behind
 * a large request were never parsed again once reading resumed, so the client hung).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { memcachePoolYaml, redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ServerProcess, startMemcached, startRedis } from "./helpers/servers.ts";
import { encodeCommand } from "./helpers/resp.ts";
import { mcFramer, storageCmd } from "./helpers/memcache-wire.ts";
import { type Framer, PipeClient, respFramer } from "./helpers/soak.ts";
import { sleep } from "./helpers/ports.ts";

const MB = 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Bound per scenario: a stall shows as "N of M replies arrived", never as a hung suite. */
const REPLY_TIMEOUT_MS = 20_000;

/** A value of `size` bytes whose content depends on `seed`, so a misplaced reply is caught. */
function valueOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size).fill(0x61 + (seed % 26));
  for (let i = 0; i < size; i += 4096) out[i] = 0x61 + ((seed + i / 4096) % 26);
  return out;
}

/** Write `bytes` in `pieces` writes with a pause between them, so the proxy reads it in many chunks. */
async function writeSlowly(client: PipeClient, bytes: Uint8Array, pieces: number): Promise<void> {
  const step = Math.ceil(bytes.length / pieces);
  for (let at = 0; at < bytes.length; at += step) {
    client.write(bytes.subarray(at, at + step));
    await sleep(1);
  }
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What each protocol needs: a store and a fetch request, and the replies they expect. */
interface Wire {
  framer: Framer;
  set(key: string, value: Uint8Array): Uint8Array;
  get(key: string): Uint8Array;
  stored: string;
  /** The exact reply to get(key) for a stored value. */
  value(key: string, value: Uint8Array): Uint8Array;
}

const redisWire: Wire = {
  framer: respFramer,
  set: (key, value) => encodeCommand(["SET", key, value]),
  get: (key) => encodeCommand(["GET", key]),
  stored: "+OK\r\n",
  value: (_key, value) => concatAll([encoder.encode(`$${value.length}\r\n`), value, encoder.encode("\r\n")]),
};

const memcacheWire: Wire = {
  framer: mcFramer,
  set: (key, value) => storageCmd("set", key, value),
  get: (key) => encoder.encode(`get ${key}\r\n`),
  stored: "STORED\r\n",
  value: (key, value) =>
    concatAll([encoder.encode(`VALUE ${key} 0 ${value.length}\r\n`), value, encoder.encode("\r\nEND\r\n")]),
};

/** The scenarios of issue 10, the same for both protocols. */
function largeRequestScenarios(name: string, wire: Wire, start: () => Promise<ServerProcess>, yaml: (port: number) => string) {
  describe(`${name}: pipelined requests behind one larger than the in-flight byte limit`, () => {
    let server: ServerProcess;
    let tp: TestProxy;
    let client: PipeClient;
    before(async () => {
      server = await start();
      tp = await startTestProxy(yaml(server.port));
    });
    after(async () => {
      client?.destroy();
      await tp?.close();
      await server?.stop();
    });

    /** Send `bytes` (or write it slowly) and expect exactly `want`, in order. */
    async function expectReplies(bytes: Uint8Array, want: Uint8Array[], pieces = 1): Promise<void> {
      client?.destroy();
      client = await PipeClient.connect(tp.port(), wire.framer);
      if (pieces > 1) await writeSlowly(client, bytes, pieces);
      else client.write(bytes);
      const got = await client.waitReplies(want.length, REPLY_TIMEOUT_MS);
      assert.equal(got.length, want.length, "no extra replies");
      want.forEach((reply, i) => {
        assert.ok(sameBytes(got[i], reply), `reply ${i}: got ${decoder.decode(got[i].subarray(0, 40))}...`);
      });
    }

    it("answers a small request sent right behind a 17 MB one", async () => {
      const big = valueOf(17 * MB, 1);
      const bytes = concatAll([wire.set("big:a", big), wire.set("small:b", encoder.encode("x")), wire.get("small:b")]);
      const stored = encoder.encode(wire.stored);
      await expectReplies(bytes, [stored, stored, wire.value("small:b", encoder.encode("x"))]);
    });

    it("answers small, 17 MB, small, and the large value reads back whole", async () => {
      const big = valueOf(17 * MB, 2);
      const one = encoder.encode("one");
      const bytes = concatAll([wire.set("s:1", one), wire.set("big:b", big), wire.get("s:1"), wire.get("big:b")]);
      const stored = encoder.encode(wire.stored);
      await expectReplies(bytes, [stored, stored, wire.value("s:1", one), wire.value("big:b", big)]);
    });

    it("answers a 17 MB request written in 300 pieces, then the small ones behind it", async () => {
      const big = valueOf(17 * MB, 3);
      const two = encoder.encode("two");
      const bytes = concatAll([wire.set("big:c", big), wire.set("s:2", two), wire.get("s:2")]);
      const stored = encoder.encode(wire.stored);
      await expectReplies(bytes, [stored, stored, wire.value("s:2", two)], 300);
    });

    it("answers fifty 1 MiB requests pipelined behind one 40 MiB request, in order", async () => {
      const parts = [wire.set("big:d", valueOf(40 * MB, 4))];
      const want: Uint8Array[] = [encoder.encode(wire.stored)];
      for (let i = 0; i < 50; i++) {
        parts.push(wire.set(`m:${i}`, valueOf(MB, i)));
        want.push(encoder.encode(wire.stored));
      }
      parts.push(wire.get("m:49"));
      want.push(wire.value("m:49", valueOf(MB, 49)));
      await expectReplies(concatAll(parts), want);
    });
  });
}

largeRequestScenarios("redis", redisWire, () => startRedis(), (port) => redisPoolYaml([port]));
// memcached stores values up to -I (1 MiB by default); these tests store 40 MiB ones.
largeRequestScenarios(
  "memcached",
  memcacheWire,
  () => startMemcached({ args: ["-I", "64m", "-m", "512"] }),
  (port) => memcachePoolYaml([port]),
);
