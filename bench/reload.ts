/**
 * `npm run bench:reload`: what a reload costs. Applies configs to a running proxy with a
 * 100-server pool (plan + apply, the part that runs on the event loop) and prints the
 * median and worst time per case as a markdown table. Servers are never connected (no
 * request is sent), so this measures the proxy's own work, not the network.
 * Runs on any runtime: node --import tsx bench/reload.ts | deno run -A bench/reload.ts | bun bench/reload.ts
 */
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { startProxy } from "../core/proxy/mod.ts";
import { loadNet } from "../adapters/mod.ts";

const SERVERS = 100;
const RUNS = 50;

function poolYaml(port: number, opts: { hash?: string; firstPort?: number; weight?: number } = {}): string {
  const first = opts.firstPort ?? 30000;
  const lines = Array.from({ length: SERVERS }, (_, i) => `    - 127.0.0.1:${first + i}:${i === 0 ? opts.weight ?? 1 : 1} s${first + i}`);
  return `alpha:\n  listen: 127.0.0.1:${port}\n  redis: true\n  hash: ${opts.hash ?? "fnv1a_64"}\n  timeout: 400\n  servers:\n${lines.join("\n")}\n`;
}

/** Each case alternates between two configs, so every run really changes something (but the first). */
const CASES: readonly { name: string; a: (p: number) => string; b: (p: number) => string }[] = [
  { name: "identical file (no-op)", a: (p) => poolYaml(p), b: (p) => poolYaml(p) },
  { name: "one weight changed", a: (p) => poolYaml(p), b: (p) => poolYaml(p, { weight: 2 }) },
  { name: "10 of 100 servers replaced", a: (p) => poolYaml(p), b: (p) => poolYaml(p, { firstPort: 30010 }) },
  { name: "hash changed (every key moves)", a: (p) => poolYaml(p), b: (p) => poolYaml(p, { hash: "md5" }) },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const net = await loadNet();
  const port = 20000 + Math.floor(Math.random() * 20000);
  const log = createLogger(() => {}, 0);
  const proxy = await startProxy(loadConf(poolYaml(port), "a.yml"), { net, clock: systemClock, log });
  console.log(`reload of a ${SERVERS}-server ketama pool on ${net.runtime}, ${RUNS} runs per case (parse not included)\n`);
  console.log("| case | median ms | max ms |\n|---|---:|---:|");
  for (const c of CASES) {
    const confs = [loadConf(c.a(port), "a.yml"), loadConf(c.b(port), "b.yml")];
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      await proxy.apply(confs[(i + 1) % 2]);
      times.push(performance.now() - started);
    }
    await proxy.apply(confs[0]);
    console.log(`| ${c.name} | ${median(times).toFixed(3)} | ${Math.max(...times).toFixed(3)} |`);
  }
  await proxy.close(0);
}

await main();
