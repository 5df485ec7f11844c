/**
 * The dashboard script's first part (see script.ts, which assembles it): DOM helpers, number
 * and time formats, and the charts. A chart is an SVG in a 1000 x 100 box stretched to its
 * container (preserveAspectRatio none; strokes keep their width through vector-effect) with
 * HTML labels around it: it follows the layout without a redraw and takes its colours from
 * the stylesheet's variables, so dark mode needs nothing. Plain ES2017, no backticks.
 */

/** Helpers, formats, chart() and spark(). */
export const CHARTS_JS = String.raw`function $(id) { return document.getElementById(id); }
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
`;
