/**
 * RESP over short-lived connections for the scenario sections (replicas, cluster): encode a
 * command, read a bulk reply (INFO, CLUSTER NODES), pick a field out of INFO, expect an exact
 * reply, and poll a check until it holds. Every call is bounded in time.
 */
import { exchange } from "./idle.ts";
import { sleep } from "./proc.ts";

const HOST = "127.0.0.1";

/** A command as a RESP array of bulk strings (ASCII arguments). */
export function resp(...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");
}

/** A bulk reply's text (INFO, CLUSTER NODES) from the server on `port`, or throws. */
export async function bulk(port: number, ...args: string[]): Promise<string> {
  const complete = (s: string) => {
    const m = /^\$(\d+)\r\n/.exec(s);
    return m !== null && s.length >= m[0].length + Number(m[1]) + 2;
  };
  const text = await exchange(HOST, port, resp(...args), (s) => complete(s) || s.startsWith("-"), 5000);
  if (!complete(text)) throw new Error(`redis ${port} ${args.join(" ")}: ${JSON.stringify(text.slice(0, 120))}`);
  return text;
}

/** The value of `name:` in INFO (or CLUSTER INFO) text. */
export function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)\r$`, "m").exec(info)?.[1];
}

/** Send `request`, expect exactly `expected` back within `timeoutMs`. */
export async function expectReply(port: number, request: string, expected: string, what: string, timeoutMs = 30000): Promise<void> {
  const got = await exchange(HOST, port, request, (s) => s.length >= expected.length, timeoutMs);
  if (got !== expected) throw new Error(`${what}: unexpected reply ${JSON.stringify(got.slice(0, 200))}`);
}

/** Poll `check` every 100 ms until it is true (a throw counts as false); false after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(100);
  }
  return false;
}
