/**
 * pytest: run with `--junitxml` (xunit1 family, whose `file` attribute lets a JUnit testcase be turned
 * back into a node id) plus `-rA` (the short test summary SWE-bench's harness parses) and `-v` (one line
 * per test as it finishes, the only trace a run killed by its timeout leaves).
 * Node ids: `path/to/test_x.py::Class::test_name[param]` as pytest prints them.
 */
import type { Runner, TestCommandOptions, TestResult, TestStatus, ParseContext } from './types.js';
import { dedupeResults } from './types.js';
import { attr, kids, parseXml, relPath, shFiles, shq, stripAnsi, timeMs, type XmlNode } from './util.js';

/**
 * `pytest -rA -v --color=no -p no:cacheprovider --continue-on-collection-errors -o junit_family=xunit1
 * --junitxml=<report> [files]`. junit_family=xunit1 adds `file=`/`line=` to each testcase (pytest docs,
 * "junit_family"; pytests without the option only warn about an unknown ini key).
 * --continue-on-collection-errors (pytest ≥ 3.0) matters for grading: without it one test module that
 * fails to import (typically the PR's new test file before the fix) stops the whole session, and every
 * other selected test would be absent from the before run — which SWE-bench grading reads as failed.
 */
function testCommand(opts: TestCommandOptions): string {
  const files = opts.files === 'all' ? (opts.patterns?.length ? ' ' + shFiles(opts.patterns) : '') : ' ' + shFiles(opts.files);
  const args = opts.args?.length ? ' ' + shFiles(opts.args) : '';
  // --no-cov where pytest-cov is installed: a coverage gate the configuration sets where we did not
  // read it (a plugin's defaults, an addopts we could not parse) must not fail a run of a few tests.
  const noCov = `$(python -c 'import pytest_cov' >/dev/null 2>&1 && echo --no-cov)`;
  return `python -m pytest -rA -v --color=no -p no:cacheprovider --continue-on-collection-errors -o junit_family=xunit1${args} ${noCov} --junitxml=${shq(opts.reportPath)}${files}`;
}

/**
 * Turn a JUnit testcase (classname `tests.test_mod.TestClass`, name `test_x[1]`, file `tests/test_mod.py`)
 * back into the node id `tests/test_mod.py::TestClass::test_x[1]`. pytest builds classname by replacing
 * `/` with `.` in the node id's path and dropping `.py` (_pytest/junitxml.py mangle_test_address), so
 * the path part is recovered from `file` when it matches, else from the ids the log names, else by
 * taking the dotted parts before the first Capitalised one as the module path.
 */
function nodeIdOf(tc: XmlNode, logIds: Map<string, string>): string {
  const classname = attr(tc, 'classname');
  const name = attr(tc, 'name');
  const file = attr(tc, 'file');
  // Collection errors: classname "" and name = dotted module path.
  if (!classname) {
    if (file) return file;
    return logIds.get(name) ?? name.split('.').join('/') + '.py';
  }
  const mangled = `${classname}.${name}`;
  const fromLog = logIds.get(mangled);
  if (fromLog) return fromLog;
  if (file.endsWith('.py')) {
    const mod = file.slice(0, -3).split('/').join('.');
    if (classname === mod) return `${file}::${name}`;
    if (classname.startsWith(mod + '.')) return `${file}::${classname.slice(mod.length + 1).split('.').join('::')}::${name}`;
  }
  const parts = classname.split('.');
  let i = parts.findIndex((p) => /^[A-Z]/.test(p));
  if (i <= 0) i = parts.length;
  const path = parts.slice(0, i).join('/') + '.py';
  return [path, ...parts.slice(i), name].join('::');
}

/** The key pytest's junitxml would give a node id (for matching log ids to testcases). */
function mangle(nodeId: string): string {
  const parts = nodeId.split('::');
  const path = parts[0]!.replace(/\.py$/, '').split('/').join('.');
  return [path, ...parts.slice(1)].join('.');
}

function fromJunit(doc: XmlNode, logIds: Map<string, string>): TestResult[] {
  const out: TestResult[] = [];
  const walkSuite = (suite: XmlNode) => {
    for (const tc of kids(suite, 'testcase')) {
      let status: TestStatus = 'PASSED';
      const skipped = kids(tc, 'skipped');
      if (kids(tc, 'error').length) status = 'ERROR';
      else if (kids(tc, 'failure').length) status = 'FAILED';
      else if (skipped.length) status = attr(skipped[0]!, 'type') === 'pytest.xfail' ? 'XFAIL' : 'SKIPPED';
      out.push({ name: nodeIdOf(tc, logIds), status, durationMs: timeMs(tc) });
    }
    for (const s of kids(suite, 'testsuite')) walkSuite(s);
  };
  for (const root of kids(doc, 'testsuites')) walkSuite(root);
  for (const s of kids(doc, 'testsuite')) walkSuite(s);
  return out;
}

const SUMMARY_RE = /^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (.+)$/;
const VERBOSE_RE = /^(\S.*?::.+?|\S+\.py) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)(?: \(.*\))?\s+\[\s*\d+%\]$/;

function statusOf(word: string, strictXpass = false): TestStatus {
  if (word === 'XPASS') return strictXpass ? 'FAILED' : 'PASSED';
  return word as TestStatus;
}

/**
 * Results from pytest's text log: the `-rA` short summary (as SWE-bench's `parse_log_pytest` reads it),
 * and the `-v` progress lines for tests the summary does not name (a killed run has no summary).
 * Summary lines look like `FAILED tests/t.py::test_a - AssertionError: …`; SKIPPED summary lines name a
 * location, not a test, so skips are taken from the progress lines.
 */
function fromLog(log: string): TestResult[] {
  const summary = new Map<string, TestStatus>();
  const progress = new Map<string, TestStatus>();
  let inSummary = false;
  for (const raw of stripAnsi(log).split('\n')) {
    const line = raw.trimEnd();
    if (/^=+ short test summary info =+$/.test(line)) { inSummary = true; continue; }
    if (inSummary && /^=+ .* =+$/.test(line)) { inSummary = false; continue; }
    const v = VERBOSE_RE.exec(line);
    if (v) {
      const st = statusOf(v[2]!, /XPASS\(strict\)/.test(line));
      const prev = progress.get(v[1]!);
      // setup/teardown errors print a second progress line for the same test
      progress.set(v[1]!, prev === undefined ? st : prev === 'ERROR' || st === 'ERROR' ? 'ERROR' : st);
      continue;
    }
    if (!inSummary) continue;
    const m = SUMMARY_RE.exec(line);
    if (!m || m[1] === 'SKIPPED') continue;
    let id = m[2]!;
    // "FAILED path::test - message"; the message may itself contain " - ", node ids rarely do.
    const dash = id.indexOf(' - ');
    if (dash >= 0) id = id.slice(0, dash);
    const st = statusOf(m[1]!);
    const prev = summary.get(id);
    summary.set(id, prev === 'ERROR' ? prev : st === 'ERROR' ? st : prev ?? st);
  }
  const out: TestResult[] = [];
  for (const [name, status] of summary) out.push({ name, status });
  for (const [name, status] of progress) if (!summary.has(name)) out.push({ name, status });
  return dedupeResults(out);
}

function parse(report: string | null, log: string, _ctx?: ParseContext): TestResult[] {
  const logResults = fromLog(log);
  if (report !== null) {
    const doc = parseXml(report);
    if (doc) {
      const logIds = new Map(logResults.map((r) => [mangle(r.name), r.name]));
      const results = fromJunit(doc, logIds);
      if (results.length) return dedupeResults(results);
    }
  }
  return logResults;
}

/** pytest's default discovery (python_files = test_*.py *_test.py). */
function isTestFile(path: string): boolean {
  const base = path.split('/').pop() ?? '';
  return /^test_.*\.py$/.test(base) || /_test\.py$/.test(base);
}

/** The pytest runner. */
export const pytest: Runner = { name: 'pytest', reportFormat: 'junit', testCommand, parse, isTestFile };
