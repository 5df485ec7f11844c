/**
 * Sentinel, a master demoted behind the proxy's back (issue 13): two real redis-servers and a
 * scripted Sentinel that answers questions but never publishes an event, so the proxy can only
 * learn of the switch from a write answered -READONLY. That write's client sees the error (the
 * write is not retried elsewhere), the proxy asks the Sentinel again at once (long before its
 * periodic re-ask) and the next writes go to the new master.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startTestProxy, type TestProxy } from "./helpers/proxy.ts";
import { redisCli, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { sleep } from "./helpers/ports.ts";
import { waitFor } from "./helpers/soak.ts";
import { parseReply } from "./helpers/resp.ts";
import {
  caughtUp,
  describeNodes,
  missingOn,
  proxyMasterPort,
  sentinelPoolYaml,
  startWriteLoad,
  tallyWrites,
} from "./helpers/sentinel-load.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A Sentinel stand-in: answers where the master and replicas are, confirms SUBSCRIBE, publishes nothing. */
class ScriptedSentinel {
  master = 0;
  replicas: number[] = [];
  /** Date.now() of every get-master-addr-by-name asked. */
  readonly asked: number[] = [];
  port = 0;
  private readonly server = net.createServer((sock) => this.serve(sock));
  private readonly sockets = new Set<net.Socket>();

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const addr = this.server.address();
    this.port = typeof addr === "object" && addr !== null ? addr.port : 0;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on("error", () => {});
    sock.once("close", () => this.sockets.delete(sock));
    let buf = new Uint8Array(0);
    sock.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(buf.length + chunk.length);
      joined.set(buf);
      joined.set(chunk, buf.length);
      let at = 0;
      for (let got = parseReply(joined, 0, joined.length); got !== null; got = parseReply(joined, at, joined.length)) {
        at = got[1];
        const items = got[0].type === "array" ? got[0].items ?? [] : [];
        const args = items.map((i) => (i.type === "bulk" && i.value !== null ? decoder.decode(i.value) : ""));
        sock.write(encoder.encode(this.answer(args)));
        if (at >= joined.length) break;
      }
      buf = joined.slice(at);
    });
  }

  private answer(args: string[]): string {
    const cmd = args.map((a) => a.toLowerCase());
    if (cmd[0] === "subscribe") return args.slice(1).map((ch, i) => `*3\r\n$9\r\nsubscribe\r\n${bulk(ch)}:${i + 1}\r\n`).join("");
    if (cmd[0] === "sentinel" && cmd[1] === "get-master-addr-by-name") {
      this.asked.push(Date.now());
      return `*2\r\n${bulk("127.0.0.1")}${bulk(String(this.master))}`;
    }
    if (cmd[0] === "sentinel" && cmd[1] === "replicas") {
      const fields = (p: number) => ["name", `127.0.0.1:${p}`, "ip", "127.0.0.1", "port", String(p), "flags", "slave"];
      return `*${this.replicas.length}\r\n` + this.replicas.map((p) => `*8\r\n${fields(p).map(bulk).join("")}`).join("");
    }
    if (cmd[0] === "ping") return "+PONG\r\n";
    return `-ERR unknown command '${args[0]}'\r\n`;
  }
}

function bulk(text: string): string {
  return `$${encoder.encode(text).length}\r\n${text}\r\n`;
}

describe("sentinel: a write answered -READONLY", () => {
  const root = mkdtempSync(path.join(tmpdir(), "sentinel-readonly-"));
  const sentinel = new ScriptedSentinel();
  let a: ServerProcess;
  let b: ServerProcess;
  let tp: TestProxy;

  before(async () => {
    const dir = (name: string) => mkdtempSync(path.join(root, name));
    a = await startRedis({ args: ["--dir", dir("a-"), "--repl-diskless-sync-delay", "0"] });
    b = await startRedis({ args: ["--dir", dir("b-"), "--replicaof", "127.0.0.1", String(a.port)] });
    assert.ok(await caughtUp(a.port, [b.port]), "b replicates a");
    await sentinel.listen();
    [sentinel.master, sentinel.replicas] = [a.port, [b.port]];
    tp = await startTestProxy(sentinelPoolYaml({ sentinels: [sentinel.port], servers: [[a.port, "shard1"]], readPolicy: "master" }));
    assert.equal(proxyMasterPort(tp), a.port);
  });

  after(async () => {
    await tp?.close();
    await sentinel.close();
    await Promise.all([a, b].map((s) => s?.stop()));
    rmSync(root, { recursive: true, force: true });
  });

  it("the client sees -READONLY, the write is not retried elsewhere, and the proxy re-asks Sentinel at once", async () => {
    const writes = startWriteLoad(tp.port(), { prefix: "ro", clients: 2, maxMs: 20000 });
    await sleep(300);
    // Switch by hand, telling nobody: b becomes master, then a follows it (writes to a now fail).
    await redisCli(b.port, "REPLICAOF", "NO", "ONE");
    [sentinel.master, sentinel.replicas] = [b.port, [a.port]];
    const demotedAt = Date.now();
    await redisCli(a.port, "REPLICAOF", "127.0.0.1", String(b.port));
    const moved = await waitFor(() => proxyMasterPort(tp) === b.port, 10000, 2);
    const movedAt = Date.now();
    await sleep(500);
    const records = await writes.stop();

    const refused = records.filter((r) => r.reply.startsWith("-READONLY"));
    const firstRefusal = Math.min(...refused.map((r) => r.doneAt));
    const askedAfter = sentinel.asked.find((t) => t >= firstRefusal);
    const tally = tallyWrites(records);
    const asked = askedAfter === undefined ? "never" : `${askedAfter - firstRefusal} ms after the first`;
    console.log(
      `sentinel readonly: ${refused.length} writes answered -READONLY; Sentinel asked ${asked}; ` +
        `proxy master moved ${movedAt - demotedAt} ms after the demotion; writes ${tally.ok}/${tally.total} ok (${tally.samples.join(" | ")})`,
    );
    assert.ok(moved, `the proxy moves to the new master: ${describeNodes(tp)}`);
    assert.ok(refused.length > 0, "the demoted master refused some write");
    assert.equal(tally.errors, refused.length, `the only errors are -READONLY: ${tally.samples.join(" | ")}`);
    const soon = askedAfter !== undefined && askedAfter - firstRefusal < 1000;
    assert.ok(soon, "the proxy asks Sentinel again right after a -READONLY (not at its periodic re-ask)");
    const retried = (await missingOn(b.port, refused.map((r) => ({ ...r, reply: "+OK" })))).length;
    assert.equal(retried, refused.length, "no refused write was applied on the new master behind the client's back");
    const late = records.filter((r) => r.sentAt > movedAt);
    assert.ok(late.length > 0 && late.every((r) => r.reply === "+OK"), "writes after the move succeed");
    assert.equal((await missingOn(b.port, late)).length, 0, "and are on the new master");
  });
});
