/**
 * What a reload changes, pool by pool: old and new pools are matched by name first, then
 * (for pools left unmatched) by listen address. Pure data in, data out; the proxy applies
 * the plan. A pool whose protocol changed (redis: true/false) cannot keep its clients, so
 * it is planned as removed plus added (its address is still handed over, not re-bound).
 */
import type { PoolConf, ServerConf } from "../conf/types.ts";
import { readPolicyName } from "../conf/replicas.ts";
import { migrationModeName } from "../conf/migration.ts";
import { formatAddr } from "../net.ts";
import { PoolAction, type PoolChange } from "./types.ts";

/** One pool of the new config and the old pool it continues (null when added). */
export interface PoolPlan {
  readonly conf: PoolConf;
  readonly old: PoolConf | null;
  readonly change: PoolChange;
}

export interface ReloadPlan {
  /** The new config's pools, in its order. */
  readonly pools: readonly PoolPlan[];
  /** Old pools that continue in none of the new ones. */
  readonly removed: readonly PoolConf[];
  /** Every change, new pools first, then the removed ones (what a reload reports). */
  readonly changes: readonly PoolChange[];
}

/** The listen address as a key: equal keys are the same socket. */
export function listenKey(conf: PoolConf): string {
  return formatAddr(conf.listen);
}

/**
 * Plan the move from `old` pools to `next` ones.
 * @example planReload(current.pools, loadConf(text, file).pools).changes
 */
export function planReload(old: readonly PoolConf[], next: readonly PoolConf[]): ReloadPlan {
  const unmatched = new Set(old);
  const matchOf = new Map<PoolConf, PoolConf>();
  const claim = (conf: PoolConf, found: PoolConf | undefined) => {
    if (found === undefined || found.redis !== conf.redis) return;
    matchOf.set(conf, found);
    unmatched.delete(found);
  };
  for (const conf of next) claim(conf, [...unmatched].find((o) => o.name === conf.name));
  for (const conf of next) {
    if (!matchOf.has(conf)) claim(conf, [...unmatched].find((o) => listenKey(o) === listenKey(conf)));
  }
  const pools = next.map((conf) => planPool(conf, matchOf.get(conf) ?? null));
  const removed = [...unmatched];
  const gone = removed.map((conf): PoolChange => ({ pool: conf.name, action: PoolAction.Removed, details: [] }));
  return { pools, removed, changes: [...pools.map((p) => p.change), ...gone] };
}

function planPool(conf: PoolConf, old: PoolConf | null): PoolPlan {
  if (old === null) return { conf, old, change: { pool: conf.name, action: PoolAction.Added, details: [] } };
  const details = describeChanges(old, conf);
  const from = old.name === conf.name ? {} : { from: old.name };
  return { conf, old, change: { pool: conf.name, action: actionFor(old, conf, details), details, ...from } };
}

function actionFor(old: PoolConf, conf: PoolConf, details: readonly string[]): PoolAction {
  if (listenKey(old) !== listenKey(conf)) return PoolAction.Moved;
  if (old.name !== conf.name) return PoolAction.HandedOver;
  return details.length === 0 ? PoolAction.Unchanged : PoolAction.Changed;
}

/** The pool keys that differ ("hash fnv1a_64 -> md5"), then the server list's changes. */
export function describeChanges(old: PoolConf, conf: PoolConf): string[] {
  const out: string[] = [];
  for (const key of Object.keys(conf) as (keyof PoolConf)[]) {
    if (key === "shards" || key === "listen" || key === "listenText" || key === "name") continue;
    const before = showSetting(old, key);
    const after = showSetting(conf, key);
    if (before !== after) out.push(`${yamlKey(key)} ${key === "redisAuth" ? "changed" : `${before} -> ${after}`}`);
  }
  if (old.listenText !== conf.listenText) out.push(`listen ${old.listenText} -> ${conf.listenText}`);
  if (old.name !== conf.name) out.push(`name ${old.name} -> ${conf.name}`);
  return out.concat(serverChanges(old, conf));
}

/**
 * Servers added (+) or removed (-); "servers reordered" when only the order changed; then
 * replicas added or removed, as "shard/host:port:weight".
 */
function serverChanges(old: PoolConf, conf: PoolConf): string[] {
  const before = old.shards.map((s) => serverText(s.primary));
  const after = conf.shards.map((s) => serverText(s.primary));
  const out = added("server", before, after);
  if (out.length === 0 && before.join("\n") !== after.join("\n")) out.push("servers reordered");
  return out.concat(added("replica", replicaTexts(old), replicaTexts(conf)));
}

function added(what: string, before: string[], after: string[]): string[] {
  return [
    ...after.filter((t) => !before.includes(t)).map((t) => `${what} + ${t}`),
    ...before.filter((t) => !after.includes(t)).map((t) => `${what} - ${t}`),
  ];
}

function replicaTexts(conf: PoolConf): string[] {
  return conf.shards.flatMap((s) => s.replicas.map((r) => `${s.primary.id}/${formatAddr(r.addr)}:${r.weight}`));
}

function serverText(server: ServerConf): string {
  const name = server.name === null ? "" : ` ${server.name}`;
  return `${formatAddr(server.addr)}:${server.weight}${name}`;
}

/** The key as nutcracker.yml spells it: redisDb -> redis_db. */
function yamlKey(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A setting as written in YAML: codes by their names. */
function showSetting(conf: PoolConf, key: keyof PoolConf): string {
  if (key === "readPolicy") return readPolicyName(conf.readPolicy);
  if (key === "migration") return migrationModeName(conf.migration);
  return show(conf[key]);
}

function show(value: unknown): string {
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}
