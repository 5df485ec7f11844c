/**
 * Keeps each replica's read eligibility current: every replica_check_interval ms it asks
 * the master and the replicas of every shard for `INFO` (replication and persistence) and
 * decides, per replica, whether it may serve reads: reachable, not loading, not syncing,
 * link to the master up, and at most replica_max_lag bytes behind. When the master itself
 * is down, its replicas keep serving (flagged stale): stale reads beat errors then.
 */
import type { Req, ReqOwner } from "../req.ts";
import { ReadState, type Server } from "../server.ts";
import type { Shard } from "../topology.ts";
import { PeriodicCheck } from "./periodic.ts";

const INFO = new TextEncoder().encode("*1\r\n$4\r\nINFO\r\n");

/** What the last INFO of a node said; null fields were not in the reply. */
interface NodeInfo {
  /** The check round whose probe this answers. */
  round: number;
  readonly ok: boolean;
  readonly isReplica: boolean;
  readonly offset: number | null;
  readonly linkUp: boolean;
  readonly syncing: boolean;
  readonly loading: boolean;
  /** The replication ID it has (a master) or follows (a replica): equal when one replicates the other. */
  readonly replid: string | null;
}

const failed = (): NodeInfo => ({
  round: 0, ok: false, isReplica: false, offset: null, linkUp: false, syncing: false, loading: false, replid: null,
});

/** The checker of one redis pool's replicas. */
export class ReplicaMonitor extends PeriodicCheck {
  /** Check rounds started so far; a round's probes are sent when it starts. */
  round = 0;
  private readonly info = new Map<Server, NodeInfo>();

  protected check(): boolean {
    const round = ++this.round;
    const seen = new Set<Server>();
    for (const shard of this.shards()) {
      if (shard.replicas.length === 0) continue;
      for (const node of [shard.master, ...shard.replicas]) {
        seen.add(node);
        node.conns[0].probe(INFO, this.owner(shard, node, round));
      }
    }
    for (const node of this.info.keys()) if (!seen.has(node)) this.info.delete(node);
    return seen.size > 0;
  }

  private owner(shard: Shard, node: Server, round: number): ReqOwner {
    return {
      reqDone: (req: Req) => {
        const info = parseInfo(req.reply);
        info.round = round;
        this.info.set(node, info);
        this.judge(shard);
      },
    };
  }

  /** Recompute the read state of every replica of `shard` from the latest INFO replies. */
  private judge(shard: Shard): void {
    const master = this.info.get(shard.master);
    const now = this.clock.now();
    const masterDown = (master !== undefined && !master.ok) || shard.master.ejectedUntil > now;
    if (master !== undefined) shard.master.readState = master.ok ? ReadState.Eligible : ReadState.Down;
    const maxLag = this.conf().replicaMaxLag;
    for (const replica of shard.replicas) {
      const info = this.info.get(replica);
      replica.stale = false;
      if (info === undefined) continue;
      replica.lagBytes = info.offset !== null && master?.offset != null ? Math.max(0, master.offset - info.offset) : -1;
      const state = readState(info, masterDown, replica.lagBytes, maxLag);
      // A replica whose link is up but that follows another master's stream is not this shard's.
      const follows = masterDown || master?.replid == null || info.replid === master.replid;
      replica.readState = state === ReadState.Eligible && !follows ? ReadState.NotReplica : state;
      replica.stale = masterDown && replica.readState === ReadState.Eligible;
      // Everything the master had when probed in that round is on this replica now (read_your_writes).
      if (master?.offset != null && info.offset !== null && info.offset >= master.offset) {
        replica.syncedRound = Math.max(replica.syncedRound, master.round);
      }
    }
  }
}

function readState(info: NodeInfo, masterDown: boolean, lag: number, maxLag: number): ReadState {
  if (!info.ok) return ReadState.Down;
  if (info.loading) return ReadState.Loading;
  if (!info.isReplica) return ReadState.NotReplica;
  if (masterDown) return ReadState.Eligible;
  if (!info.linkUp || info.syncing) return ReadState.LinkDown;
  if (lag < 0) return ReadState.Unchecked;
  return lag > maxLag ? ReadState.Lagging : ReadState.Eligible;
}

/** The fields of an INFO bulk reply the monitor reads; an error or no reply is a failed node. */
export function parseInfo(reply: Uint8Array | null): NodeInfo {
  if (reply === null || reply[0] !== 0x24) return failed();
  const fields = new Map<string, string>();
  for (const line of new TextDecoder().decode(reply).split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  const isReplica = fields.get("role") === "slave";
  const offset = Number(fields.get(isReplica ? "slave_repl_offset" : "master_repl_offset"));
  return {
    round: 0,
    ok: true,
    isReplica,
    offset: Number.isFinite(offset) ? offset : null,
    linkUp: fields.get("master_link_status") === "up",
    syncing: fields.get("master_sync_in_progress") === "1",
    loading: fields.get("loading") === "1",
    replid: fields.get("master_replid") ?? null,
  };
}
