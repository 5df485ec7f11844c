/**
 * The memcached codec (core/memcache): request parsing for the ASCII and meta protocols,
 * the server-reply scanner, and the helpers the engine uses for fragments, noreply and
 * quiet mode. Every parser input is fed whole and again split at every byte boundary.
 * Error lines and resync points were recorded from a real memcached 1.6.18, and the
 * "against a real memcached" suites check them again live, with real server replies
 * feeding the reply scanner.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodeBase64Key,
  MC_MAX_LINE,
  McCmd,
  type McLimits,
  McRequest,
  NEED_MORE,
  PARSE_ERROR,
  parseRequest,
} from "../core/memcache/request.ts";
import {
  classifyMetaReply,
  encodeFragment,
  encodeRetrieval,
  END,
  errorLine,
  isEnd,
  isErrorReply,
  McReplyScanner,
  quietSuppresses,
  splitValues,
  stripSpan,
} from "../core/memcache/reply.ts";
import { rawExchange, type ServerProcess, startMemcached } from "./helpers/servers.ts";

// ---- helpers ----

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function text(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 4096)));
  return s;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(McCmd).map(([name, value]) => [value, name.toLowerCase()]),
);

/**
 * One parse outcome as text: "get a b", "set k <value>", "!CLIENT_ERROR ..." (an error the
 * proxy answers), "!(silent)..." (an error memcached does not answer: noreply), or "CLOSE".
 * Flags: "[noreply]", "[q]", "[b]", "[exp=..]".
 */
function render(buf: Uint8Array, req: McRequest): string {
  let s = NAMES[req.cmd];
  if (req.gatExptimeStart >= 0) s += ` [exp=${text(buf.subarray(req.gatExptimeStart, req.gatExptimeEnd))}]`;
  for (let k = 0; k < req.keyCount; k++) s += " " + text(buf.subarray(req.keyStart[k], req.keyEnd[k]));
  if (req.dataStart >= 0) s += ` <${text(buf.subarray(req.dataStart, req.dataEnd))}>`;
  if (req.noreply) s += " [noreply]";
  if (req.quiet) s += " [q]";
  if (req.base64Key) s += " [b]";
  return s;
}

/**
 * Runs chunks through parseRequest the way the engine does: bytes are kept until a
 * request is whole (waiting for `need` bytes when given), errors resume at `resync`
 * (discarding input up to it when it lies beyond what has arrived), -1 closes.
 */
function feed(chunks: Uint8Array[], limits?: McLimits): string[] {
  const req = new McRequest();
  const events: string[] = [];
  let pending: Uint8Array = new Uint8Array(0);
  let skip = 0;
  let need = 0;
  for (let chunk of chunks) {
    if (skip > 0) {
      const n = Math.min(skip, chunk.length);
      skip -= n;
      chunk = chunk.subarray(n);
    }
    pending = concat(pending, chunk);
    if (pending.length < need) continue;
    let pos = 0;
    for (let guard = 0; pos < pending.length; guard++) {
      assert.ok(guard < 100000, "parser loops");
      const end = parseRequest(pending, pos, req, limits);
      if (end === NEED_MORE) {
        assert.ok(req.need === 0 || req.need > pending.length - pos, "need asks for more than is there");
        need = req.need;
        break;
      }
      if (pos === 0 && need > 0 && end > 0) assert.ok(end >= need, "need overstated the request");
      need = 0;
      if (end === PARSE_ERROR) {
        events.push(req.noreply ? `!(silent)${req.error}` : `!${req.error}`);
        if (req.resync < 0) {
          events.push("CLOSE");
          return events;
        }
        assert.ok(req.resync > pos, "resync moves forward");
        if (req.resync > pending.length) skip = req.resync - pending.length;
        pos = Math.min(req.resync, pending.length);
        continue;
      }
      assert.ok(end > pos && end <= pending.length);
      events.push(render(pending, req));
      pos = end;
    }
    pending = pending.slice(pos);
  }
  return events;
}

function whole(input: string, limits?: McLimits): string[] {
  return feed([bytes(input)], limits);
}

/** Parses the input whole, then split in two at every byte, then one byte at a time; all must agree. */
function parseAllWays(input: string, limits?: McLimits): string[] {
  const all = bytes(input);
  const expected = feed([all], limits);
  for (let cut = 1; cut < all.length; cut++) {
    assert.deepEqual(feed([all.subarray(0, cut), all.subarray(cut)], limits), expected, `split at ${cut}`);
  }
  if (all.length <= 4096) {
    const singles = Array.from(all, (_b, i) => all.subarray(i, i + 1));
    assert.deepEqual(feed(singles, limits), expected, "one byte at a time");
  }
  return expected;
}

/** Parses one request at offset 0 and returns the McRequest (asserting success). */
function parseOne(input: string | Uint8Array, limits?: McLimits): McRequest {
  const buf = typeof input === "string" ? bytes(input) : input;
  const req = new McRequest();
  const end = parseRequest(buf, 0, req, limits);
  assert.equal(end, buf.length, `parse of ${JSON.stringify(text(buf).slice(0, 80))}: ${req.error}`);
  return req;
}

const K250 = "k".repeat(250);
const K251 = "k".repeat(251);

// ---- classic commands ----

describe("parseRequest() with the classic ASCII commands", () => {
  it("parses get and gets with one or many keys, whole and split at every byte", () => {
    assert.deepEqual(parseAllWays("get a\r\ngets a bb ccc\r\nget " + K250 + "\r\n"), [
      "get a",
      "gets a bb ccc",
      "get " + K250,
    ]);
  });

  it("records each key's span in the buffer", () => {
    const req = parseOne("get  one two\r\n");
    assert.equal(req.cmd, McCmd.Get);
    assert.equal(req.keyCount, 2);
    assert.deepEqual([req.keyStart[0], req.keyEnd[0], req.keyStart[1], req.keyEnd[1]], [5, 8, 9, 12]);
    assert.equal(req.lineEnd, 14);
  });

  it("parses gat and gats with the exptime span kept for fragments", () => {
    assert.deepEqual(parseAllWays("gat 60 a b\r\ngats -1 c\r\n"), ["gat [exp=60] a b", "gats [exp=-1] c"]);
    const req = parseOne("gat 3600 k1 k2\r\n");
    assert.deepEqual([req.gatExptimeStart, req.gatExptimeEnd], [4, 8]);
  });

  it("parses every storage command with its data block, whole and split at every byte", () => {
    const input = "set a 0 0 5\r\nhello\r\nadd b 1 2 0\r\n\r\nreplace c 4294967295 -1 3\r\nx\r\n\r\n" +
      "append d 0 0 2\r\nab\r\nprepend e 0 0 2 noreply\r\ncd\r\ncas f 0 0 1 99\r\nz\r\n";
    assert.deepEqual(parseAllWays(input), [
      "set a <hello>",
      "add b <>",
      "replace c <x\r\n>",
      "append d <ab>",
      "prepend e <cd> [noreply]",
      "cas f <z>",
    ]);
  });

  it("gives the data block span and the offset past its CRLF", () => {
    const req = parseOne("set k 7 0 3\r\nabc\r\n");
    assert.deepEqual([req.lineEnd, req.dataStart, req.dataEnd], [13, 13, 16]);
  });

  it("asks for the whole request length once the command line is known", () => {
    const req = new McRequest();
    assert.equal(parseRequest(bytes("set k 0 0 10\r\nabc"), 0, req), NEED_MORE);
    assert.equal(req.need, 14 + 10 + 2);
    assert.equal(parseRequest(bytes("xxset k 0 0 10\r\n"), 2, req), NEED_MORE);
    assert.equal(req.need, 26);
  });

  it("asks for at least one more byte while the command line is incomplete", () => {
    const req = new McRequest();
    assert.equal(parseRequest(bytes("get abc"), 0, req), NEED_MORE);
    assert.equal(req.need, 8);
    assert.equal(parseRequest(bytes(""), 0, req), NEED_MORE);
  });

  it("parses delete, incr, decr, touch, version and quit", () => {
    assert.deepEqual(
      parseAllWays(
        "delete a\r\ndelete b 0\r\ndelete c noreply\r\ndelete d 0 noreply\r\nincr n 5\r\ndecr n 18446744073709551615 noreply\r\n" +
          "touch t 10\r\ntouch t -1 noreply\r\nversion\r\nversion extra\r\nquit\r\n",
      ),
      [
        "delete a",
        "delete b",
        "delete c [noreply]",
        "delete d [noreply]",
        "incr n",
        "decr n [noreply]",
        "touch t",
        "touch t [noreply]",
        "version",
        "version",
        "quit",
      ],
    );
  });

  it("marks server administration commands as unsupported, with noreply where memcached honours it", () => {
    assert.deepEqual(
      parseAllWays("flush_all\r\nflush_all 0 noreply\r\nstats\r\nstats slabs\r\nverbosity 1 noreply\r\ncache_memlimit 64\r\n"),
      ["unsupported", "unsupported [noreply]", "unsupported", "unsupported", "unsupported [noreply]", "unsupported"],
    );
  });

  it("accepts a bare LF line end, extra spaces and a trailing space, as memcached does", () => {
    assert.deepEqual(parseAllWays("get a\n  get   b   \r\nset k 0 0 1 \nx\r\n"), ["get a", "get b", "set k <x>"]);
  });

  it("accepts numbers the way memcached's strtol/strtoul checks do", () => {
    // Each of these was answered STORED by memcached 1.6.18.
    const accepted = [
      "set k 4294967296 0 1", "set k 18446744073709551615 0 1", "set k -0 0 1", "set k +5 +5 1",
      "set k 0 -2147483649 1", "set k 0 9223372036854775807 1", "set k 0 \t5 1", "set k 0 0 1\tjunk",
      "set k -18446744073709551615 0 1", "set k 0 0 01",
    ];
    for (const line of accepted) assert.deepEqual(whole(line + "\r\nx\r\n"), ["set k <x>"], line);
    // memcached keeps only the low 32 bits of a length: 4294967297 reads as 1.
    assert.deepEqual(whole("set k 0 0 4294967297\r\nx\r\n"), ["set k <x>"]);
  });

  it("treats a key as everything between spaces, control bytes included, and cuts the line at a NUL", () => {
    assert.deepEqual(parseAllWays("get a\tb\r\nget a\u0000b c\r\nset k 0 0 1\u0000 junk\r\nx\r\n"), [
      "get a\tb",
      "get a",
      "set k <x>",
    ]);
  });

  it("gives the noreply token span with its leading space so it can be stripped", () => {
    const buf = bytes("set k 0 0 2 noreply\r\nhi\r\n");
    const req = parseOne(buf);
    assert.equal(req.noreply, true);
    assert.equal(text(buf.subarray(req.noreplyStart, req.noreplyEnd)), " noreply");
    const stripped = stripSpan(buf, 0, buf.length, req.noreplyStart, req.noreplyEnd);
    assert.equal(text(stripped), "set k 0 0 2\r\nhi\r\n");
    assert.equal(parseOne(stripped).noreply, false);
  });
});

// ---- meta commands ----

describe("parseRequest() with the meta commands", () => {
  it("parses mg, ms, md, ma, mn and me, whole and split at every byte", () => {
    assert.deepEqual(
      parseAllWays(
        "mg foo v f c t s k O123\r\nms foo 2 T90 F1\r\nhi\r\nmd foo I T30\r\nma n v D5 MD N0 J10\r\nmn\r\nme foo\r\nmg bar\r\n",
      ),
      ["mg foo", "ms foo <hi>", "md foo", "ma n", "mn", "me foo", "mg bar"],
    );
  });

  it("finds the q flag anywhere among the flags and gives its span with the leading space", () => {
    const buf = bytes("mg foo v q k\r\n");
    const req = parseOne(buf);
    assert.equal(req.quiet, true);
    assert.equal(text(buf.subarray(req.quietStart, req.quietEnd)), " q");
    assert.equal(text(stripSpan(buf, 0, buf.length, req.quietStart, req.quietEnd)), "mg foo v k\r\n");
    assert.deepEqual(parseAllWays("ms a 1 q T0\r\nx\r\nmd a q\r\nma a q v\r\n"), [
      "ms a <x> [q]",
      "md a [q]",
      "ma a [q]",
    ]);
  });

  it("judges a flag by its first byte only, as memcached does (\"vq\" is the v flag)", () => {
    assert.equal(parseOne("mg k vq\r\n").quiet, false);
    assert.equal(parseOne("mg k qx\r\n").quiet, true);
  });

  it("does not treat q as quiet for me, which ignores its flags", () => {
    assert.deepEqual(whole("me k q\r\n"), ["me k"]);
  });

  it("marks base64 keys and decodes them as memcached does", () => {
    const buf = bytes("mg YmluAGtleQ== b v k\r\n");
    const req = parseOne(buf);
    assert.equal(req.base64Key, true);
    assert.deepEqual(Array.from(decodeBase64Key(buf, req.keyStart[0], req.keyEnd[0])), Array.from(bytes("bin\u0000key")));
    assert.deepEqual(parseAllWays("ms YQ== 1 b\r\nx\r\nme YQ== b\r\n"), ["ms YQ== <x> [b]", "me YQ== [b]"]);
  });

  it("decodes base64 keys with memcached's leniency (recorded keys it echoed back with k)", () => {
    // mg <text> b k -> memcached 1.6.18 answered "EN k<base64 of the decoded key> b".
    const echoed: [string, string][] = [
      ["YQ==", "YQ=="], ["YQ==YQ==", "YQ=="], ["YQ=A", "YQA="], ["YW=j", "YWA="], ["AAAA", "AAAA"],
      ["YWJj", "YWJj"], ["Y+/a", "Y+/a"], ["YQ==\t", "YQ=="],
    ];
    for (const [sent, back] of echoed) {
      const b = bytes(sent);
      assert.deepEqual(Array.from(decodeBase64Key(b, 0, b.length)), Array.from(base64Bytes(back)), sent);
    }
  });

  it("has no key for mn and any arguments after it are ignored", () => {
    const req = parseOne("mn foo\r\n");
    assert.equal(req.cmd, McCmd.Mn);
    assert.equal(req.keyCount, 0);
  });
});

/** Standard base64 decoding, for checking the lenient decoder against memcached's own output. */
function base64Bytes(s: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of s.replace(/=+$/, "")) {
    acc = (acc << 6) | alphabet.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

// ---- errors ----

/**
 * Inputs and what memcached 1.6.18 did with them, as parse outcomes (see render()).
 * Rows marked live are replayed against a real memcached below: each outcome's reply
 * line (nothing for a silent one, "MN" for mn) must be exactly what the server sends.
 */
const ERROR_CASES: { name: string; input: string; expect: string[]; live: boolean; limits?: McLimits }[] = [
  { name: "an unknown command", input: "foo\r\nmn\r\n", expect: ["!ERROR", "mn"], live: true },
  { name: "an empty line", input: "\r\nmn\r\n", expect: ["!ERROR", "mn"], live: true },
  { name: "a one-letter command", input: "g\r\nmn\r\n", expect: ["!ERROR", "mn"], live: true },
  { name: "an upper-case command", input: "GET k\r\nmn\r\n", expect: ["!ERROR", "mn"], live: true },
  { name: "get without a key", input: "get\r\nget \r\ngets\r\nmn\r\n", expect: ["!ERROR", "!ERROR", "!ERROR", "mn"], live: true },
  {
    name: "a 251-byte key in get",
    input: `get a ${K251}\r\nmn\r\n`,
    expect: ["!CLIENT_ERROR bad command line format", "mn"],
    live: true,
  },
  {
    name: "a 251-byte key in set (the data block is then read as a command)",
    input: `set ${K251} 0 0 5\r\nvalue\r\nmn\r\n`,
    expect: ["!CLIENT_ERROR bad command line format", "!ERROR", "mn"],
    live: true,
  },
  {
    name: "a data block not followed by CRLF (resync just past length + 2 bytes)",
    input: "set k 0 0 5\r\nvalueXX\r\nmn\r\n",
    expect: ["!CLIENT_ERROR bad data chunk", "!ERROR", "mn"],
    live: true,
  },
  {
    name: "a data block shorter than announced",
    input: "set k 0 0 5\r\nvalu\r\n\r\nmn\r\n",
    expect: ["!CLIENT_ERROR bad data chunk", "!ERROR", "mn"],
    live: true,
  },
  {
    name: "a bad data chunk under noreply (memcached stays silent)",
    input: "set k 0 0 5 noreply\r\nvalueXX\r\nmn\r\n",
    expect: ["!(silent)CLIENT_ERROR bad data chunk", "!ERROR", "mn"],
    live: true,
  },
  {
    name: "bad numbers in a storage line",
    input: "set k abc 0 5\r\nvalue\r\nset k 0 0 -1\r\nvalue\r\nset k -1 0 1\r\nx\r\nset k 0 0x 1\r\nx\r\nmn\r\n",
    expect: [
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "mn",
    ],
    live: true,
  },
  {
    name: "out-of-range numbers in a storage line",
    input: "set k 18446744073709551616 0 1\r\nx\r\nset k 0 9223372036854775808 1\r\nx\r\nset k 0 0 2147483646\r\nx\r\n" +
      "cas k 0 0 1 -1\r\nx\r\nmn\r\n",
    expect: [
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "mn",
    ],
    live: true,
  },
  {
    name: "a wrong token count in storage lines",
    input: "set k 0 0\r\nset k 0 0 5 noreply extra\r\nvalue\r\ncas k 0 0 5\r\nvalue\r\nmn\r\n",
    expect: ["!ERROR", "!ERROR", "!ERROR", "!ERROR", "!ERROR", "mn"],
    live: true,
  },
  {
    name: "noreply as the length token (memcached silences the error)",
    input: "set k 0 0 noreply\r\nincr k noreply\r\ntouch k noreply\r\nmn\r\n",
    expect: [
      "!(silent)CLIENT_ERROR bad command line format",
      "!(silent)CLIENT_ERROR invalid numeric delta argument",
      "!(silent)CLIENT_ERROR invalid exptime argument",
      "mn",
    ],
    live: true,
  },
  {
    name: "bad incr, decr, touch and delete lines",
    input: "incr k abc\r\nincr k -1\r\nincr k\r\nincr k 1 2 3\r\ndecr k 18446744073709551616\r\ntouch k abc\r\ntouch k\r\n" +
      "delete\r\ndelete k 5\r\ndelete k foo\r\nmn\r\n",
    expect: [
      "!CLIENT_ERROR invalid numeric delta argument",
      "!CLIENT_ERROR invalid numeric delta argument",
      "!ERROR",
      "!ERROR",
      "!CLIENT_ERROR invalid numeric delta argument",
      "!CLIENT_ERROR invalid exptime argument",
      "!ERROR",
      "!ERROR",
      "!CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
      "!CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
      "mn",
    ],
    live: true,
  },
  {
    name: "a bad delete with a trailing noreply (silent)",
    input: "delete k foo noreply\r\nmn\r\n",
    expect: ["!(silent)CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", "mn"],
    live: true,
  },
  {
    name: "gat problems, and gat with no key (memcached answers END)",
    input: "gat\r\ngat abc k\r\ngat 10\r\n" + `gat 10 ${K251}\r\nmn\r\n`,
    expect: ["!ERROR", "!CLIENT_ERROR invalid exptime argument", "!END", "!CLIENT_ERROR bad command line format", "mn"],
    live: true,
  },
  {
    name: "a value over the size limit (swallowed, then the next command parses)",
    input: "set k 0 0 2000000\r\n" + "x".repeat(2000000) + "\r\nmn\r\n",
    expect: ["!SERVER_ERROR object too large for cache", "mn"],
    live: true,
  },
  {
    name: "an oversized value under noreply (silent)",
    input: "set k 0 0 2000000 noreply\r\n" + "x".repeat(2000000) + "\r\nmn\r\n",
    expect: ["!(silent)SERVER_ERROR object too large for cache", "mn"],
    live: true,
  },
  {
    name: "a value over a configured limit",
    input: "set k 0 0 11\r\nhello world\r\nset k 0 0 10\r\nhelloworld\r\n",
    expect: ["!SERVER_ERROR object too large for cache", "set k <helloworld>"],
    live: false,
    limits: { maxValue: 10 },
  },
  {
    name: "meta commands without a key or with a long key",
    input: `mg\r\nmd\r\nma\r\nms\r\nme\r\nmx\r\nmg ${K251} v\r\nmd ${K251}\r\nme ${K251}\r\nmn\r\n`,
    expect: [
      "!ERROR", "!ERROR", "!ERROR", "!ERROR", "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!CLIENT_ERROR bad command line format",
      "!CLIENT_ERROR bad command line format", "mn",
    ],
    live: true,
  },
  {
    name: "ms line errors found before the length (the data is then read as a command)",
    input: `ms mk\r\nhi\r\nms mk abc\r\nhi\r\nms mk -1\r\nhi\r\nms ${K251} 2 Z\r\nhi\r\n` +
      "ms k 1 c f h l u v k O1 P L N1 R1 T1 q s t Z\r\nx\r\nmn\r\n",
    expect: [
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR bad command line format", "!ERROR",
      "!CLIENT_ERROR options flags too long", "!ERROR",
      "mn",
    ],
    live: true,
  },
  {
    name: "ms flag errors found after the length (the data block is swallowed)",
    input: "ms mk 2 Z\r\nhi\r\nms mk 2 q q\r\nhi\r\nms bb 1 b\r\nx\r\nms k 1 Tabc\r\nx\r\nms k 1 MEE\r\nx\r\nms k 2 F-1\r\nhi\r\n" +
      "ms mk 2000000 ZZ\r\n" + "x".repeat(2000000) + "\r\nmn\r\n",
    expect: [
      "!CLIENT_ERROR invalid flag",
      "!CLIENT_ERROR duplicate flag",
      "!CLIENT_ERROR error decoding key",
      "!CLIENT_ERROR bad token in command line format",
      "!CLIENT_ERROR incorrect length for M token",
      "!CLIENT_ERROR bad command line format",
      "!CLIENT_ERROR invalid flag",
      "mn",
    ],
    live: true,
  },
  {
    name: "ms data errors, which quiet mode does not hide",
    input: "ms mk 2 q\r\nhiXX\r\nms mk 2000000 q\r\n" + "x".repeat(2000000) + "\r\nmn\r\n",
    expect: ["!CLIENT_ERROR bad data chunk", "!ERROR", "!SERVER_ERROR object too large for cache", "mn"],
    live: true,
  },
  {
    name: "mg flag errors",
    input: "mg k Z\r\nmg k s s\r\nmg k \u007f\r\nmg k \u00c3\r\nmg !!!! b v\r\nmg abc b v\r\nmg k Tabc\r\nmg k Jx\r\nmg k Dx\r\n" +
      "mg k Cx\r\nmg k N\r\nmg k F\r\nmg !!!! b Fx\r\nmg !!!! b Tabc\r\nmg !!!! b Z\r\nmg k Fx Tx\r\nmn\r\n",
    expect: [
      "!CLIENT_ERROR invalid flag",
      "!CLIENT_ERROR duplicate flag",
      "!CLIENT_ERROR duplicate flag",
      "!CLIENT_ERROR duplicate flag",
      "!CLIENT_ERROR error decoding key",
      "!CLIENT_ERROR error decoding key",
      "!CLIENT_ERROR bad token in command line format",
      "!CLIENT_ERROR invalid numeric initial value",
      "!CLIENT_ERROR invalid numeric delta value",
      "!CLIENT_ERROR bad token in command line format",
      "!CLIENT_ERROR bad token in command line format",
      "!CLIENT_ERROR bad command line format",
      "!CLIENT_ERROR error decoding key",
      "!CLIENT_ERROR bad token in command line format",
      "!CLIENT_ERROR invalid flag",
      "!CLIENT_ERROR bad token in command line format",
      "mn",
    ],
    live: true,
  },
  {
    name: "too many meta flags",
    input: "mg k s t c f h l u v k O1 P L N1 R1 T1 q Z Z\r\nmd k c f h l u v k O1 P L N1 R1 T1 q s t a b\r\nmn\r\n",
    expect: ["!CLIENT_ERROR options flags are too long", "!CLIENT_ERROR options flags too long", "mn"],
    live: true,
  },
  {
    name: "md and ma flag errors (one text for all)",
    input: "md k Z\r\nma k q q\r\nmd k Tabc\r\nma k Dabc\r\nmn\r\n",
    expect: [
      "!CLIENT_ERROR invalid or duplicate flag",
      "!CLIENT_ERROR invalid or duplicate flag",
      "!CLIENT_ERROR invalid or duplicate flag",
      "!CLIENT_ERROR invalid or duplicate flag",
      "mn",
    ],
    live: true,
  },
  {
    name: "me with a key that is not base64",
    input: "me !!!! b\r\nmn\r\n",
    expect: ["!CLIENT_ERROR bad command line format", "mn"],
    live: true,
  },
  {
    name: "a 0x80 byte after the first request (binary only counts as a connection's first byte)",
    input: "mn\r\n\u0080abc\r\nmn\r\n",
    expect: ["mn", "!ERROR", "mn"],
    live: true,
  },
];

describe("parseRequest() errors, as memcached 1.6.18 answers them", () => {
  for (const row of ERROR_CASES) {
    it(`answers ${row.name} and resumes where memcached does`, () => {
      const big = row.input.length > 100000;
      assert.deepEqual(big ? sampledSplits(row.input, row.limits) : parseAllWays(row.input, row.limits), row.expect);
    });
  }

  it("accepts a get or gat line of any length but no other line over 2048 bytes", () => {
    const keys = Array.from({ length: 600 }, (_v, i) => `key${i}`).join(" ");
    const events = whole(`get ${keys}\r\n`);
    assert.equal(events.length, 1);
    assert.equal(events[0], `get ${keys}`);
    assert.equal(whole(`gat 0 ${keys}\r\n`).length, 1);
    assert.deepEqual(whole("delete " + keys), ["!CLIENT_ERROR line too long", "CLOSE"]);
    assert.deepEqual(whole("set k 0 0 1" + " ".repeat(MC_MAX_LINE)), ["!CLIENT_ERROR line too long", "CLOSE"]);
  });

  it("parses a long non-get line normally once its newline is there, as memcached does", () => {
    assert.deepEqual(whole(`delete ${"d".repeat(2100)}\r\nmn\r\n`), ["!CLIENT_ERROR bad command line format", "mn"]);
    assert.deepEqual(whole("set k 0 0 1" + " ".repeat(MC_MAX_LINE) + "\r\nx\r\n"), ["set k <x>"]);
  });

  it("waits for more of a long get line instead of failing", () => {
    const req = new McRequest();
    const partial = bytes("get " + "a ".repeat(3000));
    assert.equal(parseRequest(partial, 0, req), NEED_MORE);
    assert.equal(req.need, partial.length + 1);
  });

  it("reports a swallow point beyond the buffer for an oversized value, before the value arrives", () => {
    const req = new McRequest();
    const line = bytes("set k 0 0 5000000\r\n");
    assert.equal(parseRequest(line, 0, req), PARSE_ERROR);
    assert.equal(req.error, "SERVER_ERROR object too large for cache");
    assert.equal(req.resync, line.length + 5000000 + 2);
  });
});

/** For inputs too big to split at every byte: a few hundred cuts, plus 64 KiB chunks. */
function sampledSplits(input: string, limits?: McLimits): string[] {
  const all = bytes(input);
  const expected = feed([all], limits);
  const cuts = new Set<number>();
  for (let i = 1; i < 32; i++) cuts.add(i).add(all.length - i);
  for (let i = 1; i < all.length; i += 99991) cuts.add(i);
  for (const cut of cuts) {
    assert.deepEqual(feed([all.subarray(0, cut), all.subarray(cut)], limits), expected, `split at ${cut}`);
  }
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < all.length; i += 65536) chunks.push(all.subarray(i, i + 65536));
  assert.deepEqual(feed(chunks, limits), expected, "64 KiB chunks");
  return expected;
}

// ---- live checks against memcached ----

/** Sends bytes followed by "mn\r\n" and returns what came back before the final MN. */
async function exchange(port: number, input: Uint8Array | string): Promise<string> {
  const data = concat(typeof input === "string" ? bytes(input) : input, bytes("mn\r\n"));
  // An `mn` request has its own MN before ours; wait for both or a split read ends early.
  const untilEnds = text(data) === "mn\r\nmn\r\n" ? "MN\r\nMN\r\n" : "MN\r\n";
  const reply = await rawExchange(port, data, { untilEnds, timeoutMs: 5000 });
  assert.ok(reply.done, `no MN after ${JSON.stringify(text(data).slice(0, 80))}`);
  return text(reply.data).slice(0, -4);
}

/** What memcached sends for a row's outcomes: error lines (none when silent) and MN for mn. */
function expectedWire(events: string[]): string {
  let out = "";
  for (const e of events) {
    if (e === "mn") out += "MN\r\n";
    else if (e.startsWith("!(silent)")) continue;
    else if (e.startsWith("!")) out += e.slice(1) + "\r\n";
    else throw new Error(`not replayable live: ${e}`);
  }
  return out;
}

describe("parseRequest() errors against a real memcached", () => {
  let mc: ServerProcess;

  before(async () => {
    mc = await startMemcached();
  });

  after(async () => {
    await mc?.stop();
  });

  for (const row of ERROR_CASES.filter((r) => r.live)) {
    it(`sends exactly memcached's reply bytes for ${row.name}`, async () => {
      const want = expectedWire(row.expect);
      // Wait for all of it: with several MNs in a row, a read can end at an earlier one.
      const reply = await rawExchange(mc.port, bytes(row.input), { expectBytes: bytes(want).length, timeoutMs: 5000 });
      assert.equal(text(reply.data), want);
    });
  }

  it("stores every storage line whose numbers the parser accepts", async () => {
    const lines = ["set k 4294967296 0 1", "set k -0 0 1", "set k +5 +5 1", "set k 0 -2147483649 1", "set k 0 0 1\tjunk",
      "set k -18446744073709551615 0 1", "set k 0 0 01", "cas k 0 0 1 +5", "cas k 0 0 1 -18446744073709551615"];
    for (const line of lines) {
      const events = whole(line + "\r\nx\r\n");
      assert.equal(events.length, 1);
      assert.ok(!events[0].startsWith("!"), line);
      assert.match(await exchange(mc.port, line + "\r\nx\r\n"), /^(STORED|EXISTS)\r\n$/, line);
    }
  });

  it("closes the stream where memcached closes it: a non-get line over 2048 bytes", async () => {
    const input = "x".repeat(MC_MAX_LINE + 1);
    assert.deepEqual(whole(input), ["!CLIENT_ERROR line too long", "CLOSE"]);
    const reply = await rawExchange(mc.port, bytes(input), { timeoutMs: 2000 });
    assert.equal(reply.closed, true);
    assert.equal(reply.data.length, 0); // memcached closes without a word; the proxy says why first
  });

  it("decodes base64 keys to the bytes memcached stores (it echoes them re-encoded with k)", async () => {
    for (const key of ["YQ==", "YQ==YQ==", "YQ=A", "YW=j", "AAAA", "Y+/a", "YmluAGtleQ=="]) {
      const reply = await exchange(mc.port, `mg ${key} b k\r\n`);
      const echoed = /^EN k(\S+) b\r\n$/.exec(reply);
      assert.ok(echoed, reply);
      const b = bytes(key);
      assert.deepEqual(Array.from(decodeBase64Key(b, 0, b.length)), Array.from(base64Bytes(echoed[1])), key);
    }
  });
});

// ---- reply scanner ----

/** Scans replies (each with its request kind) from chunks; returns each reply's text. */
function scanChunks(chunks: Uint8Array[], kinds: number[]): string[] {
  const scanner = new McReplyScanner();
  const replies: string[] = [];
  let current = "";
  for (const chunk of chunks) {
    let pos = 0;
    while (pos < chunk.length) {
      assert.ok(replies.length < kinds.length, "more replies than requests");
      const end = scanner.scan(chunk, pos, kinds[replies.length]);
      assert.notEqual(end, PARSE_ERROR, scanner.error);
      if (end === NEED_MORE) {
        current += text(chunk.subarray(pos));
        break;
      }
      replies.push(current + text(chunk.subarray(pos, end)));
      current = "";
      pos = end;
    }
  }
  assert.equal(current, "", "an unfinished reply");
  return replies;
}

/** Every reply must come out whole, and again from every two-way split (sampled for big ones). */
function scanAllWays(replies: string[], kinds: number[]): void {
  const all = bytes(replies.join(""));
  assert.deepEqual(scanChunks([all], kinds), replies);
  const step = all.length > 20000 ? 997 : 1;
  for (let cut = 1; cut < all.length; cut += step) {
    assert.deepEqual(scanChunks([all.subarray(0, cut), all.subarray(cut)], kinds), replies, `split at ${cut}`);
  }
}

function scanOnce(reply: string, kind: number): { end: number; error: string } {
  const scanner = new McReplyScanner();
  const end = scanner.scan(bytes(reply), 0, kind);
  return { end, error: scanner.error };
}

describe("McReplyScanner on reply shapes", () => {
  it("ends a retrieval reply at END, after VALUE items with and without cas", () => {
    scanAllWays(
      ["VALUE a 0 5\r\nhello\r\nVALUE bb 42 0 77\r\n\r\nEND\r\n", "END\r\n", "VALUE c 1 5 9\r\nEND\r\n\r\nEND\r\n"],
      [McCmd.Get, McCmd.Gets, McCmd.Gats],
    );
  });

  it("skips data blocks by length, whatever bytes they hold", () => {
    scanAllWays(["VALUE k 0 13\r\nEND\r\nVALUE \r\n\r\nEND\r\n", "VA 4 f1\r\nEN\r\n\r\n"], [McCmd.Get, McCmd.Mg]);
  });

  it("ends single-line replies at their CRLF", () => {
    const replies = ["STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n", "DELETED\r\n", "TOUCHED\r\n", "42\r\n",
      "7  \r\n", "VERSION 1.6.18\r\n", "HD c5 kfoo O1\r\n", "NS\r\n", "EX\r\n", "NF\r\n", "MN\r\n", "EN\r\n",
      "ME foo exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n", "EN\r\n"];
    const kinds = [McCmd.Set, McCmd.Add, McCmd.Cas, McCmd.Cas, McCmd.Delete, McCmd.Touch, McCmd.Incr, McCmd.Decr,
      McCmd.Version, McCmd.Ms, McCmd.Ms, McCmd.Md, McCmd.Ma, McCmd.Mn, McCmd.Mg, McCmd.Me, McCmd.Me];
    scanAllWays(replies, kinds);
  });

  it("reads mg and ma VA replies with their flags and data", () => {
    scanAllWays(["VA 2 f0 c19 t-1 s2 kmk O5\r\nhi\r\n", "VA 1\r\n7\r\n", "HD\r\n"], [McCmd.Mg, McCmd.Ma, McCmd.Ma]);
  });

  it("accepts error lines as the whole reply to any request", () => {
    scanAllWays(
      ["ERROR\r\n", "CLIENT_ERROR bad data chunk\r\n", "SERVER_ERROR out of memory\r\n", "SERVER_ERROR busy\r\n"],
      [McCmd.Get, McCmd.Set, McCmd.Mg, McCmd.Incr],
    );
  });

  it("skips a 1 MB value in O(1) steps per chunk, across many chunks", () => {
    const value = "v".repeat(1024 * 1024);
    const reply = `VALUE big 0 ${value.length}\r\n${value}\r\nEND\r\n`;
    const all = bytes(reply);
    for (const size of [1, 7, 1000, 65536]) {
      const chunks: Uint8Array[] = [];
      if (size === 1) {
        // Byte by byte only around the header and trailer; the middle in one piece.
        for (let i = 0; i < 40; i++) chunks.push(all.subarray(i, i + 1));
        chunks.push(all.subarray(40, all.length - 40));
        for (let i = all.length - 40; i < all.length; i++) chunks.push(all.subarray(i, i + 1));
      } else {
        for (let i = 0; i < all.length; i += size) chunks.push(all.subarray(i, i + size));
      }
      assert.deepEqual(scanChunks(chunks, [McCmd.Get]), [reply], `chunks of ${size}`);
    }
  });

  it("rejects replies that do not fit the request", () => {
    const bad: [string, number][] = [
      ["STORED\r\n", McCmd.Get],
      ["VALUE a 0 5\r\nhelloXX\r\n", McCmd.Get],
      ["VALUE a 0 x\r\n", McCmd.Get],
      ["STORED\n", McCmd.Set],
      ["DELETED\r\n", McCmd.Set],
      ["HD\r\n", McCmd.Get],
      ["VA 2\r\nhi\r\n", McCmd.Md],
      ["abc\r\n", McCmd.Incr],
      ["MN\r\n", McCmd.Mg],
    ];
    for (const [reply, kind] of bad) assert.equal(scanOnce(reply, kind).end, PARSE_ERROR, reply);
    assert.match(scanOnce("STORED\r\n", McCmd.Get).error, /unexpected reply/);
  });

  it("starts clean after reset() in the middle of a reply", () => {
    const scanner = new McReplyScanner();
    assert.equal(scanner.scan(bytes("VALUE a 0 100\r\nabc"), 0, McCmd.Get), NEED_MORE);
    scanner.reset();
    assert.equal(scanner.scan(bytes("STORED\r\n"), 0, McCmd.Set), 8);
  });
});

/** Requests (with their kind) whose real replies feed the scanner and the helpers. */
const LIVE_REQUESTS: [string, number][] = [
  ["get a", McCmd.Get],
  ["get a missing b", McCmd.Get],
  ["gets a b", McCmd.Gets],
  ["gat 0 a", McCmd.Gat],
  ["gats 0 a b", McCmd.Gats],
  ["get big", McCmd.Get],
  ["set x 0 0 1\r\nx", McCmd.Set],
  ["add a 0 0 1\r\nx", McCmd.Add],
  ["cas a 0 0 1 999999\r\nx", McCmd.Cas],
  ["cas nope 0 0 1 1\r\nx", McCmd.Cas],
  ["append nope 0 0 1\r\nx", McCmd.Append],
  ["delete x", McCmd.Delete],
  ["delete x", McCmd.Delete],
  ["incr n 1", McCmd.Incr],
  ["decr n 100", McCmd.Decr],
  ["incr nope 1", McCmd.Incr],
  ["incr a 1", McCmd.Incr],
  ["touch a 0", McCmd.Touch],
  ["touch nope 0", McCmd.Touch],
  ["version", McCmd.Version],
  ["mg a v f c t s k O5", McCmd.Mg],
  ["mg a", McCmd.Mg],
  ["mg nope v", McCmd.Mg],
  ["mg nope v k O9", McCmd.Mg],
  ["ms m 2 T0 F7 c k O9\r\nhi", McCmd.Ms],
  ["ms m 2 ME\r\nhi", McCmd.Ms],
  ["ms nope 2 C1\r\nhi", McCmd.Ms],
  ["md m C1", McCmd.Md],
  ["md nope", McCmd.Md],
  ["ma n v", McCmd.Ma],
  ["ma n", McCmd.Ma],
  ["ma nope", McCmd.Ma],
  ["me a", McCmd.Me],
  ["me nope", McCmd.Me],
  ["mn", McCmd.Mn],
  ["foo", McCmd.Get],
  ["set toolarge 0 0 2000000\r\n" + "x".repeat(2000000), McCmd.Set],
];

describe("McReplyScanner and the reply helpers on real memcached replies", () => {
  let mc: ServerProcess;
  const replies: string[] = [];

  before(async () => {
    mc = await startMemcached();
    const big = "B".repeat(1000000);
    await exchange(mc.port, `set a 5 0 5\r\nhello\r\nset b 0 0 4\r\nb\r\nb\r\nset n 0 0 2\r\n41\r\nset big 0 0 ${big.length}\r\n${big}\r\n`);
    for (const [request] of LIVE_REQUESTS) replies.push(await exchange(mc.port, request + "\r\n"));
  });

  after(async () => {
    await mc?.stop();
  });

  it("finds the end of every real reply, alone and pipelined", () => {
    const kinds = LIVE_REQUESTS.map(([, kind]) => kind);
    for (let i = 0; i < replies.length; i++) {
      const r = replies[i];
      assert.deepEqual(scanChunks([bytes(r)], [kinds[i]]), [r], LIVE_REQUESTS[i][0].slice(0, 40));
    }
    const small = replies.map((r, i) => [r, kinds[i]] as const).filter(([r]) => r.length < 5000);
    scanAllWays(small.map(([r]) => r), small.map(([, k]) => k));
    const all = bytes(replies.join(""));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < all.length; i += 4093) chunks.push(all.subarray(i, i + 4093));
    assert.deepEqual(scanChunks(chunks, kinds), replies);
  });

  it("splits a real multi-get reply into its VALUE items with their keys", () => {
    const reply = bytes(replies[2]); // gets a b
    const items = splitValues(reply);
    assert.deepEqual(items.map((v) => text(v.key)), ["a", "b"]);
    assert.equal(items.map((v) => text(v.bytes)).join("") + "END\r\n", replies[2]);
    assert.match(text(items[0].bytes), /^VALUE a 5 5 \d+\r\nhello\r\n$/);
    assert.match(text(items[1].bytes), /^VALUE b 0 4 \d+\r\nb\r\nb\r\n$/);
    assert.deepEqual(splitValues(bytes(replies[1])).map((v) => text(v.key)), ["a", "b"]);
  });

  it("recognises END, errors and meta codes in real replies", () => {
    assert.ok(isEnd(bytes(replies[LIVE_REQUESTS.findIndex(([r]) => r === "get a missing b")].slice(-5))));
    assert.ok(!isEnd(bytes(replies[0])));
    assert.equal(text(END), "END\r\n");
    const at = (req: string) => bytes(replies[LIVE_REQUESTS.findIndex(([r]) => r === req)]);
    assert.ok(isErrorReply(at("foo")));
    assert.ok(isErrorReply(at("incr a 1")));
    assert.ok(isErrorReply(at("set toolarge 0 0 2000000\r\n" + "x".repeat(2000000))));
    assert.ok(!isErrorReply(at("get a")));
    assert.equal(classifyMetaReply(at("mg a v f c t s k O5")), "VA");
    assert.equal(classifyMetaReply(at("mg a")), "HD");
    assert.equal(classifyMetaReply(at("mg nope v")), "EN");
    assert.equal(classifyMetaReply(at("ms m 2 ME\r\nhi")), "NS");
    assert.equal(classifyMetaReply(at("md m C1")), "EX");
    assert.equal(classifyMetaReply(at("md nope")), "NF");
    assert.equal(classifyMetaReply(at("mn")), "MN");
    assert.equal(classifyMetaReply(at("me a")), "ME");
    assert.equal(classifyMetaReply(at("foo")), "");
  });

  it("knows which replies quiet mode hides: exactly those memcached leaves out under q", async () => {
    const cases: [string, number][] = [
      ["mg qa v", McCmd.Mg], ["mg qa", McCmd.Mg], ["mg nope v", McCmd.Mg], ["mg nope", McCmd.Mg],
      ["ms qa 2\r\nhi", McCmd.Ms], ["ms qa 2 ME\r\nhi", McCmd.Ms], ["ms nope 2 MR\r\nhi", McCmd.Ms],
      ["ms qa 2 C1\r\nhi", McCmd.Ms],
      ["md nope", McCmd.Md], ["md qa C1", McCmd.Md], ["md qa I", McCmd.Md], ["md qd", McCmd.Md],
      ["ma nope", McCmd.Ma], ["ma qn", McCmd.Ma], ["ma qn v", McCmd.Ma], ["ma qn C1", McCmd.Ma],
      ["ma qs", McCmd.Ma],
    ];
    for (const [request, cmd] of cases) {
      // Same state before each pair: qa holds "hi", qd and qn exist, qn and qs hold 5 and "x".
      const reset = "ms qa 2\r\nhi\r\nms qd 1\r\nx\r\nms qn 1\r\n5\r\nms qs 1\r\nx\r\n";
      await exchange(mc.port, reset);
      const loud = await exchange(mc.port, request + "\r\n");
      await exchange(mc.port, reset);
      const [line, ...rest] = request.split("\r\n");
      const quiet = await exchange(mc.port, [line + " q", ...rest].join("\r\n") + "\r\n");
      const hidden = quiet === "";
      if (!hidden) assert.equal(quiet, loud, request);
      assert.equal(quietSuppresses(cmd, bytes(loud)), hidden, `${request} -> ${JSON.stringify(loud)}`);
    }
  });

  it("writes fragments that memcached answers like the original multi-get", async () => {
    const buf = bytes("gets a missing b\r\n");
    const req = parseOne(buf);
    const fragment = encodeFragment(buf, req, [0, 2]);
    assert.equal(text(fragment), "gets a b\r\n");
    assert.equal(await exchange(mc.port, fragment), replies[2]);
    const gat = bytes("gat 0 b a\r\n");
    const fragmentGat = encodeFragment(gat, parseOne(gat), [1]);
    assert.equal(text(fragmentGat), "gat 0 a\r\n");
    assert.equal(await exchange(mc.port, fragmentGat), replies[3]);
  });
});

describe("reply and encoding helpers", () => {
  it("builds get, gets, gat and gats fragments with exact bytes", () => {
    const src = bytes("xx k1 key2 k3 60");
    const starts = [3, 6, 11];
    const ends = [5, 10, 13];
    assert.equal(text(encodeRetrieval(McCmd.Get, src, starts, ends, [0, 2])), "get k1 k3\r\n");
    assert.equal(text(encodeRetrieval(McCmd.Gets, src, starts, ends, [1])), "gets key2\r\n");
    assert.equal(text(encodeRetrieval(McCmd.Gat, src, starts, ends, [2, 0], 14, 16)), "gat 60 k3 k1\r\n");
    assert.equal(text(encodeRetrieval(McCmd.Gats, src, starts, ends, [1], 14, 16)), "gats 60 key2\r\n");
    assert.throws(() => encodeRetrieval(McCmd.Set, src, starts, ends, [0]));
    assert.throws(() => encodeRetrieval(McCmd.Gat, src, starts, ends, [0]));
  });

  it("strips a span from the middle of a request, data block included", () => {
    const buf = bytes("..ms k 2 q T0\r\nhi\r\n..");
    const req = new McRequest();
    const end = parseRequest(buf, 2, req);
    assert.equal(end, buf.length - 2);
    assert.equal(text(stripSpan(buf, 2, end, req.quietStart, req.quietEnd)), "ms k 2 T0\r\nhi\r\n");
  });

  it("encodes error lines with CRLF", () => {
    assert.equal(text(errorLine("SERVER_ERROR unsupported command")), "SERVER_ERROR unsupported command\r\n");
    assert.equal(text(errorLine("ERROR")), "ERROR\r\n");
  });

  it("classifies meta codes only when followed by a space or CR", () => {
    assert.equal(classifyMetaReply(bytes("HD c1\r\n")), "HD");
    assert.equal(classifyMetaReply(bytes("EN\r\n")), "EN");
    assert.equal(classifyMetaReply(bytes("ERROR\r\n")), "");
    assert.equal(classifyMetaReply(bytes("HDX\r\n")), "");
  });
});
