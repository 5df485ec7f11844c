/**
 * The memcached protocol for the engine (ASCII and meta). Requests are routed by key;
 * multi-key get/gets/gat/gats are split per server and merged in key order with one
 * END. `noreply` is stripped before forwarding and the reply dropped, so every request
 * gets exactly one server reply; a quiet meta request (`q`) is forwarded as is and
 * followed by the proxy's own `mn`, whose MN marks where its possibly empty reply ends.
 */
import type { PoolConf } from "../conf/types.ts";
import { concatBytes } from "../bytes.ts";
import { decodeBase64Key, MC_MAX_KEY, McCmd, McError, McRequest, NEED_MORE as PARSE_NEED_MORE, PARSE_ERROR, parseRequest } from "../memcache/request.ts";
import { errorLine, isErrorReply, McReplyScanner, stripSpan } from "../memcache/reply.ts";
import { CLOSE, NEED_MORE, type Protocol, type ReplyScanner, type Session, type SessionHost } from "./protocol.ts";
import { fragmentMultiGet } from "./memcache_frag.ts";
import type { Req } from "./req.ts";

const encoder = new TextEncoder();
const MN = encoder.encode("MN\r\n");
const VERSION = encoder.encode("VERSION 1.6.0-twemproxy-ts\r\n");
const MN_REQUEST = encoder.encode("mn\r\n");
const DROP = () => false;
/** Kind bit: a quiet meta request, whose reply may be empty (then the next byte is the trailer's MN). */
const QUIET = 0x100;

type Handler = (session: McSession, buf: Uint8Array, pos: number, end: number, host: SessionHost) => void;

const MULTI_GET = new Set<number>([McCmd.Get, McCmd.Gets, McCmd.Gat, McCmd.Gats]);
/** Reads a copy may serve: values without CAS (CAS values differ per server). */
const COPY_READS = new Set<number>([McCmd.Get, McCmd.Gat]);
/** Changes every copy of a shard gets, the client seeing the master's reply. */
const COPY_WRITES = new Set<number>([
  McCmd.Set, McCmd.Add, McCmd.Replace, McCmd.Append, McCmd.Prepend, McCmd.Delete, McCmd.Touch,
  McCmd.Incr, McCmd.Decr, McCmd.Ms, McCmd.Md, McCmd.Ma,
]);
const META = new Set<number>([McCmd.Mg, McCmd.Ms, McCmd.Md, McCmd.Ma, McCmd.Me]);

class McSession implements Session {
  need = 0;
  readonly req = new McRequest();
  private started = false;

  handle(buf: Uint8Array, pos: number, host: SessionHost): number {
    // memcached picks the binary protocol by a connection's first byte only; later a 0x80 is just a bad command.
    if (!this.started) {
      this.started = true;
      if (buf[pos] === BINARY_MAGIC) {
        host.replyLocal(BINARY_ERROR);
        return CLOSE;
      }
    }
    const req = this.req;
    const end = parseRequest(buf, pos, req, PROXY_LIMITS);
    if (end === PARSE_NEED_MORE) {
      this.need = req.need;
      return NEED_MORE;
    }
    if (end === PARSE_ERROR) {
      // memcached stays silent about errors in a noreply command; so do we.
      host.replyLocal(req.noreply ? null : errorLine(req.error));
      return req.resync < 0 ? CLOSE : req.resync;
    }
    (HANDLERS[req.cmd] ?? forwardByKey)(this, buf, pos, end, host);
    return end;
  }
}

const HANDLERS: Record<number, Handler> = {
  [McCmd.Mn]: (_s, _b, _p, _e, host) => void host.replyLocal(MN),
  [McCmd.Version]: (_s, _b, _p, _e, host) => void host.replyLocal(VERSION),
  [McCmd.Quit]: (_s, _b, _p, _e, host) => host.closeAfterReplies(),
  [McCmd.Unsupported]: (s, _b, _p, _e, host) => void host.replyLocal(s.req.noreply ? null : UNSUPPORTED),
};

function forwardByKey(session: McSession, buf: Uint8Array, pos: number, end: number, host: SessionHost): void {
  const parsed = session.req;
  if (MULTI_GET.has(parsed.cmd) && parsed.keyCount > 1) return fragmentMultiGet(parsed, buf, end - pos, host);
  const bytes = parsed.noreply ? stripSpan(buf, pos, end, parsed.noreplyStart, parsed.noreplyEnd) : buf.subarray(pos, end);
  const req = host.newReq(bytes, end - pos);
  req.kind = parsed.cmd;
  markForCopies(req, parsed, buf);
  if (parsed.noreply) req.filter = DROP;
  else if (parsed.quiet && parsed.cmd !== McCmd.Me) {
    req.kind = parsed.cmd | QUIET;
    req.trailer = MN_REQUEST;
    req.trailerKind = McCmd.Mn;
  }
  let keyBuf = buf;
  let keyStart = parsed.keyStart[0];
  let keyEnd = parsed.keyEnd[0];
  if (META.has(parsed.cmd) && parsed.base64Key) {
    keyBuf = decodeBase64Key(buf, keyStart, keyEnd);
    keyStart = 0;
    keyEnd = keyBuf.length;
  }
  host.send(req, host.route(keyBuf, keyStart, keyEnd));
}

/** Say how the request treats a shard's copies (only pools with replicas look at it). */
function markForCopies(req: Req, parsed: McRequest, buf: Uint8Array): void {
  req.read = COPY_READS.has(parsed.cmd);
  if (COPY_WRITES.has(parsed.cmd)) {
    req.copy = req.bytes;
    req.copyKind = parsed.cmd;
  } else if (parsed.cmd === McCmd.Cas) {
    req.copy = concatBytes([DELETE, buf.subarray(parsed.keyStart[0], parsed.keyEnd[0]), CRLF]);
    req.copyKind = McCmd.Delete;
  }
}

const DELETE = encoder.encode("delete ");
const CRLF = encoder.encode("\r\n");

const UNSUPPORTED = errorLine("SERVER_ERROR command not supported by the proxy");
const BINARY_MAGIC = 0x80;
/**
 * Values of any size a memcached may be configured for (-I up to 1 GB, default 1 MiB) are
 * forwarded and the server judges them, as twemproxy does (a too-large set also drops the
 * old item there). Only values beyond what the proxy holds for one request are refused
 * here, with memcached's words, and swallowed so the stream stays in step.
 */
const PROXY_LIMITS = { maxValue: 512 * 1024 * 1024, maxKey: MC_MAX_KEY };
const BINARY_ERROR = errorLine(McError.Binary);

/**
 * The codec's scanner, plus quiet requests: at the start of a quiet request's reply an
 * "M" can only be the trailer's MN (no meta reply code starts with M), so the quiet
 * request's reply is empty.
 */
class QuietAwareScanner implements ReplyScanner {
  error = "";
  private readonly inner = new McReplyScanner();
  private midReply = false;

  scan(buf: Uint8Array, pos: number, kind: number): number {
    if ((kind & QUIET) !== 0) {
      if (!this.midReply && buf[pos] === 0x4d) return pos;
      kind &= ~QUIET;
    }
    const end = this.inner.scan(buf, pos, kind);
    this.midReply = end === PARSE_NEED_MORE;
    if (end === PARSE_ERROR) this.error = this.inner.error;
    return end;
  }

  reset(): void {
    this.inner.reset();
    this.midReply = false;
  }
}

export const memcacheProtocol: Protocol = {
  name: "memcache",
  newSession: (_pool: PoolConf) => new McSession(),
  newScanner: () => new QuietAwareScanner(),
  errorReply: (message) => errorLine(`SERVER_ERROR ${message}`),
  preamble: () => [],
  isErrorReply: (reply) => isErrorReply(reply),
};
