/**
 * The dashboard script's migration panel (see script.ts) and its actions. The panel shows a
 * pool's running (or last finished) migration: mode, phase, old and new servers, keys moved,
 * rate, ETA, big keys left, fallback hits/misses (cache), errors and the last one, the
 * proxies a store migration waits for, and per old server keys scanned/moved/remaining. It is
 * built once per migration (mode, rings, old servers) and afterwards only its texts change,
 * in fixed-width cells, so the layout does not move as the numbers do. Pause, resume, finish
 * and abort open a confirmation dialog that POSTs pools/<pool>/migration/<action> with the
 * reload dialog's token handling, and show the answer there.
 * Plain ES2017, no backticks.
 */

/** updateMigration(), the migration dialog. */
export const MIGRATION_JS = String.raw`// ---- migration panel -----------------------------------------------------------------

var MIGRATION_ACTIONS = ["pause", "resume", "finish", "abort"];
var pendingAction = null;   // { pool, action } the dialog confirms

function fmtDuration(s) {
  if (s === null || s === undefined) return "\u2014";
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + pad(Math.floor(s / 60) % 60) + " min";
}

function migrationStructure(m) {
  return [m.mode, m.reverse, m.started_at, m.from.join(","), m.to.join(","), m.sources.map(function (s) { return s.server; }).join(",")].join("|");
}

function migTile(tiles, label, cls) {
  var t = el("div", "mig-tile " + cls);
  t.appendChild(el("span", "label", label));
  var value = el("span", "value num", "\u2014");
  t.appendChild(value);
  tiles.appendChild(t);
  return value;
}

function buildMigration(box, pool, m) {
  box.textContent = "";
  var v = { structure: migrationStructure(m), sources: {}, buttons: {} };
  var head = el("h3", "mig-head");
  v.title = el("span", "", "");
  head.appendChild(v.title);
  v.phase = el("span", "badge", "");
  head.appendChild(v.phase);
  box.appendChild(head);
  box.appendChild(el("div", "mig-ring", (m.reverse ? "abort: back from " : "from ") + m.from.join(", ") + " \u2192 " + m.to.join(", ")));
  var tiles = el("div", "mig-tiles");
  var store = m.mode === "store";
  v.moved = migTile(tiles, store ? "keys moved" : "keys copied", "moved");
  v.rate = migTile(tiles, "keys/s", "rate");
  v.eta = migTile(tiles, store ? "ETA" : "warmup left", "eta");
  if (store) v.big = migTile(tiles, "big keys left", "big");
  if (!store) v.hits = migTile(tiles, "fallback hits", "hits");
  if (!store) v.misses = migTile(tiles, "fallback misses", "misses");
  v.errors = migTile(tiles, "errors", "errors");
  box.appendChild(tiles);
  if (store) { v.waiting = el("div", "mig-waiting", ""); box.appendChild(v.waiting); }
  v.error = el("div", "mig-error", "");
  box.appendChild(v.error);
  if (m.sources.length > 0) box.appendChild(buildSources(m, v));
  var actions = el("div", "mig-actions");
  MIGRATION_ACTIONS.forEach(function (action) {
    var b = el("button", "", action.charAt(0).toUpperCase() + action.slice(1) + "\u2026");
    b.type = "button";
    b.setAttribute("data-action", action);
    b.addEventListener("click", function () { openMigrationAction(pool, action, m.mode); });
    v.buttons[action] = b;
    actions.appendChild(b);
  });
  box.appendChild(actions);
  return v;
}

function buildSources(m, v) {
  var table = headedTable("mig-sources", [["old server", ""], ["scanned", "num"], ["moved", "num"], ["left", "num"], ["progress", "bar"]]);
  var tbody = table.tBodies[0];
  m.sources.forEach(function (s) {
    var tr = el("tr");
    tr.setAttribute("data-server", s.server);
    tr.appendChild(el("td", "addr", s.server));
    var row = { scanned: el("td", "num"), moved: el("td", "num"), remaining: el("td", "num"), bar: el("progress") };
    row.bar.max = 100;
    tr.appendChild(row.scanned);
    tr.appendChild(row.moved);
    tr.appendChild(row.remaining);
    var cell = el("td", "bar");
    cell.appendChild(row.bar);
    tr.appendChild(cell);
    v.sources[s.server] = row;
    tbody.appendChild(tr);
  });
  return table;
}

var PHASE_BADGES = { done: "up", paused: "ineligible", waiting_for_proxies: "ineligible", big_keys_left: "ineligible" };

function updateMigration(box, pool, m) {
  box.hidden = m === null;
  if (m === null) { box.mig = null; return; }
  var v = box.mig;
  if (!v || v.structure !== migrationStructure(m)) v = box.mig = buildMigration(box, pool, m);
  box.setAttribute("data-phase", m.phase);
  box.setAttribute("data-running", String(m.running));
  setText(v.title, "Migration (" + m.mode + (m.reverse ? ", abort" : "") + "): " + m.from.length + " \u2192 " + m.to.length + " servers");
  var badge = "badge " + (PHASE_BADGES[m.phase] || "active");
  if (v.phase.className !== badge) v.phase.className = badge;
  setText(v.phase, m.phase.replace(/_/g, " "));
  setText(v.moved, fmtCount(m.mode === "store" ? m.keys_moved : m.copied));
  setText(v.rate, m.mode === "store" ? fmtRate(m.move_rate) : "\u2014");
  setText(v.eta, m.running ? fmtDuration(m.eta_seconds) : "\u2014");
  if (v.big) setText(v.big, fmtCount(m.big_keys_left));
  if (v.hits) setText(v.hits, fmtCount(m.fallback_hits));
  if (v.misses) setText(v.misses, fmtCount(m.fallback_misses));
  setText(v.errors, fmtCount(m.errors));
  if (v.waiting) {
    setText(v.waiting, m.waiting_for.length === 0 ? "waiting for no proxy" : "waiting for " + m.waiting_for.length + " prox" +
      (m.waiting_for.length === 1 ? "y" : "ies") + " to reload: " + m.waiting_for.join(", "));
  }
  setText(v.error, m.last_error === null ? "no error" : "last error: " + m.last_error);
  var errorClass = m.last_error === null ? "mig-error" : "mig-error bad";
  if (v.error.className !== errorClass) v.error.className = errorClass;
  m.sources.forEach(function (s) {
    var row = v.sources[s.server];
    if (!row) return;
    setText(row.scanned, fmtCount(s.keys_scanned));
    setText(row.moved, fmtCount(s.keys_moved));
    setText(row.remaining, fmtCount(s.keys_remaining_estimate));
    var total = s.keys_scanned + s.keys_remaining_estimate;
    row.bar.value = s.done ? 100 : total === 0 ? 0 : Math.floor((100 * s.keys_scanned) / total);
  });
  var allowed = {
    pause: m.running && m.mode === "store" && m.phase !== "paused",
    resume: m.running && m.phase === "paused",
    finish: m.running,
    abort: m.running
  };
  MIGRATION_ACTIONS.forEach(function (a) { if (v.buttons[a].disabled !== !allowed[a]) v.buttons[a].disabled = !allowed[a]; });
}

// ---- migration actions ---------------------------------------------------------------

var ACTION_TEXTS = {
  pause: "The background mover stops between batches; requests for moving keys keep following the per-key rule.",
  resume: "The background mover continues from where it stopped.",
  finish: "cache: misses on the new servers stop asking the old ones. store: the big keys left behind are moved, each " +
    "blocking its server for its copy, and the migration ends.",
  abort: "The old ring becomes the pool's ring again; keys that already moved are found (cache) or moved back (store). " +
    "Put the old server list back in the file before the next reload."
};

function openMigrationAction(pool, action, mode) {
  pendingAction = { pool: pool, action: action };
  setText($("migration-title"), action.charAt(0).toUpperCase() + action.slice(1) + " the " + mode + " migration of pool " + pool + "?");
  setText($("migration-text"), ACTION_TEXTS[action]);
  var result = $("migration-result");
  result.hidden = true;
  result.textContent = "";
  result.removeAttribute("data-status");
  $("migration-confirm").disabled = false;
  setText($("migration-confirm"), action.charAt(0).toUpperCase() + action.slice(1));
  setText($("migration-cancel"), "Cancel");
  $("migration-token").value = storedToken();
  var dialog = $("migration-dialog");
  if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
}

function closeMigrationAction() {
  var dialog = $("migration-dialog");
  if (typeof dialog.close === "function") dialog.close(); else dialog.removeAttribute("open");
}

function describeAction(status, body) {
  if (status === 401 || status === 403) return { ok: false, text: "Refused (" + status + "): " + body.error };
  var head = status === 200 ? "Done: " + body.result + "." : "Not applied (" + status + "): " + (body.error || body.result);
  var lines = [head];
  if (body.migration) lines.push("phase now: " + body.migration.phase.replace(/_/g, " ") + (body.migration.reverse ? " (abort)" : ""));
  (body.workers || []).forEach(function (w) { lines.push("worker " + w.slot + ": " + w.result); });
  return { ok: status === 200, text: lines.join("\n") };
}

function confirmMigrationAction(ev) {
  ev.preventDefault();
  if (pendingAction === null) return;
  sendAction({
    url: "pools/" + encodeURIComponent(pendingAction.pool) + "/migration/" + pendingAction.action,
    token: $("migration-token").value.trim(), prefix: "migration", sending: "Sending\u2026", describe: describeAction,
  });
}

function startMigrationDialog() {
  $("migration-cancel").addEventListener("click", closeMigrationAction);
  $("migration-form").addEventListener("submit", confirmMigrationAction);
}
`;
