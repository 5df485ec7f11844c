/**
 * Memcached copies: memcached has no replication, so for a pool with `replicas:` the proxy
 * keeps the copies itself. Every change goes to the master and to each copy (the client
 * sees the master's reply); a copy whose write failed, or that was unreachable, has
 * missed changes, so it serves no reads until the proxy has flushed it (`flush_all`);
 * later writes refill it. The CopyMonitor flushes such copies every replica_check_interval.
 */
import { McCmd } from "../../memcache/request.ts";
import { isErrorReply, splitValues } from "../../memcache/reply.ts";
import { type ReplyGuard, Req, type ReqOwner } from "../req.ts";
import { ReadState, type Server } from "../server.ts";
import type { Shard } from "../topology.ts";
import { PeriodicCheck } from "./periodic.ts";

const FLUSH_ALL = new TextEncoder().encode("flush_all\r\n");
const OK = new TextEncoder().encode("OK\r\n");

/** A copy that missed a write must be flushed before it serves reads again. */
const copyGuard: ReplyGuard = {
  beforeFinish(req: Req, _reply: Uint8Array | null, transportFailed: boolean): boolean {
    if (transportFailed) missedWrites(req.node!);
    return false;
  },
};

/** Nodes that missed writes: no reads until flushed. */
const unflushed = new WeakSet<Server>();

function missedWrites(node: Server): void {
  unflushed.add(node);
  node.readState = ReadState.Down;
}

/** A copy's reply to a read that the master may answer better: an error, or fewer values than keys (a miss). */
export function copyMissed(req: Req, reply: Uint8Array | null): boolean {
  if (reply === null || isErrorReply(reply)) return true;
  return splitValues(reply).length < (req.fragKeys?.length ?? 1);
}

/** Send `req`'s copy to every replica of `shard` (the master got `req` itself). */
export function sendCopies(req: Req, shard: Shard): void {
  for (const replica of shard.replicas) {
    const copy = new Req(null, req.copy!);
    if (req.copy === req.bytes) {
      copy.kind = req.kind;
      copy.trailer = req.trailer;
      copy.trailerKind = req.trailerKind;
    } else {
      copy.kind = req.copyKind;
    }
    copy.node = replica;
    copy.guard = copyGuard;
    replica.connFor(0).send(copy);
  }
}

/** Flushes copies that are new or missed writes, then lets them serve reads. */
export class CopyMonitor extends PeriodicCheck {
  protected check(): boolean {
    let replicas = 0;
    for (const shard of this.shards()) {
      for (const replica of shard.replicas) {
        replicas++;
        // A copy the proxy has not flushed yet may hold anything: a new one starts unflushed.
        if (replica.readState === ReadState.Unchecked) unflushed.add(replica);
        if (unflushed.has(replica)) replica.conns[0].probe(FLUSH_ALL, flushed(replica), McCmd.FlushAll);
      }
    }
    return replicas > 0;
  }
}

function flushed(replica: Server): ReqOwner {
  return {
    reqDone(req: Req) {
      if (!sameBytes(req.reply, OK)) return void (replica.readState = ReadState.Down);
      unflushed.delete(replica);
      replica.readState = ReadState.Eligible;
    },
  };
}

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.length === b.length && a.every((byte, i) => byte === b[i]);
}
