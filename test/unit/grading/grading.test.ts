import { describe, expect, it } from 'vitest';
import { combineRuns, exitGate, gradeEvaluation, gradeVerification, invalidReason, releaseCheck, type RunRecord } from '../../../operators/harness/grading.js';
import type { TestStatus } from '../../../operators/runners/index.js';

/** A valid run from `name: status` pairs; exit code 1 when anything failed, as runners do. */
function run(statuses: Record<string, TestStatus>, over: Partial<RunRecord> = {}): RunRecord {
  const results = Object.entries(statuses).map(([name, status]) => ({ name, status }));
  const failed = results.some((r) => r.status === 'FAILED' || r.status === 'ERROR');
  return { results, exitCode: failed ? 1 : 0, timedOut: false, patchApplied: true, ...over };
}
const times = (n: number, r: RunRecord) => Array.from({ length: n }, () => r);

describe('invalidReason', () => {
  it('accepts a normal failing run and flags the four invalid kinds', () => {
    expect(invalidReason(run({ a: 'FAILED' }))).toBeNull();
    expect(invalidReason(run({ a: 'PASSED' }, { patchApplied: false }))).toBe('patch-does-not-apply');
    expect(invalidReason(run({ a: 'PASSED' }, { timedOut: true, exitCode: 124 }))).toBe('timeout');
    expect(invalidReason(run({}, { exitCode: 0 }))).toBe('nothing-parsed');
    expect(invalidReason(run({ a: 'PASSED', b: 'SKIPPED' }, { exitCode: 1 }))).toBe('exit-without-failure');
  });

  it('a coverage threshold named in the log explains a non-zero exit: the run is graded on its tests', () => {
    const pytestCov = '624 passed in 12.3s\nFAIL Required test coverage of 90% not reached. Total coverage: 41.27%\n';
    expect(exitGate(pytestCov)).toBe('pytest-cov fail-under');
    expect(exitGate('Jest: "global" coverage threshold for lines (80%) not met: 12.5%')).toBe('jest coverageThreshold');
    expect(exitGate('ERROR: Coverage for lines (50%) does not meet global threshold (100%)')).toBe('istanbul check-coverage');
    expect(exitGate('Segmentation fault (core dumped)')).toBeNull();
    expect(invalidReason(run({ a: 'PASSED' }, { exitCode: 1, gate: exitGate(pytestCov) }))).toBeNull();
    // Without a gate a non-zero exit with nothing failing is still a crash: tests after it would read as failed.
    const after = run({ f: 'PASSED', p: 'PASSED' });
    const before = run({ f: 'FAILED', p: 'PASSED' });
    expect(gradeVerification([before, before], [after, after, run({ f: 'PASSED', p: 'PASSED' }, { exitCode: 1, gate: 'pytest-cov fail-under' })])).toMatchObject({ kind: 'verified', FAIL_TO_PASS: ['f'] });
  });
});

describe('combineRuns', () => {
  it('marks disagreement (including absence) as flaky with the minority share as flake rate', () => {
    const c = combineRuns([
      [{ name: 'a', status: 'PASSED' }, { name: 'b', status: 'PASSED' }, { name: 'c', status: 'PASSED' }],
      [{ name: 'a', status: 'PASSED' }, { name: 'b', status: 'FAILED' }],
      [{ name: 'a', status: 'PASSED' }, { name: 'b', status: 'PASSED' }, { name: 'c', status: 'PASSED' }],
    ]);
    expect(c.get('a')).toMatchObject({ flaky: false, status: 'PASSED', flakeRate: 0 });
    expect(c.get('b')).toMatchObject({ flaky: true, flakeRate: 1 / 3 });
    expect(c.get('c')).toMatchObject({ flaky: true, flakeRate: 1 / 3, statuses: ['PASSED', undefined, 'PASSED'] });
  });
});

describe('gradeVerification', () => {
  it('finds FAIL_TO_PASS (failed, errored or absent before) and PASS_TO_PASS; skips and xfail handled as SWE-bench does', () => {
    const before = run({ f1: 'FAILED', f2: 'ERROR', p1: 'PASSED', x: 'XFAIL', s: 'SKIPPED', 'tests/new.py': 'ERROR' });
    const after = run({ f1: 'PASSED', f2: 'PASSED', p1: 'PASSED', x: 'XFAIL', s: 'SKIPPED', 'tests/new.py::test_a': 'PASSED' });
    const g = gradeVerification(times(2, before), times(3, after));
    expect(g).toEqual({ kind: 'verified', FAIL_TO_PASS: ['f1', 'f2', 'tests/new.py::test_a'], PASS_TO_PASS: ['p1', 'x'], flaky: [] });
  });

  it('rejects pass-to-fail, including a passing test that vanishes after the fix', () => {
    const g = gradeVerification(times(2, run({ f: 'FAILED', p: 'PASSED' })), times(3, run({ f: 'PASSED', p: 'FAILED' })));
    expect(g).toMatchObject({ kind: 'rejected', reason: 'pass-to-fail', detail: expect.stringContaining('p') });
    const gone = gradeVerification(times(2, run({ f: 'FAILED', p: 'PASSED' })), times(3, run({ f: 'PASSED' })));
    expect(gone).toMatchObject({ kind: 'rejected', reason: 'pass-to-fail' });
  });

  it('rejects no-f2p when nothing changes', () => {
    const g = gradeVerification(times(2, run({ a: 'PASSED', b: 'FAILED' })), times(3, run({ a: 'PASSED', b: 'FAILED' })));
    expect(g).toMatchObject({ kind: 'rejected', reason: 'no-f2p' });
  });

  it('excludes a flaky pass-to-pass test and records its flake rate', () => {
    const after = [run({ f: 'PASSED', p: 'PASSED', q: 'PASSED' }), run({ f: 'PASSED', p: 'FAILED', q: 'PASSED' }), run({ f: 'PASSED', p: 'PASSED', q: 'PASSED' })];
    const g = gradeVerification(times(2, run({ f: 'FAILED', p: 'PASSED', q: 'PASSED' })), after);
    expect(g).toEqual({ kind: 'verified', FAIL_TO_PASS: ['f'], PASS_TO_PASS: ['q'], flaky: [{ name: 'p', state: 'after', flake_rate: 1 / 3 }] });
  });

  it('rejects a flaky fail-to-pass test, flaky before or after', () => {
    const afterFlaky = [run({ f: 'PASSED', g: 'PASSED' }), run({ f: 'FAILED', g: 'PASSED' }), run({ f: 'PASSED', g: 'PASSED' })];
    expect(gradeVerification(times(2, run({ f: 'FAILED', g: 'FAILED' })), afterFlaky)).toMatchObject({ kind: 'rejected', reason: 'flaky-f2p', flaky: [{ name: 'f', state: 'after' }] });
    const beforeFlaky = [run({ f: 'FAILED', g: 'FAILED' }), run({ f: 'SKIPPED', g: 'FAILED' })];
    expect(gradeVerification(beforeFlaky, times(3, run({ f: 'PASSED', g: 'PASSED' })))).toMatchObject({ kind: 'rejected', reason: 'flaky-f2p', flaky: [{ name: 'f', state: 'before', flake_rate: 0.5 }] });
  });

  it('excludes, without rejecting, a test that sometimes passes before the fix', () => {
    const beforeFlaky = [run({ f: 'FAILED', g: 'FAILED' }), run({ f: 'PASSED', g: 'FAILED' })];
    expect(gradeVerification(beforeFlaky, times(3, run({ f: 'PASSED', g: 'PASSED' })))).toEqual({ kind: 'verified', FAIL_TO_PASS: ['g'], PASS_TO_PASS: [], flaky: [{ name: 'f', state: 'before', flake_rate: 0.5 }] });
  });

  it('does not call FAILED vs ERROR (or absent) across runs a flake', () => {
    const before = [run({ f: 'FAILED' }), run({ f: 'ERROR' })];
    const after = times(3, run({ f: 'PASSED' }));
    expect(gradeVerification(before, after)).toEqual({ kind: 'verified', FAIL_TO_PASS: ['f'], PASS_TO_PASS: [], flaky: [] });
    expect(gradeVerification([run({ f: 'FAILED' }), run({ x: 'FAILED' })], after)).toMatchObject({ kind: 'verified', FAIL_TO_PASS: ['f'] });
  });

  it('rejects invalid runs by kind, patch failures and timeouts first', () => {
    const ok = run({ f: 'FAILED' });
    const good = run({ f: 'PASSED' });
    expect(gradeVerification([ok, ok], [good, run({}, { patchApplied: false }), good])).toMatchObject({ reason: 'patch-does-not-apply' });
    expect(gradeVerification([ok, run({ f: 'FAILED' }, { timedOut: true, exitCode: 124 })], [good, good, good])).toMatchObject({ reason: 'timeout' });
    expect(gradeVerification([ok, ok], [good, run({}, { exitCode: 1 }), good])).toMatchObject({ reason: 'invalid-run', detail: 'after run 2: nothing-parsed' });
    expect(gradeVerification([ok, ok], [good, good, run({ f: 'PASSED' }, { exitCode: 2 })])).toMatchObject({ reason: 'invalid-run', detail: 'after run 3: exit-without-failure' });
    expect(gradeVerification([], [good])).toMatchObject({ reason: 'invalid-run' });
  });

  it('grades a before run that crashed (the test patch needs the fix to load): its unreported tests failed', () => {
    const after = times(3, run({ f: 'PASSED', g: 'PASSED' }));
    // mocha dying on `require('./new-module')`: nothing parsed, exit 1, in every before run
    const crashed = run({}, { exitCode: 1 });
    expect(gradeVerification([crashed, crashed], after)).toEqual({ kind: 'verified', FAIL_TO_PASS: ['f', 'g'], PASS_TO_PASS: [], flaky: [] });
    // a crash after some tests passed: those passed before (PASS_TO_PASS), the rest failed
    const partial = run({ g: 'PASSED' }, { exitCode: 1 });
    expect(gradeVerification([partial, partial], after)).toEqual({ kind: 'verified', FAIL_TO_PASS: ['f'], PASS_TO_PASS: ['g'], flaky: [] });
    // a crash only after the fix is still an invalid run
    expect(gradeVerification([crashed, crashed], [...times(2, run({ f: 'PASSED' })), crashed])).toMatchObject({ reason: 'invalid-run', detail: 'after run 3: nothing-parsed' });
  });
});

describe('gradeEvaluation and releaseCheck', () => {
  const spec = { FAIL_TO_PASS: ['f'], PASS_TO_PASS: ['p', 'x'] };

  it('resolves only when every F2P and P2P test passes (XFAIL counts as passing, absence does not)', () => {
    expect(gradeEvaluation(spec, run({ f: 'PASSED', p: 'PASSED', x: 'XFAIL' })).resolved).toBe(true);
    const r = gradeEvaluation(spec, run({ f: 'PASSED', p: 'FAILED' }));
    expect(r).toEqual({ resolved: false, FAIL_TO_PASS: { success: ['f'], failure: [] }, PASS_TO_PASS: { success: [], failure: ['p', 'x'] } });
    expect(gradeEvaluation(spec, run({ f: 'SKIPPED', p: 'PASSED', x: 'PASSED' })).resolved).toBe(false);
  });

  it('never resolves a run whose patch did not apply or that timed out', () => {
    expect(gradeEvaluation(spec, run({ f: 'PASSED', p: 'PASSED', x: 'PASSED' }, { patchApplied: false }))).toMatchObject({ resolved: false, invalid: 'patch-does-not-apply' });
    expect(gradeEvaluation(spec, run({ f: 'PASSED', p: 'PASSED', x: 'PASSED' }, { timedOut: true }))).toMatchObject({ resolved: false, invalid: 'timeout' });
  });

  it('passes the release check when gold resolves and the empty patch does not', () => {
    const gold = run({ f: 'PASSED', p: 'PASSED', x: 'PASSED' });
    const empty = run({ f: 'FAILED', p: 'PASSED', x: 'PASSED' });
    expect(releaseCheck(spec, gold, empty)).toEqual({ gold_resolved: true, empty_resolved: false, ok: true });
    expect(releaseCheck(spec, gold, gold)).toEqual({ gold_resolved: true, empty_resolved: true, ok: false });
  });
});
