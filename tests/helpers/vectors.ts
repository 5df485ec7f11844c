/**
 * Loads the routing vectors recorded from twemproxy 0.5.0 (tests/vectors/) as bytes.
 * Tests only: it reads files with node:fs, which every runtime provides.
 */
import { readFileSync } from "node:fs";

/** A key as written in the vector files: UTF-8 text, or raw bytes in base64. */
export type VectorKey = string | { readonly b64: string };

/** One line of hashes.jsonl. */
export interface HashVector {
  readonly key: VectorKey;
  readonly len: number;
  readonly hash: Readonly<Record<string, number>>;
}

/** One server line of a placement case. */
export interface VectorServer {
  readonly port: number;
  readonly weight: number;
  readonly name: string | null;
}

/** One line of placement.jsonl. */
export interface PlacementCase {
  readonly id: string;
  readonly variant: string;
  readonly hash: string;
  readonly distribution: string;
  readonly hash_tag: string | null;
  readonly servers: readonly VectorServer[];
  readonly yml: string;
  readonly counts: readonly number[];
  /** assign[i] = server index (one digit) of key i. */
  readonly assign: string;
}

function readText(name: string): string {
  return readFileSync(new URL(`../vectors/${name}`, import.meta.url), "utf8");
}

function readJsonLines<T>(name: string): T[] {
  return readText(name).split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as T);
}

/** The bytes a vector key stands for. */
export function keyBytes(key: VectorKey): Uint8Array {
  if (typeof key === "string") return new TextEncoder().encode(key);
  const bin = atob(key.b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The 1,000 keys of keys.json, as bytes, in order. */
export function loadKeys(): Uint8Array[] {
  return (JSON.parse(readText("keys.json")) as VectorKey[]).map(keyBytes);
}

/** Every line of hashes.jsonl. */
export function loadHashVectors(): HashVector[] {
  return readJsonLines<HashVector>("hashes.jsonl");
}

/** Every line of placement.jsonl. */
export function loadPlacementCases(): PlacementCase[] {
  return readJsonLines<PlacementCase>("placement.jsonl");
}

/** The ring identity of a vector server: its name, else "127.0.0.1:port". */
export function serverId(server: VectorServer): string {
  return server.name ?? `127.0.0.1:${server.port}`;
}
