/**
 * One stats view over several worker processes (`--workers N`): their snapshots summed into
 * the twemproxy JSON shape, and their Prometheus texts merged under the same names. Counters
 * and gauges that count things (connections, queues) are summed; state gauges (a server
 * ejected, a node's role, a timestamp) take the largest value. Counters of workers that have
 * exited are kept (`Retired`), so a sum never goes backwards when a worker is replaced.
 */
import { POOL_STAT_FIELDS, SERVER_STAT_FIELDS, type StatField } from "./fields.ts";
import type { ConnectionTotals, PoolSnapshot, ServerSnapshot } from "./snapshot.ts";

/** One worker's counters: its pool snapshots and connection totals. */
export interface SnapshotPart {
  readonly pools: readonly PoolSnapshot[];
  readonly totals: ConnectionTotals;
}

/** Gauges whose values add up over processes; every other gauge takes the largest value. */
export const SUMMED_GAUGES: ReadonlySet<string> = new Set([
  "nutcracker_curr_connections",
  "nutcracker_client_connections",
  "nutcracker_server_connections",
  "nutcracker_in_queue",
  "nutcracker_in_queue_bytes",
  "nutcracker_out_queue",
  "nutcracker_out_queue_bytes",
]);

/** Combine values of one field: counters and counting gauges add up, timestamps take the latest. */
function combine(fields: readonly StatField[], into: number[], values: readonly number[], countersOnly: boolean): void {
  for (let i = 0; i < fields.length; i++) {
    const kind = fields[i].kind;
    if (kind === "counter") into[i] += values[i];
    else if (countersOnly) continue;
    else if (kind === "gauge") into[i] += values[i];
    else into[i] = Math.max(into[i], values[i]);
  }
}

/**
 * Counters of workers that exited. Only counters are kept (a gone process holds no
 * connections), and only pools and servers some live worker still reports show them.
 */
export class Retired {
  private readonly pools = new Map<string, { values: number[]; servers: Map<string, number[]> }>();
  total = 0;
  private readonly series = new Map<string, number>();

  /** Keep the counters of a worker's last report. */
  add(part: SnapshotPart, prometheus: string | null): void {
    this.total += part.totals.total;
    for (const pool of part.pools) {
      let kept = this.pools.get(pool.name);
      if (kept === undefined) {
        kept = { values: POOL_STAT_FIELDS.map(() => 0), servers: new Map() };
        this.pools.set(pool.name, kept);
      }
      combine(POOL_STAT_FIELDS, kept.values, pool.values, true);
      for (const server of pool.servers) {
        const values = kept.servers.get(server.name) ?? SERVER_STAT_FIELDS.map(() => 0);
        combine(SERVER_STAT_FIELDS, values, server.values, true);
        kept.servers.set(server.name, values);
      }
    }
    if (prometheus !== null) for (const [key, value] of countingSeries(parsePrometheus(prometheus))) {
      this.series.set(key, (this.series.get(key) ?? 0) + value);
    }
  }

  /** The kept counters of pool `pool` (server `server`), or null. */
  poolValues(pool: string): readonly number[] | null {
    return this.pools.get(pool)?.values ?? null;
  }

  serverValues(pool: string, server: string): readonly number[] | null {
    return this.pools.get(pool)?.servers.get(server) ?? null;
  }

  /** A counter or histogram series' kept value, by its text before the value (`name{labels}`). */
  seriesValue(key: string): number {
    return this.series.get(key) ?? 0;
  }
}

/**
 * Sum the workers' snapshots: pools and servers in the order the first worker lists them
 * (others' extra ones appended), values combined per field kind, plus `retired` counters.
 * @example sumSnapshots([w1, w2], new Retired()).pools[0].values // each field summed
 */
export function sumSnapshots(parts: readonly SnapshotPart[], retired: Retired): SnapshotPart {
  const pools = new Map<string, { values: number[]; servers: Map<string, number[]> }>();
  let total = retired.total;
  let curr = 0;
  for (const part of parts) {
    total += part.totals.total;
    curr += part.totals.curr;
    for (const pool of part.pools) {
      let sum = pools.get(pool.name);
      if (sum === undefined) {
        sum = { values: POOL_STAT_FIELDS.map(() => 0), servers: new Map() };
        const kept = retired.poolValues(pool.name);
        if (kept !== null) combine(POOL_STAT_FIELDS, sum.values, kept, true);
        pools.set(pool.name, sum);
      }
      combine(POOL_STAT_FIELDS, sum.values, pool.values, false);
      for (const server of pool.servers) addServer(sum.servers, pool.name, server, retired);
    }
  }
  const out: PoolSnapshot[] = [...pools].map(([name, sum]) => ({
    name,
    values: sum.values,
    servers: [...sum.servers].map(([serverName, values]) => ({ name: serverName, values })),
  }));
  return { pools: out, totals: { total, curr } };
}

function addServer(servers: Map<string, number[]>, pool: string, server: ServerSnapshot, retired: Retired): void {
  let values = servers.get(server.name);
  if (values === undefined) {
    values = SERVER_STAT_FIELDS.map(() => 0);
    const kept = retired.serverValues(pool, server.name);
    if (kept !== null) combine(SERVER_STAT_FIELDS, values, kept, true);
    servers.set(server.name, values);
  }
  combine(SERVER_STAT_FIELDS, values, server.values, false);
}

// ---- Prometheus -------------------------------------------------------------

type FamilyType = "counter" | "gauge" | "histogram" | "untyped";

/** A metric family of an exposition: its HELP line, type, and samples (`name{labels}` -> value) in order. */
interface Family {
  readonly name: string;
  help: string;
  type: FamilyType;
  readonly samples: Map<string, number>;
}

/** An exposition's families in order. */
export type Exposition = Map<string, Family>;

const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"];

/** The family a sample name belongs to: itself, or a histogram's name without its suffix. */
function familyOf(families: Exposition, sampleName: string): Family | undefined {
  const own = families.get(sampleName);
  if (own !== undefined) return own;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!sampleName.endsWith(suffix)) continue;
    const family = families.get(sampleName.slice(0, -suffix.length));
    if (family?.type === "histogram") return family;
  }
  return undefined;
}

function family(families: Exposition, name: string): Family {
  let found = families.get(name);
  if (found === undefined) {
    found = { name, help: "", type: "untyped", samples: new Map() };
    families.set(name, found);
  }
  return found;
}

/**
 * Read Prometheus text (format 0.0.4, as renderPrometheus writes it: HELP and TYPE before
 * each family's samples, no timestamps).
 */
export function parsePrometheus(text: string): Exposition {
  const families: Exposition = new Map();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const fam = family(families, meta[2]);
      if (meta[1] === "HELP") fam.help = meta[3];
      else fam.type = meta[3] as FamilyType;
      continue;
    }
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    const key = line.slice(0, space);
    const brace = key.indexOf("{");
    const name = brace < 0 ? key : key.slice(0, brace);
    const fam = familyOf(families, name) ?? family(families, name);
    fam.samples.set(key, parseValue(line.slice(space + 1)));
  }
  return families;
}

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/** Whether a family's values add up over processes. */
function isSummed(fam: Family): boolean {
  return fam.type === "counter" || fam.type === "histogram" || SUMMED_GAUGES.has(fam.name);
}

/** The counter and histogram samples of an exposition (what a retired worker leaves behind). */
function* countingSeries(families: Exposition): Iterable<[string, number]> {
  for (const fam of families.values()) {
    if (fam.type === "counter" || fam.type === "histogram") yield* fam.samples;
  }
}

/**
 * Merge the workers' expositions into one: families in first-seen order, each sample
 * summed (counters, histograms, counting gauges, plus `retired`) or the largest value
 * (other gauges). Families named in `skip` are left out (the caller writes its own).
 * @example mergePrometheus([textOfWorker1, textOfWorker2], retired, new Set(["nutcracker_uptime_seconds"]))
 */
export function mergePrometheus(texts: readonly string[], retired: Retired, skip: ReadonlySet<string> = new Set()): string {
  const merged: Exposition = new Map();
  for (const text of texts) {
    for (const fam of parsePrometheus(text).values()) {
      if (skip.has(fam.name)) continue;
      const into = family(merged, fam.name);
      if (into.samples.size === 0 && into.help === "") {
        into.help = fam.help;
        into.type = fam.type;
      }
      const summed = isSummed(into);
      for (const [key, value] of fam.samples) {
        const had = into.samples.get(key);
        if (had === undefined) into.samples.set(key, summed ? value + retired.seriesValue(key) : value);
        else into.samples.set(key, summed ? had + value : Math.max(had, value));
      }
    }
  }
  return renderExposition(merged);
}

/** Exposition text: HELP, TYPE, samples, per family. */
export function renderExposition(families: Exposition): string {
  const lines: string[] = [];
  for (const fam of families.values()) {
    if (fam.help !== "") lines.push(`# HELP ${fam.name} ${fam.help}`);
    if (fam.type !== "untyped") lines.push(`# TYPE ${fam.name} ${fam.type}`);
    for (const [key, value] of fam.samples) lines.push(`${key} ${formatValue(value)}`);
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}
