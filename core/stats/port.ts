/**
 * The stats port (nutcracker's -s/-a): every connection gets the stats JSON and is
 * closed; nothing it sends is read. Same behaviour as twemproxy's stats listener.
 */
import { type Addr, formatAddr, type Listener, type Net } from "../net.ts";
import type { Logger } from "../log.ts";
import type { StatsReporter } from "./reporter.ts";

const encoder = new TextEncoder();

/**
 * Listen on `addr` and answer each connection with `reporter.json()`.
 * Rejects when the address cannot be bound (nutcracker then refuses to start).
 */
export async function startStatsPort(addr: Addr, reporter: StatsReporter, net: Net, log: Logger): Promise<Listener> {
  const listener = await net.listen(addr, (conn) => {
    conn.onData = () => {};
    conn.onEnd = () => {};
    conn.onDrain = () => {};
    conn.onClose = () => {};
    conn.write(encoder.encode(reporter.json()));
    conn.end();
  });
  log.log(5, `stats listening on '${formatAddr(listener.addr)}'`);
  return listener;
}
