/**
 * Headless Chromium driven over the DevTools protocol, for the dashboard's browser tests.
 * Debian's /usr/bin/chromium is started with a fresh profile and `--remote-debugging-port=0`;
 * the test talks to it over one WebSocket (a minimal RFC 6455 client on node:net, because
 * Node 20 has no global WebSocket and Node, Deno and Bun all have node:net) in flattened
 * session mode (helpers/websocket.ts). No browser download, no npm dependency.
 *
 *   const browser = await launchChromium();
 *   const page = await browser.newPage({ width: 1280, height: 900 });
 *   await page.goto("http://127.0.0.1:22223/");
 *   await page.waitFor("document.querySelector('[data-pool]') !== null", "a pool");
 *   await browser.close();
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { TextSocket } from "./websocket.ts";
import { runtimeName } from "./runtime.ts";

/** Where Debian's package puts the browser (scripts/setup.sh installs it). */
export const CHROMIUM = "/usr/bin/chromium";

const decoder = new TextDecoder();

// ---- DevTools protocol ---------------------------------------------------------------

type Params = Record<string, unknown>;
interface Pending {
  resolve(value: Params): void;
  reject(err: Error): void;
}

/** A CDP connection: commands by id, events by method (and session). */
class Connection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: { method: string; session: string | undefined; fn: (params: Params) => void }[] = [];

  constructor(private readonly ws: TextSocket) {
    ws.onMessage = (text) => this.dispatch(JSON.parse(text) as Params);
    ws.onClose = () => {
      for (const p of this.pending.values()) p.reject(new Error("DevTools connection closed"));
      this.pending.clear();
    };
  }

  /** timeoutMs: a deadline for a browser that never answers; generous, as a busy machine took over 15 s to answer Page.enable. */
  send(method: string, params: Params = {}, sessionId?: string, timeoutMs = 60_000): Promise<Params> {
    const id = this.nextId++;
    const message: Params = { id, method, params };
    if (sessionId !== undefined) message.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.ws.send(JSON.stringify(message));
    });
  }

  on(method: string, session: string | undefined, fn: (params: Params) => void): void {
    this.listeners.push({ method, session, fn });
  }

  close(): void {
    this.ws.close();
  }

  private dispatch(msg: Params): void {
    if (typeof msg.id === "number") {
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      const error = msg.error as { message?: string } | undefined;
      if (error !== undefined) p.reject(new Error(`DevTools: ${error.message ?? JSON.stringify(error)}`));
      else p.resolve((msg.result ?? {}) as Params);
      return;
    }
    for (const l of this.listeners) {
      if (l.method === msg.method && (l.session === undefined || l.session === msg.sessionId)) l.fn((msg.params ?? {}) as Params);
    }
  }
}

/** A viewport. */
export interface Viewport {
  readonly width: number;
  readonly height: number;
  readonly mobile?: boolean;
  readonly dark?: boolean;
}

/** One tab. */
export class Page {
  /** Console errors, uncaught exceptions and failed loads, as text, in order. */
  readonly errors: string[] = [];
  private loaded: (() => void) | null = null;

  constructor(private readonly cdp: Connection, private readonly session: string) {
    cdp.on("Runtime.consoleAPICalled", session, (p) => {
      if (p.type === "error" || p.type === "assert") {
        const args = (p.args as { value?: unknown; description?: string }[]).map((a) => a.description ?? String(a.value));
        this.errors.push(`console.${p.type}: ${args.join(" ")}`);
      }
    });
    cdp.on("Runtime.exceptionThrown", session, (p) => {
      const d = p.exceptionDetails as { text: string; exception?: { description?: string } };
      this.errors.push(`exception: ${d.exception?.description ?? d.text}`);
    });
    cdp.on("Log.entryAdded", session, (p) => {
      const e = p.entry as { level: string; text: string; url?: string };
      if (e.level === "error") this.errors.push(`log: ${e.text}${e.url ? ` (${e.url})` : ""}`);
    });
    cdp.on("Page.loadEventFired", session, () => this.loaded?.());
  }

  /** Send a command in this tab's session. */
  send(method: string, params: Params = {}): Promise<Params> {
    return this.cdp.send(method, params, this.session);
  }

  async setViewport(v: Viewport): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", { width: v.width, height: v.height, deviceScaleFactor: 1, mobile: v.mobile ?? false });
    await this.send("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value: v.dark ? "dark" : "light" }] });
  }

  /** Navigate and wait for the load event. */
  async goto(url: string, timeoutMs = 15_000): Promise<void> {
    const loaded = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${url}: not loaded in ${timeoutMs} ms`)), timeoutMs);
      this.loaded = () => {
        clearTimeout(timer);
        this.loaded = null;
        resolve();
      };
    });
    const nav = await this.send("Page.navigate", { url });
    if (typeof nav.errorText === "string") throw new Error(`${url}: ${nav.errorText}`);
    await loaded;
  }

  /** Evaluate `expression` in the page (awaiting a promise) and return its JSON value. */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    const ex = r.exceptionDetails as { text: string; exception?: { description?: string } } | undefined;
    if (ex !== undefined) throw new Error(`in the page: ${ex.exception?.description ?? ex.text}\n  evaluating: ${expression}`);
    return (r.result as { value: T }).value;
  }

  /** Poll `expression` every 50 ms until it is truthy; returns how long that took (ms). */
  async waitFor(expression: string, what: string, timeoutMs = 10_000): Promise<number> {
    const start = Date.now();
    for (;;) {
      if (await this.eval<boolean>(`Boolean(${expression})`)) return Date.now() - start;
      if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Click the element matching `selector` with real mouse events at its centre. */
  async click(selector: string): Promise<void> {
    const box = await this.eval<{ x: number; y: number } | null>(
      `(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return null;` +
        ` e.scrollIntoView({ block: "center" }); const r = e.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`,
    );
    if (box === null) throw new Error(`click: nothing matches ${selector}`);
    for (const type of ["mousePressed", "mouseReleased"]) {
      await this.send("Input.dispatchMouseEvent", { type, x: box.x, y: box.y, button: "left", clickCount: 1 });
    }
  }

  /** Type `text` into the focused element. */
  async type(text: string): Promise<void> {
    await this.send("Input.insertText", { text });
  }

  /** A PNG of the whole page (beyond the viewport), written to `file`. */
  async screenshot(file: string): Promise<void> {
    const shot = await this.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.from(shot.data as string, "base64"));
  }
}

/** A running Chromium. */
export interface Browser {
  newPage(viewport: Viewport): Promise<Page>;
  close(): Promise<void>;
}

/** Whether the system browser is installed. */
export function hasChromium(): boolean {
  return fs.existsSync(CHROMIUM);
}

/** Start headless Chromium with a fresh profile; rejects when it does not come up in `timeoutMs`. */
export async function launchChromium(timeoutMs = 30_000): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "twemproxy-chromium-"));
  const child = spawn(CHROMIUM, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage", "--mute-audio",
    "--disable-extensions", "--hide-scrollbars", `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  // Not detached: a browser a crashed test leaves behind stays in the test's process group,
  // which scripts/test-all.mjs kills; and the exit hook kills it when the test process ends.
  const killAtExit = () => {
    stopProcess(child);
    fs.rmSync(profile, { recursive: true, force: true });
  };
  process.on("exit", killAtExit);
  const gone = new Promise<void>((resolve) => child.once("exit", () => {
    process.off("exit", killAtExit);
    resolve();
  }));
  try {
    const endpoint = await devtoolsEndpoint(child, timeoutMs);
    const cdp = new Connection(await TextSocket.open(endpoint));
    return browserOf(cdp, child, gone, profile);
  } catch (err) {
    stopProcess(child);
    fs.rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

function browserOf(cdp: Connection, child: ChildProcess, gone: Promise<void>, profile: string): Browser {
  return {
    async newPage(viewport) {
      const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
      const page = new Page(cdp, sessionId as string);
      await Promise.all([page.send("Page.enable"), page.send("Runtime.enable"), page.send("Log.enable")]);
      await page.setViewport(viewport);
      return page;
    },
    async close() {
      await cdp.send("Browser.close", {}, undefined, 5000).catch(() => {});
      cdp.close();
      const exited = await Promise.race([gone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!exited) stopProcess(child);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The browser's ws:// URL from its "DevTools listening on ..." line on stderr. */
function devtoolsEndpoint(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => reject(new Error(`chromium did not start in ${timeoutMs} ms: ${err.slice(-2000)}`)), timeoutMs);
    child.stderr?.on("data", (chunk: Uint8Array) => {
      err += decoder.decode(chunk);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code}) before listening: ${err.slice(-2000)}`));
    });
  });
}

/** SIGKILL the browser (its helper processes end with it). */
function stopProcess(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Where browser tests write their screenshots (not committed). */
export const ARTIFACTS = process.env.TEST_ARTIFACTS ?? path.join(os.tmpdir(), "twemproxy-ts-artifacts");

/** The two screens every dashboard page must fit: a phone in dark mode, a wide screen in light mode. */
const SCREENS: readonly Viewport[] = [{ width: 390, height: 844, mobile: true, dark: true }, { width: 1440, height: 900, dark: false }];

/**
 * Assert the page is no wider than a phone's and a wide screen's viewport, saving a screenshot
 * of each as `<name>-<runtime>-<size>[-dark].png` under ARTIFACTS; returns the files.
 */
export async function assertFitsScreens(page: Page, name: string): Promise<string[]> {
  const files: string[] = [];
  for (const v of SCREENS) {
    await page.setViewport(v);
    await new Promise((r) => setTimeout(r, 300));
    const overflow = await page.eval<number>("document.documentElement.scrollWidth - window.innerWidth");
    assert.ok(overflow <= 0, `${v.width} px wide: the page is ${overflow} px wider than the screen`);
    const file = path.join(ARTIFACTS, `${name}-${runtimeName()}-${v.width}x${v.height}${v.dark ? "-dark" : ""}.png`);
    await page.screenshot(file);
    assert.ok(fs.statSync(file).size > 10_000);
    files.push(file);
  }
  return files;
}
