/**
 * Live counters, named and counted as twemproxy 0.5.0 counts them. The proxy bumps
 * fields directly (no lookups on the hot path); reporters read them by the names in
 * fields.ts. The two connection gauges are accessors so that raising them also counts
 * connections opened, which twemproxy's `total_connections` needs and no field holds.
 */

/** Per-pool counters (twemproxy's pool-level stats). */
export class PoolCounters {
  client_eof = 0;
  client_err = 0;
  server_ejects = 0;
  forward_error = 0;
  fragments = 0;
  /**
   * Requests read from clients, each counted once however many fragments it became and
   * whether or not a server saw it (not a twemproxy field; the dashboard's pool request rate).
   */
  client_requests = 0;
  /** Client connections accepted since start (not a twemproxy field; feeds total_connections). */
  client_connections_opened = 0;
  private openClients = 0;

  /** Gauge: open client connections. */
  get client_connections(): number {
    return this.openClients;
  }

  set client_connections(n: number) {
    if (n > this.openClients) this.client_connections_opened += n - this.openClients;
    this.openClients = n;
  }
}

/** Per-server counters (twemproxy's server-level stats). */
export class ServerCounters {
  server_eof = 0;
  server_err = 0;
  server_timedout = 0;
  /** Gauge: unix time in microseconds of the last ejection, 0 if never. */
  server_ejected_at = 0;
  requests = 0;
  request_bytes = 0;
  responses = 0;
  response_bytes = 0;
  /** Gauges: requests waiting to be written, and sent but not yet answered. */
  in_queue = 0;
  in_queue_bytes = 0;
  out_queue = 0;
  out_queue_bytes = 0;
  /** Connections opened to this server since start (not a twemproxy field; feeds total_connections). */
  server_connections_opened = 0;
  private openConns = 0;

  /** Gauge: open connections to this server. */
  get server_connections(): number {
    return this.openConns;
  }

  set server_connections(n: number) {
    if (n > this.openConns) this.server_connections_opened += n - this.openConns;
    this.openConns = n;
  }
}
