/**
 * A steady, light redis load for dashboard tests: one connection that writes a batch of
 * SETs over distinct keys (so every shard gets some) every tick and discards the replies,
 * reconnecting when the proxy closes it. node:net only, so Node, Deno and Bun all run it.
 */
import net from "node:net";

/** A running load. */
export interface Load {
  /** Requests written so far. */
  readonly sent: number;
  stop(): void;
}

/**
 * Start sending `perTick` SETs every `tickMs` ms to 127.0.0.1:`port`.
 * @example const load = startLoad(proxyPort); ...; load.stop();
 */
export function startLoad(port: number, perTick = 20, tickMs = 20): Load {
  let sock: net.Socket | null = null;
  let stopped = false;
  let sent = 0;
  let n = 0;
  const connect = () => {
    if (stopped) return;
    const s = net.connect({ host: "127.0.0.1", port });
    s.setNoDelay(true);
    s.on("data", () => {});
    s.on("error", () => {});
    s.on("close", () => {
      if (sock === s) sock = null;
    });
    sock = s;
  };
  const timer = setInterval(() => {
    if (sock === null) connect();
    let batch = "";
    for (let i = 0; i < perTick; i++) {
      const key = `load:${n++ % 1000}`;
      batch += `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$1\r\nx\r\n`;
    }
    sock?.write(batch);
    sent += perTick;
  }, tickMs);
  connect();
  return {
    get sent() {
      return sent;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
      sock?.destroy();
      sock = null;
    },
  };
}
