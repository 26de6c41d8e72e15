/**
 * The living dataset on real Docker, a real OCI registry (infra/oci-registry.sh) and chDB: two tasks of a
 * generated Python repository verified into task images; one task's environment broken on purpose (pytest
 * removed from its image before the push); `images push` sends both to the registry (image_url by digest,
 * unique bytes recorded); `release` cuts r1; a task image removed locally is pulled back by `image_url` and
 * graded by the CLI's `evaluate --dataset` exactly as verify graded it; `revalidate` keeps the stable task
 * and retires the broken one with its reason (r2's CHANGES says so); an unpullable image is an
 * infrastructure failure that retires nothing; `images gc` removes an unreleased task image and keeps
 * every released one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DockerSandboxFactory } from '../../../operators/sandbox/docker.js';
import { testCreateStage } from '../../../operators/test-create.js';
import { verifyStage } from '../../../operators/verify.js';
import { runnableImage } from '../../../operators/harness/task-image.js';
import { revalidateTask } from '../../../operators/harness/revalidate.js';
import { ClickHouseSink } from '../../../connectors/sinks/clickhouse.js';
import { openClickHouse, type ClickHouse } from '../../../connectors/sinks/connection.js';
import { createRelease } from '../../../connectors/dataset/release.js';
import { readReleaseRows } from '../../../connectors/dataset/rows.js';
import { stabilityByRepo } from '../../../connectors/dataset/store.js';
import { renderStability } from '../../../cli/commands/report.js';
import { pushImages, gcImages } from '../../../cli/images-ops.js';
import { revalidate } from '../../../cli/dataset-ops.js';
import type { TaskVerified } from '../../../schemas/types.gen.js';
import { stated, verified } from '../clickhouse/fixtures.js';
import { candidateOf, environmentOf, envelope, readyOf } from '../verify/helpers.js';
import { WORKDIR, parent, prs, pythonEnvImage, repo } from '../verify/pyrepo.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const REGISTRY = process.env.SWE_STREAM_OCI_REGISTRY ?? '127.0.0.1:5000';
const CONTAINER_TEST_MS = 1_500_000;
const sandboxes = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'living' } });
const docker = sandboxes.docker;
const dataDir = mkdtempSync(join(tmpdir(), 'swe-stream-living-'));
const database = `t_living_${process.pid}`;
const prefix = `swe-stream-test/living${process.pid}`;
const cleanup: string[] = [];
let ch: ClickHouse;
const tasks: TaskVerified[] = [];

async function verifyPr(number: number): Promise<TaskVerified> {
  const env = await pythonEnvImage(sandboxes);
  const candidate = candidateOf(repo, { name: 'calc', number, parent, pr: prs.good, language: 'python' });
  const ready = await testCreateStage().handle(envelope(readyOf(candidate, environmentOf(env, { language: 'python', runner: 'pytest', workdir: WORKDIR }))));
  if (ready.kind !== 'accepted') throw new Error(JSON.stringify(ready));
  const out = await verifyStage({ sandboxes, runTimeoutMs: 120_000, taskImagePrefix: prefix }).handle(envelope(ready.value));
  if (out.kind !== 'accepted') throw new Error(JSON.stringify(out));
  cleanup.push(out.value.verification.task_image_ref);
  return out.value;
}

/** Break a task's environment on purpose: pytest removed, committed over the task image's tag. */
async function breakEnvironment(t: TaskVerified): Promise<void> {
  const sb = await sandboxes.create({ image: runnableImage(t.verification.image_url), network: false, workdir: WORKDIR });
  try {
    const r = await sb.exec('rm -rf /opt/venv/lib/python3*/site-packages/pytest /opt/venv/lib/python3*/site-packages/_pytest', { timeoutMs: 60_000 });
    expect(r.exitCode).toBe(0);
    await sb.commit(t.verification.task_image_ref, { 'swe-stream.instance': t.instance_id });
  } finally {
    await sb.destroy();
  }
}

const run = promisify(execFile);

beforeAll(async () => {
  tasks.push(await verifyPr(11), await verifyPr(12));
  await breakEnvironment(tasks[1]!);
  const sink = await ClickHouseSink.open({ dataDir, database, flushIntervalMs: 0 });
  for (const t of tasks) sink.push('tasks.stated', stated(t));
  await sink.close();
  ch = await openClickHouse({ dataDir, database });
}, CONTAINER_TEST_MS);

afterAll(async () => {
  await ch?.close();
  repo.remove();
  for (const ref of cleanup) await docker.getImage(ref).remove({ force: true }).catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the living dataset', () => {
  let r1Dir = '';

  it('pushes both task images to the registry by digest and releases them', async () => {
    const pushed = await pushImages(ch, { docker, registry: REGISTRY });
    expect(pushed.failed).toEqual([]);
    expect(pushed.pushed.map((p) => p.instance_id)).toEqual(['acme__calc-11', 'acme__calc-12']);
    for (const p of pushed.pushed) {
      expect(p.image_url).toMatch(new RegExp(`^${REGISTRY.replace(/\./g, '\\.')}/${prefix}-acme__calc-1[12]@sha256:[0-9a-f]{64}$`));
      expect(p.unique_bytes).toBeGreaterThan(0);
      expect(p.unique_bytes).toBeLessThan(150e6);
      expect(p.unique_compressed_bytes).toBeGreaterThan(0);
      cleanup.push(p.image_url);
    }
    expect((await pushImages(ch, { docker, registry: REGISTRY })).current).toBe(2); // nothing twice
    const r1 = await createRelease(ch, { name: 'r1', out: join(dataDir, 'releases'), dataDir, command: 'swe-stream release r1' });
    expect(r1.rows).toBe(2);
    r1Dir = r1.dir;
    expect(readReleaseRows(r1.dir).map((r) => r.verification.image_url)).toEqual(pushed.pushed.map((p) => p.image_url));
  }, CONTAINER_TEST_MS);

  it('evaluate --dataset pulls a task image removed locally by image_url and grades as verify did', async () => {
    const row = readReleaseRows(r1Dir)[0]!;
    const t = tasks[0]!;
    const id = (await docker.getImage(row.verification.image_url).inspect()).Id;
    await docker.getImage(id).remove({ force: true });
    await expect(docker.getImage(row.verification.image_url).inspect()).rejects.toMatchObject({ statusCode: 404 });
    const predictions = join(dataDir, 'predictions.jsonl');
    writeFileSync(predictions, [
      JSON.stringify({ instance_id: t.instance_id, model_patch: t.tests.gold_patch, model_name_or_path: 'gold' }),
    ].join('\n') + '\n');
    const { stdout } = await run(process.execPath, [join(ROOT, 'bin/swe-stream.js'), 'evaluate', '--dataset', r1Dir, '--predictions', predictions, '--data-dir', join(dataDir, 'cli')], { cwd: ROOT, timeout: 600_000, maxBuffer: 16 << 20 });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { resolved_ids: string[]; results: Array<{ tests: { FAIL_TO_PASS: { success: string[] }; PASS_TO_PASS: { success: string[] } } }> };
    expect(report.resolved_ids).toEqual([t.instance_id]);
    expect(report.results[0]!.tests.FAIL_TO_PASS.success).toEqual(t.verification.FAIL_TO_PASS);
    expect(report.results[0]!.tests.PASS_TO_PASS.success).toEqual(t.verification.PASS_TO_PASS);
    expect((await docker.getImage(row.verification.image_url).inspect()).Id).toBe(id); // pulled back, same image
  }, CONTAINER_TEST_MS);

  it('revalidate keeps the stable task, retires the broken one, and the next release says why', async () => {
    const r = await revalidate(ch, { sandboxes, docker, runs: 2 });
    expect(r.rows.map((x) => [x.instance_id, x.outcome, x.retire, x.gold_resolved_runs, x.empty_resolved_runs])).toEqual([
      ['acme__calc-11', 'stable', 0, 2, 0],
      ['acme__calc-12', 'not-resolving', 1, 0, 0],
    ]);
    expect(r.rows[1]!.detail).toContain('gold patch resolved in 0 of 2 runs');
    expect(r.rows[0]!.durations_ms).toHaveLength(4);
    // Re-validated just now: nothing is due since then.
    expect((await revalidate(ch, { sandboxes, docker, runs: 1, since: r.rows[0]!.started_ms })).tasks).toBe(0);
    // Filters: another repository selects nothing; one instance selects only it.
    expect((await revalidate(ch, { sandboxes, docker, runs: 1, repos: ['other/repo'] })).tasks).toBe(0);
    const one = await revalidate(ch, { sandboxes, docker, runs: 1, instances: ['acme__calc-11'] });
    expect(one.rows.map((x) => [x.instance_id, x.outcome])).toEqual([['acme__calc-11', 'stable']]);
    const r2 = await createRelease(ch, { name: 'r2', out: join(dataDir, 'releases'), dataDir, command: 'swe-stream release r2' });
    expect(r2).toMatchObject({ rows: 1, retired: 1, added: 0 });
    expect(readFileSync(join(r2.dir, 'CHANGES.md'), 'utf8')).toContain('- acme__calc-12: not-resolving: gold patch resolved in 0 of 2 runs');
    expect(readFileSync(join(r2.dir, 'README.md'), 'utf8')).toContain('stable at their last re-validation: 1');
    // `report` shows stability per repository.
    const stability = await stabilityByRepo(ch);
    expect(stability).toMatchObject([{ repo: 'acme/calc', tasks: 2, validated: 2, retired: 1, infra_failures: 0 }]);
    expect(renderStability(stability)).toMatch(/acme\/calc\s+2\s+1\s+1\s+0/);
  }, CONTAINER_TEST_MS);

  it('an image that cannot be pulled is an infrastructure failure and retires nothing', async () => {
    const row = readReleaseRows(r1Dir)[0]!;
    const gone = { ...row, verification: { ...row.verification, image_url: `${REGISTRY}/${prefix}-missing@sha256:${'0'.repeat(64)}` } };
    const t = await revalidateTask({ row: gone, goldPatch: tasks[0]!.tests.gold_patch, sandboxes, docker, runs: 1 });
    expect(t).toMatchObject({ outcome: 'infra-failure', retire: false });
    expect(t.detail).toMatch(/RegistryError: pulling/);
  }, CONTAINER_TEST_MS);

  it('images gc removes an unreleased task image of this dataset, keeps the released ones and leaves other pipelines\' alone', async () => {
    const env = await pythonEnvImage(sandboxes);
    const sb = await sandboxes.create({ image: env.id, network: false, workdir: WORKDIR });
    const unreleased = `${prefix}-unreleased:1`;
    const foreign = `${prefix}-foreign:1`;
    try {
      await sb.commit(unreleased, { 'swe-stream.instance': 'acme__calc-999' });
      await sb.commit(foreign, { 'swe-stream.instance': `elsewhere__x-${process.pid}` });
    } finally {
      await sb.destroy();
    }
    cleanup.push(unreleased, foreign);
    // A task of this dataset whose release check failed: its image is unreleased and never will be.
    const failed = verified('acme/calc', 999, { gold_resolved: false });
    failed.verification.task_image_ref = unreleased;
    const sink = await ClickHouseSink.open({ dataDir, database, flushIntervalMs: 0 });
    sink.push('tasks.verified', failed);
    await sink.close();
    const r = await gcImages(ch, { docker });
    expect(r.removedTaskImages.filter((x) => x.startsWith('acme__calc-999 '))).toHaveLength(1);
    await expect(docker.getImage(unreleased).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await docker.getImage(foreign).inspect()).Id).toMatch(/^sha256:/);
    for (const row of readReleaseRows(r1Dir)) expect((await docker.getImage(row.verification.image_url).inspect()).Id).toMatch(/^sha256:/);
  }, CONTAINER_TEST_MS);
});
