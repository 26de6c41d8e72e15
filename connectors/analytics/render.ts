/**
 * Terminal rendering of a {@link Report}: plain fixed-width tables (no colour codes, so the output is the
 * same in a pipe and a terminal and can be diffed).
 */
import type { Report, YieldRow } from './views.js';

/**
 * Control characters that a terminal would act on (C0, DEL, C1 — ECMA-48 escape and control sequences) and
 * the bidirectional overrides that reorder what is shown (Unicode TR9 embeddings, overrides and isolates).
 */
const UNSAFE_RE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every terminal-active character shown as an escape (`\n`, `\t`, `\r`, `\x1b`, `\u202e`), so
 * values from event data (titles, bodies, branch names) cannot move the cursor, recolour or rewrite the screen.
 */
export function safeText(text: string): string {
  return text.replace(UNSAFE_RE, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** JSON text (as JSON.stringify) whose strings carry no terminal-active character: those left raw by JSON.stringify (DEL, C1, bidi) become \\u escapes. */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Format a fraction as a percentage with one decimal, "–" for null. */
export const pct = (r: number | null): string => (r === null ? '–' : `${(r * 100).toFixed(1)}%`);
/** Format milliseconds as ms / s / min. */
export function dur(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}
const usd = (v: number): string => `$${v.toFixed(v !== 0 && Math.abs(v) < 0.01 ? 4 : 2)}`;

/**
 * A text table: header row, a rule, body rows; numeric-looking cells right-aligned.
 * @param rows cells as strings or numbers (numbers rendered with toString); control characters are escaped ({@link safeText})
 */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  // Cells may hold event data: never let it reach the terminal raw.
  headers = headers.map(safeText);
  const cells = rows.map((r) => r.map((c) => safeText(String(c))));
  // A loop, not Math.max(...cells): spreading hundreds of thousands of rows overflows the call stack.
  const widths = headers.map((h, i) => cells.reduce((w, r) => Math.max(w, (r[i] ?? '').length), h.length));
  const numeric = headers.map((_, i) => cells.length > 0 && cells.every((r) => /^[-$]?[\d.,]+( ?(%|ms|s|min))?$|^–$/.test(r[i] ?? '')));
  const line = (r: string[]): string => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** The whole report as text: funnel, rejection reasons, yield, categories, durations, cache, cost. */
export function renderText(r: Report): string {
  const out: string[] = [];
  out.push('Funnel (each input counted once: latest outcome per input)');
  out.push(table(['stage', 'inputs', 'accepted', 'rejected', 'skipped', 'failed', 'pass rate'],
    r.stages.map((s) => [s.stage, s.inputs, s.accepted, s.rejected, s.skipped, s.failed, pct(s.inputs ? s.accepted / s.inputs : null)])));
  const reasons = r.stages.flatMap((s) => Object.entries(s.reasons).map(([k, v]) => [s.stage, k, v] as [string, string, number]));
  if (reasons.length) {
    out.push('', 'Rejections by reason');
    out.push(table(['stage', 'reason', 'count'], reasons));
  }
  if (r.failures.length) {
    out.push('', 'Failures by error class');
    out.push(table(['stage', 'error class', 'count'], r.failures.map((f) => [f.stage, f.error_class, f.count])));
  }
  out.push('', `Yield: ${r.yield.released} released rows (${r.yield.verified} verified) / ${r.yield.merged_prs} merged PRs seen = ${pct(r.yield.rate)}`);
  const yieldTable = (head: string, rows: Array<[string, YieldRow]>) =>
    table([head, 'merged PRs', 'verified', 'released', 'yield'], rows.map(([k, y]) => [k, y.merged_prs, y.verified, y.released, pct(y.rate)]));
  if (r.yield.by_repo.length) out.push(yieldTable('repository', r.yield.by_repo.map((y) => [y.repo, y])));
  if (r.yield.by_language.length) out.push('', yieldTable('language', r.yield.by_language.map((y) => [y.language, y])));
  if (r.yield.by_day.length) out.push('', yieldTable('merge day (UTC)', r.yield.by_day.map((y) => [y.day, y])));
  const catTotal = Object.values(r.categories).reduce((a, b) => a + b, 0);
  out.push('', 'Categories (released rows with a statement)');
  out.push(table(['category', 'rows', 'share'], Object.entries(r.categories).map(([k, v]) => [k, v, pct(catTotal ? v / catTotal : null)])));
  if (r.durations.length) {
    out.push('', 'Stage durations');
    out.push(table(['stage', 'inputs', 'p50', 'p95'], r.durations.map((d) => [d.stage, d.count, dur(d.p50_ms), dur(d.p95_ms)])));
  }
  if (r.cache.length) {
    out.push('', 'Cache');
    out.push(table(['stage', 'lookups', 'hits', 'hit rate'], r.cache.map((c) => [c.stage, c.lookups, c.hits, pct(c.rate)])));
  }
  out.push('', 'Tokens and cost');
  out.push(table(['stage', 'tokens in', 'tokens out', 'cost'], [
    ...r.cost.stages.map((s) => [s.stage, s.tokens_in, s.tokens_out, usd(s.cost_usd)]),
    ['total', r.cost.total.tokens_in, r.cost.total.tokens_out, usd(r.cost.total.cost_usd)],
  ]));
  const p = r.cost.per_verified_row;
  out.push(p ? `per verified row: ${Math.round(p.tokens_in)} tokens in, ${Math.round(p.tokens_out)} tokens out, ${usd(p.cost_usd)}` : 'per verified row: – (no verified rows yet)');
  out.push('', `Trajectories: ${r.trajectories.count} (${r.trajectories.resolved} resolved) over ${r.trajectories.tasks} tasks`);
  return out.join('\n') + '\n';
}
