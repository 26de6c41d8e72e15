/**
 * `release` against real engines (chDB and the ClickHouse server): an immutable directory with Parquet
 * and JSONL in both row formats that loads with the real Hugging Face `datasets` package, a card with
 * counts and cut-offs, SHA-256 checksums that verify, CHANGES against the previous release (added,
 * retired with its re-validation's reason, changed), one snapshot (`--as-of` leaves later rows out), and
 * a taken name refused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ClickHouseSink } from '../../../connectors/sinks/clickhouse.js';
import { openClickHouse, type ClickHouse } from '../../../connectors/sinks/connection.js';
import { createRelease, ReleaseUsageError } from '../../../connectors/dataset/release.js';
import { insertRows, type RevalidationRow } from '../../../connectors/dataset/store.js';
import { readReleaseRows } from '../../../connectors/dataset/rows.js';
import { stated, verified } from '../clickhouse/fixtures.js';
import { clickHouseTargets } from '../clickhouse/server.js';
import { hfPython, loadWithDatasets } from './helpers.js';

const targets = clickHouseTargets('release');
const dataDir = targets.dataDir;
let python: string;

beforeAll(() => {
  python = hfPython();
}, 900_000);

const backends = [
  { name: 'chdb', url: () => undefined },
  { name: 'server', url: () => targets.url() },
] as const;

function retirement(instance_id: string, at: number): RevalidationRow {
  return { revalidation_id: `${instance_id}:${at}`, instance_id, repo: 'b/y', started_ms: at, runs: 3, outcome: 'not-resolving', retire: 1, detail: 'gold patch resolved in 0 of 3 runs (nothing-parsed)', gold_resolved_runs: 0, empty_resolved_runs: 0, flipped_tests: [], durations_ms: [1, 2], image_url: 'x', ingested_ms: at };
}

function checksumsHold(dir: string): void {
  const lines = readFileSync(join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n');
  const files = readdirSync(dir).filter((f) => f !== 'SHA256SUMS').sort();
  expect(lines.map((l) => l.split('  ')[1])).toEqual(files);
  for (const l of lines) {
    const [sum, f] = l.split('  ');
    expect(createHash('sha256').update(readFileSync(join(dir, f!))).digest('hex')).toBe(sum);
  }
}

describe.each(backends)('release on $name', ({ name, url }) => {
  const database = `t_release_${name}_${process.pid}`;
  const out = join(dataDir, `releases-${name}`);

  async function load(rows: Parameters<ClickHouseSink['push']>[]): Promise<void> {
    const sink = await ClickHouseSink.open({ url: url(), dataDir, database, flushIntervalMs: 0 });
    for (const [topic, value] of rows) sink.push(topic, value);
    await sink.close();
  }

  it('writes an immutable release that datasets loads, then a second one with CHANGES, and honours --as-of', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    await load([
      ['tasks.stated', stated(verified('a/x', 1, { created_at: '2026-01-04T10:00:00Z' }), 'Logic Error')],
      ['tasks.stated', stated(verified('b/y', 2, { created_at: '2026-02-01T08:00:00Z', language: 'javascript' }), 'API Mismatch')],
      ['tasks.verified', verified('c/z', 3)], // no statement: not released
    ]);
    const ch: ClickHouse = await openClickHouse({ url: url(), dataDir, database });
    try {
      const r1 = await createRelease(ch, { name: 'r1', out, dataDir, command: 'swe-stream release r1', localImages: true });
      expect(r1).toMatchObject({ rows: 2, added: 2, retired: 0, changed: 0 });
      expect(r1.files).toEqual(['CHANGES.md', 'README.md', 'SHA256SUMS', 'release.json', 'scale-swe.jsonl', 'scale-swe.parquet', 'swe-bench.jsonl', 'swe-bench.parquet']);
      checksumsHold(r1.dir);
      expect(statSync(join(r1.dir, 'swe-bench.parquet')).mode & 0o222).toBe(0); // read-only
      const card = readFileSync(join(r1.dir, 'README.md'), 'utf8');
      expect(card).toMatch(/^---\nconfigs:\n- config_name: swe-bench\n  data_files: swe-bench\.parquet/);
      expect(card).toContain('| a/x | 1 |');
      expect(card).toContain('| javascript | 1 |');
      expect(card).toContain('| API Mismatch | 1 |');
      expect(card).toContain('| 2026-01 | 2 |'); // merge month
      expect(card).toContain('earliest 2026-01-04T10:00:00Z, latest 2026-02-01T08:00:00Z');
      expect(card).toContain('command: `swe-stream release r1`');
      for (const f of ['swe-bench', 'scale-swe']) {
        const hf = loadWithDatasets(python, join(r1.dir, `${f}.parquet`), join(dataDir, `hf-cache-${name}`));
        expect(hf.num_rows).toBe(2);
        expect(hf.columns).toEqual(expect.arrayContaining(['instance_id', 'FAIL_TO_PASS', 'PASS_TO_PASS', 'image_url', 'test_command', 'log_parser', 'pre_commands']));
        expect(hf.ids).toEqual(f === 'swe-bench' ? ['a__x-1', 'b__y-2'] : ['a_x_pr1', 'b_y_pr2']);
        expect(hf.f2p).toEqual(['tests/test_a.py::test_fix_1']);
      }
      // What another harness needs, read back by evaluate --dataset's reader.
      expect(readReleaseRows(r1.dir).map((r) => [r.instance_id, r.environment.runner, r.verification.eval_command, r.verification.workdir])).toEqual([
        ['a__x-1', 'pytest', 'pytest -rA tests/test_a.py', '/testbed'], ['b__y-2', 'pytest', 'pytest -rA tests/test_a.py', '/testbed'],
      ]);
      await expect(createRelease(ch, { name: 'r1', out: join(dataDir, 'elsewhere'), dataDir, command: 'x', localImages: true })).rejects.toBeInstanceOf(ReleaseUsageError);

      // b/y retired by a re-validation, a/x's statement changed, d/w added.
      const before = Date.now();
      await insertRows(ch, 'revalidations', [retirement('b__y-2', before)]);
      await load([
        ['tasks.stated', stated(verified('a/x', 1, { created_at: '2026-01-04T10:00:00Z' }), 'Logic Error', { problem_statement: 'A better statement of the bug in f().' })],
        ['tasks.stated', stated(verified('d/w', 4, { created_at: '2026-03-01T00:00:00Z' }))],
      ]);
      const r2 = await createRelease(ch, { name: 'r2', out, dataDir, command: 'swe-stream release r2', localImages: true });
      expect(r2).toMatchObject({ rows: 2, added: 1, retired: 1, changed: 1 });
      const changes = readFileSync(join(r2.dir, 'CHANGES.md'), 'utf8');
      expect(changes).toContain('Against r1');
      expect(changes).toMatch(/## Added \(1\)\n\n- d__w-4/);
      expect(changes).toContain('- b__y-2: not-resolving: gold patch resolved in 0 of 3 runs (nothing-parsed)');
      expect(changes).toMatch(/## Changed \(1\)\n\n- a__x-1/);
      checksumsHold(r2.dir);

      // As of a time before the second load: the old a/x row and no d/w; b/y already retired then.
      const r3 = await createRelease(ch, { name: 'r3', out, dataDir, command: 'x', localImages: true, asOfMs: before });
      expect(r3.rows).toBe(1);
      expect(readReleaseRows(r3.dir).map((r) => r.instance_id)).toEqual(['a__x-1']);
      // Only released rows with a pushed image unless --local-images.
      await expect(createRelease(ch, { name: 'r4', out, dataDir, command: 'x' })).rejects.toThrow(/not in the OCI registry/);
    } finally {
      await ch.close();
    }
  }, 900_000);
});
