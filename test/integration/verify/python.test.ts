/**
 * verify on a generated Python/pytest repository in real Docker containers: one environment image,
 * one PR per outcome (verified with a collection error, xfail, skip and a flaky pass-to-pass test;
 * pass-to-fail; no-f2p; flaky-f2p; a test patch that does not apply; a run killed by its timeout; a run
 * that parses nothing), the task image's stripped history, and evaluate on the verified row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import { testCreateStage } from '../../../operators/test-create.js';
import { verifyStage } from '../../../operators/verify.js';
import { evaluate, summarizeEvaluation } from '../../../operators/harness/evaluate.js';
import { runnableImage } from '../../../operators/harness/task-image.js';
import { joinDiff, parseDiff } from '../../../operators/pr/patch.js';
import type { TaskVerified, TestsReady } from '../../../schemas/types.gen.js';
import type { Outcome } from '../../../streams/types.js';
import { candidateOf, environmentOf, envelope, testsReadyFrom } from './helpers.js';
import { WORKDIR, base, parent, prs, pythonEnvImage, repo } from './pyrepo.js';

/** Container-heavy tests get room on a loaded 2-core machine (vitest's default here is 120 s). */
const CONTAINER_TEST_MS = 900_000;
const sandboxes = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'verify-python' } });

let envImage: { ref: string; id: string };
const verify = verifyStage({ sandboxes, runTimeoutMs: 120_000, taskImagePrefix: 'swe-stream-test/task' });
const tc = testCreateStage();

async function testsReady(name: keyof typeof prs, number: number, diff?: string): Promise<TestsReady> {
  const candidate = candidateOf(repo, { name: 'calc', number, parent, pr: prs[name], language: 'python', diff });
  return testsReadyFrom(tc, candidate, environmentOf(envImage, { language: 'python', runner: 'pytest', workdir: WORKDIR }));
}

const taskImages: string[] = [];

beforeAll(async () => {
  envImage = await pythonEnvImage(sandboxes);
}, 600_000);

afterAll(async () => {
  repo.remove();
  for (const ref of taskImages) await sandboxes.docker.getImage(ref).remove({ force: true }).catch(() => undefined);
});

describe('verify (pytest)', () => {
  let verified: TaskVerified;

  it('verifies a PR: F2P from a failing test and a module that fails to collect; skip/xfail/flaky handled; history stripped', async () => {
    const ready = await testsReady('good', 1);
    expect(ready.tests.test_files).toEqual(['tests/test_ops.py', 'tests/test_square.py']);
    expect(ready.tests.gold_patch).toContain('calc/ops.py');
    expect(ready.tests.gold_patch).not.toContain('tests/');
    const out = await verify.handle(envelope(ready));
    if (out.kind !== 'accepted') throw new Error(JSON.stringify(out));
    verified = out.value;
    const v = verified.verification;
    taskImages.push(v.task_image_ref);
    expect(verified.instance_id).toBe('acme__calc-1');
    expect(v.FAIL_TO_PASS).toEqual(['tests/test_ops.py::test_mul', 'tests/test_square.py::test_square']);
    expect(v.PASS_TO_PASS).toEqual(['tests/test_ops.py::test_add', 'tests/test_ops.py::test_known_bug']);
    expect(v.flaky).toEqual([
      { name: 'tests/test_ops.py::test_flaky', state: 'after', flake_rate: 1 / 3 },
      { name: 'tests/test_ops.py::test_flaky', state: 'before', flake_rate: 0.5 },
    ]);
    expect([v.runs_before, v.runs_after]).toEqual([2, 3]);
    expect([v.gold_resolved, v.empty_resolved]).toEqual([true, false]);
    expect(v.image_url).toMatch(/^swe-stream-test\/task-acme__calc-1:[0-9a-f]{12}@sha256:[0-9a-f]{64}$/);
    expect(v.tests_ms).toBeGreaterThan(0);
    expect(v.verify_ms).toBeGreaterThanOrEqual(v.tests_ms / 2);

    // The fix cannot be read from git in the task image.
    const sb = await sandboxes.create({ image: runnableImage(v.image_url), network: false, workdir: WORKDIR });
    try {
      const all = await sb.exec('git log --all --format=%H; echo; git rev-parse HEAD; git status --porcelain', { timeoutMs: 30_000 });
      const commits = all.stdout.split('\n').filter((l) => /^[0-9a-f]{40}$/.test(l));
      expect(new Set(commits)).toEqual(new Set([parent, base]));
      for (const sha of Object.values(prs)) {
        const e = await sb.exec(`git cat-file -e ${sha}`, { timeoutMs: 30_000 });
        expect(e.exitCode).not.toBe(0);
      }
      const refs = await sb.exec(`git for-each-ref --format='%(refname)'; git remote; git reflog | wc -l`, { timeoutMs: 30_000 });
      expect(refs.stdout.trim().split('\n')).toEqual(['refs/heads/main', '0']);
    } finally {
      await sb.destroy();
    }
  }, CONTAINER_TEST_MS);

  it('evaluates predictions on the verified row with the same grading', async () => {
    expect(verified).toBeDefined();
    // The fix without the new module: test_square still fails.
    const wrong = joinDiff(parseDiff(verified.tests.gold_patch).filter((f) => f.path !== 'calc/square.py'));
    const results = await evaluate({
      sandboxes, rows: [verified],
      predictions: [
        { instance_id: 'acme__calc-1', model_patch: verified.tests.gold_patch },
        { instance_id: 'acme__calc-1', model_patch: wrong },
        { instance_id: 'acme__calc-1', model_patch: 'diff --git a/calc/ops.py b/calc/ops.py\n--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1,2 +1,2 @@\n-def nothing_like_this():\n+def x():\n     pass\n' },
        { instance_id: 'acme__calc-1', model_patch: '' },
        { instance_id: 'acme__nope-9', model_patch: 'x' },
      ],
    });
    expect(results.map((r) => [r.resolved, r.reason])).toEqual([[true, undefined], [false, undefined], [false, 'patch-does-not-apply'], [false, 'empty-patch'], [false, 'unknown-instance']]);
    expect(results[1]!.tests!.FAIL_TO_PASS.failure).toEqual(['tests/test_square.py::test_square']);
    const report = summarizeEvaluation(results, 1);
    expect(report).toMatchObject({ resolved_instances: 1, unresolved_instances: 2, empty_patch_instances: 1, error_instances: 1 });
  }, CONTAINER_TEST_MS);

  const rejects = async (ready: TestsReady, stage = verify): Promise<Outcome<TaskVerified>> => stage.handle(envelope(ready));

  it('rejects pass-to-fail', async () => {
    expect(await rejects(await testsReady('p2f', 2))).toMatchObject({ kind: 'rejected', reason: 'pass-to-fail', detail: expect.stringContaining('tests/test_ops.py::test_add') });
  }, CONTAINER_TEST_MS);

  it('rejects no-f2p', async () => {
    expect(await rejects(await testsReady('nof2p', 3))).toMatchObject({ kind: 'rejected', reason: 'no-f2p' });
  }, CONTAINER_TEST_MS);

  it('rejects a flaky fail-to-pass test', async () => {
    expect(await rejects(await testsReady('flakyf2p', 4))).toMatchObject({ kind: 'rejected', reason: 'flaky-f2p', detail: expect.stringContaining('test_mul_flaky') });
  }, CONTAINER_TEST_MS);

  it('rejects a test patch that does not apply', async () => {
    // A removed line that is not in the file: neither git apply nor patch's fuzz can place the hunk.
    const diff = repo.diff(parent, prs.good).replace('-from calc.ops import add\n', '-from calc.ops import addition\n');
    expect(diff).toContain('-from calc.ops import addition');
    expect(await rejects(await testsReady('good', 5, diff))).toMatchObject({ kind: 'rejected', reason: 'patch-does-not-apply', detail: expect.stringContaining('test:') });
  }, CONTAINER_TEST_MS);

  it('rejects a run killed by its timeout', async () => {
    const quick = verifyStage({ sandboxes, runTimeoutMs: 8_000 });
    const t0 = Date.now();
    expect(await rejects(await testsReady('slow', 6), quick)).toMatchObject({ kind: 'rejected', reason: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(40_000);
  }, CONTAINER_TEST_MS);

  it('rejects a run that parses nothing as invalid, not failed', async () => {
    expect(await rejects(await testsReady('noparse', 7))).toMatchObject({ kind: 'rejected', reason: 'invalid-run', detail: expect.stringContaining('nothing-parsed') });
  }, CONTAINER_TEST_MS);
});
