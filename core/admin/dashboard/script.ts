/**
 * The dashboard's browser script, served at GET /assets/dashboard.js. It polls
 * api/dashboard once a second while the tab is visible (`?since=` the last chart point it
 * holds, so each answer carries one new point; the first carries the whole 15 minutes),
 * builds one section per pool once and afterwards only rewrites text that changed, and
 * draws the charts itself as SVG paths (see chart()). The reload dialog POSTs `reload` (and
 * the migration dialog pools/<pool>/migration/<action>, migration.ts) with
 * `Content-Type: application/json` and, when typed in, `Authorization: Bearer <token>`:
 * the admin guard's rules apply unchanged.
 *
 * Kept as plain ES2017 in a string (no backticks, no template literals) so every runtime and
 * the bun-compiled binary carry it without a build step.
 */

import { CHARTS_JS } from "./charts.ts";
import { MIGRATION_JS } from "./migration.ts";
import { PANELS_JS } from "./panels.ts";
import { VIEW_JS } from "./view.ts";

/** The page's state, shared by every part. */
const STATE_JS = String.raw`var POLL_MS = 1000;
var STALE_MS = 3000;
var TOKEN_KEY = "twemproxy-ts.admin-token";

var hist = null;          // { times: [], pools: { name: { rate, p99_ms, nodes: { id: { rate, p99_ms } } } } }
var spanMs = 900000;
var lastOk = 0;
var lastNow = 0;
var polling = false;
var timer = 0;
var views = {};           // pool name -> built section
var order = "";           // pool names, joined: rebuild main when it changes
var selected = {};        // "pool\u0000node" -> true: overlaid on the pool charts
`;

/** Polling, the live indicator, the reload dialog and the start. */
const MAIN_JS = String.raw`// ---- polling -----------------------------------------------------------------------

function setLive() {
  var live = $("live");
  var age = Date.now() - lastOk;
  var state = lastOk === 0 ? "connecting" : age <= STALE_MS ? "live" : age <= 15000 ? "stale" : "offline";
  var text = state === "stale" ? "stale " + Math.round(age / 1000) + " s" : state;
  if (live.getAttribute("data-state") !== state) live.setAttribute("data-state", state);
  setText(live, text);
}

function poll() {
  if (polling) return;
  clearTimeout(timer);
  if (document.hidden) return;
  polling = true;
  var started = Date.now();
  var since = hist !== null && hist.times.length > 0 ? hist.times[hist.times.length - 1] : null;
  fetch(since === null ? "api/dashboard" : "api/dashboard?since=" + since, { cache: "no-store", headers: { accept: "application/json" } })
    .then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    })
    .then(function (data) {
      mergeHistory(data.history, data.now);
      render(data);
      lastOk = Date.now();
      document.body.setAttribute("data-updated", String(lastOk));
    })
    .catch(function () { /* shown by the live indicator */ })
    .then(function () {
      polling = false;
      setLive();
      timer = setTimeout(poll, Math.max(100, POLL_MS - (Date.now() - started)));
    });
}

document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
setInterval(setLive, 1000);

// ---- reload ------------------------------------------------------------------------

/** The admin token typed into a dialog, kept for the tab's session only (shared by every action). */
function storedToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
}

function storeToken(token) {
  try { if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage off */ }
}

function describeReport(status, body) {
  if (status === 401 || status === 403) return { ok: false, text: "Refused (" + status + "): " + body.error };
  if (body.error && body.result === undefined) return { ok: false, text: "Failed (" + status + "): " + body.error };
  if (body.result === "error") return { ok: false, text: "The new configuration was refused; nothing changed.\n" + body.error };
  var lines = [];
  (body.changes || []).forEach(function (c) {
    if (c.action === "unchanged") return;
    lines.push("pool " + c.pool + ": " + c.action.replace("_", " ") + (c.details && c.details.length ? " (" + c.details.join("; ") + ")" : ""));
  });
  var head = body.dryRun ? "Dry run: the file is valid." : "Applied: configuration generation " + body.generation + ".";
  return { ok: true, text: head + "\n" + (lines.length ? lines.join("\n") : "No pool changes.") };
}

function openReload() {
  var dialog = $("reload-dialog");
  var result = $("reload-result");
  result.hidden = true;
  result.textContent = "";
  $("reload-confirm").disabled = false;
  setText($("reload-cancel"), "Cancel");
  $("reload-token").value = storedToken();
  if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
}

function closeReload() {
  var dialog = $("reload-dialog");
  if (typeof dialog.close === "function") dialog.close(); else dialog.removeAttribute("open");
}

function confirmReload(ev) {
  ev.preventDefault();
  var dry = $("reload-dry").checked;
  sendAction({
    url: dry ? "reload?dry_run=1" : "reload", token: $("reload-token").value.trim(), prefix: "reload",
    sending: dry ? "Checking\u2026" : "Reloading\u2026", describe: describeReport,
  });
}

/**
 * POST a confirmed action from one of the page's dialogs (ids <prefix>-confirm, -result,
 * -cancel) with the token, and show what the admin API answered.
 */
function sendAction(a) {
  storeToken(a.token);
  var headers = { "content-type": "application/json", accept: "application/json" };
  if (a.token) headers.authorization = "Bearer " + a.token;
  var confirmButton = $(a.prefix + "-confirm");
  var result = $(a.prefix + "-result");
  confirmButton.disabled = true;
  result.hidden = false;
  result.className = "result";
  setText(result, a.sending);
  var status = 0;
  fetch(a.url, { method: "POST", headers: headers, body: "{}", cache: "no-store" })
    .then(function (res) {
      status = res.status;
      return res.json().catch(function () { return { error: "HTTP " + res.status }; });
    })
    .then(function (body) {
      var r = a.describe(status, body);
      result.className = "result " + (r.ok ? "ok" : "bad");
      result.setAttribute("data-status", String(status));
      setText(result, r.text);
    }, function (err) {
      result.className = "result bad";
      result.setAttribute("data-status", "0");
      setText(result, "The admin API did not answer: " + err.message);
    })
    .then(function () {
      confirmButton.disabled = false;
      setText($(a.prefix + "-cancel"), "Close");
      poll();
    });
}

function start() {
  $("reload-button").addEventListener("click", openReload);
  $("reload-cancel").addEventListener("click", closeReload);
  $("reload-form").addEventListener("submit", confirmReload);
  startMigrationDialog();
  poll();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
`;

/** The script, one function scope around its parts. */
export const DASHBOARD_JS = `(function () {\n"use strict";\n\n${STATE_JS}\n${CHARTS_JS}\n${VIEW_JS}\n${PANELS_JS}\n${MIGRATION_JS}\n${MAIN_JS}})();\n`;
