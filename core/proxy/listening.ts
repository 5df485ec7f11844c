/**
 * A listen address and the clients it accepted. The listener belongs to the address, not
 * to a pool: a reload may hand it to another pool (a pool renamed, or pools swapping
 * addresses), since binding the address afresh would fail with "address in use".
 * Enforces client_connections and tracks open clients so shutdown can drain them.
 */
import type { Addr, Clock, Conn, Listener, Net } from "../net.ts";
import { formatAddr } from "../net.ts";
import type { Logger } from "../log.ts";
import type { Flusher } from "./flusher.ts";
import type { Pool } from "./pool.ts";
import { ClientConn } from "./client.ts";
import type { ProxyAbout } from "./protocol.ts";

let nextClientId = 0;

export class Listening {
  /** The pool new clients are accepted for. */
  pool: Pool;
  /** The configured address; its formatAddr() text is the key reloads match addresses by. */
  readonly listen: Addr;
  private readonly backlog: number;
  readonly flusher: Flusher;
  readonly log: Logger;
  private listener: Listener | null = null;
  private readonly clients = new Set<ClientConn>();
  private idle: (() => void) | null = null;

  /** The proxy this address belongs to, as INFO describes it. */
  readonly about: ProxyAbout;

  constructor(pool: Pool, listen: Addr, backlog: number, flusher: Flusher, log: Logger, about: ProxyAbout) {
    this.pool = pool;
    this.about = about;
    this.listen = listen;
    this.backlog = backlog;
    this.flusher = flusher;
    this.log = log;
  }

  async start(net: Net): Promise<void> {
    this.listener = await net.listen(this.listen, (conn) => this.accept(conn), { backlog: this.backlog });
    this.log.log(5, `pool '${this.pool.conf.name}' listening on ${formatAddr(this.listener.addr)}`);
  }

  /** The bound address (with the real port when the config said 0). */
  get address() {
    return this.listener?.addr ?? this.listen;
  }

  /** Open clients now. */
  get clientCount(): number {
    return this.clients.size;
  }

  clientClosed(client: ClientConn): void {
    this.clients.delete(client);
    client.home.stats.client_connections--;
    if (this.clients.size === 0 && this.idle !== null) this.idle();
  }

  /**
   * Give the address to `pool` (a reload): new clients are its clients; the clients of
   * the pool that had it finish their in-flight replies and are closed.
   */
  handOver(pool: Pool): void {
    if (pool === this.pool) return;
    this.pool = pool;
    this.log.log(5, `pool '${pool.conf.name}' takes over listen ${formatAddr(this.address)}`);
    for (const client of this.clients) client.shutdown();
  }

  /** Stop accepting. */
  async stopAccepting(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    await listener?.close();
  }

  /** A reload removed this address: stop accepting; each client closes once its replies are written. */
  async retire(): Promise<void> {
    await this.stopAccepting();
    for (const client of this.clients) client.shutdown();
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
    const pool = this.pool;
    const limit = pool.conf.clientConnections;
    if (limit > 0 && this.clients.size >= limit) {
      this.log.log(4, `pool '${pool.conf.name}': client_connections limit ${limit} reached; rejecting ${conn.remote}`);
      pool.stats.client_err++;
      conn.onClose = () => {};
      conn.write(pool.protocol.errorReply("max number of clients reached"));
      conn.end();
      return;
    }
    pool.stats.client_connections++;
    this.clients.add(new ClientConn(nextClientId++, conn, this, pool));
  }
}
