import { describe, expect, it } from 'vitest';
import { table, renderText, pct, dur } from '../../../connectors/analytics/render.js';
import { renderHtml } from '../../../connectors/analytics/html.js';
import type { Report } from '../../../connectors/analytics/views.js';

const evil = '</script><img src=x onerror=alert(1)><!--';

function report(): Report {
  return {
    stages: [{ stage: 'filter', inputs: 3, accepted: 1, rejected: 1, skipped: 0, failed: 1, reasons: { [evil]: 1 } }],
    failures: [{ stage: 'filter', error_class: 'GitError', count: 1 }],
    yield: { merged_prs: 2, verified: 2, released: 1, rate: 0.5, by_repo: [{ repo: 'a/b', merged_prs: 2, verified: 2, released: 1, rate: 0.5 }], by_language: [], by_day: [] },
    categories: { 'Logic Error': 1, [evil]: 2 },
    durations: [{ stage: 'filter', count: 3, p50_ms: 12, p95_ms: 250_000 }],
    cache: [],
    cost: { stages: [], total: { tokens_in: 0, tokens_out: 0, cost_usd: 0 }, verified_rows: 1, per_verified_row: { tokens_in: 0, tokens_out: 0, cost_usd: 0 } },
    trajectories: { count: 0, resolved: 0, tasks: 0 },
  };
}

describe('report rendering', () => {
  it('aligns text tables: numbers right, text left', () => {
    expect(table(['stage', 'n'], [['filter', 7], ['env-build', 12]])).toBe('stage       n\n---------  --\nfilter      7\nenv-build  12');
  });
  it('formats rates and durations', () => {
    expect([pct(null), pct(0.25), dur(12), dur(1500), dur(250_000)]).toEqual(['–', '25.0%', '12 ms', '1.5 s', '4.2 min']);
    expect(renderText(report())).toContain('Yield: 1 released rows (2 verified) / 2 merged PRs seen = 50.0%');
  });
  it('keeps hostile strings inert in the HTML page', () => {
    const page = renderHtml(report(), { generatedAt: '2026-01-01T00:00:00Z' });
    expect(page).not.toContain('</script><img');
    expect(page).not.toContain('<img src=x');
    expect(page).toContain('&lt;/script&gt;&lt;img src=x'); // in the text tables
    expect(page.match(/<script>/g)).toHaveLength(3);
    expect(page.match(/<\/script>/g)).toHaveLength(3);
    const data = /window\.__REPORT__ = (.*);<\/script>/.exec(page)![1]!;
    expect(data).not.toContain('<');
    expect(JSON.parse(data)).toEqual(report());
  });
});
