/**
 * The operations kit against a running proxy: contrib/grafana/twemproxy-ts.json and
 * contrib/prometheus/alerts.yml may query only metrics (and labels) the proxy exports. The
 * exposition comes from GET /metrics of a proxy following a real Sentinel (so the Sentinel,
 * replica and histogram families all have samples) with a store pool grown by a reload from
 * one redis-server to two (so the migration families have samples too), parsed strictly by helpers/prometheus.ts;
 * each query is linted by helpers/promql.ts. The files' own shape is checked too: Grafana
 * panels (ids, grid, datasource, legends), alert rules (names, for, severity, annotations).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import YAML from "yaml";
import { loadConf } from "../core/conf/mod.ts";
import { createLogger } from "../core/log.ts";
import { systemClock } from "../core/net.ts";
import { type Proxy, startProxy } from "../core/proxy/mod.ts";
import { createReloader } from "../core/reload/reloader.ts";
import { createMetrics, type Observability, startObservability } from "../core/admin/mod.ts";
import { loadNet } from "../adapters/mod.ts";
import { type Family, parseExposition } from "./helpers/prometheus.ts";
import { familyOf, labelsOf, lint, TARGET_LABELS, uses } from "./helpers/promql.ts";
import { freePort } from "./helpers/ports.ts";
import { ROOT } from "./helpers/runtime.ts";
import { rawRequest, type ServerProcess, startRedis } from "./helpers/servers.ts";
import { SentinelSetup } from "./helpers/sentinel.ts";
import { waitFor } from "./helpers/soak.ts";

const GRAFANA = `${ROOT}/contrib/grafana/twemproxy-ts.json`;
const ALERTS = `${ROOT}/contrib/prometheus/alerts.yml`;
const resp = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");

interface Target {
  readonly expr: string;
  readonly legendFormat?: string;
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { x: number; y: number; w: number; h: number };
  readonly datasource?: { type: string; uid: string };
  readonly targets?: Target[];
}
interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

/** Labels an expression's result keeps: its grouping labels when it aggregates, else its metrics' labels. */
function keptLabels(expr: string, families: ReadonlyMap<string, Family>): Set<string> {
  const groups = [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) => m[1].split(",").map((s) => s.trim()));
  if (groups.length > 0) return new Set([...groups, ...TARGET_LABELS]);
  const out = new Set<string>(TARGET_LABELS);
  for (const name of uses(expr).metrics) {
    const family = familyOf(name, families);
    if (family !== null) for (const l of labelsOf(family)) out.add(l);
  }
  return out;
}

/** `{{label}}` / `{{ $labels.label }}` references in a template. */
const templateLabels = (text: string) => [...text.matchAll(/\{\{\s*(?:\$labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1]);

describe("the Grafana dashboard and the alert rules against a running proxy's metrics", () => {
  let setup: SentinelSetup;
  let stores: ServerProcess[] = [];
  let proxy: Proxy;
  let obs: Observability;
  let families: Map<string, Family>;

  before(async () => {
    [setup, ...stores] = await Promise.all([
      SentinelSetup.start({ replicas: 1, sentinels: 1, quorum: 1, prefix: "contrib-metrics-" }), startRedis(), startRedis(),
    ]);
    await setup.waitAgreed({ masterPort: setup.redises[0].port, replicas: 1 });
    const [port, storePort] = [await freePort(), await freePort()];
    const yml = (storeServers: readonly ServerProcess[]) =>
      `watched:\n  listen: 127.0.0.1:${port}\n  redis: true\n  sentinels:\n    - 127.0.0.1:${setup.sentinelPorts[0]}\n` +
      `  servers:\n    - 127.0.0.1:${setup.redises[0].port}:1 ${setup.name}\n  read_policy: prefer_replica\n  replica_check_interval: 200\n` +
      `moving:\n  listen: 127.0.0.1:${storePort}\n  redis: true\n  migration: store\n  servers:\n` +
      storeServers.map((s) => `    - 127.0.0.1:${s.port}:1\n`).join("");
    const net = await loadNet();
    const log = createLogger(() => {}, 0);
    const metrics = createMetrics();
    let text = yml(stores.slice(0, 1));
    proxy = await startProxy(loadConf(text, "contrib.yml"), { net, clock: systemClock, log, observe: metrics.observe });
    // A second server for the store pool: a migration, so nutcracker_migration_* have samples.
    text = yml(stores);
    const reload = await createReloader(proxy, () => loadConf(text, "contrib.yml"), { clock: systemClock, log }).reload({});
    assert.equal(reload.result, "ok", reload.error ?? "");
    obs = await startObservability(proxy, metrics, {
      statsAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
      statsIntervalMs: 1000,
      adminAddr: { kind: "tcp", host: "127.0.0.1", port: 0 },
      version: "0.5.0",
      source: "contrib-test",
    }, { net, clock: systemClock, log });
    const admin = obs.adminAddr!;
    assert.ok(admin.kind === "tcp");
    const scrape = async () => parseExposition(await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text());
    const ready = async () => {
      await rawRequest(port, resp("SET", "contrib", "1") + resp("GET", "contrib"), { expectBytes: 5 + 7, timeoutMs: 3000 }).catch(() => null);
      families = await scrape();
      const filled = ["nutcracker_replica_lag_bytes", "nutcracker_shard_master_info", "nutcracker_request_duration_seconds",
        "nutcracker_migration_keys_scanned_total"];
      return filled.every((n) => (families.get(n)?.samples.length ?? 0) > 0) &&
        families.get("nutcracker_sentinel_reachable")?.samples[0]?.value === 1;
    };
    assert.ok(await waitFor(ready, 15_000), "the exposition has replica, Sentinel, histogram and migration samples");
  });

  after(async () => {
    await obs?.close();
    await proxy?.close(100);
    await Promise.all([setup?.stopAll(), ...stores.map((s) => s.stop())]);
  });

  it("every family the kit reads has samples in this proxy's exposition (so labels are checked too)", () => {
    const read = new Set<string>();
    const dashboard = JSON.parse(fs.readFileSync(GRAFANA, "utf8"));
    const rules = (YAML.parse(fs.readFileSync(ALERTS, "utf8")) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
    const exprs = [...(dashboard.panels as Panel[]).flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...rules.map((r) => r.expr)];
    for (const e of exprs) for (const m of uses(e).metrics) read.add(familyOf(m, families)?.name ?? m);
    const empty = [...read].filter((name) => (families.get(name)?.samples.length ?? 0) === 0);
    assert.deepEqual(empty, []);
  });

  it("the lint catches a misspelled metric, a label no metric carries, rate() of a gauge and a quantile without le", () => {
    assert.deepEqual(lint("rate(nutcracker_requests_total[5m])", families), []);
    assert.deepEqual(lint("nutcracker_request_total", families), ["nutcracker_request_total is not exported"]);
    assert.deepEqual(lint('sum by (shard) (nutcracker_requests_total{pool="a"})', families), ["label 'shard' is on none of nutcracker_requests_total"]);
    assert.deepEqual(lint("rate(nutcracker_server_ejected[5m])", families), ["rate() of nutcracker_server_ejected, a gauge"]);
    assert.deepEqual(lint("histogram_quantile(0.9, sum by (pool) (rate(nutcracker_request_duration_seconds_bucket[5m])))", families),
      ["histogram_quantile over an aggregation that drops 'le'"]);
  });

  it("every Grafana query, variable and annotation names metrics and labels the proxy exports", () => {
    const dashboard = JSON.parse(fs.readFileSync(GRAFANA, "utf8"));
    const problems: string[] = [];
    for (const panel of dashboard.panels as Panel[]) {
      for (const t of panel.targets ?? []) problems.push(...lint(t.expr, families).map((p) => `panel '${panel.title}': ${p}: ${t.expr}`));
    }
    for (const v of dashboard.templating.list as { name: string; type: string; definition?: string }[]) {
      if (v.type !== "query") continue;
      const m = /^label_values\((.+),\s*([a-zA-Z_]+)\)$/.exec(v.definition ?? "");
      assert.ok(m !== null, `variable ${v.name}: label_values(metric, label)`);
      problems.push(...lint(m[1], families).map((p) => `variable ${v.name}: ${p}`));
      const family = familyOf(uses(m[1]).metrics[0], families);
      if (family !== null && !labelsOf(family).has(m[2]) && !TARGET_LABELS.has(m[2])) problems.push(`variable ${v.name}: no label ${m[2]}`);
    }
    for (const a of dashboard.annotations.list as { name: string; expr: string }[]) {
      problems.push(...lint(a.expr, families).map((p) => `annotation '${a.name}': ${p}`));
    }
    assert.deepEqual(problems, []);
  });

  it("the Grafana dashboard is importable: unique ids, a 24-column grid, every query on the datasource variable, legends that name kept labels", () => {
    const dashboard = JSON.parse(fs.readFileSync(GRAFANA, "utf8"));
    assert.equal(dashboard.uid, "twemproxy-ts");
    assert.ok(dashboard.templating.list.some((v: { name: string; type: string }) => v.name === "datasource" && v.type === "datasource"));
    const panels = dashboard.panels as Panel[];
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, "unique panel ids");
    const problems: string[] = [];
    for (const p of panels) {
      const g = p.gridPos;
      if (!(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0)) problems.push(`'${p.title}' is off the grid`);
      if (p.type === "row") continue;
      if (p.datasource?.uid !== "${datasource}") problems.push(`'${p.title}' is not on the datasource variable`);
      if ((p.targets ?? []).length === 0) problems.push(`'${p.title}' has no query`);
      for (const t of p.targets ?? []) {
        const kept = keptLabels(t.expr, families);
        for (const l of templateLabels(t.legendFormat ?? "")) if (!kept.has(l)) problems.push(`'${p.title}': legend {{${l}}} not kept by ${t.expr}`);
      }
    }
    const titles = panels.map((p) => p.title.toLowerCase()).join(" | ");
    for (const topic of ["requests/s", "p99", "ejected", "replica lag", "reloads", "migration"]) assert.ok(titles.includes(topic), `a panel about ${topic}`);
    assert.deepEqual(problems, []);
  });

  it("every alert rule is well-formed and queries only exported metrics and labels; its annotations name labels it keeps", () => {
    const doc = YAML.parse(fs.readFileSync(ALERTS, "utf8")) as { groups: { name: string; rules: Rule[] }[] };
    const rules = doc.groups.flatMap((g) => g.rules);
    const names = rules.map((r) => r.alert);
    assert.equal(new Set(names).size, names.length, "unique alert names");
    for (const wanted of ["TwemproxyServerEjected", "TwemproxyPoolDown", "TwemproxyReplicaLagging", "TwemproxyReloadFailed", "TwemproxyHighLatency",
      "TwemproxyMigrationErrors", "TwemproxyMigrationStalled"]) {
      assert.ok(names.includes(wanted), wanted);
    }
    const problems: string[] = [];
    for (const r of rules) {
      const where = `alert ${r.alert}`;
      if (!/^[A-Z][A-Za-z0-9]+$/.test(r.alert)) problems.push(`${where}: name`);
      if (r.for !== undefined && !/^\d+[smh]$/.test(r.for)) problems.push(`${where}: for '${r.for}'`);
      if (!["critical", "warning", "info"].includes(r.labels?.severity)) problems.push(`${where}: severity`);
      if (!r.annotations?.summary || !r.annotations?.description) problems.push(`${where}: summary and description`);
      problems.push(...lint(r.expr, families).map((p) => `${where}: ${p}`));
      const kept = keptLabels(r.expr, families);
      for (const text of Object.values(r.annotations ?? {})) {
        for (const l of templateLabels(text)) if (l !== "value" && !kept.has(l)) problems.push(`${where}: {{ $labels.${l} }} not kept`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
