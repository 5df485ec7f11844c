/**
 * The dashboard's stylesheet. Light and dark through prefers-color-scheme and CSS
 * variables (the charts are SVG stroked with the same variables, so they follow); every
 * number in tabular figures inside a box of fixed width, so values changing every second
 * never move the layout; under 760 px the node table turns into one card per node.
 */

/** Served at GET /assets/dashboard.css. */
export const DASHBOARD_CSS = `
:root {
  color-scheme: light dark;
  --bg: #f4f6f8; --panel: #ffffff; --text: #1b1f24; --muted: #57606a; --border: #d8dee4;
  --accent: #1f6feb; --accent-2: #c2410c; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e;
  --ok-bg: #dafbe1; --warn-bg: #fff8c5; --bad-bg: #ffebe9; --grid: rgba(27, 31, 36, 0.09);
  --shadow: 0 1px 2px rgba(27, 31, 36, 0.06);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
  font-size: 15px; line-height: 1.4;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --panel: #161b22; --text: #e6edf3; --muted: #9da7b3; --border: #30363d;
    --accent: #58a6ff; --accent-2: #f0883e; --ok: #3fb950; --warn: #d29922; --bad: #f85149;
    --ok-bg: rgba(46, 160, 67, 0.18); --warn-bg: rgba(187, 128, 9, 0.2); --bad-bg: rgba(248, 81, 73, 0.18);
    --grid: rgba(240, 246, 252, 0.1); --shadow: none;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
a { color: var(--accent); }
h1, h2, h3 { margin: 0; font-weight: 600; }
h1 { font-size: 1.15rem; }
h2 { font-size: 1.1rem; }
.num { font-variant-numeric: tabular-nums; }
button {
  font: inherit; color: var(--text); background: var(--panel); border: 1px solid var(--border);
  border-radius: 6px; padding: 0.35rem 0.8rem; cursor: pointer; min-height: 2.2rem;
}
button:hover { border-color: var(--accent); }
button:focus-visible, input:focus-visible, tr:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: 0.6; cursor: progress; }

.top {
  display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.5rem; padding: 0.6rem 1rem;
  background: var(--panel); border-bottom: 1px solid var(--border); position: sticky; top: 0; z-index: 2;
}
.brand { display: flex; align-items: center; gap: 0.5rem; }
.logo { width: 1.4rem; height: 1.4rem; fill: none; stroke: var(--accent); stroke-width: 2; }
.facts { display: flex; flex-wrap: wrap; gap: 0.25rem 1.25rem; margin: 0; flex: 1 1 28rem; }
.facts div { min-width: 6rem; }
.facts div.wide { min-width: 14rem; max-width: 28rem; }
.facts dt { font-size: 0.72rem; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.facts dd { margin: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#uptime { display: inline-block; min-width: 7.5ch; }
.actions { display: flex; align-items: center; gap: 0.75rem; margin-left: auto; }
.live { font-size: 0.85rem; color: var(--muted); display: inline-flex; align-items: center; gap: 0.35rem; min-width: 6.5rem; }
.live::before { content: ""; width: 0.6rem; height: 0.6rem; border-radius: 50%; background: var(--muted); }
.live[data-state="live"]::before { background: var(--ok); }
.live[data-state="stale"]::before { background: var(--warn); }
.live[data-state="offline"]::before { background: var(--bad); }
.ok { color: var(--ok); }
.bad { color: var(--bad); }

main { padding: 1rem; display: grid; gap: 1rem; }
.empty { color: var(--muted); padding: 1rem; }
.foot { padding: 0 1rem 1.5rem; color: var(--muted); font-size: 0.85rem; }

.pool {
  background: var(--panel); border: 1px solid var(--border); border-radius: 10px; box-shadow: var(--shadow);
  padding: 0.9rem 1rem 1rem; display: grid; gap: 0.9rem; min-width: 0;
}
.pool-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.4rem 0.75rem; }
.tag { font-size: 0.75rem; border: 1px solid var(--border); border-radius: 999px; padding: 0 0.5rem; color: var(--muted); }
.addr { color: var(--muted); font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.85rem; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(8.5rem, 1fr)); gap: 0.5rem; }
.tile { border: 1px solid var(--border); border-radius: 8px; padding: 0.4rem 0.6rem; }
.tile .label { display: block; font-size: 0.75rem; color: var(--muted); }
.tile .value { display: block; font-size: 1.35rem; font-weight: 600; white-space: nowrap; }

.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 22rem), 1fr)); gap: 0.75rem; }
.chart { min-width: 0; }
.chart-head { display: flex; justify-content: space-between; gap: 0.5rem; font-size: 0.8rem; color: var(--muted); }
.chart-head .legend { display: flex; gap: 0.75rem; white-space: nowrap; overflow: hidden; }
.legend i { display: inline-block; width: 0.8rem; height: 0.15rem; vertical-align: middle; margin-right: 0.25rem; background: var(--accent); }
.legend i.s1 { background: var(--accent-2); }
.plot { position: relative; height: 9rem; margin: 0.25rem 0 0 3.2rem; border-left: 1px solid var(--border); border-bottom: 1px solid var(--border); touch-action: pan-y; }
.plot svg { position: absolute; inset: 0; width: 100%; height: 100%; overflow: visible; }
.plot .grid { stroke: var(--grid); stroke-width: 1; vector-effect: non-scaling-stroke; fill: none; }
.plot .line, .spark .line { fill: none; stroke-width: 1.6; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
.line.s0 { stroke: var(--accent); }
.line.s1 { stroke: var(--accent-2); }
.plot .ylab { position: absolute; right: calc(100% + 0.3rem); font-size: 0.7rem; color: var(--muted); transform: translateY(-50%); white-space: nowrap; }
.xlabs { display: flex; justify-content: space-between; margin-left: 3.2rem; font-size: 0.7rem; color: var(--muted); }
.cursor { position: absolute; top: 0; bottom: 0; width: 1px; background: var(--muted); pointer-events: none; }
.tip {
  position: absolute; top: 0.25rem; padding: 0.2rem 0.4rem; border-radius: 4px; font-size: 0.75rem; pointer-events: none;
  background: var(--panel); border: 1px solid var(--border); white-space: nowrap; box-shadow: var(--shadow);
}

.panel { border: 1px solid var(--border); border-radius: 8px; padding: 0.5rem 0.75rem; font-size: 0.9rem; min-width: 0; }
.panel h3 { font-size: 0.9rem; margin-bottom: 0.3rem; }
.panel .error { overflow-wrap: anywhere; }
table.slots { border-collapse: collapse; margin-top: 0.4rem; width: 100%; font-size: 0.85rem; }
.slots th, .slots td { padding: 0.2rem 0.5rem 0.2rem 0; text-align: left; border-bottom: 1px solid var(--border); vertical-align: top; }
.slots th { font-size: 0.75rem; color: var(--muted); font-weight: 500; }
.slots .num { text-align: right; white-space: nowrap; }
.slots td.ranges { overflow-wrap: anywhere; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }

.mig-head { display: flex; flex-wrap: wrap; align-items: center; gap: 0.3rem 0.6rem; }
.mig-ring, .mig-waiting, .mig-error { overflow-wrap: anywhere; color: var(--muted); }
.mig-error.bad { color: var(--bad); }
.mig-tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(7rem, 1fr)); gap: 0.4rem; margin: 0.4rem 0; }
.mig-tile { border: 1px solid var(--border); border-radius: 6px; padding: 0.2rem 0.5rem; }
.mig-tile .label { display: block; font-size: 0.72rem; color: var(--muted); }
.mig-tile .value { display: block; font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
table.mig-sources { border-collapse: collapse; margin-top: 0.4rem; width: 100%; table-layout: fixed; font-size: 0.85rem; }
.mig-sources th, .mig-sources td { padding: 0.2rem 0.5rem 0.2rem 0; text-align: left; border-bottom: 1px solid var(--border); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.mig-sources th { font-size: 0.75rem; color: var(--muted); font-weight: 500; }
.mig-sources .num { text-align: right; font-variant-numeric: tabular-nums; width: 16%; }
.mig-sources .bar { width: 22%; padding-left: 0.5rem; }
.mig-sources progress { width: 100%; height: 0.7rem; accent-color: var(--accent); vertical-align: middle; }
.mig-actions { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-top: 0.6rem; }
.badge.active { color: var(--accent); box-shadow: inset 0 0 0 1px var(--accent); }

.table-wrap { overflow-x: auto; }
table.nodes { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 0.9rem; min-width: 52rem; }
.nodes th, .nodes td { padding: 0.3rem 0.5rem; text-align: left; border-bottom: 1px solid var(--border); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.nodes th { font-size: 0.75rem; color: var(--muted); font-weight: 500; }
.nodes td.num, .nodes th.num { text-align: right; }
.nodes col.c-node { width: 24%; } .nodes col.c-role { width: 7%; } .nodes col.c-state { width: 15%; }
.nodes col.c-n { width: 8%; } .nodes col.c-trend { width: 14%; }
.nodes tr.shard th { color: var(--text); font-size: 0.8rem; background: var(--bg); }
.nodes tbody tr.node { cursor: pointer; }
.nodes tbody tr.node:hover { background: var(--bg); }
.nodes tbody tr.node[aria-pressed="true"] { box-shadow: inset 3px 0 0 var(--accent-2); }
.nodes .sub { display: block; color: var(--muted); font-size: 0.75rem; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow: hidden; text-overflow: ellipsis; }
.badge { display: inline-block; min-width: 5.5rem; padding: 0 0.45rem; border-radius: 999px; font-size: 0.8rem; text-align: center; overflow: hidden; text-overflow: ellipsis; max-width: 100%; vertical-align: middle; }
.badge.up { background: var(--ok-bg); color: var(--ok); }
.badge.ineligible { background: var(--warn-bg); color: var(--warn); }
.badge.ejected, .badge.down { background: var(--bad-bg); color: var(--bad); }
.spark { display: inline-block; width: 44%; height: 1.3rem; margin-right: 4%; vertical-align: middle; }

dialog { border: 1px solid var(--border); border-radius: 10px; background: var(--panel); color: var(--text); padding: 1rem 1.2rem; width: min(34rem, calc(100vw - 2rem)); }
dialog::backdrop { background: rgba(0, 0, 0, 0.45); }
dialog h2 { margin-bottom: 0.5rem; }
dialog p { margin: 0 0 0.75rem; color: var(--muted); }
.field { display: grid; gap: 0.25rem; margin-bottom: 0.6rem; font-size: 0.9rem; }
.field input { font: inherit; padding: 0.35rem 0.5rem; border: 1px solid var(--border); border-radius: 6px; background: var(--bg); color: var(--text); }
.check { display: flex; gap: 0.5rem; align-items: baseline; font-size: 0.9rem; }
.result { margin: 0.75rem 0 0; padding: 0.5rem 0.7rem; border-radius: 6px; font-size: 0.9rem; white-space: pre-wrap; max-height: 14rem; overflow: auto; }
.result.ok { background: var(--ok-bg); color: var(--text); }
.result.bad { background: var(--bad-bg); color: var(--text); }
.buttons { display: flex; justify-content: flex-end; gap: 0.5rem; margin-top: 0.9rem; }

@media (max-width: 760px) {
  :root { font-size: 14px; }
  .top { position: static; }
  .facts div.wide { min-width: 100%; }
  .actions { margin-left: 0; width: 100%; justify-content: space-between; }
  main { padding: 0.6rem; }
  .pool { padding: 0.75rem; }
  .tiles { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .tile .value { font-size: 1.1rem; }
  table.nodes { min-width: 0; table-layout: auto; }
  .nodes colgroup, .nodes thead { display: none; }
  .nodes, .nodes tbody { display: block; }
  .nodes tr.shard { display: block; }
  .nodes tr.shard th { display: block; }
  .nodes tr.node { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 0.15rem 0.5rem; padding: 0.5rem 0; border-bottom: 1px solid var(--border); }
  .nodes td { border: 0; padding: 0; text-align: left; }
  .nodes td.num { text-align: left; }
  .nodes td::before { content: attr(data-label); display: block; font-size: 0.7rem; color: var(--muted); }
  .nodes td.c-node { grid-column: 1 / -1; }
  .nodes td.c-node::before, .nodes td.c-trend::before { content: none; }
  .nodes td.c-trend { grid-column: 1 / -1; }
  .nodes td.c-state { grid-column: span 2; }
  .mig-sources { font-size: 0.8rem; }
  .mig-sources .num { width: 15%; }
  .mig-sources .bar { width: 15%; }
}
`;
