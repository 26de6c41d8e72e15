/**
 * Test runners and their report parsers (ARCHITECTURE.md §6 "Test selection").
 *
 * API
 * ---
 * - `getRunner(name)` → {@link Runner} for 'pytest' | 'jest' | 'vitest' | 'mocha' | 'node-test'
 *   (throws a non-retriable StageError for any other name); `RUNNERS` is the same as a record.
 * - `runner.testCommand({ files: string[] | 'all', reportPath })` → a bash command to run in the
 *   repository's workdir. The reporter is always set explicitly and writes to `reportPath`:
 *     pytest    `pytest -rA -v --color=no -p no:cacheprovider --continue-on-collection-errors
 *                -o junit_family=xunit1 --junitxml=<path> files…`
 *     jest      `npx jest --ci --json --outputFile=<path> --verbose --runTestsByPath files…`
 *     vitest    `npx vitest run --reporter=verbose --reporter=junit --outputFile=<path> files…`
 *     mocha     one `npx mocha --reporter json --reporter-option output=…` per file (a file that fails to
 *               load aborts a whole mocha run), concatenated into <path> with `<!-- swe-stream file: f -->`
 *               markers; 'all' is a single run
 *     node-test one `node --test --test-reporter=junit|tap --test-reporter-destination=… --test-reporter=spec`
 *               per file (node's JUnit names no file), concatenated the same way; TAP on Node < 20.11
 *   Every test command the stages store writes to harness.ts `REPORT_PATH` (/tmp/swe-stream/report).
 *   The human-readable log goes to stdout/stderr: keep it, it is the fallback.
 * - `runner.parse(reportText | null, logText, { workdir }?)` → `TestResult[]` = `{ name, status, durationMs? }`
 *   with status 'PASSED' | 'FAILED' | 'SKIPPED' | 'ERROR' | 'XFAIL'. The report is used when present and
 *   readable; otherwise the text log (pytest `-rA` summary and `-v` lines, jest `--verbose` tree, vitest
 *   verbose lines, mocha JSON on stdout / `Exception during run`, node spec output). Never throws.
 *   Test ids are each runner's own: pytest node ids `tests/test_x.py::TestC::test_y[p]`; JS
 *   `test/x.test.js > describe > test` (mocha: `file > <describe titles joined by spaces> > test`).
 *   A file that fails before any test runs (pytest collection error, jest "Test suite failed to run",
 *   vitest/node import failure, mocha load exception) is one ERROR result named by the file path.
 *   `workdir` makes absolute paths (jest, mocha, node) repository-relative.
 * - `runner.isTestFile(path)` → whether the runner's default discovery would pick the file.
 * - `summarize(results)` → counts per status.
 * - harness.ts (imported directly): `prepareCheckout`, `resetCheckout`, `runOnce`, `runSeries`,
 *   `runRepeated` — pin a work tree to a commit in a sandbox, apply patches, run, parse, reset between runs.
 *
 * Format sources: pytest junitxml (xunit1 family) and `-rA` short summary (SWE-bench harness
 * `parse_log_pytest`); jest `--json` (@jest/test-result FormattedTestResults); vitest JUnit reporter;
 * mocha JSON reporter; node:test junit/tap/spec reporters. Real samples: test/fixtures/reports/.
 */
import { StageError } from '../../streams/types.js';
import { jest } from './jest.js';
import { mocha } from './mocha.js';
import { nodeTest } from './node-test.js';
import { pytest } from './pytest.js';
import type { Runner, RunnerName, TestResult, TestStatus } from './types.js';
import { vitest } from './vitest.js';
import { unittest } from './unittest.js';
import { jasmine } from './jasmine.js';
import { ava } from './ava.js';
import { tap } from './tap.js';
import { karma } from './karma.js';
import { withInvocations } from './plan.js';

export type { Runner, RunnerName, TestResult, TestStatus, TestCommandOptions, ParseContext, ReportFormat, Invocation } from './types.js';
export { DEFAULT_INVOCATION, pathSelects, variantId } from './plan.js';
export { worse, dedupeResults } from './types.js';
export { shq, stripAnsi } from './util.js';

/** The runners as written, before the repository's invocations are honoured. */
const BASE: Record<RunnerName, Runner> = { pytest, unittest, jest, vitest, mocha, 'node-test': nodeTest, jasmine, ava, tap, karma } as Record<RunnerName, Runner>;

/** Every runner by name, each taking the repository's invocations ({@link withInvocations}). */
export const RUNNERS: Record<RunnerName, Runner> = Object.fromEntries(Object.entries(BASE).map(([k, r]) => [k, withInvocations(r)])) as Record<RunnerName, Runner>;

/**
 * The runner called `name` (Environment.runner).
 * @throws StageError (retriable=false) for an unknown runner name
 */
export function getRunner(name: string): Runner {
  const r = (RUNNERS as Record<string, Runner | undefined>)[name];
  if (!r) throw new StageError(`unknown test runner "${name}" (known: ${Object.keys(RUNNERS).join(', ')})`, { retriable: false, name: 'UnknownRunner' });
  return r;
}

/** Counts per status. */
export function summarize(results: TestResult[]): Record<TestStatus, number> {
  const c: Record<TestStatus, number> = { PASSED: 0, FAILED: 0, SKIPPED: 0, ERROR: 0, XFAIL: 0 };
  for (const r of results) c[r.status]++;
  return c;
}
