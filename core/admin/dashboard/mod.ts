/**
 * The dashboard's routes on the admin app: the page at GET /, its script, stylesheet and
 * icon under /assets/, and the JSON it polls at GET /api/dashboard. The assets are string
 * modules, so every runtime and the bun-compiled binary carry them; no CDN, no build step.
 * The page is read-only; its one action (reload) POSTs /reload through the admin guard.
 * One process (app.ts) and the `--workers` supervisor (core/workers/view.ts) install the
 * same routes, each with its own way of building the document.
 */
import type { Context, Hono } from "hono";
import { DASHBOARD_HTML, DASHBOARD_ICON } from "./page.ts";
import { DASHBOARD_CSS } from "./style.ts";
import { DASHBOARD_JS } from "./script.ts";
import type { DashboardState } from "./state.ts";

export {
  type ClusterView,
  dashboardHeader,
  type DashboardState,
  dashboardState,
  historyView,
  type NodeView,
  poolView,
  type PoolView,
} from "./state.ts";
export { countedLatency, countedPool, mergeParts, type NodePart, poolPart, type PoolPart } from "./parts.ts";
export { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_ICON, DASHBOARD_JS };

/** What the dashboard routes read. */
export interface DashboardSources {
  /** The document, with the chart points newer than `since` (clock ms), or all of them for null. */
  state(since: number | null): DashboardState | Promise<DashboardState>;
}

/**
 * Scripts and styles only from the admin address itself, nothing inline, no framing (a
 * page that frames the dashboard could trick a click on its reload button), no referrer.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

const ASSETS: Readonly<Record<string, { readonly type: string; readonly body: string }>> = {
  "/assets/dashboard.js": { type: "text/javascript; charset=utf-8", body: DASHBOARD_JS },
  "/assets/dashboard.css": { type: "text/css; charset=utf-8", body: DASHBOARD_CSS },
  "/assets/icon.svg": { type: "image/svg+xml", body: DASHBOARD_ICON },
};

/**
 * Add the routes to `app`.
 * @example installDashboard(app, { state: (since) => dashboardState({ proxy, history, now: clock.now(), ..., since }) })
 */
export function installDashboard(app: Hono, src: DashboardSources): void {
  app.get("/", (c) => c.body(DASHBOARD_HTML, 200, { ...PAGE_HEADERS, "content-type": "text/html; charset=utf-8" }));
  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, (c) => c.body(asset.body, 200, { ...PAGE_HEADERS, "content-type": asset.type }));
  }
  app.get("/api/dashboard", (c) => dashboardJson(c, src));
}

async function dashboardJson(c: Context, src: DashboardSources): Promise<Response> {
  const sinceText = c.req.query("since");
  const since = sinceText === undefined || sinceText === "" ? null : Number(sinceText);
  if (since !== null && !Number.isFinite(since)) return c.json({ error: `since must be a time in ms, not '${sinceText}'` }, 400);
  return c.json(await src.state(since), 200, { "cache-control": "no-store" });
}
