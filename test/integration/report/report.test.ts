/**
 * `report` against real engines: a known set of StageOutcome records with replays, retries and exact
 * duplicates goes through the sink; the JSON report must count every input exactly once. The HTML page
 * is opened in headless Chromium (Debian's chromium) and its charts must have painted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { ClickHouseSink } from '../../../connectors/sinks/clickhouse.js';
import { runReport } from '../../../cli/commands/report.js';
import type { Report } from '../../../connectors/analytics/views.js';
import { outcome, stated, verified, trajectory } from '../clickhouse/fixtures.js';
import { clickHouseTargets } from '../clickhouse/server.js';
import { prEvent } from '../../helpers/records.js';

const run = promisify(execFile);
const targets = clickHouseTargets('report');
const dataDir = targets.dataDir;

const T0 = Date.UTC(2026, 0, 5, 12);
const DAY = 86_400_000;

/** The known set, in push order, split in two flushes so replays land in different parts. */
function knownSet(): { first: Array<[string, unknown]>; second: Array<[string, unknown]> } {
  const o = outcome;
  const v1 = verified('a/x', 1);
  const v9 = verified('b/y', 9, { gold_resolved: false });
  const first: Array<[string, unknown]> = [
    ['stage.outcomes', o({ stage: 'filter', key: 'a/x#1', outcome_id: 'f-1-opened', kind: 'rejected', reason: 'not-merged', ts_ms: T0 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'a/x#1', outcome_id: 'f-1-closed', kind: 'accepted', ts_ms: T0 + 1 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'a/x#2', kind: 'failed', error_class: 'GitError', retriable: true, attempts: 1, ts_ms: T0 + 1000 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'a/x#3', kind: 'rejected', reason: 'bot-author', ts_ms: T0 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'b/y#4', kind: 'rejected', reason: 'not-merged', ts_ms: T0 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'b/y#5', kind: 'failed', error_class: 'GitError', attempts: 3, ts_ms: T0 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'b/y#6', kind: 'accepted', language: 'javascript', ts_ms: T0 + DAY })],
    ['stage.outcomes', o({ stage: 'env-build', key: 'a/x#1', kind: 'accepted', cache_hit: true, duration_ms: 60_000 })],
    ['stage.outcomes', o({ stage: 'env-build', key: 'b/y#6', kind: 'failed', error_class: 'SandboxError', cache_hit: false, duration_ms: 5000 })],
    ['tasks.verified', v1],
    ['tasks.verified', v9],
    // a/x#2 was merged two days before the pipeline read it: counted on its merge day
    ['pr.events', prEvent(2, { pr_id: 'a/x#2', repo: 'a/x', merged: true, merged_at: '2026-01-03T08:00:00Z' })],
  ];
  const second: Array<[string, unknown]> = [
    // replay of an input already counted, and the retry of a/x#2 that succeeded
    ['stage.outcomes', o({ stage: 'filter', key: 'a/x#1', outcome_id: 'f-1-closed', kind: 'accepted', ts_ms: T0 + 1 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'a/x#2', kind: 'accepted', attempts: 2, ts_ms: T0 + 2000 })],
    ['stage.outcomes', o({ stage: 'filter', key: 'b/y#5', kind: 'failed', error_class: 'GitError', attempts: 3, ts_ms: T0 })],
    ['stage.outcomes', o({ stage: 'env-build', key: 'a/x#2', kind: 'accepted', cache_hit: false, duration_ms: 120_000 })],
    ['stage.outcomes', o({ stage: 'test-create', key: 'a/x#1', kind: 'accepted' })],
    ['stage.outcomes', o({ stage: 'test-create', key: 'a/x#2', kind: 'rejected', reason: 'no-tests' })],
    ['stage.outcomes', o({ stage: 'verify', key: 'a/x#1', kind: 'accepted', duration_ms: 30_000 })],
    ['stage.outcomes', o({ stage: 'verify', key: 'b/y#9', kind: 'accepted', duration_ms: 40_000 })],
    ['stage.outcomes', o({ stage: 'statement', key: 'a/x#1', kind: 'accepted', method: 'agent', model: 'gpt-test', tokens_in: 1000, tokens_out: 200, cost_usd: 0.0125 })],
    ['stage.outcomes', o({ stage: 'statement', key: 'a/x#1', kind: 'accepted', method: 'agent', model: 'gpt-test', tokens_in: 1000, tokens_out: 200, cost_usd: 0.0125 })],
    // distill without an LLM passes the task on: skipped, not a rejection
    ['stage.outcomes', o({ stage: 'distill', key: 'a/x#1', kind: 'rejected', reason: 'skipped-no-llm', method: 'skipped' })],
    ['tasks.stated', stated(v1, 'Logic Error')],
    ['tasks.stated', stated(v9, 'Security')],
    ['tasks.verified', v1], // late replay of the verified record
    ['trajectories', trajectory(v1.instance_id, 1)],
    ['trajectories', trajectory(v1.instance_id, 2)],
  ];
  return { first, second };
}

const EXPECTED_STAGES = [
  { stage: 'filter', inputs: 7, accepted: 3, rejected: 3, skipped: 0, failed: 1, reasons: { 'bot-author': 1, 'not-merged': 2 } },
  { stage: 'env-build', inputs: 3, accepted: 2, rejected: 0, skipped: 0, failed: 1, reasons: {} },
  { stage: 'test-create', inputs: 2, accepted: 1, rejected: 1, skipped: 0, failed: 0, reasons: { 'no-tests': 1 } },
  { stage: 'verify', inputs: 2, accepted: 2, rejected: 0, skipped: 0, failed: 0, reasons: {} },
  { stage: 'statement', inputs: 1, accepted: 1, rejected: 0, skipped: 0, failed: 0, reasons: {} },
  { stage: 'distill', inputs: 1, accepted: 0, rejected: 0, skipped: 1, failed: 0, reasons: {} },
];

async function reportJson(target: { dataDir: string; clickhouseUrl?: string; database: string }, html?: string): Promise<Report> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => { text += c.toString('utf8'); });
  const code = await runReport({ ...target, json: true, html, stdout: out });
  expect(code).toBe(0);
  return JSON.parse(text) as Report;
}

const backends = [
  { name: 'chdb', url: () => undefined },
  { name: 'server', url: () => targets.url() },
] as const;

describe.each(backends)('report on $name', ({ name, url }) => {
  const database = `t_report_${name}_${process.pid}`;

  it('counts every input once: replays, retries and duplicates included', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    const sink = await ClickHouseSink.open({ url: url(), dataDir, database, flushIntervalMs: 0 });
    const { first, second } = knownSet();
    for (const [t, r] of first) sink.push(t, r);
    await sink.flush();
    for (const [t, r] of second) sink.push(t, r);
    await sink.close();

    const r = await reportJson({ dataDir, clickhouseUrl: url(), database });
    expect(r.stages).toEqual(EXPECTED_STAGES);
    expect(r.failures).toEqual([{ stage: 'env-build', error_class: 'SandboxError', count: 1 }, { stage: 'filter', error_class: 'GitError', count: 1 }]);
    expect(r.yield).toEqual({
      // a/x#1, a/x#2, a/x#3 (bot-author), b/y#5 (failed after the merged check), b/y#6; not b/y#4 (not-merged).
      // Two rows were verified; b/y#9 failed the release check, so one is released.
      merged_prs: 5, verified: 2, released: 1, rate: 0.2,
      by_repo: [{ repo: 'a/x', merged_prs: 3, verified: 1, released: 1, rate: 1 / 3 }, { repo: 'b/y', merged_prs: 2, verified: 1, released: 0, rate: 0 }],
      by_language: [{ language: 'javascript', merged_prs: 1, verified: 0, released: 0, rate: 0 }, { language: 'python', merged_prs: 4, verified: 2, released: 1, rate: 0.25 }],
      by_day: [
        { day: '2026-01-03', merged_prs: 1, verified: 0, released: 0, rate: 0 },
        { day: '2026-01-05', merged_prs: 3, verified: 2, released: 1, rate: 1 / 3 },
        { day: '2026-01-06', merged_prs: 1, verified: 0, released: 0, rate: 0 },
      ],
    });
    expect(r.categories['Logic Error']).toBe(1);
    expect(r.categories.Security).toBe(0); // b/y#9 failed the release check
    expect(Object.values(r.categories).reduce((a, b) => a + b, 0)).toBe(1);
    // nearest-rank percentiles over each input's latest duration
    expect(r.durations.find((d) => d.stage === 'env-build')).toEqual({ stage: 'env-build', count: 3, p50_ms: 60_000, p95_ms: 120_000 });
    expect(r.durations.find((d) => d.stage === 'filter')).toEqual({ stage: 'filter', count: 7, p50_ms: 10, p95_ms: 10 });
    expect(r.cache).toEqual([{ stage: 'env-build', lookups: 3, hits: 1, rate: 1 / 3 }]);
    expect(r.cost.stages.find((s) => s.stage === 'statement')).toEqual({ stage: 'statement', tokens_in: 1000, tokens_out: 200, cost_usd: 0.0125 });
    expect(r.cost.verified_rows).toBe(1);
    expect(r.cost.per_verified_row).toEqual({ tokens_in: 1000, tokens_out: 200, cost_usd: 0.0125 });
    expect(r.trajectories).toEqual({ count: 2, resolved: 1, tasks: 1 });
  });

  it('prints tables by default', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => { text += c.toString('utf8'); });
    await runReport({ dataDir, clickhouseUrl: url(), database, stdout: out });
    expect(text).toMatch(/^stage\s+inputs\s+accepted\s+rejected\s+skipped\s+failed/m);
    expect(text).toMatch(/^filter\s+7\s+3\s+3\s+0\s+1/m);
    expect(text).toMatch(/^distill\s+1\s+0\s+0\s+1\s+0/m);
    expect(text).not.toContain('skipped-no-llm');
    expect(text).toContain('Yield: 1 released rows (2 verified) / 5 merged PRs seen = 20.0%');
  });
});

describe('report on an empty store', () => {
  it('shows every stage with zeros and no rates', async () => {
    const r = await reportJson({ dataDir, database: `t_report_empty_${process.pid}` });
    expect(r.stages.map((s) => [s.stage, s.inputs])).toEqual(EXPECTED_STAGES.map((s) => [s.stage, 0]));
    expect(r.yield).toEqual({ merged_prs: 0, verified: 0, released: 0, rate: null, by_repo: [], by_language: [], by_day: [] });
    expect(Object.keys(r.categories)).toHaveLength(11);
    expect(r.durations).toEqual([]);
    expect(r.cost).toEqual({ stages: [], total: { tokens_in: 0, tokens_out: 0, cost_usd: 0 }, verified_rows: 0, per_verified_row: null });
  });
});

// In CI infra/chromium.sh installs it: a missing browser there must fail, not skip.
describe.skipIf(!existsSync('/usr/bin/chromium') && !process.env.CI)('report --html in Chromium', () => {
  it('writes one self-contained page whose four charts paint', async () => {
    const database = `t_report_chdb_${process.pid}`;
    const html = join(dataDir, 'report.html');
    const sink = await ClickHouseSink.open({ dataDir, database, flushIntervalMs: 0 });
    const { first, second } = knownSet();
    for (const [t, r] of [...first, ...second]) sink.push(t, r);
    await sink.close();
    await reportJson({ dataDir, database }, html);
    const page = readFileSync(html, 'utf8');
    expect(page).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/cdn/i); // nothing fetched at view time
    const { stdout } = await run('/usr/bin/chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', `--user-data-dir=${join(dataDir, 'chromium-profile')}`, '--dump-dom', `file://${html}`,
    ], { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 });
    expect(stdout).toMatch(/<body[^>]*data-charts="4"/);
    const painted = [...stdout.matchAll(/<canvas id="(\w+)"[^>]*data-painted="(\d+)"/g)].map((m) => [m[1], Number(m[2])] as const);
    expect(painted.map(([id]) => id)).toEqual(['funnel', 'categories', 'durations', 'yield']);
    for (const [id, px] of painted) expect(px, `canvas ${id}`).toBeGreaterThan(2000);
  });
});
