/**
 * The stats fields twemproxy 0.5.0 reports, per pool and per server, in its order,
 * with their kind and a one-line description. `-D` prints them; the stats code can
 * walk the same tables to emit JSON or Prometheus text.
 */

/** counter: only grows; gauge: goes up and down; timestamp: a point in time (usec since the epoch). */
export type StatKind = "counter" | "gauge" | "timestamp";

/** One stats field. */
export interface StatField {
  readonly name: string;
  readonly kind: StatKind;
  readonly description: string;
}

const field = (name: string, kind: StatKind, description: string): StatField => ({ name, kind, description });

/** Fields reported once per pool. */
export const POOL_STAT_FIELDS: readonly StatField[] = [
  field("client_eof", "counter", "client connections closed by the client"),
  field("client_err", "counter", "client connections closed after an error"),
  field("client_connections", "gauge", "client connections open now"),
  field("server_ejects", "counter", "times a server was ejected from the pool"),
  field("forward_error", "counter", "requests that could not be forwarded to a server"),
  field("fragments", "counter", "fragments made by splitting multi-key requests"),
];

/** Fields reported for each server of a pool. */
export const SERVER_STAT_FIELDS: readonly StatField[] = [
  field("server_eof", "counter", "server connections closed by the server"),
  field("server_err", "counter", "server connections closed after an error"),
  field("server_timedout", "counter", "requests that timed out waiting for this server"),
  field("server_connections", "gauge", "server connections open now"),
  field("server_ejected_at", "timestamp", "when the server was last ejected, usec since the epoch"),
  field("requests", "counter", "requests sent to the server"),
  field("request_bytes", "counter", "bytes of requests sent to the server"),
  field("responses", "counter", "responses received from the server"),
  field("response_bytes", "counter", "bytes of responses received from the server"),
  field("in_queue", "gauge", "requests waiting to be sent to the server"),
  field("in_queue_bytes", "gauge", "bytes of requests waiting to be sent to the server"),
  field("out_queue", "gauge", "requests sent and waiting for a reply"),
  field("out_queue_bytes", "gauge", "bytes of requests sent and waiting for a reply"),
];

/**
 * The text `nutcracker -D` prints after the version line: the pool fields, a blank
 * line, then the server fields, each as `  name<padding>"description"`.
 */
export function describeStats(): string[] {
  const row = (f: StatField) => `  ${f.name.padEnd(20)}"${f.description}"`;
  return ["pool stats:", ...POOL_STAT_FIELDS.map(row), "", "server stats:", ...SERVER_STAT_FIELDS.map(row)];
}

/** The stats JSON's top-level fields before the pools (`-D` does not print them, as in twemproxy). */
export const HEADER_STAT_FIELDS: readonly { readonly name: string; readonly description: string }[] = [
  { name: "service", description: "always \"nutcracker\"" },
  { name: "source", description: "host name of the machine running the proxy" },
  { name: "version", description: "twemproxy version this proxy is compatible with" },
  { name: "uptime", description: "seconds since the proxy started" },
  { name: "timestamp", description: "unix time in seconds when the stats were written" },
  { name: "total_connections", description: "connections opened since start: listeners, clients and servers" },
  { name: "curr_connections", description: "connections open now: listeners, clients and servers" },
];
