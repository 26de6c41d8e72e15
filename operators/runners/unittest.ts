/**
 * Python unittest (and suites written for it that pytest's discovery would not collect: files not named
 * `test_*.py`, a `python -m unittest discover -p '*_tests.py'` script). The standard library has no
 * machine-readable reporter, so the command runs unittest's own `main` (exactly `python -m unittest`'s
 * argument handling and discovery) with a TextTestResult subclass that also appends one JSON line per
 * test outcome to the report — written as each test ends, so a run killed by its timeout keeps what
 * finished. The verbose text (`test_x (mod.Class.test_x) ... ok`) goes to stderr and is the fallback.
 *
 * Test ids are unittest's own `TestCase.id()`: `tests.test_mod.TestClass.test_name`. A module that fails
 * to import (unittest's `_FailedTest`) is one ERROR named by its file path, as pytest names a module that
 * fails to collect; a failing `setUpClass` is an ERROR named as unittest names it
 * (`setUpClass (tests.test_mod.TestClass)`). A subTest failure fails its test. An unexpected success is
 * FAILED (unittest ≥ 3.4 counts it against `wasSuccessful()`), an expected failure XFAIL.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult, TestStatus } from './types.js';
import { shFiles, shq, stripAnsi, reportElseLog } from './util.js';

/**
 * The driver: unittest.main with a result class that writes JSON lines to argv[1]. Python ≥ 3.5. The
 * working directory replaces the driver's own directory on sys.path, as `python -m unittest` has it.
 */
const DRIVER = `import json, os, sys, time, unittest
out = open(sys.argv.pop(1), 'a')
sys.path[0] = os.getcwd()
given = {os.path.splitext(os.path.basename(a))[0]: os.path.normpath(a) for a in sys.argv[1:] if a.endswith('.py')}
class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.time()
        super().startTest(test)
    def _w(self, test, status):
        tid = test.id()
        if tid.startswith('unittest.loader._FailedTest.') and tid[28:] in given:
            tid = 'unittest.loader._FailedTest.' + given[tid[28:]]
        out.write(json.dumps({'id': tid, 'status': status, 'ms': int((time.time() - getattr(self, '_t0', time.time())) * 1000)}) + '\\n')
        out.flush()
    def addSuccess(self, test):
        super().addSuccess(test); self._w(test, 'PASSED')
    def addFailure(self, test, err):
        super().addFailure(test, err); self._w(test, 'FAILED')
    def addError(self, test, err):
        super().addError(test, err); self._w(test, 'ERROR')
    def addSkip(self, test, reason):
        super().addSkip(test, reason); self._w(test, 'SKIPPED')
    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err); self._w(test, 'XFAIL')
    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test); self._w(test, 'FAILED')
    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._w(test, 'FAILED' if issubclass(err[0], test.failureException) else 'ERROR')
sys.argv[0] = 'python -m unittest'
unittest.main(module=None, testRunner=unittest.TextTestRunner(resultclass=Result, verbosity=2))
`;

const DRIVER_PATH = '/tmp/swe-stream/unittest_driver.py';

/**
 * `python <driver> <report> -v [repo args] [files]`: the driver is written first (one single-quoted
 * word, so nothing in it is expanded and the command stays one `&&` chain). With files, the script's `discover …` arguments are dropped (unittest
 * takes either); file paths are what `python -m unittest` accepts since Python 3.5.
 */
function testCommand(opts: TestCommandOptions): string {
  const args = opts.args ?? [];
  const discover = args[0] === 'discover';
  const files = opts.files === 'all' ? opts.patterns ?? [] : opts.files;
  const useArgs = opts.files === 'all' || !discover ? args : [];
  const rest = [...useArgs, ...files];
  return [
    `mkdir -p /tmp/swe-stream`,
    `printf '%s' ${shq(DRIVER)} > ${DRIVER_PATH}`,
    `: > ${shq(opts.reportPath)}`,
    `PYTHONUNBUFFERED=1 python ${DRIVER_PATH} ${shq(opts.reportPath)} -v${rest.length ? ' ' + shFiles(rest) : ''}`,
  ].join(' && ');
}

/**
 * `unittest.loader._FailedTest.<module>` (a module that did not import) → its file: the driver puts the
 * path it was given there (`tests/test_mod.py`); discovery names the dotted module (`tests.test_mod`).
 */
function failedImport(id: string): string | null {
  const m = /^unittest\.loader\._FailedTest\.(.+)$/.exec(id);
  if (!m) return null;
  return m[1]!.endsWith('.py') ? m[1]! : m[1]!.split('.').join('/') + '.py';
}

function idOf(id: string): { name: string; importError: boolean } {
  const f = failedImport(id);
  return f ? { name: f, importError: true } : { name: id, importError: false };
}

const STATUSES = new Set(['PASSED', 'FAILED', 'ERROR', 'SKIPPED', 'XFAIL']);

function fromJsonl(text: string): TestResult[] {
  const out: TestResult[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let rec: { id?: unknown; status?: unknown; ms?: unknown };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      continue; // the line being written when the run was killed
    }
    if (typeof rec.id !== 'string' || typeof rec.status !== 'string' || !STATUSES.has(rec.status)) continue;
    const { name, importError } = idOf(rec.id);
    out.push({ name, status: importError ? 'ERROR' : (rec.status as TestStatus), durationMs: typeof rec.ms === 'number' ? rec.ms : undefined });
  }
  return out;
}

const WORD: Array<[RegExp, TestStatus]> = [
  [/^ok$/, 'PASSED'], [/^FAIL$/, 'FAILED'], [/^ERROR$/, 'ERROR'], [/^skipped\b/, 'SKIPPED'],
  [/^expected failure$/, 'XFAIL'], [/^unexpected success$/, 'FAILED'],
];

/**
 * unittest's `-v` text: `name (dotted.where) ... <outcome>`, where Python ≥ 3.11 prints the full id in
 * the parentheses and older Pythons the class (`test_x (tests.test_mod.TestC)`). A docstring's first
 * line, the test's own output or its subTest lines may come between the id line and the outcome, which
 * then ends a later line (` ... FAIL`) or stands alone (`ok`). The `FAIL: …` / `ERROR: …` headers of
 * the failure details name the rest (a failing setUpClass prints no progress line of its own).
 */
function fromLog(log: string): TestResult[] {
  const out: TestResult[] = [];
  const fixture = /^(setUpClass|tearDownClass|setUpModule|tearDownModule)$/;
  const idFrom = (name: string, where: string) =>
    fixture.test(name) ? `${name} (${where})` : where === name || where.endsWith('.' + name) ? where : `${where}.${name}`;
  const statusOf = (word: string) => WORD.find(([re]) => re.test(word.trim()))?.[1];
  const push = (id: string, st: TestStatus) => {
    const { name, importError } = idOf(id);
    out.push({ name, status: importError ? 'ERROR' : st });
  };
  let pending: string | null = null;
  for (const raw of stripAnsi(log).split('\n')) {
    const line = raw.trimEnd();
    const detail = /^(FAIL|ERROR): (\S+) \(([\w.]+)\)/.exec(line);
    if (detail) { pending = null; push(idFrom(detail[2]!, detail[3]!), detail[1] === 'FAIL' ? 'FAILED' : 'ERROR'); continue; }
    const head = /^(\S+) \(([\w.]+)\)(.*)$/.exec(line);
    if (head) pending = idFrom(head[1]!, head[2]!);
    if (pending === null) continue;
    const tail = / \.\.\. (\S.*)$/.exec(head ? head[3]! : line)?.[1] ?? (head ? undefined : line);
    const st = tail !== undefined ? statusOf(tail) : undefined;
    if (st) { push(pending, st); pending = null; }
  }
  return out;
}

function parse(report: string | null, log: string, _ctx?: ParseContext): TestResult[] {
  return reportElseLog(report, log, { report: (r) => fromJsonl(r), log: fromLog });
}

/** unittest's default discovery pattern `test*.py`, plus Python files under a test directory. */
function isTestFile(path: string): boolean {
  if (!path.endsWith('.py')) return false;
  const base = path.split('/').pop() ?? '';
  return /^test.*\.py$/.test(base) || /(^|\/)tests?\//.test(path) && base !== '__init__.py' && base !== 'conftest.py';
}

/** The unittest runner. */
export const unittest: Runner = { name: 'unittest', reportFormat: 'jsonl', testCommand, parse, isTestFile };
