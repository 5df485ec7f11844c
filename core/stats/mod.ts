/**
 * Stats: twemproxy's counters and JSON, the stats port, and the Prometheus
 * exposition with per-command histograms. The admin API and CLI import from here.
 */
export { PoolCounters, ServerCounters } from "./counters.ts";
export { describeStats, HEADER_STAT_FIELDS, POOL_STAT_FIELDS, SERVER_STAT_FIELDS, type StatField, type StatKind } from "./fields.ts";
export { Histogram, LATENCY_BUCKETS_SECONDS, SIZE_BUCKETS_BYTES } from "./histogram.ts";
export { type CommandSeries, createMetrics, MAX_COMMANDS_PER_SERVER, Metrics } from "./metrics.ts";
export { EJECTED_REASON, type Eligibility, eligibility, lagOf, READ_STATE_REASONS, ROLE_NAMES, shardOf } from "./nodes.ts";
export { escapeHelp, escapeLabelValue, formatValue, metricName, PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
export { type ReporterOptions, StatsReporter } from "./reporter.ts";
export { startStatsPort } from "./port.ts";
export {
  connectionTotals,
  type ConnectionTotals,
  type PoolSnapshot,
  renderStatsJson,
  serversInStatsOrder,
  type ServerSnapshot,
  type StatsHeader,
  takeSnapshot,
} from "./snapshot.ts";
