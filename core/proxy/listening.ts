/**
 * A pool's front door: accepts clients on the pool's listen address, enforces
 * client_connections, and tracks open clients so shutdown can drain them.
 */
import type { Clock, Conn, Listener, Net } from "../net.ts";
import { formatAddr } from "../net.ts";
import type { Logger } from "../log.ts";
import type { Flusher } from "./flusher.ts";
import type { Pool } from "./pool.ts";
import type { Protocol } from "./protocol.ts";
import { ClientConn, type ClientLimits } from "./client.ts";

let nextClientId = 0;

export class Listening {
  readonly pool: Pool;
  readonly protocol: Protocol;
  readonly flusher: Flusher;
  readonly log: Logger;
  readonly limits: ClientLimits;
  private listener: Listener | null = null;
  private readonly clients = new Set<ClientConn>();
  private idle: (() => void) | null = null;

  constructor(pool: Pool, protocol: Protocol, flusher: Flusher, log: Logger, limits: ClientLimits) {
    this.pool = pool;
    this.protocol = protocol;
    this.flusher = flusher;
    this.log = log;
    this.limits = limits;
  }

  async start(net: Net): Promise<void> {
    const conf = this.pool.conf;
    this.listener = await net.listen(conf.listen, (conn) => this.accept(conn), { backlog: conf.backlog });
    this.log.log(5, `pool '${conf.name}' listening on ${formatAddr(this.listener.addr)}`);
  }

  /** The bound address (with the real port when the config said 0). */
  get address() {
    return this.listener?.addr ?? this.pool.conf.listen;
  }

  clientClosed(client: ClientConn): void {
    this.clients.delete(client);
    this.pool.stats.client_connections--;
    if (this.clients.size === 0 && this.idle !== null) this.idle();
  }

  /** Stop accepting. */
  async stopAccepting(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
  }

  /** Resolves when every client has closed, or after `graceMs` (then closes the rest). */
  async drain(graceMs: number, clock: Clock): Promise<void> {
    for (const client of this.clients) client.shutdown();
    if (this.clients.size > 0) {
      let timer: unknown = null;
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        timer = clock.setTimer(resolve, graceMs);
      });
      clock.clearTimer(timer);
    }
    for (const client of [...this.clients]) client.closeNow();
  }

  private accept(conn: Conn): void {
    const limit = this.pool.conf.clientConnections;
    if (limit > 0 && this.clients.size >= limit) {
      this.log.log(4, `pool '${this.pool.conf.name}': client_connections limit ${limit} reached; rejecting ${conn.remote}`);
      this.pool.stats.client_err++;
      conn.onClose = () => {};
      conn.write(this.protocol.errorReply("max number of clients reached"));
      conn.end();
      return;
    }
    this.pool.stats.client_connections++;
    this.clients.add(new ClientConn(nextClientId++, conn, this));
  }
}
