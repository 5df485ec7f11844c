/**
 * Turns benchmark samples into markdown: the machine header, one table per test
 * (median and range over rounds, ratio to the baseline, CPU per request, peak RSS),
 * and the idle-connection memory table.
 */
import { cpus, release } from "node:os";
import { readFileSync } from "node:fs";
import type { Sample } from "./tools.ts";
import type { IdleResult } from "./idle.ts";
import type { HeapResult } from "./idle_heap.ts";

/** Median of the finite numbers (NaN if none). */
export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function finite(xs: number[]): number[] {
  return xs.filter(Number.isFinite);
}

/** A number with thousands separators, or "n/a". */
export function int(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a";
}

/** Fixed decimals, or "n/a". */
export function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "n/a";
}

/** Bytes as MB with one decimal, or "n/a". */
export function mb(x: number): string {
  return Number.isFinite(x) ? (x / 1048576).toFixed(1) : "n/a";
}

/** Markdown table from a header row and body rows. */
export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const sep = head.map((_, i) => (i === 0 ? "---" : "---:"));
  return [line(head), line(sep), ...rows.map(line)].join("\n");
}

/** Machine and date lines for the top of the report. */
export function machineHeader(extra: string[]): string {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m !== null) model = m[1].trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  let load = "?";
  try {
    load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    // not Linux
  }
  const lines = [
    `Date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
    `Machine: ${cpus().length} CPUs (nproc), ${model}, Linux ${release()}; load average at start ${load}`,
    ...extra,
  ];
  return lines.map((l) => `- ${l}`).join("\n");
}

/** Samples of one target in one test, over all rounds. */
export interface Series {
  name: string;
  samples: Sample[];
}

/** The name of the reference row (the real twemproxy) that gets its own ratio columns. */
export const REFERENCE = "nutcracker 0.5.0 (C)";

/**
 * One test's table: req/s median (min..max), ratio of medians to the first series
 * (the baseline), CPU µs/request and CPU share (medians), peak RSS (largest seen).
 * With a `REFERENCE` series, two more columns: req/s and CPU µs/req as ratios to its medians.
 */
export function testTable(series: Series[], unit: string): string {
  const base = median(series[0]?.samples.map((s) => s.rps) ?? []);
  const ref = series.find((x) => x.name === REFERENCE);
  const refRps = median(ref?.samples.map((s) => s.rps) ?? []);
  const refCpu = median(ref?.samples.map((s) => s.cpuUsPerReq) ?? []);
  const rows = series.map(({ name, samples }) => {
    const rps = finite(samples.map((s) => s.rps));
    const mid = median(rps);
    const range = rps.length > 0 ? `${int(Math.min(...rps))}..${int(Math.max(...rps))}` : "n/a";
    const warn = samples.map((s) => s.warning).filter(Boolean);
    return [
      name + (warn.length > 0 ? ` (!${warn.length})` : ""),
      int(mid),
      range,
      fixed(mid / base, 2),
      fixed(median(samples.map((s) => s.cpuUsPerReq)), 1),
      fixed(median(samples.map((s) => s.sysUsPerReq)), 1),
      fixed(median(samples.map((s) => s.cpuShare)) * 100, 0),
      mb(Math.max(...finite(samples.map((s) => s.peakRss)), -Infinity)),
      ...(ref === undefined ? [] : [
        fixed(median(rps) / refRps, 2),
        fixed(median(samples.map((s) => s.cpuUsPerReq)) / refCpu, 2),
      ]),
    ];
  });
  const head = [`target`, `${unit} median`, "min..max", "ratio", "CPU µs/req", "of which sys", "CPU %", "peak RSS MB"];
  if (ref !== undefined) head.push(`${unit} vs nutcracker`, "CPU/req vs nutcracker");
  return table(head, rows);
}

/** Every warning of every series, one line each (empty when clean). */
export function warnings(title: string, series: Series[]): string[] {
  const out: string[] = [];
  for (const { name, samples } of series) {
    samples.forEach((s, round) => {
      if (s.warning) out.push(`- ${title} / ${name} round ${round + 1}: ${s.warning}`);
    });
  }
  return out;
}

/** The idle-connection memory table. */
export function idleTable(results: IdleResult[]): string {
  const per = (after: number, r: IdleResult) => int((after - r.before) / r.count);
  const rows = results.map((r) => [
    r.name + (r.note ? ` (${r.note})` : ""),
    int(r.count),
    mb(r.before),
    mb(r.connected),
    per(r.connected, r),
    mb(r.pinged),
    per(r.pinged, r),
    mb(r.closed),
  ]);
  const head = ["proxy", "conns", "RSS before MB", "open MB", "B/conn", "after 1 PING MB", "B/conn", "closed MB"];
  return table(head, rows);
}

/** JS heap bytes per idle client (lib/idle_heap.ts): the proxy, the runtime's empty accept loop, and the difference. */
export function idleHeapTable(results: HeapResult[]): string {
  const rows = results.map((r) => [
    r.runtime,
    int(r.count),
    int(r.loopOpen),
    int(r.proxyOpen),
    int(r.proxyOpen - r.loopOpen),
    int(r.loopPinged),
    int(r.proxyPinged),
    int(r.proxyPinged - r.loopPinged),
  ]);
  const head = ["runtime", "conns", "open: empty loop B/conn", "proxy", "proxy − loop", "after 1 PING: loop", "proxy", "proxy − loop"];
  return table(head, rows);
}
