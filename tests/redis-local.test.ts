/**
 * Commands the Redis proxy answers itself so that tools keep working: CONFIG GET in
 * Redis 7's several-parameter form as well as the classic one, and its refusals.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisPoolYaml, startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { encodeCommand, encodePipeline } from "./helpers/resp.ts";
import { rawText, type ServerProcess, startRedis } from "./helpers/servers.ts";

describe("CONFIG through the proxy", () => {
  let redis: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    redis = await startRedis();
    tp = await startTestProxy(redisPoolYaml([redis.port]));
  });

  after(async () => {
    await tp?.close();
    await redis?.stop();
  });

  it("CONFIG GET of one parameter answers it with an empty value", async () => {
    const reply = await rawText(tp.port(), encodeCommand(["CONFIG", "GET", "save"]), { untilEnds: "$0\r\n\r\n" });
    assert.equal(reply, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  });

  it("CONFIG GET of several parameters (Redis 7) answers each, in order", async () => {
    const reply = await rawText(tp.port(), encodeCommand(["config", "get", "save", "appendonly"]), { expectBytes: 43 });
    assert.equal(reply, "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$0\r\n\r\n");
  });

  it("other CONFIG subcommands get an error and the connection stays usable", async () => {
    const reply = await rawText(tp.port(), encodePipeline([["CONFIG", "SET", "save", ""], ["PING"]]), { untilEnds: "+PONG\r\n" });
    assert.equal(reply, "-ERR only CONFIG GET <parameter> [parameter ...] is supported by the proxy\r\n+PONG\r\n");
  });
});
