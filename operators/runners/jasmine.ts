/**
 * Jasmine (the `jasmine` npm CLI, 2.x to 5.x). Jasmine ships no file reporter, so the command loads our
 * own reporter as a helper (`--helper=<file>`, a CLI option since jasmine-npm 2.x; helpers run before any
 * spec and may call `jasmine.getEnv().addReporter`, the documented custom-reporter API). It appends one
 * JSON line per spec as the spec ends (suite chain, description, status passed | failed | pending |
 * excluded, jasmine-core's `filename` where it has one), so a run killed by its timeout keeps what
 * finished; the default console reporter stays on and is the text log. Selected files run one jasmine
 * each (a file that throws while loading is a global error that fails the whole run), their parts
 * concatenated with file markers; the whole suite is one run.
 *
 * Test ids: `file > suite > … > spec`. A suite whose afterAll failed adds `file > suite` FAILED; a global
 * error (a file that did not load) or a non-zero exit with nothing failing makes `file` an ERROR entry.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult, TestStatus } from './types.js';
import { dedupeResults } from './types.js';
import { jsId } from './jest.js';
import { fileLogs, fileParts, perFileCommand, relPath, shFiles, shq, stripAnsi, jsonLines } from './util.js';

const REPORTER = `const fs = require('fs');
const out = process.env.SWE_STREAM_JASMINE_REPORT;
const stack = [];
const w = (o) => { if (out) fs.appendFileSync(out, JSON.stringify(o) + '\\n'); };
jasmine.getEnv().addReporter({
  suiteStarted(r) { stack.push(r.description); },
  suiteDone(r) {
    stack.pop();
    if (r.failedExpectations && r.failedExpectations.length) w({ suites: stack.concat([r.description]), title: null, status: 'failed', file: r.filename || null });
  },
  specDone(r) { w({ suites: stack.slice(), title: r.description, status: r.status, file: r.filename || null, ms: r.duration }); },
  jasmineDone(r) { if (r && r.failedExpectations && r.failedExpectations.length) w({ global: true, status: 'failed' }); },
});
`;

const REPORTER_PATH = '/tmp/swe-stream/jasmine-reporter.cjs';
const ENV = 'NO_COLOR=1 FORCE_COLOR=0';

/** Per file: `npx jasmine <repo args> --helper=<reporter> <file>`; 'all': one run over the configured specs (or the script's patterns). */
function testCommand(opts: TestCommandOptions): string {
  const args = opts.args?.length ? ' ' + shFiles(opts.args) : '';
  const write = [`mkdir -p /tmp/swe-stream`, `printf '%s' ${shq(REPORTER)} > ${REPORTER_PATH}`];
  const jasmine = `npx jasmine${args} --helper=${REPORTER_PATH}`;
  if (opts.files === 'all') {
    const pats = opts.patterns?.length ? ' ' + shFiles(opts.patterns) : '';
    return [...write, `: > ${shq(opts.reportPath)}`, `SWE_STREAM_JASMINE_REPORT=${shq(opts.reportPath)} ${ENV} ${jasmine}${pats}`].join(' && ');
  }
  return perFileCommand({ prelude: write, files: shFiles(opts.files), reportPath: opts.reportPath, run: `SWE_STREAM_JASMINE_REPORT="$__part" ${ENV} ${jasmine} "$__f"` });
}

interface Line { suites?: string[]; title?: string | null; status?: string; file?: string | null; ms?: number; global?: boolean }

function statusOf(s: string | undefined): TestStatus {
  if (s === 'passed') return 'PASSED';
  if (s === 'failed') return 'FAILED';
  return 'SKIPPED'; // pending, excluded (xit, fit elsewhere)
}

/** Results of one run's JSON lines; `file` is the file the run was given (per-file runs), else null. */
function fromJsonl(text: string, file: string | null, exitCode: number | null, ctx?: ParseContext): TestResult[] {
  const out: TestResult[] = [];
  let global = false;
  for (const l of jsonLines<Line>(text)) {
    if (l.global) { global = true; continue; }
    const f = file ?? (l.file ? relPath(l.file, ctx?.workdir) : null);
    const chain = [...(l.suites ?? []), ...(l.title !== null && l.title !== undefined ? [l.title] : [])];
    const name = f ? jsId(f, chain) : chain.join(' > ');
    out.push({ name, status: statusOf(l.status), durationMs: typeof l.ms === 'number' ? l.ms : undefined });
  }
  const anyFail = out.some((r) => r.status === 'FAILED');
  if (file && (global || (exitCode !== null && exitCode !== 0)) && !anyFail) out.push({ name: file, status: 'ERROR' });
  return out;
}

/**
 * The console reporter's text, when no report was written: only failures are named there
 * (`1) Suite spec` under `Failures:`), by jasmine's full name (suite and spec joined by spaces).
 */
function fromLog(log: string, file: string | null): TestResult[] {
  const out: TestResult[] = [];
  let inFailures = false;
  for (const line of stripAnsi(log).split('\n')) {
    if (/^Failures:\s*$/.test(line)) { inFailures = true; continue; }
    if (/^(Pending:|\d+ specs?,|Ran \d+ of)/.test(line)) inFailures = false;
    const m = inFailures ? /^\d+\) (.+)$/.exec(line) : null;
    if (m) out.push({ name: file ? jsId(file, [m[1]!.trim()]) : m[1]!.trim(), status: 'FAILED' });
  }
  return out;
}

function parse(report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  if (report !== null && !report.includes('<!-- swe-stream file: ')) {
    const r = fromJsonl(report, null, null, ctx);
    if (r.length) return dedupeResults(r);
  }
  const out: TestResult[] = [];
  const logs = fileLogs(log);
  const done = new Set<string>();
  for (const p of report !== null ? fileParts(report) : []) {
    const r = fromJsonl(p.text, p.file, p.exitCode, ctx);
    out.push(...(r.length ? r : fromLog(logs.get(p.file) ?? '', p.file)));
    done.add(p.file);
  }
  for (const [file, text] of logs) if (!done.has(file)) out.push(...fromLog(text, file));
  if (!logs.size && !out.length) out.push(...fromLog(log, null));
  return dedupeResults(out);
}

/** jasmine's conventional spec files: `*[sS]pec.js` (its default spec_files), or anything under spec/. */
function isTestFile(path: string): boolean {
  if (/(^|\/)(node_modules|helpers?|support|fixtures?)\//.test(path) || !/\.[cm]?[jt]sx?$/.test(path)) return false;
  return /[sS]pec\.[cm]?[jt]sx?$/.test(path) || /(^|\/)spec\//.test(path) || /\.test\.[cm]?[jt]sx?$/.test(path);
}

/** The jasmine runner. */
export const jasmine: Runner = { name: 'jasmine', reportFormat: 'jsonl', testCommand, parse, isTestFile };
