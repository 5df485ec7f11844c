/**
 * One error vocabulary for every runtime: each adapter passes the runtime's socket
 * error through netError(), which gives it twemproxy's wording (glibc strerror, as
 * nc_strerror prints it). The original error stays reachable as `cause`.
 */

import { CloseReason } from "../core/net.ts";

/** An Error with the errno name ("ECONNREFUSED") when one is known, and its close reason code. */
export type NetError = Error & { code?: string; reason?: CloseReason };

/** errno name -> the close reason code the core counts by (anything else is CloseReason.Error). */
const REASONS: Readonly<Record<string, CloseReason>> = {
  ECONNREFUSED: CloseReason.Refused,
  ECONNRESET: CloseReason.Reset,
  EPIPE: CloseReason.Reset,
  ECONNABORTED: CloseReason.Reset,
  ETIMEDOUT: CloseReason.Timeout,
};

function withCode(err: Error, code: string | undefined): NetError {
  return Object.assign(err, code ? { code, reason: REASONS[code] ?? CloseReason.Error } : { reason: CloseReason.Error });
}

/** errno name -> strerror text, as twemproxy logs it. */
const STRERROR = {
  ECONNREFUSED: "Connection refused",
  ECONNRESET: "Connection reset by peer",
  ETIMEDOUT: "Connection timed out",
  EPIPE: "Broken pipe",
  ECONNABORTED: "Software caused connection abort",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  EADDRINUSE: "Address already in use",
  EADDRNOTAVAIL: "Cannot assign requested address",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  ENOTCONN: "Transport endpoint is not connected",
  EINVAL: "Invalid argument",
  EMFILE: "Too many open files",
  ENFILE: "Too many open files in system",
  ENOTSOCK: "Socket operation on non-socket",
  ENOTFOUND: "Name or service not known",
  EAI_NONAME: "Name or service not known",
  EAI_AGAIN: "Temporary failure in name resolution",
} as const satisfies Record<string, string>;

/** Deno reports some errors by class name only (Deno.errors.*). */
const DENO_NAMES: Readonly<Record<string, string>> = {
  ConnectionRefused: "ECONNREFUSED",
  ConnectionReset: "ECONNRESET",
  ConnectionAborted: "ECONNABORTED",
  TimedOut: "ETIMEDOUT",
  BrokenPipe: "EPIPE",
  AddrInUse: "EADDRINUSE",
  AddrNotAvailable: "EADDRNOTAVAIL",
  PermissionDenied: "EACCES",
  NotFound: "ENOENT",
  NotConnected: "ENOTCONN",
};

const KNOWN_TEXT: ReadonlySet<string> = new Set(Object.values(STRERROR));

/** An error for an errno name, worded as twemproxy prints it: errnoError("EPIPE").message === "Broken pipe". */
export function errnoError(code: keyof typeof STRERROR): NetError {
  return withCode(new Error(STRERROR[code]), code);
}

/** The error of a connect that did not finish within connectTimeoutMs. */
export function connectTimeoutError(): NetError {
  return errnoError("ETIMEDOUT");
}

/**
 * Normalize a runtime's socket error to twemproxy's wording.
 * @example netError(nodeErr).message === "Connection refused"
 */
export function netError(err: unknown): NetError {
  if (!(err instanceof Error)) return withCode(new Error(String(err)), undefined);
  if (KNOWN_TEXT.has(err.message) && (err as NetError).reason !== undefined) return err; // already normalized
  const code = errorCode(err);
  const text = code && code in STRERROR ? STRERROR[code as keyof typeof STRERROR] : undefined;
  const message = text ?? err.message.replace(/ \(os error \d+\)$/, "");
  return withCode(new Error(message, { cause: err }), code);
}

function errorCode(err: Error): string | undefined {
  const code = (err as NetError).code;
  if (typeof code === "string" && code in STRERROR) return code;
  if (err.name in DENO_NAMES) return DENO_NAMES[err.name];
  // A few runtime messages carry only the text (Deno's DNS failures, aggregates).
  for (const [name, text] of Object.entries(STRERROR)) {
    if (err.message.includes(text)) return name;
  }
  return typeof code === "string" ? code : undefined;
}
