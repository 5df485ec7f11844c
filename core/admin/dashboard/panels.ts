/**
 * The dashboard script's feature panels (see script.ts): one box per pool and feature,
 * hidden while the pool does not have it (its field in /api/dashboard is null), rebuilt only
 * when its text changes. Sentinel: Sentinels reachable, each shard's master and failovers.
 * Redis Cluster: whether the slot map is fresh, when it was refreshed, refresh errors, MOVED
 * and ASK redirections, and each master's slot ranges. The migration panel, with its
 * actions, is in migration.ts. A new panel is one more update function and one box in
 * buildPool (view.ts).
 * Plain ES2017, no backticks.
 */

/** updateSentinel(), updateCluster(). */
export const PANELS_JS = String.raw`// ---- feature panels ----------------------------------------------------------------

/** Show the panel for a feature value (null = hide it); false when nothing changed since the last call. */
function panelChanged(box, value, key) {
  box.hidden = value === null;
  if (value === null || box.getAttribute("data-text") === key) return false;
  box.setAttribute("data-text", key);
  box.textContent = "";
  return true;
}

function updateSentinel(box, s) {
  var shards = s === null ? [] : Object.keys(s.shards).map(function (name) {
    var sh = s.shards[name];
    return name + ": master " + (sh.master || "unknown") + ", " + sh.failovers + " failover" + (sh.failovers === 1 ? "" : "s") +
      (sh.last_switch_at ? " (last " + clock(Date.parse(sh.last_switch_at)) + ")" : "");
  });
  var text = s === null ? "" : "Sentinel: " + s.reachable + " of " + s.sentinels.length + " reachable (" + s.sentinels.join(", ") + ")";
  if (!panelChanged(box, s, text + shards.join("|"))) return;
  box.appendChild(el("h3", s.reachable === 0 ? "bad" : "", text));
  shards.forEach(function (line) { box.appendChild(el("div", "", line)); });
}

var MAP_WORDS = { fresh: "slot map fresh", stale: "slot map stale: refreshes fail", none: "no slot map yet" };

function clusterLines(c) {
  var slots = c.masters.reduce(function (n, m) { return n + m.count; }, 0);
  var head = "Redis Cluster: " + MAP_WORDS[c.map] + " \u00b7 " + c.masters.length + " master" + (c.masters.length === 1 ? "" : "s") +
    ", " + slots + " of 16384 slots";
  var refresh = (c.last_refresh_at === null ? "never refreshed" : "refreshed " + clock(c.last_refresh_at)) +
    " \u00b7 every " + fmtSeconds(c.refresh_interval_ms) + " \u00b7 " + c.refreshes + " refresh" + (c.refreshes === 1 ? "" : "es") +
    ", " + c.refresh_errors + " failed";
  var redirects = "MOVED " + c.moved + " \u00b7 ASK " + c.ask;
  var error = c.last_error === null ? "" : "last refresh error at " + clock(c.last_error_at) + ": " + c.last_error;
  return { head: head, refresh: refresh, redirects: redirects, error: error };
}

function fmtSeconds(ms) { return ms % 1000 === 0 ? ms / 1000 + " s" : ms + " ms"; }

function updateCluster(box, c) {
  var lines = c === null ? null : clusterLines(c);
  var key = c === null ? "" : [c.map, lines.head, lines.refresh, lines.redirects, lines.error].concat(c.masters.map(function (m) {
    return m.address + "=" + m.slots;
  })).join("|");
  if (!panelChanged(box, c, key)) return;
  box.setAttribute("data-map", c.map);
  box.appendChild(el("h3", c.map === "fresh" ? "" : "bad", lines.head));
  box.appendChild(el("div", "refresh", lines.refresh));
  box.appendChild(el("div", "redirects", lines.redirects));
  if (lines.error !== "") box.appendChild(el("div", "error bad", lines.error));
  if (c.masters.length === 0) return;
  var table = headedTable("slots", [["master", ""], ["slots", ""], ["count", "num"]]);
  c.masters.forEach(function (m) {
    var tr = el("tr");
    tr.setAttribute("data-master", m.address);
    tr.appendChild(el("td", "addr", m.address));
    tr.appendChild(el("td", "ranges", m.slots));
    tr.appendChild(el("td", "num", String(m.count)));
    table.tBodies[0].appendChild(tr);
  });
  box.appendChild(table);
}

/** A table of class cls whose header row has one [text, class] cell per entry of heads, and an empty body. */
function headedTable(cls, heads) {
  var table = el("table", cls);
  var hr = el("tr");
  heads.forEach(function (h) { hr.appendChild(el("th", h[1], h[0])); });
  var thead = el("thead");
  thead.appendChild(hr);
  table.appendChild(thead);
  table.appendChild(el("tbody"));
  return table;
}
`;
