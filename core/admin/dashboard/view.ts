/**
 * The dashboard script's second part (see script.ts): the chart history the page holds
 * (merged from each answer's points, trimmed to the window) and the pool sections, built
 * once per pool and shard layout and afterwards only updated where a text changed, so the
 * layout never moves as numbers do; the feature panels inside a pool are in panels.ts and
 * migration.ts.
 * Plain ES2017, no backticks.
 */

/** mergeHistory(), buildPool(), updatePool(), drawCharts(), render(). */
export const VIEW_JS = String.raw`// ---- history -----------------------------------------------------------------------

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

  // Feature panels (panels.ts): each hidden until the pool has that feature.
  v.sentinel = el("div", "panel sentinel");
  v.sentinel.hidden = true;
  section.appendChild(v.sentinel);
  v.cluster = el("div", "panel cluster");
  v.cluster.hidden = true;
  section.appendChild(v.cluster);
  v.migration = el("div", "panel migration");
  v.migration.hidden = true;
  section.appendChild(v.migration);

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
  updateCluster(v.cluster, pool.cluster);
  updateMigration(v.migration, pool.name, pool.migration);
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
`;
