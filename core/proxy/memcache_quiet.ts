/**
 * Meta-protocol quiet mode (`q`): the proxy strips the flag so the server always
 * answers (keeping replies matched to requests), then hides from the client exactly
 * the codes memcached itself would have suppressed.
 */
import { McCmd } from "../memcache/request.ts";
import { classifyMetaReply } from "../memcache/reply.ts";
import type { ReplyFilter } from "./req.ts";

/** Reply codes quiet mode suppresses, per command (memcached protocol.txt). */
const SUPPRESSED: Record<number, readonly string[]> = {
  [McCmd.Mg]: ["EN"],
  [McCmd.Ms]: ["HD"],
  [McCmd.Md]: ["HD", "NF"],
  [McCmd.Ma]: ["HD"],
  [McCmd.Me]: ["EN"],
};

const filters = new Map<number, ReplyFilter>();

/** The filter for a quiet request of this command: true = the client sees the reply. */
export function quietFilter(cmd: number): ReplyFilter {
  let filter = filters.get(cmd);
  if (filter === undefined) {
    const hidden = SUPPRESSED[cmd] ?? [];
    filter = (reply) => !hidden.includes(classifyMetaReply(reply));
    filters.set(cmd, filter);
  }
  return filter;
}
