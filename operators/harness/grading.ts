/**
 * Grading: pure functions that turn parsed test runs into SWE-bench's FAIL_TO_PASS / PASS_TO_PASS with
 * reruns (verify), and one run into resolved / not resolved (evaluate and the release check). Both the
 * verify stage and `evaluate` call these, so a row's release check and a user's evaluation are graded by
 * the same code.
 *
 * Sources: SWE-bench harness `swebench/harness/grading.py` — `test_passed(case, sm)` is PASSED or XFAIL,
 * `test_failed(case, sm)` is FAILED, ERROR or absent from the log; resolved (`ResolvedStatus.FULL`) when
 * every FAIL_TO_PASS and every PASS_TO_PASS test passes. Reruns and flakiness: ARCHITECTURE.md §6
 * (after-fix ×3, before-fix ×2, a test that disagrees across runs of one state is flaky and excluded,
 * a flaky FAIL_TO_PASS rejects), as SWE-bench-Live and Multi-SWE-bench do.
 */
import type { TestResult, TestStatus } from '../runners/types.js';

/** What one execution of the selected tests produced. */
export interface RunRecord {
  /** parsed results (empty when nothing parsed) */
  results: TestResult[];
  /** exit code of the test command (124 when killed by the timeout) */
  exitCode: number;
  timedOut: boolean;
  /** false when a patch of this run (test patch, gold patch, model patch) did not apply */
  patchApplied: boolean;
  /** wall time of the test command, ms */
  durationMs?: number;
  /**
   * A gate of the repository's configuration that the log names as the cause of a non-zero exit (a
   * coverage threshold not met), found by {@link exitGate}; such an exit says nothing about the tests.
   */
  gate?: string | null;
}

/**
 * The coverage gates' own failure messages: pytest-cov ("FAIL Required test coverage of 90% not reached"),
 * jest ('Jest: "global" coverage threshold for lines (80%) not met'), nyc / c8 / vitest / node-tap
 * ("ERROR: Coverage for lines (50%) does not meet global threshold (90%)"), coverage.py's `report
 * --fail-under` ("Coverage failure: total of 45 is less than fail-under=90").
 */
const GATES: Array<[RegExp, string]> = [
  [/Required test coverage of [\d.]+% not reached/, 'pytest-cov fail-under'],
  [/coverage threshold for \w+ \([\d.]+%\) not met/, 'jest coverageThreshold'],
  [/ERROR: Coverage for \w+ \([\d.]+%\) does not meet (global )?threshold/, 'istanbul check-coverage'],
  [/Coverage failure: total of [\d.]+ is less than fail-under/, 'coverage.py fail-under'],
];

/** The coverage gate a test log names as failed (see {@link GATES}), or null. Only the last 64 KiB are searched: gates report at the end. */
export function exitGate(log: string): string | null {
  const tail = log.slice(-65536);
  for (const [re, name] of GATES) if (re.test(tail)) return name;
  return null;
}

/** Why a run cannot be graded. Such a run is not a failure of the tests; it says nothing about them. */
export type InvalidReason = 'patch-does-not-apply' | 'timeout' | 'nothing-parsed' | 'exit-without-failure';

/**
 * Whether a run can be graded (ARCHITECTURE.md §6): not when a patch did not apply, it timed out,
 * nothing parsed although the suite ran, or the exit code was non-zero with no failing test parsed and
 * no gate to explain it — a crash of the runner itself or an unhandled rejection after the last test,
 * where tests after the crash are missing and would read as failures. A repository's coverage threshold
 * ({@link RunRecord.gate}) is not such a crash: "624 passed, exit 1 because coverage is low" is a valid
 * run whose tests passed (issue 11, Grading).
 * @returns null for a valid run, else the reason
 */
export function invalidReason(run: RunRecord): InvalidReason | null {
  if (!run.patchApplied) return 'patch-does-not-apply';
  if (run.timedOut) return 'timeout';
  if (run.results.length === 0) return 'nothing-parsed';
  if (run.exitCode !== 0 && !run.gate && !run.results.some((r) => r.status === 'FAILED' || r.status === 'ERROR')) return 'exit-without-failure';
  return null;
}

/** SWE-bench `test_passed`: PASSED or XFAIL. */
export function isPass(s: TestStatus | undefined): boolean {
  return s === 'PASSED' || s === 'XFAIL';
}

/** SWE-bench `test_failed`: FAILED, ERROR, or absent from the run. */
export function isFail(s: TestStatus | undefined): boolean {
  return s === undefined || s === 'FAILED' || s === 'ERROR';
}

/** Outcome class of a status: pass (PASSED, XFAIL), fail (FAILED, ERROR, absent), skip (SKIPPED). */
export function outcomeClass(s: TestStatus | undefined): 'pass' | 'fail' | 'skip' {
  return isPass(s) ? 'pass' : s === 'SKIPPED' ? 'skip' : 'fail';
}

/** One test across the runs of one state. `statuses[i]` is undefined when run i did not name the test. */
export interface CombinedTest {
  name: string;
  statuses: (TestStatus | undefined)[];
  /** the first run's status (undefined = absent); meaningless when flaky */
  status: TestStatus | undefined;
  flaky: boolean;
  /** share of runs whose outcome class differs from the most common one: 0 for stable, e.g. 1/3 for P,P,F */
  flakeRate: number;
}

/**
 * Combine the runs of one state (e.g. the 3 after-fix runs) per test. A test is flaky when its outcome
 * class ({@link outcomeClass}) differs between runs; FAILED in one run and ERROR (or absent) in another
 * is a stable failure, not a flake, since grading never tells them apart.
 * @returns tests by name, in order of first appearance
 */
export function combineRuns(runs: TestResult[][]): Map<string, CombinedTest> {
  const maps = runs.map((rs) => new Map(rs.map((r) => [r.name, r.status])));
  const names: string[] = [];
  const seen = new Set<string>();
  for (const rs of runs) for (const r of rs) if (!seen.has(r.name)) { seen.add(r.name); names.push(r.name); }
  const out = new Map<string, CombinedTest>();
  for (const name of names) {
    const statuses = maps.map((m) => m.get(name));
    const counts = new Map<string, number>();
    for (const s of statuses) counts.set(outcomeClass(s), (counts.get(outcomeClass(s)) ?? 0) + 1);
    const top = Math.max(...counts.values());
    const flaky = counts.size > 1;
    out.set(name, { name, statuses, status: statuses[0], flaky, flakeRate: statuses.length ? (statuses.length - top) / statuses.length : 0 });
  }
  return out;
}

/** A test that disagreed with itself across the runs of one state (Verification.flaky). */
export interface FlakyEntry {
  name: string;
  state: 'before' | 'after';
  /** share of that state's runs that disagree with its most common status */
  flake_rate: number;
}

/** Rejection reason codes of verification. */
export type VerifyRejectReason = 'patch-does-not-apply' | 'timeout' | 'invalid-run' | 'flaky-f2p' | 'pass-to-fail' | 'no-f2p';

export type VerifyGrade =
  | { kind: 'verified'; FAIL_TO_PASS: string[]; PASS_TO_PASS: string[]; flaky: FlakyEntry[] }
  | { kind: 'rejected'; reason: VerifyRejectReason; detail: string; flaky: FlakyEntry[] };

const sample = (xs: string[], n = 5) => xs.slice(0, n).join(', ') + (xs.length > n ? `, … (${xs.length})` : '');

/**
 * Invalid-run kinds that a before run may have and still be graded: the suite crashed without the fix (the
 * test patch imports a function or module the fix adds, so the runner dies at load), and every test it
 * did not report counts as failed. This is SWE-bench's rule (`test_failed`: absent from the log is failed;
 * a test file that fails to import makes all its tests FAIL_TO_PASS) and Multi-SWE-bench's "none → pass"
 * tests. After runs get no such allowance: a crash after the fix hides PASS_TO_PASS tests.
 */
const BEFORE_CRASHES: ReadonlySet<InvalidReason | null> = new Set<InvalidReason | null>(['nothing-parsed', 'exit-without-failure']);

/**
 * {@link invalidReason} for a run of one verification state: a before run that crashed ({@link BEFORE_CRASHES})
 * is gradable. @returns null for a gradable run, else the reason
 */
export function invalidInState(state: 'before' | 'after', run: RunRecord): InvalidReason | null {
  const why = invalidReason(run);
  return state === 'before' && BEFORE_CRASHES.has(why) ? null : why;
}

/**
 * Grade verification runs: `before` = parent + test patch (2 runs), `after` = parent + test patch + gold
 * patch (3 runs).
 *
 * - any invalid run rejects: `patch-does-not-apply`, `timeout`, or `invalid-run` (nothing parsed / non-zero
 *   exit with no failure parsed), checked in that order over all runs — except a before run that crashed
 *   ({@link BEFORE_CRASHES}): its unreported tests are absent, i.e. failed;
 * - flaky tests (outcome differs across runs of one state) are excluded and listed with their flake rate;
 *   one that could be a FAIL_TO_PASS — never passed before the fix and passed in some after run —
 *   rejects with `flaky-f2p` (a test that sometimes passes without the fix is no evidence of it);
 * - FAIL_TO_PASS: failed, errored or absent in every before run, passed (PASSED/XFAIL) in every after run;
 * - PASS_TO_PASS: passed in every run of both states;
 * - a stable test that passed before and fails or is absent after rejects with `pass-to-fail`;
 * - an empty FAIL_TO_PASS rejects with `no-f2p`.
 * Skipped tests are in neither list. Lists are sorted for deterministic rows.
 */
export function gradeVerification(before: RunRecord[], after: RunRecord[]): VerifyGrade {
  const invalid = [...before.map((r, i) => ({ r, i, state: 'before' })), ...after.map((r, i) => ({ r, i, state: 'after' }))]
    .map(({ r, i, state }) => ({ state, i, why: invalidInState(state as 'before' | 'after', r) }))
    .filter((x) => x.why !== null);
  for (const code of ['patch-does-not-apply', 'timeout'] as const) {
    const hit = invalid.find((x) => x.why === code);
    if (hit) return { kind: 'rejected', reason: code, detail: `${hit.state} run: ${code}`, flaky: [] };
  }
  if (invalid.length) {
    return { kind: 'rejected', reason: 'invalid-run', detail: invalid.map((x) => `${x.state} run ${x.i + 1}: ${x.why}`).join('; '), flaky: [] };
  }
  if (before.length === 0 || after.length === 0) {
    return { kind: 'rejected', reason: 'invalid-run', detail: `need runs in both states (before ${before.length}, after ${after.length})`, flaky: [] };
  }

  const b = combineRuns(before.map((r) => r.results));
  const a = combineRuns(after.map((r) => r.results));
  const flaky: FlakyEntry[] = [];
  for (const t of b.values()) if (t.flaky) flaky.push({ name: t.name, state: 'before', flake_rate: t.flakeRate });
  for (const t of a.values()) if (t.flaky) flaky.push({ name: t.name, state: 'after', flake_rate: t.flakeRate });
  flaky.sort((x, y) => x.name.localeCompare(y.name) || x.state.localeCompare(y.state));

  const names = new Set([...b.keys(), ...a.keys()]);
  const absent = (n: number): (TestStatus | undefined)[] => Array.from({ length: n }, () => undefined);
  const f2p: string[] = [];
  const p2p: string[] = [];
  const flakyF2p: string[] = [];
  const passToFail: string[] = [];
  for (const name of names) {
    const bs = b.get(name)?.statuses ?? absent(before.length);
    const as = a.get(name)?.statuses ?? absent(after.length);
    const isFlaky = (b.get(name)?.flaky ?? false) || (a.get(name)?.flaky ?? false);
    if (isFlaky) {
      if (!bs.some(isPass) && as.some(isPass)) flakyF2p.push(name);
      continue;
    }
    const bst = bs[0];
    const ast = as[0];
    if (isFail(bst) && isPass(ast)) f2p.push(name);
    else if (isPass(bst) && isPass(ast)) p2p.push(name);
    else if (isPass(bst) && isFail(ast)) passToFail.push(name);
  }
  f2p.sort();
  p2p.sort();
  if (flakyF2p.length) return { kind: 'rejected', reason: 'flaky-f2p', detail: `flaky fail-to-pass tests: ${sample(flakyF2p.sort())}`, flaky };
  if (passToFail.length) return { kind: 'rejected', reason: 'pass-to-fail', detail: `tests passing before and failing after the fix: ${sample(passToFail.sort())}`, flaky };
  if (f2p.length === 0) return { kind: 'rejected', reason: 'no-f2p', detail: `no test fails before and passes after (${p2p.length} pass-to-pass)`, flaky };
  return { kind: 'verified', FAIL_TO_PASS: f2p, PASS_TO_PASS: p2p, flaky };
}

/** Per-list outcome of an evaluation, as SWE-bench's `get_eval_tests_report` reports it. */
export interface EvalReport {
  resolved: boolean;
  FAIL_TO_PASS: { success: string[]; failure: string[] };
  PASS_TO_PASS: { success: string[]; failure: string[] };
  /** set when the run could not be graded (then resolved is false) */
  invalid?: InvalidReason;
}

/**
 * Grade one evaluation run (SWE-bench harness semantics): resolved when every FAIL_TO_PASS and every
 * PASS_TO_PASS test passed (PASSED or XFAIL); a test absent from the run did not pass. A run whose patch
 * did not apply or that timed out is not resolved. Unlike verification, a non-zero exit with nothing
 * failing parsed is graded on the tests it names: the harness judges tests, not exit codes.
 */
export function gradeEvaluation(spec: { FAIL_TO_PASS: string[]; PASS_TO_PASS: string[] }, run: RunRecord): EvalReport {
  const sm = new Map(run.results.map((r) => [r.name, r.status]));
  const split = (tests: string[]) => ({
    success: tests.filter((t) => isPass(sm.get(t))),
    failure: tests.filter((t) => !isPass(sm.get(t))),
  });
  const f2p = split(spec.FAIL_TO_PASS);
  const p2p = split(spec.PASS_TO_PASS);
  const why = invalidReason(run);
  const hard = why === 'patch-does-not-apply' || why === 'timeout' ? why : undefined;
  const resolved = !hard && f2p.failure.length === 0 && p2p.failure.length === 0 && spec.FAIL_TO_PASS.length > 0;
  return { resolved, FAIL_TO_PASS: f2p, PASS_TO_PASS: p2p, ...(hard ? { invalid: hard } : {}) };
}

/**
 * The release check of a row: the gold patch must grade resolved and the empty patch must not.
 * @returns both gradings and whether the row may be released
 */
export function releaseCheck(spec: { FAIL_TO_PASS: string[]; PASS_TO_PASS: string[] }, goldRun: RunRecord, emptyRun: RunRecord): { gold_resolved: boolean; empty_resolved: boolean; ok: boolean } {
  const gold = gradeEvaluation(spec, goldRun).resolved;
  const empty = gradeEvaluation(spec, emptyRun).resolved;
  return { gold_resolved: gold, empty_resolved: empty, ok: gold && !empty };
}
