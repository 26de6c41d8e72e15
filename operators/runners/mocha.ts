/**
 * mocha: run with `--reporter json --reporter-option output=<report>` (mocha ≥ 9.2 writes the JSON to the
 * file; older mochas ignore the option and print it on stdout, where the parser finds it in the log).
 * mocha's JSON gives each test's `title` and `fullTitle` (describe titles and the test title joined with
 * single spaces) and `file`, so the id is `path > <describe titles as mocha joins them> > test`.
 * Hook failures (`"before all" hook for "x"`) appear only under `failures` and become FAILED entries.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult } from './types.js';
import { dedupeResults } from './types.js';
import { isJsTestFile, jsId } from './jest.js';
import { QUIET_ENV, relPath, shFiles, shq, stripAnsi } from './util.js';

/** `mocha --reporter json --reporter-option output=<report> [files]`. */
function testCommand(opts: TestCommandOptions): string {
  const files = opts.files === 'all' ? '' : ' ' + shFiles(opts.files);
  return `${QUIET_ENV} npx mocha --reporter json --reporter-option output=${shq(opts.reportPath)}${files}`;
}

interface MochaTest { title?: string; fullTitle?: string; file?: string; duration?: number }
interface MochaJson { stats?: unknown; tests?: MochaTest[]; passes?: MochaTest[]; failures?: MochaTest[]; pending?: MochaTest[] }

function idOf(t: MochaTest, ctx?: ParseContext): string {
  const title = t.title ?? '';
  const full = t.fullTitle ?? title;
  const prefix = full.endsWith(title) ? full.slice(0, full.length - title.length).trimEnd() : '';
  const file = t.file ? relPath(t.file, ctx?.workdir) : '';
  const parts = [...(prefix ? [prefix] : []), title];
  return file ? jsId(file, parts) : parts.join(' > ');
}

function fromJson(doc: MochaJson, ctx?: ParseContext): TestResult[] {
  const out: TestResult[] = [];
  for (const t of doc.passes ?? []) out.push({ name: idOf(t, ctx), status: 'PASSED', durationMs: t.duration });
  for (const t of doc.pending ?? []) out.push({ name: idOf(t, ctx), status: 'SKIPPED' });
  for (const t of doc.failures ?? []) out.push({ name: idOf(t, ctx), status: 'FAILED', durationMs: t.duration });
  return out;
}

function tryJson(text: string): MochaJson | null {
  try {
    const d = JSON.parse(text) as MochaJson;
    return d && typeof d === 'object' && 'stats' in d ? d : null;
  } catch {
    return null;
  }
}

/** mocha's JSON on stdout, after whatever the tests printed: from the last `{` line followed by `"stats"`. */
function jsonInLog(log: string): MochaJson | null {
  const idx = log.lastIndexOf('{\n  "stats"');
  return idx >= 0 ? tryJson(log.slice(idx).trim()) : null;
}

/**
 * A run mocha aborted while loading files (`Exception during run:`, e.g. a test file requiring a module
 * that does not exist yet) reports no test; the file that failed to load becomes one ERROR entry, as in
 * pytest's collection errors. The file is the first `Require stack` entry or stack frame outside
 * node_modules and node internals.
 */
function loadError(log: string, ctx?: ParseContext): TestResult[] {
  const text = stripAnsi(log);
  const at = text.indexOf('Exception during run:');
  if (at < 0) return [];
  const tail = text.slice(at);
  const candidates = [
    ...[...tail.matchAll(/^- (\/\S+)$/gm)].map((m) => m[1]!),
    ...[...tail.matchAll(/\((\/[^():]+):\d+:\d+\)/g)].map((m) => m[1]!),
    ...[...tail.matchAll(/^(\/[^:\s]+):\d+$/gm)].map((m) => m[1]!),
  ];
  const file = candidates.find((p) => !p.includes('/node_modules/') && !p.startsWith('node:'));
  return file ? [{ name: relPath(file, ctx?.workdir), status: 'ERROR' }] : [];
}

function parse(report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  const doc = (report !== null ? tryJson(report) : null) ?? jsonInLog(log);
  if (doc) {
    const r = fromJson(doc, ctx);
    if (r.length) return dedupeResults(r);
  }
  return loadError(log, ctx);
}

/** mocha's default spec is ./test/*.{js,cjs,mjs}; repositories also use the jest-style names. */
function isTestFile(path: string): boolean {
  return isJsTestFile(path) || /^test\/[^/]+\.(c|m)?[jt]s$/.test(path);
}

/** The mocha runner. */
export const mocha: Runner = { name: 'mocha', reportFormat: 'mocha-json', testCommand, parse, isTestFile };
