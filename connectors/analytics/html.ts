/**
 * The `report --html` page: ONE self-contained HTML file — Chart.js (chart.js 4, UMD build) inlined from
 * node_modules, the report data inlined as JSON, no network access at view time (no CDN, no fonts).
 * Charts: funnel per stage (stacked accepted / rejected / failed), categories, stage durations p50 / p95,
 * yield per day. Animations are off and sizes fixed, so each chart is drawn when it is constructed; the
 * page then records on every canvas how many pixels it painted (`data-painted`) and on <body> how many
 * charts exist (`data-charts`) — cheap evidence for tests and for anyone debugging a blank page.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { renderText } from './render.js';
import type { Report } from './views.js';

const require = createRequire(import.meta.url);

/** Chart.js UMD source text. @throws Error when chart.js is not installed */
export function chartJsSource(): string {
  // chart.js's package exports hide dist/ files; its main entry sits beside the UMD build.
  return readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.js'), 'utf8');
}

/**
 * Make library source safe inside <script>: no `</script`, no `<!--`, U+2028/2029 escaped. (The report
 * data is JSON with every `<` written as \u003c, so hostile strings from repositories stay inert.)
 */
function scriptSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The page's own drawing code, run after Chart.js is defined. Reads `window.__REPORT__`. */
const PAGE_SCRIPT = `
(function () {
  var R = window.__REPORT__;
  Chart.defaults.animation = false;
  Chart.defaults.responsive = false;
  var charts = [];
  function make(id, config) { charts.push(new Chart(document.getElementById(id), config)); }
  var stages = R.stages.map(function (s) { return s.stage; });
  make('funnel', { type: 'bar', data: { labels: stages, datasets: [
    { label: 'accepted', data: R.stages.map(function (s) { return s.accepted; }), backgroundColor: '#2e7d32' },
    { label: 'rejected', data: R.stages.map(function (s) { return s.rejected; }), backgroundColor: '#f9a825' },
    { label: 'failed', data: R.stages.map(function (s) { return s.failed; }), backgroundColor: '#c62828' } ] },
    options: { indexAxis: 'y', scales: { x: { stacked: true, title: { display: true, text: 'inputs' } }, y: { stacked: true } },
      plugins: { title: { display: true, text: 'Funnel per stage' } } } });
  var cats = Object.keys(R.categories);
  make('categories', { type: 'bar', data: { labels: cats, datasets: [
    { label: 'rows', data: cats.map(function (c) { return R.categories[c]; }), backgroundColor: '#1565c0' } ] },
    options: { plugins: { title: { display: true, text: 'Category distribution (released rows)' }, legend: { display: false } } } });
  make('durations', { type: 'bar', data: { labels: R.durations.map(function (d) { return d.stage; }), datasets: [
    { label: 'p50 (s)', data: R.durations.map(function (d) { return d.p50_ms / 1000; }), backgroundColor: '#6a1b9a' },
    { label: 'p95 (s)', data: R.durations.map(function (d) { return d.p95_ms / 1000; }), backgroundColor: '#ce93d8' } ] },
    options: { scales: { y: { title: { display: true, text: 'seconds' } } }, plugins: { title: { display: true, text: 'Stage durations' } } } });
  make('yield', { type: 'line', data: { labels: R.yield.by_day.map(function (d) { return d.day; }), datasets: [
    { label: 'merged PRs', data: R.yield.by_day.map(function (d) { return d.merged_prs; }), borderColor: '#546e7a' },
    { label: 'verified rows', data: R.yield.by_day.map(function (d) { return d.verified; }), borderColor: '#81c784' },
    { label: 'released rows', data: R.yield.by_day.map(function (d) { return d.released; }), borderColor: '#2e7d32' } ] },
    options: { plugins: { title: { display: true, text: 'Yield by merge day (UTC)' } } } });
  charts.forEach(function (c) {
    var cv = c.canvas, ctx = cv.getContext('2d'), px = ctx.getImageData(0, 0, cv.width, cv.height).data, painted = 0;
    for (var i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
    cv.setAttribute('data-painted', String(painted));
  });
  window.__CHARTS__ = charts;
  document.body.setAttribute('data-charts', String(charts.length));
})();
`;

/**
 * Render the report as one self-contained HTML page (UTF-8). The text tables of {@link renderText} are
 * included under the charts so every figure is readable without JavaScript.
 * @param opts.title page title (default "swe-stream report"); opts.generatedAt ISO time shown in the header
 */
export function renderHtml(report: Report, opts: { title?: string; generatedAt?: string } = {}): string {
  const title = opts.title ?? 'swe-stream report';
  const at = opts.generatedAt ?? new Date().toISOString();
  const y = report.yield;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; } .sub { color: #666; margin-bottom: 16px; }
.kpi { display: inline-block; margin: 0 24px 16px 0; } .kpi b { display: block; font-size: 22px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr)); gap: 16px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
pre { background: #f7f7f7; padding: 12px; overflow-x: auto; }
</style></head>
<body>
<h1>${esc(title)}</h1><div class="sub">generated ${esc(at)}</div>
<div class="kpi"><b>${y.verified}</b>verified rows</div>
<div class="kpi"><b>${y.merged_prs}</b>merged PRs seen</div>
<div class="kpi"><b>${y.rate === null ? '–' : (y.rate * 100).toFixed(1) + '%'}</b>yield</div>
<div class="kpi"><b>$${report.cost.total.cost_usd.toFixed(2)}</b>total cost</div>
<div class="grid">
<div class="card"><canvas id="funnel" width="600" height="320"></canvas></div>
<div class="card"><canvas id="categories" width="600" height="320"></canvas></div>
<div class="card"><canvas id="durations" width="600" height="320"></canvas></div>
<div class="card"><canvas id="yield" width="600" height="320"></canvas></div>
</div>
<h2>Tables</h2>
<pre>${esc(renderText(report))}</pre>
<script>${scriptSafe(chartJsSource())}</script>
<script>window.__REPORT__ = ${JSON.stringify(report).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')};</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
