/**
 * Runs the proxy in the test's own runtime, on real sockets through the runtime's
 * adapter, from nutcracker.yml text. Pools written with port 0 get a free port.
 */
import { loadConf } from "../../core/conf/mod.ts";
import { createLogger } from "../../core/log.ts";
import { systemClock } from "../../core/net.ts";
import { type Proxy, type ProxyDeps, startProxy } from "../../core/proxy/mod.ts";
import { loadNet } from "../../adapters/mod.ts";
import { freePort } from "./ports.ts";

export interface TestProxy {
  proxy: Proxy;
  /** The TCP port pool `i` listens on. */
  port(i?: number): number;
  /** Log lines written so far. */
  logs: string[];
  close(): Promise<void>;
}

/** Start a proxy from YAML text; `limits` and `observe` pass through to startProxy. */
export async function startTestProxy(yml: string, extra: Partial<ProxyDeps> = {}): Promise<TestProxy> {
  const conf = loadConf(await withFreePorts(yml), "test.yml");
  const logs: string[] = [];
  const log = createLogger((line) => logs.push(line), 6);
  const net = await loadNet();
  const proxy = await startProxy(conf, { net, clock: systemClock, log, ...extra });
  return {
    proxy,
    logs,
    port(i = 0) {
      const addr = proxy.listeners[i].address;
      if (addr.kind !== "tcp") throw new Error("pool is not on TCP");
      return addr.port;
    },
    close: () => proxy.close(200),
  };
}

/** nutcracker.yml rejects port 0, so each `listen: 127.0.0.1:0` gets a free port here. */
async function withFreePorts(yml: string): Promise<string> {
  let out = yml;
  while (out.includes("listen: 127.0.0.1:0\n")) {
    out = out.replace("listen: 127.0.0.1:0\n", `listen: 127.0.0.1:${await freePort()}\n`);
  }
  return out;
}

/** A redis pool YAML for the given backend ports (weight 1 each, unnamed). */
export function redisPoolYaml(ports: number[], extra = ""): string {
  const servers = ports.map((p) => `    - 127.0.0.1:${p}:1`).join("\n");
  return `alpha:\n  listen: 127.0.0.1:0\n  redis: true\n${extra}  servers:\n${servers}\n`;
}

/** A memcache pool YAML for the given backend ports. */
export function memcachePoolYaml(ports: number[], extra = ""): string {
  const servers = ports.map((p) => `    - 127.0.0.1:${p}:1`).join("\n");
  return `beta:\n  listen: 127.0.0.1:0\n${extra}  servers:\n${servers}\n`;
}
