/**
 * A lint for the PromQL in contrib/ (Grafana targets, alert rules), against the families of
 * a real exposition (helpers/prometheus.ts): every metric is one the proxy exports (a
 * histogram's _bucket/_sum/_count included), rate()/increase() read counters only, every
 * label a selector matches or an expression groups by is one the metrics carry (or a
 * target label Prometheus adds), histogram_quantile keeps `le`, functions are PromQL's and
 * brackets balance. Not a PromQL parser: enough to catch a renamed metric or label.
 */
import type { Family } from "./prometheus.ts";

/** Labels Prometheus adds to every scraped series. */
export const TARGET_LABELS: ReadonlySet<string> = new Set(["instance", "job"]);

const FUNCTIONS = new Set([
  "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "group", "count_values",
  "rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets", "histogram_quantile", "abs", "ceil", "floor",
  "round", "clamp_min", "clamp_max", "absent", "absent_over_time", "max_over_time", "min_over_time", "avg_over_time",
  "sum_over_time", "count_over_time", "last_over_time", "time", "timestamp", "vector", "scalar", "label_replace", "label_values",
]);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const METRIC = /\bnutcracker_[a-zA-Z0-9_]+/g;

/** What one expression uses. */
export interface ExprUse {
  /** Metric names as written (e.g. nutcracker_request_duration_seconds_bucket). */
  readonly metrics: string[];
  /** Label names in selectors and grouping clauses. */
  readonly labels: string[];
}

/** The family a written metric name belongs to, or null when the exposition has none. */
export function familyOf(name: string, families: ReadonlyMap<string, Family>): Family | null {
  const own = families.get(name);
  if (own !== undefined) return own;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.endsWith(suffix) ? families.get(name.slice(0, -suffix.length)) : undefined;
    if (base?.type === "histogram") return base;
  }
  return null;
}

/** Label names the samples of a family carry (empty when it has no samples). */
export function labelsOf(family: Family): Set<string> {
  const out = new Set<string>();
  for (const s of family.samples) for (const k of s.labels.keys()) out.add(k);
  return out;
}

/** Metrics and labels used by `expr`. */
export function uses(expr: string): ExprUse {
  const metrics = [...expr.matchAll(METRIC)].map((m) => m[0]);
  const labels: string[] = [];
  for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const l of m[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.push(l[1]);
  }
  for (const m of expr.matchAll(GROUPING)) {
    for (const l of m[2].split(",").map((s) => s.trim()).filter((s) => s !== "")) labels.push(l);
  }
  return { metrics, labels };
}

/**
 * Problems with `expr` against `families`, as sentences (empty when none).
 * @example lint('rate(nutcracker_requests_total[5m])', families) // []
 */
export function lint(expr: string, families: ReadonlyMap<string, Family>): string[] {
  const problems: string[] = [];
  const { metrics, labels } = uses(expr);
  if (metrics.length === 0) problems.push("queries no nutcracker_ metric");
  const known = new Set<string>([...TARGET_LABELS, "le"]);
  let unchecked = false;
  for (const name of metrics) {
    const family = familyOf(name, families);
    if (family === null) {
      problems.push(`${name} is not exported`);
      continue;
    }
    if (family.samples.length === 0) unchecked = true;
    for (const l of labelsOf(family)) known.add(l);
  }
  if (!unchecked) {
    for (const l of labels) if (!known.has(l)) problems.push(`label '${l}' is on none of ${metrics.join(", ")}`);
  }
  for (const m of expr.matchAll(/\b(rate|irate|increase)\s*\(\s*(nutcracker_[a-zA-Z0-9_]+)/g)) {
    const family = familyOf(m[2], families);
    const counter = family?.type === "counter" || (family?.type === "histogram" && m[2].endsWith("_bucket"));
    if (family !== null && !counter) problems.push(`${m[1]}() of ${m[2]}, a ${family.type}`);
  }
  if (expr.includes("histogram_quantile") && ![...expr.matchAll(GROUPING)].some((m) => /\ble\b/.test(m[2]))) {
    problems.push("histogram_quantile over an aggregation that drops 'le'");
  }
  for (const m of expr.matchAll(/\b([a-zA-Z_][a-zA-Z0-9_]*)\s*\(/g)) {
    if (!FUNCTIONS.has(m[1]) && !/^(by|without|on|ignoring|group_left|group_right|and|or|unless|bool)$/.test(m[1])) problems.push(`unknown function ${m[1]}()`);
  }
  for (const [open, close] of [["(", ")"], ["{", "}"], ["[", "]"]]) {
    if (expr.split(open).length !== expr.split(close).length) problems.push(`unbalanced '${open}${close}'`);
  }
  return problems;
}
