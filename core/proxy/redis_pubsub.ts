/**
 * Pub/sub on a sharded pool. A channel lives on the shard its name hashes to, like a key:
 * PUBLISH goes there (so publishers and subscribers meet), and SUBSCRIBE opens a subscriber
 * connection of the client's own to that shard (one per shard the client needs). Patterns
 * (PSUBSCRIBE) are subscribed on every shard: a message is published on one shard only, so
 * no client sees it twice. SSUBSCRIBE/SPUBLISH use shard channels the same way.
 *
 * The proxy confirms (un)subscriptions itself, with the client's own totals (Redis counts per
 * server; a client here may span several), and relays each message as the server sent it.
 * In subscribed mode only the pub/sub commands, PING and QUIT are accepted, as in RESP2.
 */
import { arrayHeader, bulkReply, encodeCommand, errorReply, integerReply, NULL_BULK_REPLY, type RequestSlots } from "../redis/mod.ts";
import { concatBytes, latin1Bytes, latin1String } from "../bytes.ts";
import type { PushLink } from "./pushlink.ts";
import type { Route, SessionHost } from "./protocol.ts";

/** Which kind of subscription (the confirmation's word). */
type Kind = "subscribe" | "psubscribe" | "ssubscribe";

const UNSUB: Record<string, Kind> = { unsubscribe: "subscribe", punsubscribe: "psubscribe", sunsubscribe: "ssubscribe" };

/** One client's subscriptions. */
export class PubSub {
  private readonly channels = new Map<string, string>();
  private readonly patterns = new Set<string>();
  private readonly shardChannels = new Map<string, string>();
  private readonly links = new Map<string, PushLink>();

  /** Subscribed to anything: only pub/sub commands, PING and QUIT are accepted. */
  get active(): boolean {
    return this.channels.size + this.patterns.size + this.shardChannels.size > 0;
  }

  /** (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE. */
  handle(name: string, buf: Uint8Array, slots: RequestSlots, host: SessionHost): void {
    const args: string[] = [];
    for (let i = 1; i < slots.argc; i++) args.push(latin1String(buf, slots.argStart[i], slots.argEnd[i]));
    const kind = UNSUB[name];
    const replies = kind === undefined ? this.subscribe(name as Kind, args, host) : this.unsubscribe(kind, args);
    host.replyLocal(concatBytes(replies));
    if (!this.active) this.close();
  }

  /** PING in subscribed mode: Redis answers a push-shaped pong. */
  pong(message: Uint8Array | null): Uint8Array {
    return concatBytes([arrayHeader(2), bulkReply(latin1Bytes("pong")), bulkReply(message ?? new Uint8Array(0))]);
  }

  /** The client is gone: drop every subscriber connection. */
  close(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  private subscribe(kind: Kind, names: string[], host: SessionHost): Uint8Array[] {
    return names.map((name) => {
      if (kind === "psubscribe") this.addPattern(name, host);
      else this.addChannel(kind, name, host);
      return confirmation(kind, name, this.count(kind));
    });
  }

  private unsubscribe(kind: Kind, names: string[]): Uint8Array[] {
    const all = names.length === 0 ? [...this.setOf(kind).keys()] : names;
    const word = `un${kind}`;
    if (all.length === 0) return [confirmation(word, null, this.count(kind))];
    return all.map((name) => {
      this.remove(kind, name);
      return confirmation(word, name, this.count(kind));
    });
  }

  private addChannel(kind: Kind, name: string, host: SessionHost): void {
    const map = kind === "ssubscribe" ? this.shardChannels : this.channels;
    if (map.has(name)) return;
    const bytes = latin1Bytes(name);
    const route = host.route(bytes, 0, bytes.length);
    if (route === null) return;
    map.set(name, route.id);
    this.link(route, host).send(encodeCommand([latin1Bytes(kind.toUpperCase()), bytes]));
  }

  private addPattern(pattern: string, host: SessionHost): void {
    if (this.patterns.has(pattern)) return;
    this.patterns.add(pattern);
    const command = encodeCommand([latin1Bytes("PSUBSCRIBE"), latin1Bytes(pattern)]);
    for (const route of host.shards()) this.link(route, host).send(command);
  }

  private remove(kind: Kind, name: string): void {
    const command = encodeCommand([latin1Bytes(`UN${kind.toUpperCase()}`), latin1Bytes(name)]);
    if (kind === "psubscribe") {
      if (!this.patterns.delete(name)) return;
      for (const link of this.links.values()) link.send(command);
      return;
    }
    const map = kind === "ssubscribe" ? this.shardChannels : this.channels;
    const shard = map.get(name);
    if (shard === undefined) return;
    map.delete(name);
    this.links.get(shard)?.send(command);
  }

  /** The subscriber connection to `route`'s shard, opened on first use. */
  private link(route: Route, host: SessionHost): PushLink {
    let link = this.links.get(route.id);
    if (link === undefined) {
      link = host.pushLink(route, () => this.resubscribe(route.id));
      this.links.set(route.id, link);
    }
    return link;
  }

  /** A subscriber connection was reopened: everything it carried is subscribed again. */
  private resubscribe(shard: string): void {
    const link = this.links.get(shard);
    if (link === undefined) return;
    for (const [channel, on] of this.channels) if (on === shard) link.send(command("SUBSCRIBE", channel));
    for (const [channel, on] of this.shardChannels) if (on === shard) link.send(command("SSUBSCRIBE", channel));
    for (const pattern of this.patterns) link.send(command("PSUBSCRIBE", pattern));
  }

  private setOf(kind: Kind): Map<string, unknown> | Set<string> {
    return kind === "psubscribe" ? this.patterns : kind === "ssubscribe" ? this.shardChannels : this.channels;
  }

  /** Redis's count in a confirmation: channels + patterns; shard channels count apart. */
  private count(kind: Kind): number {
    return kind === "ssubscribe" ? this.shardChannels.size : this.channels.size + this.patterns.size;
  }
}

/** The commands a subscribed RESP2 client may send. */
export const SUBSCRIBED_MODE_COMMANDS = new Set([
  "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "ping", "quit",
]);

/** Redis's refusal of another command in subscribed mode. */
export function notInSubscribedMode(name: string): Uint8Array {
  return errorReply(`ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`);
}

function command(name: string, arg: string): Uint8Array {
  return encodeCommand([latin1Bytes(name), latin1Bytes(arg)]);
}

function confirmation(kind: string, name: string | null, count: number): Uint8Array {
  const channel = name === null ? NULL_BULK_REPLY : bulkReply(latin1Bytes(name));
  return concatBytes([arrayHeader(3), bulkReply(latin1Bytes(kind)), channel, integerReply(count)]);
}
