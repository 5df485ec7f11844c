/**
 * Parsers for the address forms in a nutcracker.yml: `listen:` ("host:port" or
 * "/path/sock [mode]"), each `servers:` line ("host:port:weight [name]" or
 * "/path/sock:weight [name]") and each `replicas:` entry ("host:port[:weight]"). Like
 * twemproxy, the first two are split from the right, so an unbracketed IPv6 host
 * ("::1:6379:1") works; a bracketed one ("[::1]:6379:1") is accepted too. Failures come
 * back as twemproxy's phrases, never thrown.
 */
import type { Addr } from "../net.ts";
import type { ServerConf } from "./types.ts";

/** A parse result: the value, or the phrase that completes `"key" "value" ...`. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly phrase: string };

/** twemproxy keeps libmemcached's ring names: an unnamed server on this port is named by its host alone. */
const KETAMA_DEFAULT_PORT = 11211;

const LISTEN_FORMAT = '"hostname:port"';
const SOCKET_FORMAT = '"socket_path permission"';
const SERVER_FORMAT = '"hostname:port:weight [name]" or "/path/unix_socket:weight [name]"';
const SERVER_SHORT = '"hostname:port:weight [name]"';
const REPLICA_FORMAT = '"hostname:port[:weight]"';

/** A listen address and its text as written. */
export interface ListenValue {
  readonly addr: Addr;
  readonly text: string;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(phrase: string): Parsed<T> => ({ ok: false, phrase });

/**
 * Read a non-negative decimal integer the way twemproxy's nc_atoi does: digits only,
 * no sign, no spaces, at most 2^31-1. Returns -1 when the text is not such a number.
 */
export function atoi(text: string): number {
  if (text.length === 0 || text.length > 10) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n > 0x7fffffff ? -1 : n;
}

/** Drop the brackets of "[::1]" so the adapter gets a plain IPv6 literal. */
function bareHost(host: string): string {
  return host.length > 2 && host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function validPort(n: number): boolean {
  return n >= 1 && n <= 65535;
}

/**
 * Parse a `listen:` value.
 * @example parseListen("127.0.0.1:22121") // ok: { kind: "tcp", host: "127.0.0.1", port: 22121 }
 * @example parseListen("/tmp/nc.sock 0666") // ok: { kind: "unix", path: "/tmp/nc.sock", mode: 0o666 }
 */
export function parseListen(text: string): Parsed<ListenValue> {
  return text.startsWith("/") ? parseSocketListen(text) : parseTcpListen(text);
}

function parseSocketListen(text: string): Parsed<ListenValue> {
  const space = text.lastIndexOf(" ");
  if (space < 0) return ok({ addr: { kind: "unix", path: text }, text });
  const permText = text.slice(space + 1);
  const mode = /^[0-7]{1,4}$/.test(permText) ? parseInt(permText, 8) : -1;
  if (mode < 0 || mode > 0o777) return fail(`has an invalid file permission in ${SOCKET_FORMAT} format string`);
  return ok({ addr: { kind: "unix", path: text.slice(0, space), mode }, text });
}

function parseTcpListen(text: string): Parsed<ListenValue> {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return fail(`has an invalid ${LISTEN_FORMAT} format string`);
  const host = bareHost(text.slice(0, colon));
  if (host.length === 0 || /\s/.test(host)) return fail(`has an invalid ${LISTEN_FORMAT} format string`);
  const port = atoi(text.slice(colon + 1));
  if (!validPort(port)) return fail(`has an invalid port in ${LISTEN_FORMAT} format string`);
  return ok({ addr: { kind: "tcp", host, port }, text });
}

/** The pieces of a server line, cut from the right as twemproxy cuts them. */
interface ServerParts {
  readonly hostText: string;
  readonly portText: string | null;
  readonly weightText: string;
  readonly name: string | null;
}

function splitServer(text: string, unix: boolean): ServerParts | null {
  let rest = text;
  let name: string | null = null;
  const space = rest.lastIndexOf(" ");
  if (space >= 0) {
    name = rest.slice(space + 1);
    rest = rest.slice(0, space);
    if (name.length === 0) return null;
  }
  const weightColon = rest.lastIndexOf(":");
  if (weightColon < 0) return null;
  const weightText = rest.slice(weightColon + 1);
  rest = rest.slice(0, weightColon);
  const portColon = rest.lastIndexOf(":");
  // A socket path may not hold a colon: twemproxy would take it for a port separator.
  if (unix) return portColon < 0 && rest.length > 0 ? { hostText: rest, portText: null, weightText, name } : null;
  if (portColon < 0) return null;
  const hostText = rest.slice(0, portColon);
  if (hostText.length === 0 || /\s/.test(hostText)) return null;
  return { hostText, portText: rest.slice(portColon + 1), weightText, name };
}

/**
 * Parse one `servers:` line into a ServerConf.
 *
 * `id` (identity on the hash ring and in stats) is twemproxy's server name: the name
 * when given; otherwise "host:port" as written, except "host" alone for port 11211
 * (libmemcached compatibility) and "path:" for a unix socket (twemproxy keeps the colon).
 * @example parseServer("127.0.0.1:6379:1 cache-a") // ok: { weight: 1, name: "cache-a", id: "cache-a", ... }
 */
export function parseServer(text: string): Parsed<ServerConf> {
  const unix = text.startsWith("/");
  const parts = splitServer(text, unix);
  if (parts === null) return fail(`has an invalid ${SERVER_FORMAT} format string`);
  const weight = atoi(parts.weightText);
  if (weight < 0) return fail(`has an invalid weight in ${SERVER_SHORT} format string`);
  if (weight === 0) return fail(`has a zero weight in ${SERVER_SHORT} format string`);
  if (unix) {
    const addr: Addr = { kind: "unix", path: parts.hostText };
    return ok({ addr, weight, name: parts.name, id: parts.name ?? `${parts.hostText}:`, text });
  }
  const port = atoi(parts.portText ?? "");
  if (!validPort(port)) return fail(`has an invalid port in ${SERVER_SHORT} format string`);
  const addr: Addr = { kind: "tcp", host: bareHost(parts.hostText), port };
  const unnamed = port === KETAMA_DEFAULT_PORT ? parts.hostText : `${parts.hostText}:${parts.portText}`;
  return ok({ addr, weight, name: parts.name, id: parts.name ?? unnamed, text });
}

/** The pieces of a replica entry: host as written (brackets kept), port, weight or null. */
interface ReplicaParts {
  readonly hostText: string;
  readonly portText: string;
  readonly weightText: string | null;
}

/**
 * "[v6]:port[:weight]" or "host:port[:weight]". The weight being optional, an unbracketed
 * IPv6 host cannot be told from its port and weight, so it must be bracketed.
 */
function splitReplica(text: string): ReplicaParts | "ipv6" | null {
  let hostText: string;
  let rest: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 2 || text[close + 1] !== ":") return null;
    hostText = text.slice(0, close + 1);
    rest = text.slice(close + 2);
  } else {
    const colon = text.indexOf(":");
    if (colon < 0) return null;
    hostText = text.slice(0, colon);
    rest = text.slice(colon + 1);
  }
  const fields = rest.split(":");
  if (fields.length > 2) return text.startsWith("[") ? null : "ipv6";
  if (hostText.length === 0 || hostText.startsWith("/")) return null;
  return { hostText, portText: fields[0], weightText: fields.length === 2 ? fields[1] : null };
}

/**
 * Parse one `replicas:` entry into a ServerConf: `host:port[:weight]`, weight 1 when left
 * out, no name (a replica is known by its shard and address). Its `id` is "host:port" as
 * written (no port-11211 quirk: replicas are never on the ring), its `name` null.
 * @example parseReplica("127.0.0.1:7379") // ok: { weight: 1, name: null, id: "127.0.0.1:7379", ... }
 * @example parseReplica("[::1]:7379:2") // ok: { addr: { host: "::1", port: 7379 }, weight: 2, ... }
 */
export function parseReplica(text: string): Parsed<ServerConf> {
  const space = text.search(/\s/);
  if (space >= 0) {
    return text.slice(space).trim().length > 0
      ? fail(`has a name, but a replica takes none: write ${REPLICA_FORMAT}, the shard names it`)
      : fail(`has an invalid ${REPLICA_FORMAT} format string`);
  }
  const parts = splitReplica(text);
  if (parts === "ipv6") return fail(`has an unbracketed IPv6 host: write "[host]:port[:weight]"`);
  if (parts === null) return fail(`has an invalid ${REPLICA_FORMAT} format string`);
  const port = atoi(parts.portText);
  if (!validPort(port)) return fail(`has an invalid port in ${REPLICA_FORMAT} format string`);
  const weight = parts.weightText === null ? 1 : atoi(parts.weightText);
  if (weight < 0) return fail(`has an invalid weight in ${REPLICA_FORMAT} format string`);
  if (weight === 0) return fail(`has a zero weight in ${REPLICA_FORMAT} format string`);
  const addr: Addr = { kind: "tcp", host: bareHost(parts.hostText), port };
  return ok({ addr, weight, name: null, id: `${parts.hostText}:${parts.portText}`, text });
}

/**
 * A `sentinels:` entry: `host:port`; a trailing `:weight name`, as in server lines, is
 * accepted and ignored, so a server list can be reused as it is.
 */
export function parseSentinel(text: string): Parsed<Addr> {
  const parsed = parseReplica(text.trim().split(/\s+/)[0]);
  return parsed.ok ? ok(parsed.value.addr) : fail(parsed.phrase.replaceAll(REPLICA_FORMAT, '"host:port"'));
}

/**
 * An address as a comparison key: equal keys are the same backend. The host compares
 * case-insensitively, as DNS does.
 */
export function addrKey(addr: Addr): string {
  return addr.kind === "unix" ? `unix:${addr.path}` : `tcp:${addr.host.toLowerCase()}:${addr.port}`;
}
