/**
 * jest: run with `--json --outputFile=<report>` (jest's JSON result: testResults[].assertionResults[]
 * with ancestorTitles/title/status, see @jest/test-result `FormattedTestResults`) plus `--verbose`, whose
 * per-test tree in the log is the fallback when the JSON is missing. Test ids: `path > describe > test`.
 * The same JSON shape is vitest's `json` reporter, so {@link parseJestJson} serves both.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult, TestStatus } from './types.js';
import { QUIET_ENV, relPath, shFiles, shq, stripAnsi, reportElseLog } from './util.js';

/**
 * `jest <repo args> --ci --maxWorkers=2 --coverage=false --json --outputFile=<report> --verbose
 * [--runTestsByPath files | patterns]` (files as paths, not regexes; the script's own patterns as it wrote
 * them). `--coverage=false` keeps a `collectCoverage` + `coverageThreshold` configuration from failing a
 * run of a few selected tests. `--maxWorkers=2`: on a 2-core sandbox jest would otherwise run in band,
 * where a test's process.exit ends the whole run and a test that parses process.argv sees jest's flags.
 */
function testCommand(opts: TestCommandOptions): string {
  const files = opts.files === 'all' ? (opts.patterns?.length ? ' ' + shFiles(opts.patterns) : '') : ' --runTestsByPath ' + shFiles(opts.files);
  const args = opts.args?.length ? ' ' + shFiles(opts.args) : '';
  return `${QUIET_ENV} npx jest${args} --ci --maxWorkers=2 --coverage=false --json --outputFile=${shq(opts.reportPath)} --verbose${files}`;
}

/** jest assertion statuses (passed | failed | skipped | pending | todo | disabled | focused) → ours. */
function jestStatus(s: string): TestStatus {
  if (s === 'passed') return 'PASSED';
  if (s === 'failed') return 'FAILED';
  return 'SKIPPED';
}

interface JestAssertion { ancestorTitles?: string[]; title?: string; fullName?: string; status?: string; duration?: number | null }
interface JestFileResult { name?: string; status?: string; message?: string; testExecError?: unknown; assertionResults?: JestAssertion[] }

/** Join a file and its describe chain into a JS test id. */
export function jsId(file: string, titles: string[]): string {
  return [file, ...titles].join(' > ');
}

/**
 * Results from jest's (or vitest's json reporter's) JSON. A file that failed before any test ran (import
 * error, syntax error: `Test suite failed to run`) has no assertions and becomes one ERROR result named by
 * the file path, as pytest names a module that fails to collect.
 * @returns null when the text is not that JSON.
 */
export function parseJestJson(text: string, ctx?: ParseContext): TestResult[] | null {
  let doc: { testResults?: JestFileResult[] };
  try {
    doc = JSON.parse(text) as { testResults?: JestFileResult[] };
  } catch {
    return null;
  }
  if (!doc || !Array.isArray(doc.testResults)) return null;
  const out: TestResult[] = [];
  for (const f of doc.testResults) {
    const file = relPath(f.name ?? '', ctx?.workdir);
    const asserts = f.assertionResults ?? [];
    if (asserts.length === 0 && (f.status === 'failed' || f.testExecError)) out.push({ name: file, status: 'ERROR' });
    for (const a of asserts) {
      const d = typeof a.duration === 'number' ? a.duration : undefined;
      out.push({ name: jsId(file, [...(a.ancestorTitles ?? []), a.title ?? a.fullName ?? '']), status: jestStatus(a.status ?? ''), durationMs: d });
    }
  }
  return out;
}

/**
 * Results from jest's `--verbose` log: `PASS|FAIL <file>` headers, then a tree indented two spaces per
 * level with `✓` passed, `✕` failed, `○ skipped`, `✎ todo` leaves; `● …` starts the failure details
 * (skipped up to the next header), `● Test suite failed to run` makes the file an ERROR.
 */
function fromLog(log: string): TestResult[] {
  const out: TestResult[] = [];
  let file: string | null = null;
  let stack: string[] = [];
  let inDetails = false;
  for (const raw of stripAnsi(log).split('\n')) {
    const h = /^(PASS|FAIL) (\S.*?)(?: \(\d.*\))?$/.exec(raw);
    if (h) { file = h[2]!.trim(); stack = []; inDetails = false; continue; }
    if (!file) continue;
    if (/^\s*● Test suite failed to run/.test(raw)) { out.push({ name: file, status: 'ERROR' }); inDetails = true; continue; }
    if (/^\s*●/.test(raw)) { inDetails = true; continue; }
    if (inDetails || raw.trim() === '') continue;
    if (/^(Test Suites|Tests|Snapshots|Time|Ran all):?/.test(raw)) { file = null; continue; }
    const indent = raw.length - raw.trimStart().length;
    const level = Math.max(0, indent / 2 - 1);
    const text = raw.trim();
    const leaf = /^(✓|✕|√|×|○ skipped|✎ todo|○) (.*?)(?: \(\d+(?:\.\d+)? ?m?s\))?$/.exec(text);
    stack = stack.slice(0, level);
    if (leaf) {
      const mark = leaf[1]!;
      const status: TestStatus = mark === '✓' || mark === '√' ? 'PASSED' : mark === '✕' || mark === '×' ? 'FAILED' : 'SKIPPED';
      out.push({ name: jsId(file, [...stack, leaf[2]!]), status });
    } else {
      stack[level] = text;
    }
  }
  return out;
}

function parse(report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  return reportElseLog(report, log, { report: (r) => parseJestJson(r, ctx), log: fromLog });
}

/** jest's default testMatch: files under __tests__, or *.test.* / *.spec.* with a JS/TS extension. */
export function isJsTestFile(path: string): boolean {
  if (/(^|\/)node_modules\//.test(path)) return false;
  if (!/\.(c|m)?[jt]sx?$/.test(path)) return false;
  return /(^|\/)__tests__\//.test(path) || /\.(test|spec)\.(c|m)?[jt]sx?$/.test(path);
}

/** The jest runner. */
export const jest: Runner = { name: 'jest', reportFormat: 'jest-json', testCommand, parse, isTestFile: isJsTestFile };
