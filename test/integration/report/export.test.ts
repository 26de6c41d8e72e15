/**
 * `export` against real engines: only released, stated rows; §8 field names in order; Parquet written by
 * ClickHouse reads back (chDB `file(…, Parquet)`) equal to the JSONL rows; unknown format → exit 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ClickHouseSink } from '../../../connectors/sinks/clickhouse.js';
import { openClickHouse } from '../../../connectors/sinks/connection.js';
import { runExport } from '../../../cli/commands/export.js';
import { stated, verified } from '../clickhouse/fixtures.js';
import { clickHouseTargets } from '../clickhouse/server.js';

const targets = clickHouseTargets('export');
const dataDir = targets.dataDir;

const SCALE_SWE = ['instance_id', 'user', 'repo', 'language', 'workdir', 'image_url', 'patch', 'pr_commit', 'parent_commit', 'problem_statement', 'f2p_patch', 'f2p_script', 'FAIL_TO_PASS', 'PASS_TO_PASS', 'github_url', 'pre_commands'];
const SWE_BENCH = ['instance_id', 'repo', 'base_commit', 'patch', 'test_patch', 'problem_statement', 'hints_text', 'created_at', 'FAIL_TO_PASS', 'PASS_TO_PASS', 'environment_setup_commit'];

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let t = '';
  stream.on('data', (c: Buffer) => { t += c.toString('utf8'); });
  return { stream, text: () => t };
}

async function load(target: { url?: string; database: string }): Promise<void> {
  const sink = await ClickHouseSink.open({ ...target, dataDir, flushIntervalMs: 0 });
  const v2 = verified('b/y', 2, { created_at: '2026-02-01T08:00:00Z' });
  v2.tests.f2p_script = 'def test_repro():\n    assert f() == 2\n';
  sink.push('tasks.stated', stated(verified('a/x', 1, { created_at: '2026-01-04T10:00:00Z' }), 'Logic Error'));
  sink.push('tasks.stated', stated(v2, 'API Mismatch'));
  sink.push('tasks.verified', verified('c/z', 3)); // no statement yet
  sink.push('tasks.stated', stated(verified('d/w', 4, { gold_resolved: false })));
  sink.push('tasks.stated', stated(verified('e/v', 5, { empty_resolved: true })));
  await sink.close();
}

const readJsonl = (p: string): Array<Record<string, unknown>> => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

async function readParquet(path: string): Promise<Array<Record<string, unknown>>> {
  const ch = await openClickHouse({ dataDir, database: 'default' }, { applyDdl: false });
  try {
    return await ch.rows(`SELECT * FROM file('${path}', Parquet)`);
  } finally {
    await ch.close();
  }
}

const backends = [
  { name: 'chdb', url: () => undefined },
  { name: 'server', url: () => targets.url() },
] as const;

describe.each(backends)('export on $name', ({ name, url }) => {
  const database = `t_export_${name}_${process.pid}`;

  it('writes released rows with the exact §8 field names, and Parquet reads back equal to JSONL', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    await load({ url: url(), database });
    for (const [format, fields] of [['scale-swe', SCALE_SWE], ['swe-bench', SWE_BENCH]] as const) {
      const jsonl = join(dataDir, `${name}-${format}.jsonl`);
      const parquet = join(dataDir, `${name}-${format}.parquet`);
      const out = capture();
      expect(await runExport({ dataDir, clickhouseUrl: url(), database, format, out: jsonl, stdout: out.stream })).toBe(0);
      expect(await runExport({ dataDir, clickhouseUrl: url(), database, format, out: parquet, stdout: out.stream })).toBe(0);
      expect(out.text()).toContain(`exported 2 ${format} rows to ${parquet}`);
      const rows = readJsonl(jsonl);
      expect(rows).toHaveLength(2);
      for (const r of rows) {
        expect(Object.keys(r).slice(0, fields.length)).toEqual(fields);
        expect(typeof r.FAIL_TO_PASS).toBe('string'); // JSON-encoded list, as SWE-bench on HF
        expect(JSON.parse(r.FAIL_TO_PASS as string)).toEqual([expect.stringMatching(/^tests\/test_a\.py::test_fix_\d$/)]);
        expect(JSON.parse(r.PASS_TO_PASS as string)).toEqual(['tests/test_a.py::test_ok', 'tests/test_a.py::test "quoted"']);
        expect(r).toMatchObject({ max_flake_rate: 0.25, leakage_score: 0.1, cost_usd: 0.0125, tokens_in: 1000, tokens_out: 200, wall_ms: 7000 });
        expect(JSON.parse(r.wall_ms_by_stage as string)).toEqual({ 'env-build': 1200, verify: 5000, statement: 800 });
      }
      if (format === 'scale-swe') {
        expect(rows.map((r) => [r.instance_id, r.user, r.repo, r.f2p_script])).toEqual([
          ['a_x_pr1', 'a', 'x', null], ['b_y_pr2', 'b', 'y', 'def test_repro():\n    assert f() == 2\n'],
        ]);
        expect(rows[0]!.github_url).toBe('https://github.com/a/x');
        expect(rows[0]!.pre_commands).toBe('["cd /testbed"]');
      } else {
        expect(rows.map((r) => [r.instance_id, r.repo, r.created_at])).toEqual([['a__x-1', 'a/x', '2026-01-04T10:00:00Z'], ['b__y-2', 'b/y', '2026-02-01T08:00:00Z']]);
        expect(rows[0]!.base_commit).toBe(rows[0]!.environment_setup_commit);
      }
      expect(readFileSync(parquet).subarray(0, 4).toString()).toBe('PAR1');
      expect(await readParquet(parquet)).toEqual(rows);
    }
  });

  it('--since keeps PRs created at or after the time', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    const p = join(dataDir, `${name}-since.jsonl`);
    expect(await runExport({ dataDir, clickhouseUrl: url(), database, format: 'swe-bench', out: p, since: '2026-01-15', stdout: capture().stream })).toBe(0);
    expect(readJsonl(p).map((r) => r.instance_id)).toEqual(['b__y-2']);
  });
});

describe('export usage errors', () => {
  it('unknown format → exit 2 with the list of formats, nothing written', async () => {
    const err = capture();
    const p = join(dataDir, 'x.jsonl');
    expect(await runExport({ dataDir, format: 'alpaca', out: p, stderr: err.stream })).toBe(2);
    expect(err.text()).toBe('swe-stream export: unknown export format "alpaca"; formats: scale-swe, swe-bench\n');
    expect(existsSync(p)).toBe(false);
  });
  it('unsupported extension or bad --since → exit 2', async () => {
    const err = capture();
    expect(await runExport({ dataDir, format: 'swe-bench', out: join(dataDir, 'x.csv'), stderr: err.stream })).toBe(2);
    expect(await runExport({ dataDir, format: 'swe-bench', out: join(dataDir, 'x.jsonl'), since: 'last tuesday', stderr: err.stream })).toBe(2);
    expect(err.text()).toMatch(/use one of: \.jsonl, \.parquet[\s\S]*not an ISO 8601 date/);
  });
});
