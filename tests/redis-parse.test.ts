/**
 * The Redis codec: parseRequest (multibulk and inline), ReplyScanner, the reply helpers
 * and encoders. Every input is parsed whole and again split at every byte boundary.
 * Error texts, inline unquoting and the reply stream are checked against a real
 * redis-server, which is the reference the proxy must match.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ByteWriter, indexOfCrlf, intLength, latin1Bytes, latin1String, readInt, writeInt } from "../core/bytes.ts";
import {
  inlineArgs,
  NEED_MORE,
  PARSE_ERROR,
  parseRequest,
  ProtocolError,
  RequestSlots,
} from "../core/redis/request.ts";
import {
  arrayElements,
  arrayHeader,
  bulkReply,
  encodeCommand,
  encodeCommandParts,
  errorReply,
  integerReply,
  isError,
  isOk,
  NULL_ARRAY_REPLY,
  NULL_BULK_REPLY,
  OK_REPLY,
  readInteger,
  ReplyScanner,
  statusReply,
} from "../core/redis/reply.ts";
import { rawExchange, type ServerProcess, startRedis } from "./helpers/servers.ts";

const b = latin1Bytes;
const s = (u: Uint8Array) => latin1String(u);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Splits buf at the given offsets. */
function chunked(buf: Uint8Array, ...cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of [...cuts, buf.length]) {
    out.push(buf.subarray(from, c));
    from = c;
  }
  return out;
}

interface Parsed {
  requests: string[][];
  error?: string;
  rest: number;
}

/** Feeds chunks the way the engine does: keep unconsumed bytes, append, parse until NEED_MORE. */
function feedRequests(chunks: readonly Uint8Array[]): Parsed {
  const out = new RequestSlots();
  const requests: string[][] = [];
  let pending: Uint8Array = new Uint8Array(0);
  for (const chunk of chunks) {
    pending = concat([pending, chunk]);
    let pos = 0;
    for (;;) {
      const r = parseRequest(pending, pos, out);
      if (r === NEED_MORE) {
        assert.ok(out.need === 0 || out.need > pending.length - pos, "need must ask for more than is there");
        break;
      }
      if (r === PARSE_ERROR) return { requests, error: out.error, rest: -1 }; // errors are reported as soon as seen
      assert.ok(r > pos);
      if (out.argc > 0) {
        const args: string[] = [];
        for (let i = 0; i < out.argc; i++) args.push(s(out.argBuf.subarray(out.argStart[i], out.argEnd[i])));
        requests.push(args);
      }
      pos = r;
    }
    pending = pending.subarray(pos);
  }
  return { requests, rest: pending.length };
}

/** Parses whole, at every single split, and byte by byte; all must agree. Returns the whole result. */
function parseEverySplit(input: string | Uint8Array): Parsed {
  const buf = typeof input === "string" ? b(input) : input;
  const whole = feedRequests([buf]);
  for (let k = 0; k <= buf.length; k++) {
    assert.deepEqual(feedRequests(chunked(buf, k)), whole, `split at byte ${k}`);
  }
  const bytewise: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i++) bytewise.push(buf.subarray(i, i + 1));
  assert.deepEqual(feedRequests(bytewise), whole, "byte by byte");
  return whole;
}

interface Scanned {
  ends: number[];
  types: number[];
  error?: string;
}

/** Runs a ReplyScanner over chunks; reply ends are absolute offsets in the joined stream. */
function scanChunks(chunks: readonly Uint8Array[]): Scanned {
  const sc = new ReplyScanner();
  const ends: number[] = [];
  const types: number[] = [];
  let base = 0;
  for (const c of chunks) {
    let p = 0;
    while (p < c.length) {
      const r = sc.scan(c, p);
      if (r === NEED_MORE) break;
      if (r === PARSE_ERROR) return { ends, types, error: sc.error };
      ends.push(base + r);
      types.push(sc.type);
      p = r;
    }
    base += c.length;
  }
  return { ends, types };
}

/** Scans whole, at every single split and byte by byte; all must agree. */
function scanEverySplit(buf: Uint8Array): Scanned {
  const whole = scanChunks([buf]);
  for (let k = 0; k <= buf.length; k++) {
    assert.deepEqual(scanChunks(chunked(buf, k)), whole, `split at byte ${k}`);
  }
  const bytewise: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i++) bytewise.push(buf.subarray(i, i + 1));
  assert.deepEqual(scanChunks(bytewise), whole, "byte by byte");
  return whole;
}

describe("parseRequest", () => {
  it("parses a multibulk GET into spans of the buffer", () => {
    const buf = b("*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n");
    const out = new RequestSlots();
    assert.equal(parseRequest(buf, 0, out), buf.length);
    assert.equal(out.argc, 2);
    assert.equal(out.argBuf, buf);
    assert.deepEqual([out.argStart[0], out.argEnd[0], out.argStart[1], out.argEnd[1]], [8, 11, 17, 20]);
    assert.equal(out.inline, false);
    assert.deepEqual(parseEverySplit(buf).requests, [["GET", "foo"]]);
  });

  it("parses a pipeline of requests, whole and split at every byte", () => {
    const input = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n";
    assert.deepEqual(parseEverySplit(input), {
      requests: [["SET", "k", "hello"], ["GET", "k"], ["PING"], ["QUIT"]],
      rest: 0,
    });
  });

  it("keeps binary payloads containing CRLF, NUL and high bytes intact", () => {
    const value = new Uint8Array([13, 10, 0, 255, 36, 42, 13, 10, 128]);
    const buf = concat([b("*3\r\n$3\r\nSET\r\n$2\r\n\r\n\r\n$9\r\n"), value, b("\r\n")]);
    const got = parseEverySplit(buf);
    assert.deepEqual(got.requests, [["SET", "\r\n", s(value)]]);
  });

  it("accepts empty arguments", () => {
    assert.deepEqual(parseEverySplit("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n").requests, [["ECHO", ""]]);
  });

  it("skips empty lines, *0 and *-1 with argc 0 like Redis does", () => {
    const out = new RequestSlots();
    for (const input of ["\r\n", "\n", "*0\r\n", "*-1\r\n", "   \r\n"]) {
      const buf = b(input);
      assert.equal(parseRequest(buf, 0, out), buf.length, JSON.stringify(input));
      assert.equal(out.argc, 0);
    }
    assert.deepEqual(parseEverySplit("\r\n*0\r\n*-1\r\nPING\r\n").requests, [["PING"]]);
  });

  it("reports how many bytes a request with an incomplete payload needs", () => {
    const full = b("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n");
    const out = new RequestSlots();
    const header = full.length - 12; // where "0123456789\r\n" starts
    for (let k = header; k < full.length; k++) {
      assert.equal(parseRequest(full.subarray(0, k), 0, out), NEED_MORE);
      assert.equal(out.need, full.length, `prefix of ${k} bytes`);
    }
    assert.equal(parseRequest(full.subarray(0, header - 2), 0, out), NEED_MORE);
    assert.ok(out.need > header - 2 && out.need <= full.length, "length line incomplete: a lower bound");
  });

  it("counts at least 6 bytes for each argument not yet seen in need", () => {
    const out = new RequestSlots();
    const head = b("*5\r\n$3\r\nDEL\r\n");
    assert.equal(parseRequest(head, 0, out), NEED_MORE);
    assert.equal(out.need, head.length + 4 * 6);
    const smallest = concat([head, b("$0\r\n\r\n".repeat(4))]);
    assert.equal(parseRequest(smallest, 0, out), smallest.length, "the bound is reachable");
    assert.equal(parseRequest(b("*1\r\n$1"), 0, out), NEED_MORE);
    assert.equal(out.need, 10);
    assert.equal(parseRequest(b("*2\r\n$2"), 0, out), NEED_MORE);
    assert.equal(out.need, 16);
    assert.equal(parseRequest(b("*2\r\n$1\r\n"), 0, out), NEED_MORE);
    assert.equal(out.need, 4 + 4 + 3 + 6, "payload missing, one more argument to come");
  });

  it("parses from a non-zero position", () => {
    const buf = b("xxxx*1\r\n$4\r\nPING\r\n");
    const out = new RequestSlots();
    assert.equal(parseRequest(buf, 4, out), buf.length);
    assert.equal(s(buf.subarray(out.argStart[0], out.argEnd[0])), "PING");
    assert.equal(parseRequest(buf, buf.length, out), NEED_MORE);
  });

  it("parses a 16 MB bulk delivered in many chunks, joining once when need is reached", () => {
    const size = 16 * 1024 * 1024;
    const head = b(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${size}\r\n`);
    const buf = new Uint8Array(head.length + size + 2);
    buf.set(head);
    for (let i = 0; i < size; i += 4093) buf[head.length + i] = i & 0xff;
    buf[buf.length - 2] = 13;
    buf[buf.length - 1] = 10;
    const out = new RequestSlots();
    const chunk = 16 * 1024;
    let have = chunk;
    let calls = 0;
    let r = NEED_MORE;
    while (have <= buf.length + chunk) {
      const view = buf.subarray(0, Math.min(have, buf.length));
      r = parseRequest(view, 0, out);
      calls++;
      if (r !== NEED_MORE) break;
      have = Math.max(have + chunk, out.need); // the engine waits for `need` bytes
    }
    assert.equal(r, buf.length);
    assert.ok(calls <= 3, `parsed ${calls} times`);
    assert.equal(out.argEnd[2] - out.argStart[2], size);
    assert.equal(out.argBuf[out.argStart[2] + 4093], 4093 & 0xff);
  });

  it("honours a custom maxBulk", () => {
    const out = new RequestSlots();
    const buf = b("*1\r\n$11\r\nhello world\r\n");
    assert.equal(parseRequest(buf, 0, out, 10), PARSE_ERROR);
    assert.equal(out.error, ProtocolError.bulkLength);
    assert.equal(parseRequest(buf, 0, out, 11), buf.length);
  });

  it("splits inline commands on spaces and tabs, with CRLF or LF endings", () => {
    assert.deepEqual(parseEverySplit("get foo\r\n  set\tk  v \nPING\r\n").requests, [
      ["get", "foo"],
      ["set", "k", "v"],
      ["PING"],
    ]);
    const out = new RequestSlots();
    const buf = b("get foo\r\n");
    parseRequest(buf, 0, out);
    assert.equal(out.inline, true);
    assert.equal(out.quoted, false);
    assert.equal(out.argBuf, buf, "unquoted inline args are spans of the input");
  });

  it("unquotes inline arguments into a fresh argBuf", () => {
    const got = parseEverySplit(`set k "a b\\x41\\n" 'c\\'d'\r\n`);
    assert.deepEqual(got.requests, [["set", "k", "a bA\n", "c'd"]]);
    const out = new RequestSlots();
    parseRequest(b(`echo "x"\r\n`), 0, out);
    assert.equal(out.quoted, true);
    assert.deepEqual(inlineArgs(b(`a "b c" 'd'`), 0, 11)?.map(s), ["a", "b c", "d"]);
    assert.equal(inlineArgs(b(`a "b`), 0, 4), null);
  });
});

describe("parseRequest against redis-server", () => {
  let redis: ServerProcess;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  /** What redis-server answers to bytes it rejects (it replies, then closes). */
  async function redisError(input: Uint8Array): Promise<string> {
    const reply = await rawExchange(redis.port, input, { timeoutMs: 3000 });
    assert.ok(reply.closed, "redis closes after a protocol error");
    return s(reply.data);
  }

  const malformed: [string, string | Uint8Array][] = [
    ["a negative bulk length", "*1\r\n$-5\r\n"],
    ["a null bulk in a request", "*2\r\n$3\r\nGET\r\n$-1\r\n"],
    ["a non-numeric bulk length", "*1\r\n$abc\r\n"],
    ["a bulk length with a plus sign", "*1\r\n$+1\r\nx\r\n"],
    ["a bulk length with a leading zero", "*1\r\n$03\r\nfoo\r\n"],
    ["a bulk length over 512 MB", "*1\r\n$536870913\r\n"],
    ["a non-numeric multibulk length", "*x\r\n"],
    ["an empty multibulk length", "*\r\n"],
    ["a multibulk length with a leading zero", "*03\r\n"],
    ["a multibulk length over INT_MAX", "*3000000000\r\n"],
    ["an argument not starting with $", "*1\r\nfoo\r\n"],
    ["a CRLF where $ belongs (shown as a space)", "*1\r\n\r\n"],
    ["an unterminated double quote", `get "a\r\n`],
    ["a closing quote followed by a letter", `set k "a"b\r\n`],
    ["an unterminated single quote", "get 'a\r\n"],
    ["an inline line over 64 KiB", "a".repeat(70000)],
    ["a multibulk length line over 64 KiB", "*" + "1".repeat(70000)],
    ["a bulk length line over 64 KiB", "*1\r\n$" + "1".repeat(70000)],
  ];

  for (const [what, input] of malformed) {
    it(`rejects ${what} with redis-server's exact error text`, async () => {
      const buf = typeof input === "string" ? b(input) : input;
      const expected = await redisError(buf);
      const whole = feedRequests([buf]);
      assert.ok(whole.error !== undefined, "parse error expected");
      assert.equal("-" + whole.error + "\r\n", expected);
      if (buf.length < 100) assert.equal(parseEverySplit(buf).error, whole.error);
    });
  }

  it("accepts exactly 512 MB as a bulk length, as redis-server does", () => {
    const out = new RequestSlots();
    assert.equal(parseRequest(b("*1\r\n$536870912\r\n"), 0, out), NEED_MORE);
    assert.equal(out.need, 16 + 536870912 + 2);
  });

  it("unquotes inline arguments exactly as redis-server does", async () => {
    const quoted = [
      `"a\\x41\\n"`, `'c\\'d'`, `"tab\\there"`, `"q\\"uote"`, `"\\xzz"`, `a"b c"`, `""`, `'a\\nb'`,
      `"\\a\\b\\r\\\\"`, `"\\x4a\\x4B"`, `x'y z'`,
    ];
    for (const q of quoted) {
      const line = b(`ECHO ${q}\r\n`);
      const reply = await rawExchange(redis.port, line, { until: (d) => d.length > 0 && replyDone(d) });
      const got = feedRequests([line]).requests[0];
      assert.equal(got.length, 2, q);
      assert.equal(s(reply.data), s(bulkReply(b(got[1]))), `ECHO ${q}`);
    }
  });

  it("splits on the same whitespace as redis-server", async () => {
    for (const line of ["ECHO\tfoo\r\n", "  ECHO   foo  \r\n", "ECHO foo\n", "ECHO a\vb\r\n", "\fECHO x\r\n"]) {
      const reply = await rawExchange(redis.port, line, { until: replyDone });
      const got = feedRequests([b(line)]).requests[0];
      assert.equal(s(reply.data), s(bulkReply(b(got[1]))), JSON.stringify(line));
    }
  });
});

// One complete reply in d (checked with the scanner under test only for ending).
function replyDone(d: Uint8Array): boolean {
  return new ReplyScanner().scan(d, 0) === d.length;
}

describe("ReplyScanner", () => {
  const forms: [string, string][] = [
    ["a status", "+OK\r\n"],
    ["an error", "-ERR unknown command 'x'\r\n"],
    ["an integer", ":-12345\r\n"],
    ["a bulk string", "$5\r\nhello\r\n"],
    ["an empty bulk string", "$0\r\n\r\n"],
    ["a null bulk string", "$-1\r\n"],
    ["an empty array", "*0\r\n"],
    ["a null array", "*-1\r\n"],
    ["a flat array", "*3\r\n$1\r\na\r\n:2\r\n+c\r\n"],
    ["an array holding nulls", "*3\r\n$-1\r\n*-1\r\n$0\r\n\r\n"],
    ["arrays nested 5 deep", "*2\r\n*2\r\n*2\r\n*2\r\n*1\r\n:5\r\n$1\r\nx\r\n*0\r\n+d3\r\n-d2\r\n"],
    ["a bulk string holding CRLF", "$6\r\n\r\n\r\n\r\n\r\n"],
  ];

  for (const [what, text] of forms) {
    it(`finds the end of ${what}, whole and split at every byte`, () => {
      const one = b(text);
      const stream = concat([one, one, b(":7\r\n")]);
      const got = scanEverySplit(stream);
      assert.deepEqual(got.ends, [one.length, 2 * one.length, stream.length]);
      assert.deepEqual(got.types, [one[0], one[0], 0x3a]);
    });
  }

  it("finds the end of each RESP3 type", () => {
    const replies = [
      "_\r\n", ",3.14\r\n", "#t\r\n", "(12345678901234567890\r\n", "!5\r\nerror\r\n", "=7\r\ntxt:abc\r\n",
      "%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n", "~2\r\n:1\r\n:2\r\n", ">2\r\n+message\r\n$1\r\nx\r\n",
      "|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n", "%0\r\n", "|1\r\n+a\r\n:1\r\n*2\r\n|1\r\n+b\r\n:2\r\n:1\r\n:2\r\n",
    ].map(b);
    const got = scanEverySplit(concat(replies));
    let end = 0;
    assert.deepEqual(got.ends, replies.map((r) => (end += r.length)));
    assert.deepEqual(got.types, replies.map((r) => r[0]));
  });

  it("skips a 16 MB bulk split into 1000 chunks", () => {
    const size = 16 * 1024 * 1024;
    const head = b(`$${size}\r\n`);
    const buf = new Uint8Array(head.length + size + 2 + 5);
    buf.set(head);
    buf.fill(13, head.length, head.length + size); // payload full of CR bytes
    buf.set(b("\r\n+OK\r\n"), head.length + size);
    const cuts: number[] = [];
    const step = Math.ceil(buf.length / 1000);
    for (let c = step; c < buf.length; c += step) cuts.push(c);
    const started = Date.now();
    const got = scanChunks(chunked(buf, ...cuts));
    assert.deepEqual(got.ends, [buf.length - 5, buf.length]);
    assert.ok(Date.now() - started < 2000, "skipping must not look at payload bytes");
  });

  it("keeps its state across calls and reports pending", () => {
    const sc = new ReplyScanner();
    assert.equal(sc.pending, false);
    assert.equal(sc.scan(b("*2\r\n$3\r\nfo"), 0), NEED_MORE);
    assert.equal(sc.pending, true);
    assert.equal(sc.scan(b("o\r\n:1"), 0), NEED_MORE);
    assert.equal(sc.scan(b("\r\n+next\r\n"), 0), 2);
    assert.equal(sc.type, 0x2a);
    assert.equal(sc.pending, false);
    sc.scan(b("$5\r\nab"), 0);
    sc.reset();
    assert.equal(sc.scan(b("+OK\r\n"), 0), 5);
  });

  const broken: [string, string][] = [
    ["an unknown type byte", "?what\r\n"],
    ["a non-numeric length", "$abc\r\n"],
    ["a length without digits", "*\r\n"],
    ["a CR not followed by LF in a length line", "$3\rxfoo\r\n"],
    ["a bulk payload longer than its length", "$3\r\nfoobar\r\n"],
    ["a bad type byte inside an array", "*2\r\n:1\r\n@\r\n"],
  ];
  for (const [what, text] of broken) {
    it(`reports a parse error for ${what}, however it is split`, () => {
      const got = scanEverySplit(b(text));
      assert.ok(got.error !== undefined && got.error.startsWith("Protocol error"));
    });
  }
});

describe("ReplyScanner against redis-server", () => {
  let redis: ServerProcess;
  before(async () => {
    redis = await startRedis({ args: ["--enable-debug-command", "yes"] });
  });
  after(async () => {
    await redis?.stop();
  });

  const SENTINEL = "$7\r\n__end__\r\n";

  async function replies(commands: string[][]): Promise<Uint8Array> {
    const all = [...commands, ["ECHO", "__end__"]];
    const wire = concat(all.map((c) => encodeCommand(c.map(b))));
    const got = await rawExchange(redis.port, wire, { untilEnds: SENTINEL, timeoutMs: 5000 });
    assert.ok(got.done, "all replies arrived");
    return got.data;
  }

  it("splits a real RESP2 reply stream into one reply per command, at every byte", async () => {
    const commands = [
      ["DEL", "l", "h", "s", "str"], ["SET", "str", "va\r\nlue"], ["GET", "str"], ["GET", "missing"], ["INCR", "n"],
      ["RPUSH", "l", "a", "", "c"], ["LRANGE", "l", "0", "-1"], ["HSET", "h", "f", "v", "g", "w"], ["HGETALL", "h"],
      ["LPUSH", "str", "x"], ["BLPOP", "nothing", "0.01"], ["COMMAND", "INFO", "get", "zadd"], ["SCAN", "0"],
      ["DEBUG", "PROTOCOL", "attrib"], ["DEBUG", "PROTOCOL", "map"], ["DEBUG", "PROTOCOL", "double"],
      ["EXEC"], ["MGET", "str", "missing", "n"],
    ];
    const data = await replies(commands);
    const got = scanEverySplit(data);
    assert.equal(got.error, undefined);
    assert.equal(got.ends.length, commands.length + 1);
    assert.equal(got.ends.at(-1), data.length);
    assert.ok(got.types.includes(0x2d) && got.types.includes(0x2a) && got.types.includes(0x24));
    assert.equal(s(data.subarray(got.ends[9], got.ends[10])), "*-1\r\n", "BLPOP timing out is a null array");
  });

  it("splits a real RESP3 reply stream (HELLO 3, DEBUG PROTOCOL) at every byte", async () => {
    const types = ["string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push", "verbatim", "true", "false"];
    const commands = [["HELLO", "3"], ...types.map((t) => ["DEBUG", "PROTOCOL", t])];
    const data = await replies(commands);
    const got = scanEverySplit(data);
    assert.equal(got.error, undefined);
    // "DEBUG PROTOCOL push" sends an out-of-band push message, then its real reply.
    assert.equal(got.ends.length, commands.length + 2);
    assert.equal(got.ends.at(-1), data.length);
    assert.deepEqual(
      new Set(got.types),
      new Set([0x25, 0x24, 0x3a, 0x2c, 0x28, 0x5f, 0x2a, 0x7e, 0x7c, 0x3e, 0x3d, 0x23]),
    );
  });
});

describe("reply helpers and encoders", () => {
  it("readInteger() reads integer replies and nothing else", () => {
    assert.equal(readInteger(b(":123\r\n")), 123);
    assert.equal(readInteger(b(":-7\r\n")), -7);
    assert.equal(readInteger(b(":0\r\n")), 0);
    assert.equal(readInteger(b("+123\r\n")), null);
    assert.equal(readInteger(b(":abc\r\n")), null);
    assert.equal(readInteger(b(":12")), null);
  });

  it("arrayElements() returns the full encoding of each element", () => {
    const reply = b("*4\r\n$1\r\na\r\n:1\r\n*2\r\n$-1\r\n+x\r\n$-1\r\n");
    assert.deepEqual(arrayElements(reply)?.map(s), ["$1\r\na\r\n", ":1\r\n", "*2\r\n$-1\r\n+x\r\n", "$-1\r\n"]);
    assert.deepEqual(arrayElements(b("*0\r\n")), []);
    assert.equal(arrayElements(b("*-1\r\n")), null);
    assert.equal(arrayElements(b("$1\r\na\r\n")), null);
    assert.equal(arrayElements(b("*2\r\n:1\r\n")), null, "truncated");
  });

  it("isError() and isOk() classify replies", () => {
    assert.equal(isError(b("-ERR x\r\n")), true);
    assert.equal(isError(OK_REPLY), false);
    assert.equal(isOk(b("+OK\r\n")), true);
    assert.equal(isOk(b("+OKAY\r\n")), false);
    assert.equal(isOk(b("-ERR\r\n")), false);
  });

  it("encoders produce the exact RESP bytes", () => {
    assert.equal(s(errorReply("ERR bad\r\nthing")), "-ERR bad  thing\r\n");
    assert.equal(s(statusReply("OK")), "+OK\r\n");
    assert.equal(s(integerReply(0)), ":0\r\n");
    assert.equal(s(integerReply(-42)), ":-42\r\n");
    assert.equal(s(integerReply(9007199254740991)), ":9007199254740991\r\n");
    assert.equal(s(bulkReply(b("hi"))), "$2\r\nhi\r\n");
    assert.equal(s(bulkReply(new Uint8Array(0))), "$0\r\n\r\n");
    assert.equal(bulkReply(null), NULL_BULK_REPLY);
    assert.equal(s(NULL_ARRAY_REPLY), "*-1\r\n");
    assert.equal(s(arrayHeader(3)), "*3\r\n");
    assert.equal(s(encodeCommand([b("GET"), b("k")])), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert.equal(s(errorReply("ERR got '\xff'")), "-ERR got '\xff'\r\n");
  });

  it("encodeCommandParts() builds a fragment from spans of a parsed request", () => {
    const buf = b("*7\r\n$4\r\nMSET\r\n$1\r\na\r\n$2\r\n11\r\n$1\r\nb\r\n$2\r\n22\r\n$1\r\nc\r\n$0\r\n\r\n");
    const req = new RequestSlots();
    assert.equal(parseRequest(buf, 0, req), buf.length);
    const frag = encodeCommandParts([b("MSET")], buf, req.argStart, req.argEnd, [1, 2, 5, 6]);
    assert.equal(s(frag), "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$2\r\n11\r\n$1\r\nc\r\n$0\r\n\r\n");
    assert.deepEqual(feedRequests([frag]).requests, [["MSET", "a", "11", "c", ""]]);
  });
});

describe("byte helpers", () => {
  it("indexOfCrlf() finds CRLF pairs only, within bounds", () => {
    const buf = b("a\rb\r\nc\r");
    assert.equal(indexOfCrlf(buf, 0), 3);
    assert.equal(indexOfCrlf(buf, 4), -1);
    assert.equal(indexOfCrlf(buf, 0, 4), -1);
    assert.equal(indexOfCrlf(b("\r\n"), 0), 0);
  });

  it("readInt() follows Redis's string2ll rules", () => {
    const ok: [string, number][] = [["0", 0], ["7", 7], ["-12", -12], ["536870912", 536870912], ["9007199254740991", 9007199254740991]];
    for (const [text, n] of ok) assert.equal(readInt(b(text), 0, text.length), n, text);
    for (const text of ["", "-", "+1", "01", "-0", " 1", "1 ", "1a", "12345678901234567890"]) {
      assert.ok(Number.isNaN(readInt(b(text), 0, text.length)), JSON.stringify(text));
    }
  });

  it("writeInt() and intLength() agree with decimal text", () => {
    for (const n of [0, 5, -5, 10, 99, 100, -100, 2147483647, -9007199254740991]) {
      const out = new Uint8Array(24);
      const end = writeInt(out, 1, n);
      assert.equal(s(out.subarray(1, end)), String(n));
      assert.equal(intLength(n), String(n).length);
    }
  });

  it("ByteWriter grows, and finish() hands over a copy and resets", () => {
    const w = new ByteWriter(4);
    w.ascii("*2").crlf().int(-15).byte(0x20).bytes(b("xyz"), 1, 3);
    for (let i = 0; i < 100; i++) w.ascii("0123456789");
    const first = w.finish();
    assert.equal(first.length, 4 + 3 + 1 + 2 + 1000);
    assert.equal(s(first.subarray(0, 10)), "*2\r\n-15 yz");
    assert.equal(w.len, 0);
    w.ascii("again");
    assert.equal(s(w.view()), "again");
    assert.equal(s(first.subarray(0, 2)), "*2", "finish() returned a copy");
  });

  it("latin1Bytes() and latin1String() round-trip every byte value", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(latin1Bytes(latin1String(all)), all);
    assert.deepEqual(latin1Bytes("\u20ac"), new TextEncoder().encode("\u20ac"), "wider text falls back to UTF-8");
  });
});
