/**
 * The quick-start demo, like twemproxy's classic tutorial: two local redis-servers
 * on 6381 and 6382 and a pool on 127.0.0.1:22121 sharding between them. Runs until
 * Ctrl-C, then stops the redis-servers it started (by PID).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import process from "node:process";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { startProxy } from "../core/proxy/mod.ts";
import { loadNet } from "../adapters/mod.ts";

const CONF = new URL("../conf/demo.yml", import.meta.url);
const PORTS = [6381, 6382];

function startRedis(port: number): ChildProcess {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
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
  const servers = PORTS.map(startRedis);
  const stopServers = () => servers.forEach((child) => child.pid !== undefined && process.kill(child.pid, "SIGTERM"));
  await Promise.all(PORTS.map((port) => waitForPort(port, Date.now() + 5000)));
  const conf = loadConf(readFileSync(CONF, "utf8"), "conf/demo.yml");
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

Ctrl-C stops the proxy and both redis-servers.
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
