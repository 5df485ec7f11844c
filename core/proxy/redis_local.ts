/**
 * Commands the proxy answers itself: PING, ECHO, QUIT, AUTH, SELECT, HELLO, enough of
 * COMMAND and CONFIG GET that redis-cli and redis-benchmark work through the proxy, INFO
 * (redis_info.ts) and CLIENT for the client's own connection (redis_client_cmds.ts).
 */
import { bulkReply, EMPTY_ARRAY_REPLY, errorReply, OK_REPLY, PONG_REPLY, ZERO_REPLY } from "../redis/mod.ts";
import { ByteWriter } from "../bytes.ts";
import type { SessionHost } from "./protocol.ts";
import type { RedisSession } from "./redis.ts";
import { argBytes, argEquals, argIsSecret } from "./redis_args.ts";
import { infoCommand } from "./redis_info.ts";
import { clientCommand } from "./redis_client_cmds.ts";

type LocalHandler = (session: RedisSession, buf: Uint8Array, host: SessionHost) => void;

const encoder = new TextEncoder();
const OK = OK_REPLY;
const PONG = PONG_REPLY;
const EMPTY_ARRAY = EMPTY_ARRAY_REPLY;
const ZERO = ZERO_REPLY;

export const LOCAL_COMMANDS: Record<string, LocalHandler> = {
  ping(session, buf, host) {
    const slots = session.slots;
    host.replyLocal(slots.argc === 1 ? PONG : bulkReply(argBytes(buf, slots, 1)));
  },
  echo(session, buf, host) {
    host.replyLocal(bulkReply(argBytes(buf, session.slots, 1)));
  },
  quit(_session, _buf, host) {
    host.replyLocal(OK);
    host.closeAfterReplies();
  },
  auth(session, buf, host) {
    // The pool's password now: a reload that changes redis_auth applies to the next AUTH.
    const password = host.pool.redisAuth;
    if (password === null) return void host.replyLocal(AUTH_NOT_SET);
    const slots = session.slots;
    // AUTH <password> or AUTH default <password> (Redis 6 form).
    const userOk = slots.argc === 2 || argEquals(buf, slots, 1, "default");
    const ok = userOk && argIsSecret(buf, slots, slots.argc - 1, encoder.encode(password));
    session.authed = ok;
    host.replyLocal(ok ? OK : INVALID_PASSWORD);
  },
  select(session, buf, host) {
    const db = argBytes(buf, session.slots, 1);
    host.replyLocal(db.length === 1 && db[0] === 0x30 ? OK : SELECT_ONLY_ZERO);
  },
  command(session, buf, host) {
    const count = session.slots.argc > 1 && argEquals(buf, session.slots, 1, "count");
    host.replyLocal(count ? ZERO : EMPTY_ARRAY);
  },
  /** Only RESP2 is spoken; NOPROTO makes clients that try RESP3 first (ioredis) fall back. */
  hello(session, buf, host) {
    const slots = session.slots;
    if (slots.argc > 1 && !argEquals(buf, slots, 1, "2")) return void host.replyLocal(NOPROTO);
    if (slots.argc > 2) return void host.replyLocal(HELLO_ONLY_BARE);
    host.replyLocal(HELLO_REPLY);
  },
  config(session, buf, host) {
    const slots = session.slots;
    if (!argEquals(buf, slots, 1, "get") || slots.argc < 3) return void host.replyLocal(CONFIG_ONLY_GET);
    const params: Uint8Array[] = [];
    for (let i = 2; i < slots.argc; i++) params.push(argBytes(buf, slots, i));
    host.replyLocal(configGetReply(params));
  },
  info: infoCommand,
  client: clientCommand,
};

/** CONFIG GET (one or, as Redis 7 allows, several parameters) answers each with an empty value, which tools read as "unset". */
function configGetReply(params: Uint8Array[]): Uint8Array {
  const w = new ByteWriter().byte(STAR).int(params.length * 2).crlf();
  for (const param of params) w.byte(DOLLAR).int(param.length).crlf().bytes(param).crlf().ascii("$0").crlf().crlf();
  return w.finish();
}

const STAR = 0x2a;
const DOLLAR = 0x24;

const NOPROTO = errorReply("NOPROTO sorry, this protocol version is not supported");
const HELLO_ONLY_BARE = errorReply("ERR HELLO options are not supported by the proxy; use AUTH");
const HELLO_REPLY = encoder.encode(
  "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:2\r\n" +
    "$2\r\nid\r\n:0\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
);
const AUTH_NOT_SET = errorReply("ERR Client sent AUTH, but no password is set");
const INVALID_PASSWORD = errorReply("ERR invalid password");
const SELECT_ONLY_ZERO = errorReply("ERR SELECT is not allowed through the proxy: only db 0 is available");
const CONFIG_ONLY_GET = errorReply("ERR only CONFIG GET <parameter> [parameter ...] is supported by the proxy");
