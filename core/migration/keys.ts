/**
 * The keys a request names, read back from the bytes the proxy forwards (a whole request
 * or a fragment of a multi-key one). Only requests for moving keys are read twice, so the
 * proxy's hot path stays as it is.
 */
import { Kind, lookupCommand } from "../redis/commands.ts";
import { keyPositions } from "../redis/keys.ts";
import { parseRequest as parseRedis, RequestSlots } from "../redis/request.ts";
import { McRequest, parseRequest as parseMemcache } from "../memcache/request.ts";

/**
 * One Redis request's arguments (the command name first), its keys in the order the command
 * names them, and whether it means the same inside a Lua script (a plain keyed command; not a
 * blocking one, which would not block there, nor a script or a transaction).
 */
export function redisRequest(bytes: Uint8Array): { args: Uint8Array[]; keys: Uint8Array[]; scriptable: boolean } {
  const slots = new RequestSlots();
  if (parseRedis(bytes, 0, slots) < 0 || slots.argc === 0) return { args: [], keys: [], scriptable: false };
  const buf = slots.argBuf;
  const args = Array.from({ length: slots.argc }, (_, i) => buf.subarray(slots.argStart[i], slots.argEnd[i]));
  const spec = lookupCommand(buf, slots.argStart[0], slots.argEnd[0]);
  if (spec === undefined) return { args, keys: [], scriptable: false };
  const scriptable = (spec.kind === Kind.Forward || spec.kind === Kind.MultiKey) && spec.eval !== true && slots.argc <= MAX_SCRIPT_ARGS;
  const positions: number[] = [];
  if (keyPositions(spec.keys, buf, slots, positions) <= 0) {
    if (spec.firstKey > 0 && spec.firstKey < slots.argc) positions.push(spec.firstKey);
  }
  return { args, keys: positions.map((i) => args[i]), scriptable };
}

/** Lua's unpack() refuses much more than this many values (its C stack limit is 8000). */
const MAX_SCRIPT_ARGS = 7000;

/** The keys of one Redis request (empty when none). */
export function redisKeys(bytes: Uint8Array): Uint8Array[] {
  return redisRequest(bytes).keys;
}

/** The keys of one memcached request, and its command (a McCmd code). */
export function memcacheKeys(bytes: Uint8Array): { cmd: number; keys: Uint8Array[] } {
  const req = new McRequest();
  if (parseMemcache(bytes, 0, req) < 0) return { cmd: 0, keys: [] };
  const keys: Uint8Array[] = [];
  for (let k = 0; k < req.keyCount; k++) keys.push(bytes.slice(req.keyStart[k], req.keyEnd[k]));
  return { cmd: req.cmd, keys };
}
