/**
 * Store mode's per-key rule, run atomically on a key's old owner (one Lua script): until the
 * go marker is set the request runs right there, as on the old ring; after, a key that is
 * still there moves to its new owner (MIGRATE) before the request is sent on, unless it is
 * big, in which case the request runs on the old owner. Every proxy sends each request of a
 * moving key through this script, and none writes a moving key to its old owner otherwise,
 * so a key is on exactly one server at every instant.
 */
import type { Addr } from "../net.ts";
import type { Server } from "../proxy/server.ts";
import { ask } from "./copy.ts";
import { bulkArrayAt, command, errorOf, integerOf } from "./resp.ts";

/** What the script did with a request: sent it on to the new owner, ran it on the old one, or refused it. */
export const Target = { New: 0, Here: 1, Split: 2, Held: 3 } as const;
export type Target = (typeof Target)[keyof typeof Target];

/**
 * KEYS: the request's keys. ARGV: the go marker, the value that lets keys move, the lock
 * prefix, then host, port, db, timeout ms, big-key bytes, password ('' = none), whether the
 * request may run inside a script ('1'), then the request itself. Until the go marker says so,
 * the request runs here (every proxy still uses the old owner); after, a key being copied in
 * pieces holds the request ({3}: send it again shortly); a request whose keys are all here runs
 * here ({1, reply}) when it may run in a script or a key is big (the background mover moves
 * them: the request costs one round trip, no MIGRATE); otherwise the keys that are here move to
 * the new owner first ({0}); some big and here, others not: {2}.
 */
const REQUEST_SCRIPT = `
local function here()
  local cmd = {}
  for i = 11, #ARGV do cmd[#cmd + 1] = ARGV[i] end
  return {1, redis.pcall(unpack(cmd))}
end
if redis.call('GET', ARGV[1]) ~= ARGV[2] then return here() end
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', ARGV[3] .. k) == 1 then return {3} end
end
local present, seen, big = {}, {}, false
for _, k in ipairs(KEYS) do
  local n = redis.call('MEMORY', 'USAGE', k)
  if n and not seen[k] then
    seen[k] = true
    present[#present + 1] = k
    if n > tonumber(ARGV[8]) then big = true end
  end
end
if #present == 0 then return {0} end
if #present == #KEYS and (big or ARGV[10] == '1') then return here() end
if big then return {2} end
${migrateCall("present", 4)}
return {0}`;

/**
 * The background mover's batch. KEYS: keys that move to one destination. ARGV: host, port,
 * db, timeout ms, big-key bytes, password ('' = none). Moves the small ones that are here;
 * returns {moved, their bytes (MEMORY USAGE), {big keys left here}}.
 */
const BATCH_SCRIPT = `
local small, bigs, bytes = {}, {}, 0
for _, k in ipairs(KEYS) do
  local n = redis.call('MEMORY', 'USAGE', k)
  if n then
    if n > tonumber(ARGV[5]) then bigs[#bigs + 1] = k else small[#small + 1] = k; bytes = bytes + n end
  end
end
if #small > 0 then
  ${migrateCall("small", 1)}
end
return {#small, bytes, bigs}`;

/** A MIGRATE of the keys in Lua table `list` to the destination in ARGV[at..at+5], keeping TTLs. */
function migrateCall(list: string, at: number): string {
  const arg = (i: number) => `ARGV[${at + i}]`;
  return `local args = {'MIGRATE', ${arg(0)}, ${arg(1)}, '', ${arg(2)}, ${arg(3)}, 'REPLACE'}
  if ${arg(5)} ~= '' then args[#args + 1] = 'AUTH'; args[#args + 1] = ${arg(5)} end
  args[#args + 1] = 'KEYS'
  for _, k in ipairs(${list}) do args[#args + 1] = k end
  redis.call(unpack(args))`;
}

/** Where MIGRATE sends keys, and how. */
export interface MoveTarget {
  /** The go marker's key and the value that lets keys move (the request script checks it). */
  readonly marker: string;
  readonly markerValue: string;
  /** What a key's lock is called, minus the key (chunks.ts): a locked key's requests are held. */
  readonly lockPrefix: string;
  readonly addr: Addr;
  readonly db: number;
  readonly timeoutMs: number;
  readonly bigKeyBytes: number;
  readonly auth: string | null;
}

function destination(to: MoveTarget): string[] {
  if (to.addr.kind !== "tcp") throw new Error("store migration needs host:port servers (MIGRATE cannot reach a unix socket)");
  return [to.addr.host, String(to.addr.port), String(to.db), String(to.timeoutMs), String(to.bigKeyBytes), to.auth ?? ""];
}

/** What settle() decided: go on to the new owner, the reply of the request run on the old one, or refused. */
export type Settled =
  | { target: typeof Target.New | typeof Target.Split | typeof Target.Held }
  | { target: typeof Target.Here; reply: Uint8Array };

/**
 * Run the request rule on the old owner `from` for a request (its arguments and keys, and
 * whether it may run inside a script); an error text when the script failed.
 */
export async function settle(
  args: readonly Uint8Array[], keys: readonly Uint8Array[], scriptable: boolean, from: Server, to: MoveTarget, clientId: number,
): Promise<Settled | string> {
  const bytes = command(
    "EVAL", REQUEST_SCRIPT, String(keys.length), ...keys, to.marker, to.markerValue, to.lockPrefix, ...destination(to),
    scriptable ? "1" : "0", ...args,
  );
  const reply = await ask(from, clientId, bytes);
  if (reply === null || reply[0] !== 0x2a) return errorOf(reply) ?? "unexpected reply to the migration script";
  // {code} or {1, reply}: the reply is what follows "*2\r\n:1\r\n", byte for byte.
  const first = reply.indexOf(10) + 1;
  const code = integerOf(reply.subarray(first));
  if (code === Target.New || code === Target.Split || code === Target.Held) return { target: code };
  if (code === Target.Here) return { target: code, reply: reply.slice(reply.indexOf(10, first) + 1) };
  return "unexpected reply to the migration script";
}

/** Move a batch of keys from `from` to one destination; how many moved and the big ones left. */
export async function moveBatch(
  keys: readonly Uint8Array[], from: Server, to: MoveTarget,
): Promise<{ moved: number; bytes: number; big: Uint8Array[] } | string> {
  const reply = await ask(from, MOVER_CLIENT, command("EVAL", BATCH_SCRIPT, String(keys.length), ...keys, ...destination(to)));
  if (reply === null || reply[0] !== 0x2a) return errorOf(reply) ?? "unexpected reply to the migration script";
  // "*3\r\n:moved\r\n:bytes\r\n*n..." line by line.
  const movedAt = reply.indexOf(10) + 1;
  const bytesAt = reply.indexOf(10, movedAt) + 1;
  const moved = integerOf(reply.subarray(movedAt));
  const bytes = integerOf(reply.subarray(bytesAt));
  const big = bulkArrayAt(reply, reply.indexOf(10, bytesAt) + 1);
  if (moved === null || bytes === null || big === null) return "unexpected reply to the migration script";
  return { moved, bytes, big: big.items };
}

/** The connection the mover's own requests use (a client id like any other). */
export const MOVER_CLIENT = 0;
