/**
 * The memcached protocol for the engine (ASCII and meta). Requests are routed by key;
 * multi-key get/gets/gat/gats are split per server and merged in key order with one
 * END. `noreply` and meta `q` are stripped before forwarding so every request gets
 * exactly one server reply (keeping replies matched), and the client is spared the
 * replies it asked not to see.
 */
import type { PoolConf } from "../conf/types.ts";
import { decodeBase64Key, McCmd, McRequest, NEED_MORE as PARSE_NEED_MORE, PARSE_ERROR, parseRequest } from "../memcache/request.ts";
import { errorLine, isErrorReply, McReplyScanner, quietSuppresses, stripSpan } from "../memcache/reply.ts";
import type { ReplyFilter } from "./req.ts";
import { CLOSE, NEED_MORE, type Protocol, type Session, type SessionHost } from "./protocol.ts";
import { fragmentMultiGet } from "./memcache_frag.ts";

const encoder = new TextEncoder();
const MN = encoder.encode("MN\r\n");
const VERSION = encoder.encode("VERSION 1.6.0-twemproxy-ts\r\n");
const DROP = () => false;

type Handler = (session: McSession, buf: Uint8Array, pos: number, end: number, host: SessionHost) => void;

const MULTI_GET = new Set<number>([McCmd.Get, McCmd.Gets, McCmd.Gat, McCmd.Gats]);
const META = new Set<number>([McCmd.Mg, McCmd.Ms, McCmd.Md, McCmd.Ma, McCmd.Me]);

class McSession implements Session {
  need = 0;
  readonly req = new McRequest();

  handle(buf: Uint8Array, pos: number, host: SessionHost): number {
    const req = this.req;
    const end = parseRequest(buf, pos, req);
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
  [McCmd.Unsupported]: (_s, _b, _p, _e, host) => void host.replyLocal(UNSUPPORTED),
};

function forwardByKey(session: McSession, buf: Uint8Array, pos: number, end: number, host: SessionHost): void {
  const parsed = session.req;
  if (MULTI_GET.has(parsed.cmd) && parsed.keyCount > 1) return fragmentMultiGet(parsed, buf, host);
  const req = host.newReq(requestBytes(parsed, buf, pos, end));
  req.kind = parsed.cmd;
  if (parsed.noreply) req.filter = DROP;
  else if (parsed.quiet) req.filter = quietFilter(parsed.cmd);
  let keyBuf = buf;
  let keyStart = parsed.keyStart[0];
  let keyEnd = parsed.keyEnd[0];
  if (META.has(parsed.cmd) && parsed.base64Key) {
    keyBuf = decodeBase64Key(buf, keyStart, keyEnd);
    keyStart = 0;
    keyEnd = keyBuf.length;
  }
  host.forward(req, keyBuf, keyStart, keyEnd);
}

/** The original bytes, minus the noreply / q token so the server always answers. */
function requestBytes(parsed: McRequest, buf: Uint8Array, pos: number, end: number): Uint8Array {
  if (parsed.noreply) return stripSpan(buf, pos, end, parsed.noreplyStart, parsed.noreplyEnd);
  if (parsed.quiet) return stripSpan(buf, pos, end, parsed.quietStart, parsed.quietEnd);
  return buf.subarray(pos, end);
}

/** Per command, the filter that hides what meta quiet mode (`q`) hides; errors always show. */
const QUIET_FILTERS = new Map<number, ReplyFilter>();

function quietFilter(cmd: number): ReplyFilter {
  let filter = QUIET_FILTERS.get(cmd);
  if (filter === undefined) {
    filter = (reply) => !quietSuppresses(cmd, reply);
    QUIET_FILTERS.set(cmd, filter);
  }
  return filter;
}

const UNSUPPORTED = errorLine("SERVER_ERROR command not supported by the proxy");

export const memcacheProtocol: Protocol = {
  name: "memcache",
  newSession: (_pool: PoolConf) => new McSession(),
  newScanner: () => new McReplyScanner(),
  errorReply: (message) => errorLine(`SERVER_ERROR ${message}`),
  preamble: () => [],
  isErrorReply: (reply) => isErrorReply(reply),
};
