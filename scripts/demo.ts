/**
 * The quick-start demo, like twemproxy's classic tutorial: two local redis-servers
 * on 6381 and 6382 and a pool on 127.0.0.1:22121 sharding between them. With
 * `--replicas`, each gets a replica (6391, 6392) and reads go to the replicas. Runs
 * until Ctrl-C, then stops the redis-servers it started (by PID).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect } from "node:net";
import process from "node:process";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { startProxy } from "../core/proxy/mod.ts";
import { loadNet } from "../adapters/mod.ts";

const WITH_REPLICAS = process.argv.includes("--replicas");
const CONF_NAME = WITH_REPLICAS ? "conf/demo-replicas.yml" : "conf/demo.yml";
const CONF = new URL(`../${CONF_NAME}`, import.meta.url);
const PORTS = [6381, 6382];
/** port -> the master it replicates, in the replicas demo. */
const REPLICAS: Record<number, number> = WITH_REPLICAS ? { 6391: 6381, 6392: 6382 } : {};
// A full sync writes an RDB file: keep each server's in a directory of its own, not here.
const DIR = mkdtempSync(path.join(tmpdir(), "twemproxy-demo-"));

function startRedis(port: number): ChildProcess {
  const dir = mkdtempSync(path.join(DIR, `${port}-`));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
  if (REPLICAS[port] !== undefined) args.push("--replicaof", "127.0.0.1", String(REPLICAS[port]));
  const child = spawn("redis-server", args, { stdio: "ignore" });
  child.on("error", (err) => {
    console.error(`cannot start redis-server on ${port}: ${err.message} (apt-get install -y redis-server)`);
    process.exit(1);
  });
  return child;
}

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve();
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`redis-server on ${port} did not start`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

async function main(): Promise<void> {
  const ports = [...PORTS, ...Object.keys(REPLICAS).map(Number)];
  const servers = ports.map(startRedis);
  const stopServers = () => {
    servers.forEach((child) => child.pid !== undefined && process.kill(child.pid, "SIGTERM"));
    rmSync(DIR, { recursive: true, force: true });
  };
  await Promise.all(ports.map((port) => waitForPort(port, Date.now() + 5000)));
  const conf = loadConf(readFileSync(CONF, "utf8"), CONF_NAME);
  const log = createLogger((line) => console.error(line), 5);
  const proxy = await startProxy(conf, { net: await loadNet(), clock: systemClock, log });
  console.log(`
twemproxy-ts demo: pool 'demo' on 127.0.0.1:22121 -> redis-servers 127.0.0.1:6381 and 127.0.0.1:6382

Try it in another terminal:
  redis-cli -p 22121 set hello world
  redis-cli -p 22121 get hello
  redis-cli -p 22121 mset a 1 b 2 c 3 d 4
  redis-cli -p 22121 mget a b c d
  redis-cli -p 6381 keys '*'     # what landed on the first shard
  redis-cli -p 6382 keys '*'     # ...and on the second
${WITH_REPLICAS ? `  redis-cli -p 6391 info commandstats | grep get   # reads served by shard1's replica
` : ""}
Ctrl-C stops the proxy and the redis-servers.
`);
  const shutdown = async () => {
    await proxy.close(1000);
    stopServers();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
