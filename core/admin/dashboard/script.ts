/**
 * The dashboard's browser script, served at GET /assets/dashboard.js. It polls
 * api/dashboard once a second while the tab is visible (`?since=` the last chart point it
 * holds, so each answer carries one new point; the first carries the whole 15 minutes),
 * builds one section per pool once and afterwards only rewrites text that changed, and
 * draws the charts itself as SVG paths (see chart()). The reload dialog POSTs `reload` with
 * `Content-Type: application/json` and, when typed in, `Authorization: Bearer <token>`:
 * the admin guard's rules apply unchanged.
 *
 * Kept as plain ES2017 in a string (no backticks, no template literals) so every runtime and
 * the bun-compiled binary carry it without a build step.
 */

/** The script. */
export const DASHBOARD_JS = String.raw`(function () {
"use strict";

var POLL_MS = 1000;
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

function $(id) { return document.getElementById(id); }
function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
var SVG = "http://www.w3.org/2000/svg";
function svg(tag, cls) {
  var e = document.createElementNS(SVG, tag);
  if (cls) e.setAttribute("class", cls);
  return e;
}
function setText(e, text) { if (e.textContent !== text) e.textContent = text; }
function pad(n) { return n < 10 ? "0" + n : String(n); }
function clock(ms) { var d = new Date(ms); return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }

function fmtRate(v) {
  if (v === null || v === undefined) return "\u2014";
  if (v === 0) return "0";
  if (v < 10) return v.toFixed(1);
  if (v < 1000) return String(Math.round(v));
  if (v < 1e6) return (v / 1e3).toFixed(v < 1e4 ? 2 : 1) + "k";
  return (v / 1e6).toFixed(2) + "M";
}
function fmtMs(v) {
  if (v === null || v === undefined) return "\u2014";
  if (v < 1) return v.toFixed(3);
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return String(Math.round(v));
}
function fmtBytes(v) {
  if (v === null || v === undefined) return "\u2014";
  var units = ["B", "KiB", "MiB", "GiB", "TiB"];
  var i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}
function fmtUptime(s) {
  var d = Math.floor(s / 86400);
  var rest = pad(Math.floor(s / 3600) % 24) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
  return d > 0 ? d + "d " + rest : rest;
}
function fmtCount(v) { return String(v); }

// ---- charts ------------------------------------------------------------------------
// A chart is an SVG in a 1000 x 100 box stretched to its container (preserveAspectRatio
// none; strokes keep their width through vector-effect), with HTML labels around it: it
// follows the layout without redrawing, and takes its colours from the CSS variables.

var W = 1000;
var H = 100;

/** Round up to 1, 2, 2.5 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  var p = Math.pow(10, Math.floor(Math.log(v) / Math.LN10));
  var steps = [1, 2, 2.5, 5, 10];
  for (var i = 0; i < steps.length; i++) if (v <= steps[i] * p) return steps[i] * p;
  return 10 * p;
}

/** SVG path data of values over times, broken where a value is null. */
function pathOf(times, values, start, max, width, height) {
  var d = "";
  var pen = false;
  for (var i = 0; i < times.length; i++) {
    var v = values[i];
    if (v === null || v === undefined || times[i] < start) { pen = false; continue; }
    var x = ((times[i] - start) / spanMs) * width;
    var y = height - (Math.min(v, max) / max) * height;
    d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(2);
    pen = true;
  }
  return d;
}

function chart(title, fmt, unit) {
  var root = el("div", "chart");
  var head = el("div", "chart-head");
  head.appendChild(el("span", "", title));
  var legend = el("span", "legend");
  head.appendChild(legend);
  root.appendChild(head);
  var plot = el("div", "plot");
  var box = svg("svg");
  box.setAttribute("viewBox", "0 0 " + W + " " + H);
  box.setAttribute("preserveAspectRatio", "none");
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", title + ", last 15 minutes");
  var grid = svg("path", "grid");
  grid.setAttribute("d", "M0 25H" + W + "M0 50H" + W + "M0 75H" + W + "M250 0V" + H + "M500 0V" + H + "M750 0V" + H);
  box.appendChild(grid);
  var lines = [svg("path", "line s0"), svg("path", "line s1")];
  box.appendChild(lines[0]);
  box.appendChild(lines[1]);
  plot.appendChild(box);
  var yl = [el("span", "ylab"), el("span", "ylab"), el("span", "ylab")];
  yl[0].style.top = "0%"; yl[1].style.top = "50%"; yl[2].style.top = "100%";
  setText(yl[2], "0");
  for (var i = 0; i < 3; i++) plot.appendChild(yl[i]);
  var cursor = el("div", "cursor");
  var tip = el("div", "tip");
  cursor.hidden = true;
  tip.hidden = true;
  plot.appendChild(cursor);
  plot.appendChild(tip);
  root.appendChild(plot);
  var xl = el("div", "xlabs");
  ["-15 min", "-10", "-5", "now"].forEach(function (t) { xl.appendChild(el("span", "", t)); });
  root.appendChild(xl);

  var last = null;   // { times, series: [{ name, values }], start }
  var hoverFrac = -1;

  function showTip() {
    if (last === null || hoverFrac < 0 || last.times.length === 0) { cursor.hidden = true; tip.hidden = true; return; }
    var t = last.start + hoverFrac * spanMs;
    var times = last.times;
    var lo = 0, hi = times.length - 1;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (times[mid] < t) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(times[lo - 1] - t) < Math.abs(times[lo] - t)) lo--;
    var frac = (times[lo] - last.start) / spanMs;
    if (frac < 0) { cursor.hidden = true; tip.hidden = true; return; }
    cursor.hidden = false;
    tip.hidden = false;
    cursor.style.left = (frac * 100).toFixed(2) + "%";
    var text = clock(times[lo]);
    last.series.forEach(function (s) { text += "  " + s.name + " " + fmt(s.values[lo]) + unit; });
    setText(tip, text);
    if (frac > 0.6) { tip.style.left = ""; tip.style.right = ((1 - frac) * 100 + 1).toFixed(2) + "%"; }
    else { tip.style.right = ""; tip.style.left = (frac * 100 + 1).toFixed(2) + "%"; }
  }
  plot.addEventListener("pointermove", function (ev) {
    var r = plot.getBoundingClientRect();
    hoverFrac = r.width > 0 ? Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width)) : -1;
    showTip();
  });
  plot.addEventListener("pointerleave", function () { hoverFrac = -1; showTip(); });

  /** series: up to two { name, values } aligned with times; the window ends at now. */
  function update(times, series, now) {
    var start = now - spanMs;
    var top = 0;
    series.forEach(function (s) {
      for (var i = 0; i < s.values.length; i++) {
        var v = s.values[i];
        if (v !== null && times[i] >= start && v > top) top = v;
      }
    });
    var max = niceMax(top);
    for (var k = 0; k < 2; k++) {
      var d = k < series.length ? pathOf(times, series[k].values, start, max, W, H) : "";
      if (lines[k].getAttribute("d") !== d) lines[k].setAttribute("d", d);
    }
    setText(yl[0], fmt(max));
    setText(yl[1], fmt(max / 2));
    var names = series.map(function (s) { return s.name; }).join("\u0000");
    if (legend.getAttribute("data-names") !== names) {
      legend.setAttribute("data-names", names);
      legend.textContent = "";
      series.forEach(function (s, i) {
        var item = el("span");
        item.appendChild(el("i", "s" + i));
        item.appendChild(document.createTextNode(s.name));
        legend.appendChild(item);
      });
    }
    last = { times: times, series: series, start: start };
    showTip();
  }
  return { root: root, update: update };
}

/** A sparkline: one series in a small SVG, scaled to its own maximum. */
function spark(label) {
  var box = svg("svg", "spark");
  box.setAttribute("viewBox", "0 0 100 20");
  box.setAttribute("preserveAspectRatio", "none");
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", label);
  var line = svg("path", "line s0");
  box.appendChild(line);
  function update(times, values, now) {
    var top = 0;
    var start = now - spanMs;
    for (var i = 0; i < values.length; i++) if (values[i] !== null && times[i] >= start && values[i] > top) top = values[i];
    var d = pathOf(times, values, start, niceMax(top), 100, 20);
    if (line.getAttribute("d") !== d) line.setAttribute("d", d);
  }
  return { root: box, update: update };
}

// ---- history -----------------------------------------------------------------------

function emptyValues(n) { var a = new Array(n); for (var i = 0; i < n; i++) a[i] = null; return a; }

/** Merge an answer's history into what the page holds, and drop points older than the span. */
function mergeHistory(h, now) {
  spanMs = h.span_ms;
  if (h.full || hist === null) {
    hist = { times: h.times.slice(), pools: h.pools };
  } else {
    var n = hist.times.length;
    var merged = {};
    Object.keys(h.pools).forEach(function (name) {
      var inc = h.pools[name];
      var old = hist.pools[name] || { rate: emptyValues(n), p99_ms: emptyValues(n), nodes: {} };
      var nodes = {};
      Object.keys(inc.nodes).forEach(function (id) {
        var o = old.nodes[id] || { rate: emptyValues(n), p99_ms: emptyValues(n) };
        nodes[id] = { rate: o.rate.concat(inc.nodes[id].rate), p99_ms: o.p99_ms.concat(inc.nodes[id].p99_ms) };
      });
      merged[name] = { rate: old.rate.concat(inc.rate), p99_ms: old.p99_ms.concat(inc.p99_ms), nodes: nodes };
    });
    hist = { times: hist.times.concat(h.times), pools: merged };
  }
  var drop = 0;
  while (drop < hist.times.length && hist.times[drop] < now - spanMs) drop++;
  if (drop > 0) {
    hist.times = hist.times.slice(drop);
    Object.keys(hist.pools).forEach(function (name) {
      var p = hist.pools[name];
      p.rate = p.rate.slice(drop);
      p.p99_ms = p.p99_ms.slice(drop);
      Object.keys(p.nodes).forEach(function (id) {
        p.nodes[id].rate = p.nodes[id].rate.slice(drop);
        p.nodes[id].p99_ms = p.nodes[id].p99_ms.slice(drop);
      });
    });
  }
}

// ---- pools -------------------------------------------------------------------------

var COLUMNS = [
  ["c-node", "node", ""], ["c-role", "role", ""], ["c-state", "state", ""], ["c-n", "req/s", "num"],
  ["c-n", "p50 ms", "num"], ["c-n", "p99 ms", "num"], ["c-n", "lag", "num"], ["c-n", "outstanding", "num"],
  ["c-trend", "req/s \u00b7 p99 (15 min)", ""]
];

function structureOf(pool) {
  return pool.protocol + "|" + pool.shards.map(function (s) {
    return s.id + ":" + s.nodes.map(function (n) { return n.name; }).join(",");
  }).join(";");
}

function tile(tiles, label) {
  var t = el("div", "tile");
  t.appendChild(el("span", "label", label));
  var value = el("span", "value num", "\u2014");
  t.appendChild(value);
  tiles.appendChild(t);
  return value;
}

function buildPool(pool) {
  var section = el("section", "pool");
  section.setAttribute("data-pool", pool.name);
  section.setAttribute("aria-label", "pool " + pool.name);
  var head = el("header", "pool-head");
  head.appendChild(el("h2", "", pool.name));
  head.appendChild(el("span", "tag", pool.protocol));
  var addr = el("span", "addr", pool.bound);
  head.appendChild(addr);
  section.appendChild(head);

  var tiles = el("div", "tiles");
  var v = {
    section: section, addr: addr, structure: structureOf(pool), nodes: {},
    clients: tile(tiles, "clients"),
    rate: tile(tiles, "requests/s"),
    errors: tile(tiles, "errors/s"),
    p50: tile(tiles, "p50 ms"),
    p99: tile(tiles, "p99 ms"),
    outstanding: tile(tiles, "outstanding")
  };
  section.appendChild(tiles);

  var charts = el("div", "charts");
  v.rateChart = chart("requests/s", fmtRate, "/s");
  v.p99Chart = chart("p99 latency (ms)", fmtMs, " ms");
  charts.appendChild(v.rateChart.root);
  charts.appendChild(v.p99Chart.root);
  section.appendChild(charts);

  v.sentinel = el("div", "sentinel");
  v.sentinel.hidden = true;
  section.appendChild(v.sentinel);

  var wrap = el("div", "table-wrap");
  var table = el("table", "nodes");
  var cols = el("colgroup");
  COLUMNS.forEach(function (c) { cols.appendChild(el("col", c[0])); });
  table.appendChild(cols);
  var thead = el("thead");
  var hr = el("tr");
  COLUMNS.forEach(function (c) { hr.appendChild(el("th", c[2], c[1])); });
  thead.appendChild(hr);
  table.appendChild(thead);
  var tbody = el("tbody");
  var grouped = pool.shards.some(function (s) { return s.nodes.length > 1; });
  pool.shards.forEach(function (shard) {
    if (grouped) {
      var sr = el("tr", "shard");
      var th = el("th", "", "shard " + shard.id);
      th.colSpan = COLUMNS.length;
      sr.appendChild(th);
      tbody.appendChild(sr);
    }
    shard.nodes.forEach(function (node) { tbody.appendChild(buildNode(pool, node, v)); });
  });
  table.appendChild(tbody);
  wrap.appendChild(table);
  section.appendChild(wrap);
  return v;
}

function buildNode(pool, node, v) {
  var tr = el("tr", "node");
  var key = pool.name + "\u0000" + node.name;
  tr.setAttribute("data-node", node.name);
  tr.tabIndex = 0;
  tr.setAttribute("aria-pressed", selected[key] ? "true" : "false");
  tr.title = "show this node on the pool's charts";
  function cell(cls, label) { var td = el("td", cls); td.setAttribute("data-label", label); tr.appendChild(td); return td; }
  var nameCell = cell("c-node", "node");
  nameCell.appendChild(el("span", "", node.name));
  nameCell.appendChild(el("span", "sub", node.address));
  var role = cell("", "role");
  var stateCell = cell("c-state", "state");
  var badge = el("span", "badge");
  stateCell.appendChild(badge);
  var n = {
    row: tr,
    role: role,
    state: badge,
    rate: cell("num", "req/s"),
    p50: cell("num", "p50 ms"),
    p99: cell("num", "p99 ms"),
    lag: cell("num", "lag"),
    outstanding: cell("num", "outstanding")
  };
  var trend = cell("c-trend", "trend");
  n.rateSpark = spark("requests/s of " + node.name);
  n.p99Spark = spark("p99 latency of " + node.name);
  trend.appendChild(n.rateSpark.root);
  trend.appendChild(n.p99Spark.root);
  function toggle() {
    selected[key] = !selected[key];
    tr.setAttribute("aria-pressed", selected[key] ? "true" : "false");
    drawCharts(pool.name);
  }
  tr.addEventListener("click", toggle);
  tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); toggle(); } });
  v.nodes[node.name] = n;
  return tr;
}

function stateText(node) {
  if (node.state === "ejected") return node.retry_at ? "ejected \u00b7 retry " + clock(node.retry_at) : "ejected";
  if (node.state === "ineligible") return "ineligible: " + String(node.reason).replace("_", " ");
  if (node.state === "up" && node.stale) return "up (stale)";
  return node.state;
}

function updatePool(v, pool) {
  setText(v.addr, pool.bound);
  setText(v.clients, fmtCount(pool.clients));
  setText(v.rate, fmtRate(pool.rate));
  setText(v.errors, fmtRate(pool.errors));
  setText(v.p50, fmtMs(pool.p50_ms));
  setText(v.p99, fmtMs(pool.p99_ms));
  setText(v.outstanding, fmtCount(pool.outstanding));
  pool.shards.forEach(function (shard) {
    shard.nodes.forEach(function (node) {
      var n = v.nodes[node.name];
      if (!n) return;
      setText(n.role, node.role);
      var cls = "badge " + node.state;
      if (n.state.className !== cls) n.state.className = cls;
      setText(n.state, stateText(node));
      n.state.title = node.reason ? "reason: " + node.reason : "";
      setText(n.rate, fmtRate(node.rate));
      setText(n.p50, fmtMs(node.p50_ms));
      setText(n.p99, fmtMs(node.p99_ms));
      setText(n.lag, node.role === "replica" ? fmtBytes(node.lag_bytes) : "\u2014");
      setText(n.outstanding, fmtCount(node.outstanding));
    });
  });
  updateSentinel(v.sentinel, pool.sentinel);
}

function updateSentinel(box, s) {
  box.hidden = s === null;
  if (s === null) return;
  var shards = Object.keys(s.shards).map(function (name) {
    var sh = s.shards[name];
    return name + ": master " + (sh.master || "unknown") + ", " + sh.failovers + " failover" + (sh.failovers === 1 ? "" : "s") +
      (sh.last_switch_at ? " (last " + clock(Date.parse(sh.last_switch_at)) + ")" : "");
  });
  var text = "Sentinel: " + s.reachable + " of " + s.sentinels.length + " reachable (" + s.sentinels.join(", ") + ")";
  if (box.getAttribute("data-text") === text + shards.join("|")) return;
  box.setAttribute("data-text", text + shards.join("|"));
  box.textContent = "";
  var h = el("h3", s.reachable === 0 ? "bad" : "", text);
  box.appendChild(h);
  shards.forEach(function (line) { box.appendChild(el("div", "", line)); });
}

function drawCharts(name) {
  var v = views[name];
  var h = hist && hist.pools[name];
  if (!v || !h) return;
  var rate = [{ name: "pool", values: h.rate }];
  var p99 = [{ name: "pool", values: h.p99_ms }];
  var picked = Object.keys(h.nodes).filter(function (id) { return selected[name + "\u0000" + id]; });
  if (picked.length > 0) {
    var id = picked[picked.length - 1];
    rate.push({ name: id, values: h.nodes[id].rate });
    p99.push({ name: id, values: h.nodes[id].p99_ms });
  }
  v.rateChart.update(hist.times, rate, lastNow);
  v.p99Chart.update(hist.times, p99, lastNow);
  Object.keys(v.nodes).forEach(function (id) {
    var s = h.nodes[id];
    if (!s) return;
    v.nodes[id].rateSpark.update(hist.times, s.rate, lastNow);
    v.nodes[id].p99Spark.update(hist.times, s.p99_ms, lastNow);
  });
}

function render(data) {
  lastNow = data.now;
  setText($("source"), data.source);
  setText($("version"), data.version);
  setText($("uptime"), fmtUptime(data.uptime));
  setText($("generation"), String(data.reload.generation));
  renderReloadStatus(data.reload);
  var main = $("pools");
  var names = data.pools.map(function (p) { return p.name; }).join("\u0000");
  var rebuild = names !== order;
  data.pools.forEach(function (p) {
    if (!views[p.name] || views[p.name].structure !== structureOf(p)) { views[p.name] = buildPool(p); rebuild = true; }
  });
  if (rebuild) {
    order = names;
    var keep = {};
    main.textContent = "";
    data.pools.forEach(function (p) { keep[p.name] = views[p.name]; main.appendChild(views[p.name].section); });
    views = keep;
    if (data.pools.length === 0) main.appendChild(el("p", "empty", "No pools are configured."));
  }
  data.pools.forEach(function (p) { updatePool(views[p.name], p); drawCharts(p.name); });
}

function renderReloadStatus(r) {
  var box = $("last-reload");
  var text;
  var cls = "";
  if (r.last_reload_at === null) text = "never";
  else if (r.last_reload_error === null) { text = "ok at " + clock(Date.parse(r.last_reload_at)); cls = "ok"; }
  else { text = "failed at " + clock(Date.parse(r.last_reload_at)) + ": " + r.last_reload_error; cls = "bad"; }
  setText(box, text);
  if (box.className !== cls) box.className = cls;
  box.title = r.last_reload_error || "";
  $("reload-button").disabled = !r.available;
}

// ---- polling -----------------------------------------------------------------------

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
  var token = "";
  try { token = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { token = ""; }
  $("reload-token").value = token;
  if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
}

function closeReload() {
  var dialog = $("reload-dialog");
  if (typeof dialog.close === "function") dialog.close(); else dialog.removeAttribute("open");
}

function confirmReload(ev) {
  ev.preventDefault();
  var token = $("reload-token").value.trim();
  try { if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage off */ }
  var dry = $("reload-dry").checked;
  var headers = { "content-type": "application/json", accept: "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  var confirmButton = $("reload-confirm");
  var result = $("reload-result");
  confirmButton.disabled = true;
  result.hidden = false;
  result.className = "result";
  setText(result, dry ? "Checking\u2026" : "Reloading\u2026");
  var status = 0;
  fetch(dry ? "reload?dry_run=1" : "reload", { method: "POST", headers: headers, body: "{}", cache: "no-store" })
    .then(function (res) {
      status = res.status;
      return res.json().catch(function () { return { error: "HTTP " + res.status }; });
    })
    .then(function (body) {
      var r = describeReport(status, body);
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
      setText($("reload-cancel"), "Close");
      poll();
    });
}

function start() {
  $("reload-button").addEventListener("click", openReload);
  $("reload-cancel").addEventListener("click", closeReload);
  $("reload-form").addEventListener("submit", confirmReload);
  poll();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
`;
