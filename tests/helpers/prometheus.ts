/**
 * A strict parser for the Prometheus text exposition format 0.0.4, for tests: HELP/TYPE
 * before samples, one contiguous block per family, valid names, label syntax and escapes;
 * and a check that a histogram's buckets are cumulative and agree with its _count.
 */
export interface Sample {
  name: string;
  labels: Map<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string | null;
  help: string | null;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Readonly<Record<string, readonly string[]>> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count"],
};

export function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!FLOAT.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** Parses `{a="x",b="y"}` starting at text[0] === "{"; returns the labels and the offset after "}". */
function parseLabels(text: string, where: string): { labels: Map<string, string>; end: number } {
  const labels = new Map<string, string>();
  let i = 1;
  while (text[i] !== "}") {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`${where}: label without '='`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`${where}: bad label name ${name}`);
    if (labels.has(name)) throw new Error(`${where}: duplicate label ${name}`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] !== "\\") {
        value += text[j];
        continue;
      }
      const esc = text[++j];
      if (esc === "n") value += "\n";
      else if (esc === "\\" || esc === '"') value += esc;
      else throw new Error(`${where}: bad escape \\${esc}`);
    }
    if (j >= text.length) throw new Error(`${where}: unterminated label value`);
    labels.set(name, value);
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`${where}: expected ',' or '}' after a label`);
  }
  return { labels, end: i + 1 };
}

function parseSample(line: string, where: string): Sample {
  const nameEnd = line.search(/[{ ]/);
  if (nameEnd <= 0) throw new Error(`${where}: no metric name`);
  const name = line.slice(0, nameEnd);
  if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
  let rest = line.slice(nameEnd);
  let labels = new Map<string, string>();
  if (rest.startsWith("{")) {
    const parsed = parseLabels(rest, where);
    labels = parsed.labels;
    rest = rest.slice(parsed.end);
  }
  const parts = rest.split(" ");
  if (parts[0] !== "" || parts.length < 2 || parts.length > 3) throw new Error(`${where}: expected ' value [timestamp]'`);
  if (parts.length === 3 && !/^-?\d+$/.test(parts[2])) throw new Error(`${where}: bad timestamp`);
  return { name, labels, value: parseValue(parts[1], where) };
}

/** The family a sample belongs to: its own name, or a histogram/summary base for suffixed names. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const own = families.get(name);
  if (own !== undefined) return own;
  for (const [type, suffixes] of Object.entries(SUFFIXES)) {
    for (const suffix of suffixes) {
      if (!name.endsWith(suffix)) continue;
      const base = families.get(name.slice(0, -suffix.length));
      if (base?.type === type) return base;
    }
  }
  return undefined;
}

/** Strictly parse an exposition; throws on the first violation. */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current: Family | null = null;
  const enter = (family: Family) => {
    if (current === family) return;
    if (closed.has(family.name)) throw new Error(`family ${family.name} is not contiguous`);
    if (current !== null) closed.add(current.name);
    current = family;
  };
  text.slice(0, -1).split("\n").forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line === "") throw new Error(`${where}: empty line`);
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      let family = families.get(name);
      if (family === undefined) {
        family = { name, type: null, help: null, samples: [] };
        families.set(name, family);
      }
      enter(family);
      if (family.samples.length > 0) throw new Error(`${where}: ${kind} after samples of ${name}`);
      if (kind === "TYPE") {
        if (family.type !== null) throw new Error(`${where}: second TYPE for ${name}`);
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
        family.type = rest;
      } else {
        if (family.help !== null) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`${where}: bad escape in HELP`);
        family.help = rest.replace(/\\(\\|n)/g, (_m, c) => (c === "n" ? "\n" : "\\"));
      }
      return;
    }
    if (line.startsWith("#")) return;
    const sample = parseSample(line, where);
    const family = familyOf(sample.name, families);
    if (family === undefined || family.type === null) throw new Error(`${where}: sample ${sample.name} before its TYPE`);
    enter(family);
    const id = `${sample.name}${JSON.stringify([...sample.labels].sort())}`;
    if (seen.has(id)) throw new Error(`${where}: duplicate sample ${id}`);
    seen.add(id);
    family.samples.push(sample);
  });
  for (const family of families.values()) {
    if (family.type === "histogram") checkHistogram(family);
  }
  return families;
}

/** Label set without `le`, as a key. */
const seriesKey = (labels: Map<string, string>) =>
  JSON.stringify([...labels].filter(([k]) => k !== "le").sort());

export function checkHistogram(family: Family): void {
  const series = new Map<string, { les: number[]; counts: number[]; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const key = seriesKey(s.labels);
    const entry = series.get(key) ?? { les: [], counts: [] };
    series.set(key, entry);
    if (s.name === `${family.name}_bucket`) {
      const le = s.labels.get("le");
      if (le === undefined) throw new Error(`${family.name}: bucket without le`);
      entry.les.push(parseValue(le, family.name));
      entry.counts.push(s.value);
    } else if (s.name === `${family.name}_sum`) entry.sum = s.value;
    else if (s.name === `${family.name}_count`) entry.count = s.value;
    else throw new Error(`${family.name}: unexpected sample ${s.name}`);
  }
  for (const [key, e] of series) {
    const where = `${family.name}${key}`;
    if (e.sum === undefined || e.count === undefined) throw new Error(`${where}: missing _sum or _count`);
    for (let i = 1; i < e.les.length; i++) {
      if (!(e.les[i] > e.les[i - 1])) throw new Error(`${where}: le not ascending`);
      if (e.counts[i] < e.counts[i - 1]) throw new Error(`${where}: buckets not cumulative`);
    }
    if (e.les.at(-1) !== Infinity) throw new Error(`${where}: no le="+Inf" bucket`);
    if (e.counts.at(-1) !== e.count) throw new Error(`${where}: +Inf bucket ${e.counts.at(-1)} != _count ${e.count}`);
  }
}

