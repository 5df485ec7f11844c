/**
 * What both replica checkers share: a check of a pool's shards now, then every
 * replica_check_interval ms while the pool has replicas. The shards and the config are
 * read at each check, so a reload needs no restart.
 */
import type { Clock } from "../../net.ts";
import type { PoolConf } from "../../conf/types.ts";
import type { Shard } from "../topology.ts";

export abstract class PeriodicCheck {
  private timer: unknown = null;
  protected readonly shards: () => readonly Shard[];
  protected readonly conf: () => PoolConf;
  protected readonly clock: Clock;

  constructor(shards: () => readonly Shard[], conf: () => PoolConf, clock: Clock) {
    this.shards = shards;
    this.conf = conf;
    this.clock = clock;
  }

  /** Check now and from then on (again after a stop, or a reload that added replicas). */
  start(): void {
    if (this.timer === null) this.run();
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
  }

  /** One check over the current shards; false when there is nothing to watch (no replicas). */
  protected abstract check(): boolean;

  private run(): void {
    this.timer = this.check() ? this.clock.setTimer(() => this.run(), this.conf().replicaCheckInterval) : null;
  }
}
