/**
 * The dashboard's HTML shell: header (host, version, uptime, config generation, last
 * reload, live indicator, reload action), an empty <main> the script fills with one
 * section per pool, and the confirmation dialogs of reload and of a migration's actions. Scripts and styles are separate
 * files under assets/ so the Content-Security-Policy can forbid inline code. All URLs
 * are relative: the page also works behind a reverse proxy under a path prefix.
 */

/** The page, as served at GET /. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>twemproxy-ts dashboard</title>
<link rel="icon" href="assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="assets/dashboard.css">
<script src="assets/dashboard.js" defer></script>
</head>
<body>
<header class="top">
  <div class="brand">
    <svg class="logo" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6"/><path d="M5 8h6M8 5v6"/></svg>
    <h1>twemproxy-ts</h1>
  </div>
  <dl class="facts">
    <div><dt>host</dt><dd id="source">&nbsp;</dd></div>
    <div><dt>version</dt><dd id="version">&nbsp;</dd></div>
    <div><dt>uptime</dt><dd id="uptime" class="num">&nbsp;</dd></div>
    <div><dt>config generation</dt><dd id="generation" class="num">&nbsp;</dd></div>
    <div class="wide"><dt>last reload</dt><dd id="last-reload">&nbsp;</dd></div>
  </dl>
  <div class="actions">
    <span id="live" class="live" data-state="connecting" role="status">connecting</span>
    <button id="reload-button" type="button">Reload config&hellip;</button>
  </div>
</header>
<main id="pools"><p class="empty" id="loading">Loading&hellip;</p></main>
<footer class="foot">
  <a href="api">JSON API</a> &middot; <a href="metrics">Prometheus metrics</a> &middot; <a href="pools">/pools</a>
  &middot; charts: the last 15 minutes, one point per second, kept by the proxy
</footer>
<dialog id="reload-dialog" aria-labelledby="reload-title">
  <form id="reload-form" method="dialog">
    <h2 id="reload-title">Reload the configuration?</h2>
    <p>The proxy re-reads its config file and applies it. Clients stay connected; a file
    with an error changes nothing.</p>
    <label class="field">Admin token
      <input id="reload-token" type="password" autocomplete="off" spellcheck="false"
        placeholder="needed when the proxy runs with --admin-token">
    </label>
    <label class="check"><input id="reload-dry" type="checkbox"> Dry run: only check the file and show what would change</label>
    <div id="reload-result" class="result" role="status" aria-live="polite" hidden></div>
    <div class="buttons">
      <button id="reload-cancel" type="button">Cancel</button>
      <button id="reload-confirm" type="submit" class="primary">Reload</button>
    </div>
  </form>
</dialog>
<dialog id="migration-dialog" aria-labelledby="migration-title">
  <form id="migration-form" method="dialog">
    <h2 id="migration-title">Migration action</h2>
    <p id="migration-text"></p>
    <label class="field">Admin token
      <input id="migration-token" type="password" autocomplete="off" spellcheck="false"
        placeholder="needed when the proxy runs with --admin-token">
    </label>
    <div id="migration-result" class="result" role="status" aria-live="polite" hidden></div>
    <div class="buttons">
      <button id="migration-cancel" type="button">Cancel</button>
      <button id="migration-confirm" type="submit" class="primary">Confirm</button>
    </div>
  </form>
</dialog>
<noscript><p class="empty">This page needs JavaScript. The same data is at <a href="api">/api</a>.</p></noscript>
</body>
</html>
`;

/** The favicon: the logo in the accent colour. */
export const DASHBOARD_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">` +
  `<circle cx="8" cy="8" r="6" fill="none" stroke="#2563eb" stroke-width="2"/>` +
  `<path d="M5 8h6M8 5v6" stroke="#2563eb" stroke-width="2"/></svg>`;
