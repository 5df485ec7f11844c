/**
 * CLIENT, answered by the proxy for the client's own connection to it: SETNAME and GETNAME
 * (ioredis' connectionName, redis-py's client_name), ID and INFO. The servers never see a
 * client's name: their connections are shared by many clients. Other CLIENT subcommands
 * (LIST, KILL, PAUSE, TRACKING...) describe or steer a server's own connections and stay
 * refused.
 */
import { formatAddr } from "../net.ts";
import { latin1Bytes, latin1String } from "../bytes.ts";
import { bulkReply, errorReply, integerReply, lookupCommand, OK_REPLY, unsupportedCommandError } from "../redis/mod.ts";
import type { SessionHost } from "./protocol.ts";
import type { RedisSession } from "./redis.ts";
import { argBytes, argEquals } from "./redis_args.ts";

type Subcommand = { readonly argc: number; readonly run: (session: RedisSession, buf: Uint8Array, host: SessionHost) => Uint8Array };

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  setname: {
    argc: 3,
    run(session, buf) {
      const name = argBytes(buf, session.slots, 2);
      for (const byte of name) if (byte < 0x21 || byte > 0x7e) return BAD_NAME;
      session.clientName = name.length === 0 ? null : name.slice();
      return OK_REPLY;
    },
  },
  getname: { argc: 2, run: (session) => bulkReply(session.clientName) },
  id: { argc: 2, run: (_session, _buf, host) => integerReply(clientId(host)) },
  info: { argc: 2, run: (session, _buf, host) => bulkReply(latin1Bytes(clientInfoLine(session, host))) },
};

/**
 * CLIENT <subcommand> ...: SETNAME, GETNAME, ID and INFO for this connection, Redis's arity
 * error for them, and the proxy's refusal for every other subcommand.
 */
export function clientCommand(session: RedisSession, buf: Uint8Array, host: SessionHost): void {
  const slots = session.slots;
  for (const name of Object.keys(SUBCOMMANDS)) {
    if (!argEquals(buf, slots, 1, name)) continue;
    const sub = SUBCOMMANDS[name];
    if (slots.argc !== sub.argc) return void host.replyLocal(errorReply(`ERR wrong number of arguments for 'client|${name}' command`));
    return void host.replyLocal(sub.run(session, buf, host));
  }
  host.replyLocal(REFUSED);
}

/** Redis numbers clients from 1. */
function clientId(host: SessionHost): number {
  return host.id + 1;
}

/** A CLIENT LIST / CLIENT INFO line for this connection, in Redis's field order (fields the proxy has). */
function clientInfoLine(session: RedisSession, host: SessionHost): string {
  const name = session.clientName === null ? "" : latin1String(session.clientName);
  const fields = [
    `id=${clientId(host)}`,
    `addr=${host.remote}`,
    `laddr=${formatAddr(host.pool.listen)}`,
    `name=${name}`,
    "flags=N",
    "db=0",
    "cmd=client|info",
    "user=default",
    "resp=2",
  ];
  return fields.join(" ") + "\n";
}

const BAD_NAME = errorReply("ERR Client names cannot contain spaces, newlines or special characters.");
const REFUSED = unsupportedCommandError(lookupCommand(latin1Bytes("client"), 0, 6)!);
