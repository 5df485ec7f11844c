/**
 * Per-request metrics twemproxy never had: latency and request/reply size histograms
 * per pool, server and command. The engine calls `observe` once per answered server
 * request (each fragment of a multi-key request separately); after the first request
 * of a command on a server it costs two Map lookups and three histogram updates.
 */
import type { Observer } from "../proxy/mod.ts";
import type { Server } from "../proxy/server.ts";
import { Histogram, LATENCY_BUCKETS_SECONDS, SIZE_BUCKETS_BYTES } from "./histogram.ts";

/** Distinct commands tracked per server before the rest are counted as "other". */
export const MAX_COMMANDS_PER_SERVER = 512;

/** The histograms of one command on one server. */
export interface CommandSeries {
  readonly pool: string;
  readonly server: string;
  /** The lower-case command name; "unknown" when the engine gave none, "other" past the cap. */
  readonly command: string;
  /** Seconds from handing the request to the server connection to parsing its reply. */
  readonly latency: Histogram;
  readonly requestSize: Histogram;
  readonly responseSize: Histogram;
}

/** Collects per-request histograms; make one before startProxy and pass `observe` as deps.observe. */
export class Metrics {
  /** The engine's hook: `startProxy(conf, { ..., observe: metrics.observe })`. */
  readonly observe: Observer;
  private readonly byServer = new Map<Server, Map<string, CommandSeries>>();

  constructor() {
    this.observe = (pool, server, req, reply, now) => {
      let commands = this.byServer.get(server);
      if (commands === undefined) {
        commands = new Map();
        this.byServer.set(server, commands);
      }
      let series = commands.get(req.command);
      if (series === undefined) series = addSeries(commands, pool.conf.name, server.conf.id, req.command);
      const elapsedMs = now - req.sentAt;
      series.latency.observe(elapsedMs > 0 ? elapsedMs / 1000 : 0);
      series.requestSize.observe(req.bytes.length);
      series.responseSize.observe(reply.length);
    };
  }

  /** The series of one server, sorted by command name. */
  seriesOf(server: Server): CommandSeries[] {
    const commands = this.byServer.get(server);
    if (commands === undefined) return [];
    return [...commands.values()].sort((a, b) => (a.command < b.command ? -1 : a.command > b.command ? 1 : 0));
  }

  /**
   * Add the latency bucket counts of every command of `server` into `out` (one entry per
   * LATENCY_BUCKETS_SECONDS bound plus +Inf, not cumulative); no allocation.
   * @example const out = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1); metrics.addLatencyCounts(server, out);
   */
  addLatencyCounts(server: Server, out: Float64Array): void {
    const commands = this.byServer.get(server);
    if (commands === undefined) return;
    for (const series of commands.values()) {
      const counts = series.latency.counts;
      for (let i = 0; i < counts.length && i < out.length; i++) out[i] += counts[i];
    }
  }

  /** Forget servers no longer in any pool (after a reload rebuilt them). */
  retain(live: ReadonlySet<Server>): void {
    for (const server of this.byServer.keys()) {
      if (!live.has(server)) this.byServer.delete(server);
    }
  }
}

/** Create the histograms for a new command; past the cap, count it in the shared "other" series. */
function addSeries(commands: Map<string, CommandSeries>, pool: string, server: string, command: string): CommandSeries {
  if (commands.size >= MAX_COMMANDS_PER_SERVER) {
    let other = commands.get(OTHER);
    if (other === undefined) {
      other = newSeries(pool, server, OTHER);
      commands.set(OTHER, other);
    }
    return other;
  }
  const series = newSeries(pool, server, command === "" ? "unknown" : command);
  commands.set(command, series);
  return series;
}

const OTHER = "other";

function newSeries(pool: string, server: string, command: string): CommandSeries {
  return {
    pool,
    server,
    command,
    latency: new Histogram(LATENCY_BUCKETS_SECONDS),
    requestSize: new Histogram(SIZE_BUCKETS_BYTES),
    responseSize: new Histogram(SIZE_BUCKETS_BYTES),
  };
}

/** Make the metrics registry. */
export function createMetrics(): Metrics {
  return new Metrics();
}
