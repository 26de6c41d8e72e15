/**
 * vitest: run with `--reporter=junit --outputFile=<report>` (testcase classname = the file, name = the
 * describe chain and test joined with ` > `) plus `--reporter=verbose` for a per-test log. The json
 * reporter's output (jest's shape) is read too, when a report turns out to be JSON. Test ids:
 * `path > describe > test`.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult, TestStatus } from './types.js';
import { dedupeResults } from './types.js';
import { isJsTestFile, jsId, parseJestJson } from './jest.js';
import { QUIET_ENV, attr, kids, parseXml, relPath, shFiles, shq, stripAnsi, timeMs, type XmlNode } from './util.js';

/**
 * `vitest run <repo args> --coverage.enabled=false --reporter=verbose --reporter=junit --outputFile=<report>
 * [files | patterns]` (files are vitest path filters). Coverage off: a configured threshold must not fail
 * a run of a few selected tests.
 */
function testCommand(opts: TestCommandOptions): string {
  const files = opts.files === 'all' ? (opts.patterns?.length ? ' ' + shFiles(opts.patterns) : '') : ' ' + shFiles(opts.files);
  const args = opts.args?.length ? ' ' + shFiles(opts.args) : '';
  return `${QUIET_ENV} npx vitest run${args} --coverage.enabled=false --reporter=verbose --reporter=junit --outputFile=${shq(opts.reportPath)}${files}`;
}

/**
 * vitest's JUnit: one testsuite per file; a file that fails to import is a testcase whose name equals
 * its classname (the file) → ERROR; a failing beforeAll is a testcase named by the describe block.
 */
function fromJunit(doc: XmlNode, ctx?: ParseContext): TestResult[] {
  const out: TestResult[] = [];
  const walk = (suite: XmlNode) => {
    for (const tc of kids(suite, 'testcase')) {
      const file = relPath(attr(tc, 'classname'), ctx?.workdir);
      const name = attr(tc, 'name');
      const failed = kids(tc, 'failure').length > 0 || kids(tc, 'error').length > 0;
      let status: TestStatus = failed ? 'FAILED' : kids(tc, 'skipped').length ? 'SKIPPED' : 'PASSED';
      if (relPath(name, ctx?.workdir) === file) {
        if (failed) status = 'ERROR';
        out.push({ name: file, status, durationMs: timeMs(tc) });
      } else out.push({ name: jsId(file, [name]), status, durationMs: timeMs(tc) });
    }
    for (const s of kids(suite, 'testsuite')) walk(s);
  };
  for (const r of kids(doc, 'testsuites')) walk(r);
  for (const s of kids(doc, 'testsuite')) walk(s);
  return out;
}

/**
 * vitest's verbose log: ` ✓ file > a > b 3ms`, ` × file > a > b`, ` ↓ …` skipped, ` □ …` todo, and
 * ` FAIL  file [ file ]` for a file that failed to load.
 */
function fromLog(log: string): TestResult[] {
  const out: TestResult[] = [];
  for (const raw of stripAnsi(log).split('\n')) {
    const fileFail = /^\s*FAIL\s+(\S+) \[ (\S+) \]\s*$/.exec(raw);
    if (fileFail && fileFail[1] === fileFail[2]) { out.push({ name: fileFail[1]!, status: 'ERROR' }); continue; }
    const m = /^\s*(✓|×|✗|↓|□|✔|✖) (\S+ > .*?)(?: \d+(?:\.\d+)?m?s)?(?: \[.*\])?\s*$/.exec(raw);
    if (!m) continue;
    const mark = m[1]!;
    const status: TestStatus = mark === '✓' || mark === '✔' ? 'PASSED' : mark === '×' || mark === '✗' || mark === '✖' ? 'FAILED' : 'SKIPPED';
    out.push({ name: m[2]!, status });
  }
  return out;
}

function parse(report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  if (report !== null) {
    const doc = parseXml(report);
    const r = doc ? fromJunit(doc, ctx) : parseJestJson(report, ctx);
    if (r && r.length) return dedupeResults(r);
  }
  return dedupeResults(fromLog(log));
}

/** The vitest runner. */
export const vitest: Runner = { name: 'vitest', reportFormat: 'junit', testCommand, parse, isTestFile: isJsTestFile };
