/**
 * The `replicas:` key of a pool (shard identity -> list of "host:port[:weight]") and the
 * read policy names. Read in two steps, as twemproxy reads `servers:`: the entries are
 * parsed when the pool's keys are read (bad address, bad weight, bad shape), and checked
 * against the pool once all its keys are in (unknown shard, an address that is a master's
 * or listed twice), because `servers:` may come after `replicas:` in the file.
 */
import { formatAddr } from "../net.ts";
import { addrKey, parseReplica } from "./addr.ts";
import { codeNames } from "./codes.ts";
import type { Reporter } from "./report.ts";
import { ReadPolicy } from "./types.ts";
import type { ServerConf } from "./types.ts";
import type { YNode, YScalar } from "./yaml.ts";

/** A parsed server line or replica entry, with the line it was written on. */
export interface ServerEntry {
  readonly server: ServerConf;
  readonly line: number;
}

/** One `shard: [entries]` pair of `replicas:`, parsed but not yet checked against the pool. */
export interface ReplicaGroup {
  /** The shard identity as written: a server's name, or host:port of an unnamed server. */
  readonly shard: string;
  readonly line: number;
  readonly entries: readonly ServerEntry[];
}

/** `read_policy` names as written in YAML -> their ReadPolicy code. */
export const READ_POLICIES: Readonly<Record<string, ReadPolicy>> = {
  master: ReadPolicy.Master,
  prefer_master: ReadPolicy.PreferMaster,
  replica: ReadPolicy.Replica,
  prefer_replica: ReadPolicy.PreferReplica,
  any: ReadPolicy.Any,
};

const POLICIES = codeNames(READ_POLICIES, "is not a valid read policy");

/**
 * The YAML name of a ReadPolicy code, for messages and the admin API.
 * @example readPolicyName(ReadPolicy.PreferReplica) // "prefer_replica"
 */
export const readPolicyName = POLICIES.name;

/** conf_set_* for `read_policy`: one of READ_POLICIES' names. */
export const parseReadPolicy = POLICIES.parse;

const ENTRIES = '"hostname:port[:weight]" entries';

/**
 * Read the value of a pool's `replicas:` key: a mapping of shard identities to lists of
 * entries, each parsed by parseReplica. Throws the ConfError of the first bad shape or
 * entry, at that entry's line.
 */
export function readReplicas(pool: string, key: YScalar, value: YNode, report: Reporter): ReplicaGroup[] {
  if (value.kind !== "map") {
    throw report.key(pool, key.line, key.value, null, `must be a mapping of shard names to lists of ${ENTRIES}`);
  }
  return value.pairs.map(({ key: shard, value: list }) => {
    if (list.kind !== "seq") throw report.key(pool, shard.line, key.value, shard.value, `must be a list of ${ENTRIES}`);
    const entries = list.items.map((item): ServerEntry => {
      if (item.kind !== "scalar") throw report.key(pool, item.line, key.value, null, "entry is not a valid string");
      const parsed = parseReplica(item.value);
      if (!parsed.ok) throw report.key(pool, item.line, key.value, item.value, parsed.phrase);
      return { server: parsed.value, line: item.line };
    });
    return { shard: shard.value, line: shard.line, entries };
  });
}

/**
 * Check the replicas against the pool's servers: each shard named once and by the id of
 * one of `servers`; no replica at a master's address, none listed twice in the pool.
 * Returns each server's replicas, in the order of `servers`.
 */
export function checkReplicas(
  pool: string,
  groups: readonly ReplicaGroup[],
  servers: readonly ServerEntry[],
  report: Reporter,
): ServerConf[][] {
  const shardIndex = new Map(servers.map(({ server }, i) => [server.id, i]));
  const masters = new Map(servers.map((entry) => [addrKey(entry.server.addr), entry]));
  const seenShard = new Map<string, number>();
  const seenAddr = new Map<string, number>();
  const out: ServerConf[][] = servers.map(() => []);
  const fail = (line: number, value: string, phrase: string) => report.key(pool, line, "replicas", value, phrase);
  for (const group of groups) {
    const first = seenShard.get(group.shard);
    if (first !== undefined) throw fail(group.line, group.shard, `is a duplicate (first set on line ${first})`);
    seenShard.set(group.shard, group.line);
    const index = shardIndex.get(group.shard);
    if (index === undefined) {
      throw fail(group.line, group.shard,
        `is not a server of this pool (a server's name, or host:port of an unnamed server)`);
    }
    for (const { server, line } of group.entries) {
      const addr = addrKey(server.addr);
      const master = masters.get(addr);
      if (master !== undefined) {
        throw fail(line, server.text, `is the address of server '${master.server.id}' (line ${master.line})`);
      }
      const twice = seenAddr.get(addr);
      if (twice !== undefined) {
        throw fail(line, server.text, `is a duplicate of line ${twice} (same address '${formatAddr(server.addr)}')`);
      }
      seenAddr.set(addr, line);
      out[index].push(server);
    }
  }
  return out;
}
