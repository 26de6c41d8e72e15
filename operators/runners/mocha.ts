/**
 * mocha: run with `--reporter json --reporter-option output=<report>` (mocha ≥ 9.2 writes the JSON to the
 * file; older mochas ignore the option and print it on stdout, where the parser finds it in the log).
 * A spec file that throws while loading aborts mocha's whole run (`Exception during run:`), so selected
 * files run one mocha each, their reports concatenated after `<!-- swe-stream file: <path> -->` markers
 * and their logs after `# swe-stream file: <path>` lines; one broken file then costs only its own tests,
 * which grading needs (an absent test reads as failed). The whole suite ('all') is one run.
 * mocha's JSON gives each test's `title` and `fullTitle` (describe titles and the test title joined with
 * single spaces) and `file`, so the id is `path > <describe titles as mocha joins them> > test`.
 * Hook failures (`"before all" hook for "x"`) appear only under `failures` and become FAILED entries.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult } from './types.js';
import { dedupeResults } from './types.js';
import { isJsTestFile, jsId } from './jest.js';
import { QUIET_ENV, relPath, shFiles, shq, stripAnsi } from './util.js';

const MARK_REP = '<!-- swe-stream file: ';
const MARK_LOG = '# swe-stream file: ';

/** `mocha --reporter json --reporter-option output=<report>`, once per file (see above) or once for 'all'. */
function testCommand(opts: TestCommandOptions): string {
  const rep = shq(opts.reportPath);
  const args = opts.args?.length ? ' ' + shFiles(opts.args) : '';
  if (opts.files === 'all') return `${QUIET_ENV} npx mocha${args} --reporter json --reporter-option output=${rep}${opts.patterns?.length ? ' ' + shFiles(opts.patterns) : ''}`;
  const part = shq(opts.reportPath + '.part');
  return [
    `__rc=0`,
    `: > ${rep}`,
    `for __f in ${shFiles(opts.files)}; do echo "${MARK_LOG}$__f"; echo "${MARK_REP}$__f -->" >> ${rep}; rm -f ${part}; ` +
      `${QUIET_ENV} npx mocha${args} --reporter json --reporter-option output=${part} "$__f" || __rc=$?; ` +
      `cat ${part} >> ${rep} 2>/dev/null; echo >> ${rep}; rm -f ${part}; done`,
    `exit $__rc`,
  ].join('; ');
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

/** One run's results: its report, else JSON on its stdout, else a load exception. */
function parseOne(report: string | null, log: string, ctx?: ParseContext, file?: string): TestResult[] {
  const doc = (report !== null ? tryJson(report) : null) ?? jsonInLog(log);
  if (doc) {
    const r = fromJson(doc, ctx);
    if (r.length) return r;
  }
  const le = loadError(log, ctx);
  // Per-file runs know which file they ran; the stack trace may name a helper it required instead.
  return file && le.length ? [{ name: file, status: 'ERROR' }] : le;
}

/** Split a marked text into `{ file → section }`. */
function sections(text: string, mark: string, close: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = text.split(mark).slice(1);
  for (const p of parts) {
    const end = p.indexOf(close);
    if (end < 0) continue;
    out.set(p.slice(0, end).trim(), p.slice(end + close.length));
  }
  return out;
}

function parse(report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  const marked = stripAnsi(log).includes(MARK_LOG) || (report ?? '').includes(MARK_REP);
  if (!marked) return dedupeResults(parseOne(report, log, ctx));
  const reps = report !== null ? sections(report, MARK_REP, ' -->') : new Map<string, string>();
  const logs = sections(stripAnsi(log), MARK_LOG, '\n');
  const files = [...new Set([...logs.keys(), ...reps.keys()])];
  const out: TestResult[] = [];
  for (const f of files) {
    const r = reps.get(f)?.trim();
    out.push(...parseOne(r ? r : null, logs.get(f) ?? '', ctx, f));
  }
  return dedupeResults(out);
}

/** mocha's default spec is ./test/*.{js,cjs,mjs}; repositories also use the jest-style names. */
function isTestFile(path: string): boolean {
  return isJsTestFile(path) || /^test\/[^/]+\.(c|m)?[jt]s$/.test(path);
}

/** The mocha runner. */
export const mocha: Runner = { name: 'mocha', reportFormat: 'mocha-json', testCommand, parse, isTestFile };
