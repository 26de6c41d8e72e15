/**
 * Karma (browser suites, usually karma-jasmine or karma-mocha) in headless Chromium: Debian's
 * `chromium` (CHROME_BIN, default /usr/bin/chromium) through karma-chrome-launcher with `--no-sandbox`
 * (a container has no user namespaces for Chromium's sandbox).
 *
 * The command runs karma with a wrapper configuration that loads the repository's own (`karma.conf.js`,
 * or the path the script gives) and then overrides what the harness must own: single run, our headless
 * browser, and the reporters — our own inline reporter plugin (Karma's documented `reporter:<name>`
 * plugin form, so no reporter package needs to be installed) that appends one JSON line per spec, plus
 * `dots` for the text log. Replacing the reporters also removes `coverage` and its thresholds.
 *
 * Karma bundles the files its configuration lists (often through webpack or browserify), so a run of
 * selected files is the whole suite: karma has no per-file selection that works across setups. Test
 * ids: `describe > … > spec` (Karma's results name no file). A browser error (a bundle that does not
 * load) is one ERROR entry named `(browser)`.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult, TestStatus } from './types.js';
import { shFiles, shq, stripAnsi, reportElseLog, jsonLines } from './util.js';

const WRAPPER = `const path = require('path');
const fs = require('fs');
const out = process.env.SWE_STREAM_KARMA_REPORT;
const w = (o) => fs.appendFileSync(out, JSON.stringify(o) + '\\n');
function SweStreamReporter(baseReporterDecorator) {
  baseReporterDecorator(this);
  this.onSpecComplete = (browser, r) => w({ suite: r.suite, title: r.description, success: r.success, skipped: r.skipped || r.pending, ms: r.time });
  this.onBrowserError = (browser, error) => w({ browserError: String(error && error.message || error) });
}
SweStreamReporter.$inject = ['baseReporterDecorator'];
const repoConfig = path.resolve(process.env.SWE_STREAM_KARMA_CONFIG);
const repo = require(repoConfig);
module.exports = (config) => {
  (typeof repo === 'function' ? repo : repo.default)(config);
  // karma resolves basePath against the config file's directory: that is the repository's, not ours.
  config.basePath = path.resolve(path.dirname(repoConfig), config.basePath || '');
  const plugins = config.plugins && config.plugins.length ? config.plugins : ['karma-*'];
  config.set({
    plugins: [...plugins, { 'reporter:swe-stream': ['type', SweStreamReporter] }],
    reporters: ['swe-stream', 'dots'],
    browsers: ['SweStreamChromium'],
    customLaunchers: { SweStreamChromium: { base: 'ChromeHeadless', flags: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] } },
    singleRun: true,
    autoWatch: false,
    colors: false,
  });
};
`;

const WRAPPER_PATH = '/tmp/swe-stream/karma.swe-stream.cjs';

/** The repository's config file: the first positional argument of `karma start` (default karma.conf.js). */
function configOf(args: string[]): { config: string; rest: string[] } {
  const i = args.findIndex((a) => !a.startsWith('-'));
  if (i < 0) return { config: 'karma.conf.js', rest: args };
  return { config: args[i]!, rest: [...args.slice(0, i), ...args.slice(i + 1)] };
}

/** `karma start <wrapper>` with the repository's config and flags (watch/browser/reporter flags dropped); files are ignored (see the file comment). */
function testCommand(opts: TestCommandOptions): string {
  const { config, rest } = configOf(opts.args ?? []);
  const flags: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (/^--(browsers|reporters|port|log-level)$/.test(a)) { i++; continue; }
    if (!/^--(single-run|no-single-run|watch|no-watch|auto-watch|no-auto-watch|browsers|reporters)\b/.test(a)) flags.push(a);
  }
  return [
    `mkdir -p /tmp/swe-stream`,
    `printf '%s' ${shq(WRAPPER)} > ${WRAPPER_PATH}`,
    `: > ${shq(opts.reportPath)}`,
    `CHROME_BIN="\${CHROME_BIN:-/usr/bin/chromium}" SWE_STREAM_KARMA_CONFIG=${shq(config)} SWE_STREAM_KARMA_REPORT=${shq(opts.reportPath)} NO_COLOR=1 npx karma start ${WRAPPER_PATH}${flags.length ? ' ' + shFiles(flags) : ''}`,
  ].join(' && ');
}

interface Line { suite?: string[]; title?: string; success?: boolean; skipped?: boolean; ms?: number; browserError?: string }

function fromJsonl(text: string): TestResult[] {
  const out: TestResult[] = [];
  for (const l of jsonLines<Line>(text)) {
    if (l.browserError !== undefined) { out.push({ name: '(browser)', status: 'ERROR' }); continue; }
    const status: TestStatus = l.skipped ? 'SKIPPED' : l.success ? 'PASSED' : 'FAILED';
    out.push({ name: [...(l.suite ?? []), l.title ?? ''].join(' > '), status, durationMs: typeof l.ms === 'number' ? l.ms : undefined });
  }
  return out;
}

/** The `dots` / `progress` text names only failures: `<Browser> <suite> <spec> FAILED` (suite and spec joined by spaces). */
function fromLog(log: string): TestResult[] {
  const out: TestResult[] = [];
  for (const line of stripAnsi(log).split('\n')) {
    const m = /^\s*(?:Chrome|Chromium|HeadlessChrome)[^)]*\)\s+(.+?) FAILED\s*$/.exec(line);
    if (m) out.push({ name: m[1]!.trim(), status: 'FAILED' });
  }
  return out;
}

function parse(report: string | null, log: string, _ctx?: ParseContext): TestResult[] {
  return reportElseLog(report, log, { report: (r) => fromJsonl(r), log: fromLog });
}

/** Karma suites name their specs like jasmine / mocha ones: `*.spec.*`, `*.test.*`, or files under test/ or spec/. */
function isTestFile(path: string): boolean {
  if (/(^|\/)node_modules\//.test(path) || !/\.[cm]?[jt]sx?$/.test(path)) return false;
  return /\.(spec|test)\.[cm]?[jt]sx?$/.test(path) || /(^|\/)(test|tests|spec)\//.test(path);
}

/** The karma runner. */
export const karma: Runner = { name: 'karma', reportFormat: 'jsonl', testCommand, parse, isTestFile };
