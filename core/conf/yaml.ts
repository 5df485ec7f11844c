/**
 * The one module that touches the `yaml` package. It turns config text into a small
 * tree of strings with line numbers, refusing what twemproxy's libyaml checks refuse
 * (several documents, anchors, aliases, tags, flow collections). Everything else in
 * core/conf works on this tree.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Node as YamlNode, YAMLError } from "yaml";

/** A scalar: always the text as written (the failsafe schema never turns it into a number). */
export interface YScalar {
  readonly kind: "scalar";
  readonly value: string;
  readonly line: number;
}

/** A block sequence. */
export interface YSeq {
  readonly kind: "seq";
  readonly items: readonly YNode[];
  readonly line: number;
}

/** One `key: value` pair of a mapping; the key is always a scalar. */
export interface YPair {
  readonly key: YScalar;
  readonly value: YNode;
}

/** A block mapping, pairs in source order (duplicates kept so the caller can name them). */
export interface YMap {
  readonly kind: "map";
  readonly pairs: readonly YPair[];
  readonly line: number;
}

export type YNode = YScalar | YSeq | YMap;

/** A syntax problem, with the 1-based line it was found on. */
export class YamlSyntaxError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.name = "YamlSyntaxError";
    this.line = line;
  }
}

/**
 * Parse YAML text into a YNode tree; null for an empty document (only comments or blank).
 * Throws YamlSyntaxError for a syntax error or a construct twemproxy does not accept.
 * @example parseYaml("alpha:\n  listen: 127.0.0.1:22121\n") // { kind: "map", ... }
 */
export function parseYaml(text: string): YNode | null {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    schema: "failsafe",
    uniqueKeys: false,
    prettyErrors: false,
  });
  const lineOf = (offset: number) => lines.linePos(offset).line;
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw syntaxError(problem, lineOf);
  if (doc.contents === null) return null;
  return convert(doc.contents as YamlNode, lineOf);
}

function syntaxError(err: YAMLError, lineOf: (offset: number) => number): YamlSyntaxError {
  const text = err.message.split("\n")[0];
  return new YamlSyntaxError(lineOf(err.pos[0]), `yaml: ${text}`);
}

function convert(node: YamlNode, lineOf: (offset: number) => number): YNode {
  const line = lineOf(node.range?.[0] ?? 0);
  if (isAlias(node)) throw new YamlSyntaxError(line, "yaml: aliases are not allowed");
  if (node.anchor) throw new YamlSyntaxError(line, "yaml: anchors are not allowed");
  if (node.tag) throw new YamlSyntaxError(line, "yaml: tags are not allowed");
  if (isScalar(node)) return { kind: "scalar", value: String(node.value ?? ""), line };
  if (node.flow) throw new YamlSyntaxError(line, "yaml: flow collections ([...] and {...}) are not allowed");
  if (isSeq(node)) {
    const items = node.items.map((item) => convert(item as YamlNode, lineOf));
    return { kind: "seq", items, line };
  }
  if (isMap(node)) {
    const pairs = node.items.map((pair) => convertPair(pair.key as YamlNode, pair.value as YamlNode | null, lineOf));
    return { kind: "map", pairs, line };
  }
  throw new YamlSyntaxError(line, "yaml: unsupported node");
}

function convertPair(key: YamlNode, value: YamlNode | null, lineOf: (offset: number) => number): YPair {
  const k = convert(key, lineOf);
  if (k.kind !== "scalar") throw new YamlSyntaxError(k.line, "yaml: keys must be plain strings");
  // `key:` with nothing after it: libyaml hands twemproxy an empty scalar; do the same.
  const v: YNode = value === null ? { kind: "scalar", value: "", line: k.line } : convert(value, lineOf);
  return { key: k, value: v };
}
