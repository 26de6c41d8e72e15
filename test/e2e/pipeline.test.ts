/**
 * The main job end to end, as a user runs it: `swe-stream run --until-idle` on the embedded defaults
 * (durable local log, schemas from files, chDB, the local Docker engine, rules without an LLM) over
 * generated repositories — Python and JavaScript, merge and squash styles, PRs with and without tests,
 * docs-only, bot and other-language PRs, one flaky test, one broken install — then `report --json`,
 * `export` (JSONL and Parquet) and `status --json`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRepo, type GeneratedRepo } from '../helpers/git-repos.js';
import { createSpecialRepos } from './special-repos.js';
import { EmbeddedTransport } from '../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../streams/serde-embedded.js';
import { readTopic } from '../../streams/read.js';
import { STAGE_NAMES, PR_STAGES, prCatalog } from '../../operators/pr/topology.js';
import type { StageOutcome, TaskStated } from '../../schemas/types.gen.js';
import { openClickHouse } from '../../connectors/sinks/connection.js';

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/swe-stream.js');
// The embedded defaults: no ClickHouse server even when the test environment points at one.
const cli = (args: string[], timeout = 1_800_000) =>
  exec(process.execPath, [CLI, ...args], { cwd: ROOT, timeout, maxBuffer: 64 * 2 ** 20, env: { ...process.env, SWE_STREAM_OFFLINE: '1', SWE_STREAM_CLICKHOUSE_URL: '', SWE_STREAM_BUS: 'embedded' } });

let py: GeneratedRepo;
let js: GeneratedRepo;
let special: ReturnType<typeof createSpecialRepos>;
let dataDir: string;
let runSummary: { stages: Array<{ stage: string; received: number }> };

beforeAll(async () => {
  py = await createRepo({ language: 'python' });
  js = await createRepo({ language: 'javascript' });
  special = createSpecialRepos();
  dataDir = mkdtempSync(join(tmpdir(), 'swe-e2e-data-'));
  const sources = [py.path, js.path, special.flaky.path, special.broken.path].flatMap((p) => ['--source', `git:${p}`]);
  const { stdout } = await cli(['run', '--until-idle', '--data-dir', dataDir, ...sources]);
  runSummary = JSON.parse(stdout.trim().split('\n').pop()!);
}, 2_400_000);

afterAll(async () => {
  await py?.cleanup();
  await js?.cleanup();
  special?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('swe-stream run on generated repositories', () => {
  it('gives every input of every stage exactly one outcome', async () => {
    const t = new EmbeddedTransport({ path: join(dataDir, 'log.db') });
    const serde = new EmbeddedSerde({ catalog: prCatalog() });
    try {
      const outcomes = await readTopic<StageOutcome>(t, serde, 'stage.outcomes');
      for (const stage of STAGE_NAMES) {
        const input = PR_STAGES[stage].input;
        let inputs = 0;
        for (const p of await t.topicOffsets(input)) inputs += Number(p.high);
        const mine = outcomes.filter((o) => o.stage === stage);
        expect(mine.length, `${stage}: outcomes vs records in ${input}`).toBe(inputs);
        expect(new Set(mine.map((o) => `${o.input_partition}:${o.input_offset}`)).size).toBe(inputs);
      }
      // 7 + 7 PRs from the generator, 1 + 1 from the special repositories.
      expect(outcomes.filter((o) => o.stage === 'filter')).toHaveLength(16);
    } finally {
      await t.close();
    }
  });

  it('reports the funnel with reasons, matching the outcomes', async () => {
    const { stdout } = await cli(['report', '--json', '--data-dir', dataDir]);
    const report = JSON.parse(stdout) as { stages: Array<{ stage: string; inputs: number; accepted: number; rejected: number; skipped: number; failed: number; reasons: Record<string, number> }> };
    const by = Object.fromEntries(report.stages.map((s) => [s.stage, s]));
    expect(by.filter).toMatchObject({ inputs: 16 });
    expect(by.filter!.reasons).toMatchObject({ 'no-tests': 4, 'docs-config-only': 2, 'bot-author': 2, 'unsupported-language': 2 });
    // accepted by the filter: 2 Python + 2 JS fix PRs, the flaky and the broken-install PR
    expect(by.filter!.accepted).toBe(6);
    expect(by['env-build']!.reasons).toMatchObject({ 'install-failed': 1 });
    expect(by.verify!.accepted).toBeGreaterThanOrEqual(5);
    // Without an LLM every stated task is skipped by distill, counted as skipped, never as a rejection.
    expect(by.distill).toMatchObject({ skipped: by.statement!.accepted, rejected: 0 });
    for (const s of report.stages) expect(s.accepted + s.rejected + s.skipped + s.failed).toBe(s.inputs);
    expect(runSummary.stages.find((s) => s.stage === 'filter')!.received).toBe(16);
  });

  it('exports the verified rows as SWE-bench JSONL and Parquet with the same rows', async () => {
    const jsonl = join(dataDir, 'rows.jsonl');
    const parquet = join(dataDir, 'rows.parquet');
    await cli(['export', '--format', 'swe-bench', '--out', jsonl, '--data-dir', dataDir]);
    await cli(['export', '--format', 'swe-bench', '--out', parquet, '--data-dir', dataDir]);
    const rows = readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    expect(rows.length).toBeGreaterThanOrEqual(5);
    const ids = rows.map((r) => r.instance_id).sort();
    expect(ids).toContain('acme__mathlib-python-1');
    expect(ids).toContain('acme__mathlib-javascript-2');
    expect(ids).toContain('acme__flaky-py-1');
    for (const r of rows) {
      for (const k of ['instance_id', 'repo', 'base_commit', 'patch', 'test_patch', 'problem_statement', 'FAIL_TO_PASS', 'PASS_TO_PASS', 'environment_setup_commit', 'created_at', 'hints_text']) expect(r).toHaveProperty(k);
      expect(JSON.parse(r.FAIL_TO_PASS!).length).toBeGreaterThan(0);
      expect(r.patch).not.toContain('tests/');
    }
    const py1 = rows.find((r) => r.instance_id === 'acme__mathlib-python-1')!;
    expect(JSON.parse(py1.FAIL_TO_PASS!)).toEqual(py.prs.find((p) => p.number === 1)!.failToPass.map((t) => t.id));
    // the flaky test is excluded from PASS_TO_PASS and FAIL_TO_PASS
    const flaky = rows.find((r) => r.instance_id === 'acme__flaky-py-1')!;
    expect(flaky.PASS_TO_PASS + flaky.FAIL_TO_PASS).not.toContain('test_sometimes');
    // Parquet read back through ClickHouse's own reader holds the same rows
    const ch = await openClickHouse({ dataDir: mkdtempSync(join(tmpdir(), 'pq-')) }, { applyDdl: false });
    try {
      const back = await ch.rows<{ instance_id: string }>(`SELECT instance_id FROM file('${parquet}', Parquet) ORDER BY instance_id`);
      expect(back.map((r) => r.instance_id)).toEqual(ids);
    } finally {
      await ch.close();
    }
  });

  it('records the flaky test and the release check on the stated task', async () => {
    const t = new EmbeddedTransport({ path: join(dataDir, 'log.db') });
    try {
      const tasks = await readTopic<TaskStated>(t, new EmbeddedSerde({ catalog: prCatalog() }), 'tasks.stated');
      const flaky = tasks.find((x) => x.instance_id === 'acme__flaky-py-1')!;
      expect(flaky.verification.flaky.map((f) => f.name).join(' ')).toContain('test_sometimes');
      for (const task of tasks) {
        expect(task.verification.gold_resolved).toBe(true);
        expect(task.verification.empty_resolved).toBe(false);
        expect(task.statement.leakage_score).toBeLessThan(1);
        expect(task.verification.image_url).toMatch(/@sha256:/);
      }
    } finally {
      await t.close();
    }
  });

  it('status shows every group drained', async () => {
    const { stdout } = await cli(['status', '--json', '--data-dir', dataDir]);
    const st = JSON.parse(stdout) as { groups: Array<{ group: string; lag: number }> };
    expect(st.groups.length).toBeGreaterThanOrEqual(7);
    for (const g of st.groups) expect(g.lag, g.group).toBe(0);
  });
});
