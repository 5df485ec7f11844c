/**
 * Store mode's per-key rule, run atomically on a key's old owner: a key that is still there
 * moves to its new owner (MIGRATE) before any request touches it, unless it is big, in which
 * case it stays where it is and the old owner serves it. Every proxy sends each request of a
 * moving key through this script first, and no proxy ever writes a moving key to its old
 * owner otherwise, so a key is on exactly one server at every instant.
 */
import type { Addr } from "../net.ts";
import type { Server } from "../proxy/server.ts";
import { ask } from "./copy.ts";
import { bulkArrayAt, command, errorOf, integerOf } from "./resp.ts";

/** Where the request goes after the script ran. */
export const Target = { New: 0, Old: 1, Split: 2 } as const;
export type Target = (typeof Target)[keyof typeof Target];

/**
 * KEYS: the request's keys. ARGV: host, port, db, timeout ms, big-key bytes, [password].
 * Returns 0 (go to the new owner: nothing here, or moved now), 1 (every key is here and one is
 * big: serve here), 2 (some keys are here and big, others are not: the request cannot be served
 * by one server now).
 */
const REQUEST_SCRIPT = `
local present, seen, big = {}, {}, false
for _, k in ipairs(KEYS) do
  local n = redis.call('MEMORY', 'USAGE', k)
  if n and not seen[k] then
    seen[k] = true
    present[#present + 1] = k
    if n > tonumber(ARGV[5]) then big = true end
  end
end
if #present == 0 then return 0 end
if big then
  if #present == #KEYS then return 1 end
  return 2
end
${migrateCall("present")}
return 0`;

/**
 * The background mover's batch. KEYS: keys that move to one destination. Same ARGV.
 * Moves the small ones that are here; returns {moved, {big keys left here}}.
 */
const BATCH_SCRIPT = `
local small, bigs = {}, {}
for _, k in ipairs(KEYS) do
  local n = redis.call('MEMORY', 'USAGE', k)
  if n then
    if n > tonumber(ARGV[5]) then bigs[#bigs + 1] = k else small[#small + 1] = k end
  end
end
if #small > 0 then
  ${migrateCall("small")}
end
return {#small, bigs}`;

/** A MIGRATE of the keys in Lua table `list` to ARGV's destination, keeping TTLs. */
function migrateCall(list: string): string {
  return `local args = {'MIGRATE', ARGV[1], ARGV[2], '', ARGV[3], ARGV[4], 'REPLACE'}
  if ARGV[6] then args[#args + 1] = 'AUTH'; args[#args + 1] = ARGV[6] end
  args[#args + 1] = 'KEYS'
  for _, k in ipairs(${list}) do args[#args + 1] = k end
  redis.call(unpack(args))`;
}

/** Where MIGRATE sends keys, and how. */
export interface MoveTarget {
  readonly addr: Addr;
  readonly db: number;
  readonly timeoutMs: number;
  readonly bigKeyBytes: number;
  readonly auth: string | null;
}

function scriptArgs(to: MoveTarget): string[] {
  if (to.addr.kind !== "tcp") throw new Error("store migration needs host:port servers (MIGRATE cannot reach a unix socket)");
  const args = [to.addr.host, String(to.addr.port), String(to.db), String(to.timeoutMs), String(to.bigKeyBytes)];
  return to.auth === null ? args : [...args, to.auth];
}

function evalCommand(script: string, keys: readonly Uint8Array[], to: MoveTarget): Uint8Array {
  return command("EVAL", script, String(keys.length), ...keys, ...scriptArgs(to));
}

/** Run the request rule for `keys` on their old owner `from`; an error text when it failed. */
export async function settleKeys(
  keys: readonly Uint8Array[], from: Server, to: MoveTarget, clientId: number,
): Promise<Target | string> {
  const reply = await ask(from, clientId, evalCommand(REQUEST_SCRIPT, keys, to));
  const code = integerOf(reply);
  if (code === Target.New || code === Target.Old || code === Target.Split) return code;
  return errorOf(reply) ?? "unexpected reply to the migration script";
}

/** Move a batch of keys from `from` to one destination; how many moved and the big ones left. */
export async function moveBatch(
  keys: readonly Uint8Array[], from: Server, to: MoveTarget,
): Promise<{ moved: number; big: Uint8Array[] } | string> {
  const reply = await ask(from, MOVER_CLIENT, evalCommand(BATCH_SCRIPT, keys, to));
  if (reply === null || reply[0] !== 0x2a) return errorOf(reply) ?? "unexpected reply to the migration script";
  const moved = integerOf(reply.subarray(reply.indexOf(10) + 1));
  let at = reply.indexOf(10) + 1;
  at = reply.indexOf(10, at) + 1;
  const big = bulkArrayAt(reply, at);
  return moved === null || big === null ? "unexpected reply to the migration script" : { moved, big: big.items };
}

/** The connection the mover's own requests use (a client id like any other). */
export const MOVER_CLIENT = 0;
