/**
 * The /metrics endpoint (real HTTP on a free port) and the progress display reading the same metric objects.
 */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { deadLetters, inFlight, lag, recordOutcome, recordsIn, retries, stageSnapshot, startMetricsServer } from '../../../streams/metrics.js';
import { startProgress } from '../../../cli/progress.js';

describe('metrics', () => {
  it('serves per-stage counters, gauges and histograms in Prometheus text format', async () => {
    const stage = 'm-verify';
    recordsIn.inc({ stage }, 3);
    recordOutcome(stage, 'accepted', 1500);
    recordOutcome(stage, 'rejected', 20, 'no-f2p');
    inFlight.set({ stage }, 1);
    lag.set({ stage }, 7);
    retries.inc({ stage });
    deadLetters.inc({ stage, reason: 'max-attempts' });
    const srv = await startMetricsServer(0);
    try {
      const res = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const body = await res.text();
      expect(body).toContain('swe_stream_records_in_total{stage="m-verify"} 3');
      expect(body).toContain('swe_stream_outcomes_total{stage="m-verify",kind="accepted",reason=""} 1');
      expect(body).toContain('swe_stream_outcomes_total{stage="m-verify",kind="rejected",reason="no-f2p"} 1');
      expect(body).toContain('swe_stream_in_flight{stage="m-verify"} 1');
      expect(body).toContain('swe_stream_lag_records{stage="m-verify"} 7');
      expect(body).toContain('swe_stream_dlq_total{stage="m-verify",reason="max-attempts"} 1');
      expect(body).toContain('swe_stream_stage_duration_seconds_bucket{le="5",stage="m-verify",kind="accepted"} 1');
      expect((await fetch(`http://127.0.0.1:${srv.port}/other`)).status).toBe(404);
      expect(await stageSnapshot(['m-verify'])).toEqual([{ stage, in: 3, accepted: 1, rejected: 1, failed: 0, inFlight: 1, lag: 7, retries: 1, dlq: 1 }]);
    } finally {
      await srv.close();
    }
  });

  it('refuses a port in use with a non-retriable error', async () => {
    const a = await startMetricsServer(0);
    try {
      await expect(startMetricsServer(a.port)).rejects.toMatchObject({ retriable: false, message: expect.stringMatching(/EADDRINUSE/) });
    } finally {
      await a.close();
    }
  });

  it('progress draws one bar per stage from the metrics on a terminal, nothing otherwise', async () => {
    expect(startProgress({ stream: Object.assign(new PassThrough(), { isTTY: false }) })).toBeUndefined();
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => { text += c.toString('utf8'); });
    recordsIn.inc({ stage: 'p-filter' }, 10);
    for (let i = 0; i < 6; i++) recordOutcome('p-filter', 'accepted', 5);
    recordOutcome('p-filter', 'failed', 5, 'GitError');
    lag.set({ stage: 'p-filter' }, 3);
    const p = startProgress({ stream: Object.assign(out, { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true }), stages: ['p-filter', 'p-env'], force: true, intervalMs: 50 })!;
    expect(p).toBeDefined();
    await p.stop();
    expect(text).toMatch(/p-filter\s+\|[^|]+\| 7\/10\s+ok 6\s+rej 0\s+fail 1\s+in-flight 0\s+lag 3/);
    expect(text).toContain('p-env');
  });
});
