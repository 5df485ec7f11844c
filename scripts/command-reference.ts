/**
 * README's "Command reference": every command of core/redis/commands.ts under how the proxy
 * serves it, rendered from the table. tests/redis-commands.test.ts checks that README holds
 * exactly this text; after changing the table, print it and paste it under the heading:
 *
 *   node --import tsx scripts/command-reference.ts
 */
import process from "node:process";
import { COMMANDS, type CommandSpec, Kind } from "../core/redis/commands.ts";

/** One list of the reference: its bold title and which commands it holds. */
export interface ReferenceClass {
  readonly title: string;
  readonly holds: (c: CommandSpec) => boolean;
}

/** The lists, in README order; every command is in exactly one (a test checks it). */
export const REFERENCE_CLASSES: readonly ReferenceClass[] = [
  { title: "Forwarded by key", holds: (c) => c.kind === Kind.Forward && !c.several },
  { title: "Forwarded when all their keys live on one server, else -CROSSSLOT", holds: (c) => c.kind === Kind.Forward && c.several },
  { title: "Split across servers and merged", holds: (c) => c.kind === Kind.MultiKey },
  { title: "Sent to every server and merged", holds: (c) => c.kind === Kind.FanOut },
  { title: "Answered by the proxy", holds: (c) => c.kind === Kind.Local },
  { title: "Transactions, on a server connection of the client's own", holds: (c) => c.kind === Kind.Transaction },
  { title: "Blocking, on a server connection of the client's own", holds: (c) => c.kind === Kind.Blocking },
  { title: "Subscriptions, on subscriber connections of the client's own", holds: (c) => c.kind === Kind.PubSub },
  { title: "Refused", holds: (c) => c.kind === Kind.Unsupported },
];

const WIDTH = 100;

/** The lists as README shows them: a bullet per class, its names in backticks, wrapped at 100 columns. */
export function renderCommandReference(commands: readonly CommandSpec[] = COMMANDS): string {
  return REFERENCE_CLASSES.map(({ title, holds }) => {
    const names = commands.filter(holds).map((c) => c.name.toUpperCase()).sort().map((name) => `\`${name}\``);
    const lines: string[] = [];
    let line = " ";
    for (const name of names) {
      if (line.length + 1 + name.length > WIDTH) {
        lines.push(line);
        line = " ";
      }
      line += " " + name;
    }
    if (line.trim() !== "") lines.push(line);
    return [`- **${title}** (${names.length}):`, ...lines].join("\n");
  }).join("\n\n") + "\n";
}

if (process.argv[1]?.endsWith("command-reference.ts")) {
  console.log(renderCommandReference());
}
