/**
 * The analytics over the sink's tables (infra/clickhouse): funnel per stage, yield, categories, stage
 * durations, cache hit rate, tokens and cost. One function per figure, and {@link buildReport} for all.
 *
 * Counting rule: every input is counted once — the latest outcome per outcome_id
 * (`argMax(…, _version)`, see 001_stage_outcomes.sql), so replays, redeliveries and retries of one input
 * never inflate a figure. Task figures read `tasks FINAL` and count only released rows
 * (gold_resolved = 1 AND empty_resolved = 0, ARCHITECTURE.md §6 "Release check").
 *
 * SQL dialect: what ClickHouse 18.16 and 26.x both run — no WITH-subquery CTEs (18.16 has only WITH
 * expressions), no JSON functions, no DateTime64; days are computed as intDiv(ts_ms, 86 400 000) (UTC)
 * and formatted here, so neither engine's time zone matters.
 */
import type { ClickHouse } from '../sinks/connection.js';
import { STAGE_NAMES } from '../../operators/pr/topology.js';

/**
 * Filter rejection reasons that mean "this event is not a merged PR" (operators/filter.ts rejects
 * unmerged events and merges it cannot find on the default branch as `not-merged`); every other filter
 * outcome is about a merged PR.
 */
export const NOT_MERGED_REASONS: readonly string[] = ['not-merged'];

/** Scale-SWE's ten bug types plus Feature (ARCHITECTURE.md §7), in the paper's order; always present in the report. */
export const CATEGORIES = ['API Mismatch', 'Logic Error', 'Input/Boundary', 'Constructor', 'Import Error', 'State Sync', 'Mutability', 'Spec Violation', 'I/O Resource', 'Security', 'Feature'];

/**
 * Rejection reasons that are no verdict on the input: the stage chose not to work on it and the record goes on
 * as it is (operators/distill.ts: without a solver LLM every task is `skipped-no-llm` and still reaches the
 * dataset). Counted as `skipped`, never as a rejection.
 */
export const SKIP_REASONS: readonly string[] = ['skipped-no-llm'];

/** One stage of the funnel. Counts are inputs (distinct outcome_id); accepted + rejected + skipped + failed = inputs. */
export interface StageFunnel {
  stage: string;
  inputs: number;
  accepted: number;
  /** rejections other than {@link SKIP_REASONS} */
  rejected: number;
  /** inputs the stage passed over ({@link SKIP_REASONS}), e.g. distill without an LLM */
  skipped: number;
  failed: number;
  /** Rejections by reason code (null reason → "unspecified"). */
  reasons: Record<string, number>;
}

/**
 * Yield of one group: `verified` rows (every row the verify stage wrote) and `released` rows (those that also
 * passed the release check: gold patch resolves, empty patch does not) over merged PRs seen; `rate` =
 * released / merged PRs, null when no merged PR was seen.
 */
export interface YieldRow {
  merged_prs: number;
  verified: number;
  released: number;
  rate: number | null;
}

/**
 * Yield overall and per repository, language and UTC merge day (`YYYY-MM-DD`): the day the PR was merged
 * (pr_events.merged_ms), or, for a PR whose event carried no merge time, the day its first filter outcome was
 * written.
 */
export interface YieldReport extends YieldRow {
  by_repo: Array<YieldRow & { repo: string }>;
  by_language: Array<YieldRow & { language: string }>;
  by_day: Array<YieldRow & { day: string }>;
}

/** Duration percentiles of one stage over its inputs' latest outcomes, ms (quantileExact: nearest rank, no interpolation). */
export interface StageDurations {
  stage: string;
  count: number;
  p50_ms: number;
  p95_ms: number;
}

/** Cache use of one stage: outcomes that reported cache_hit (lookups) and how many were hits. */
export interface StageCache {
  stage: string;
  lookups: number;
  hits: number;
  rate: number | null;
}

/** Tokens and cost of one stage, summed over its inputs' latest outcomes (USD). */
export interface StageCost {
  stage: string;
  tokens_in: number;
  tokens_out: number;
  cost_usd: number;
}

/** Everything `swe-stream report` shows. JSON shape is the `--json` output. */
export interface Report {
  stages: StageFunnel[];
  /** Inputs whose latest outcome is `failed`, by stage and error class (null class → "unknown"). */
  failures: Array<{ stage: string; error_class: string; count: number }>;
  yield: YieldReport;
  /** Released, stated rows per category; the eleven known categories always present. */
  categories: Record<string, number>;
  durations: StageDurations[];
  cache: StageCache[];
  cost: {
    stages: StageCost[];
    total: Omit<StageCost, 'stage'>;
    verified_rows: number;
    /** Total spend over every stage (rejected work included) divided by released rows; null when none. */
    per_verified_row: Omit<StageCost, 'stage'> | null;
  };
  trajectories: { count: number; resolved: number; tasks: number };
}

const n = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const rate = (num: number, den: number): number | null => (den > 0 ? num / den : null);
const DAY_MS = 86_400_000;
const dayOf = (d: number): string => new Date(d * DAY_MS).toISOString().slice(0, 10);
const sqlList = (xs: readonly string[]): string => xs.map((x) => `'${x.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(', ');

/** Latest outcome per outcome_id, as a subquery. */
function latest(ch: ClickHouse): string {
  return `(SELECT outcome_id,
      argMax(stage, _version) AS l_stage, argMax(key, _version) AS l_key, argMax(kind, _version) AS l_kind,
      argMax(reason, _version) AS l_reason, argMax(ts_ms, _version) AS l_ts, argMax(duration_ms, _version) AS l_dur,
      argMax(language, _version) AS l_lang, argMax(cache_hit, _version) AS l_cache,
      argMax(error_class, _version) AS l_err, argMax(tokens_in, _version) AS l_tin, argMax(tokens_out, _version) AS l_tout, argMax(cost_usd, _version) AS l_cost
    FROM ${ch.database}.stage_outcomes GROUP BY outcome_id)`;
}

const RELEASED = 'gold_resolved = 1 AND empty_resolved = 0';

/** Stage order: the pipeline's six stages, then any other stage name seen, alphabetically. */
function orderStages(seen: Iterable<string>): string[] {
  const rest = [...new Set(seen)].filter((s) => !(STAGE_NAMES as readonly string[]).includes(s)).sort();
  return [...STAGE_NAMES, ...rest];
}

/** Funnel per stage. @throws ClickHouseStoreError */
export async function funnel(ch: ClickHouse): Promise<StageFunnel[]> {
  const L = latest(ch);
  const skip = `ifNull(l_reason, '') IN (${sqlList(SKIP_REASONS)})`;
  const counts = await ch.rows<{ stage: string; inputs: number; accepted: number; rejected: number; skipped: number; failed: number }>(
    `SELECT l_stage AS stage, count() AS inputs, countIf(l_kind = 'accepted') AS accepted,
       countIf(l_kind = 'rejected' AND NOT ${skip}) AS rejected, countIf(l_kind = 'rejected' AND ${skip}) AS skipped,
       countIf(l_kind = 'failed') AS failed
     FROM ${L} GROUP BY l_stage`,
  );
  const reasons = await ch.rows<{ stage: string; reason: string; c: number }>(
    `SELECT l_stage AS stage, ifNull(l_reason, 'unspecified') AS reason, count() AS c
     FROM ${L} WHERE l_kind = 'rejected' AND NOT ${skip} GROUP BY l_stage, reason ORDER BY l_stage, reason`,
  );
  const by = new Map(counts.map((c) => [c.stage, c]));
  return orderStages(by.keys()).map((stage) => {
    const c = by.get(stage);
    const rs: Record<string, number> = {};
    for (const r of reasons) if (r.stage === stage) rs[r.reason] = n(r.c);
    return { stage, inputs: n(c?.inputs), accepted: n(c?.accepted), rejected: n(c?.rejected), skipped: n(c?.skipped), failed: n(c?.failed), reasons: rs };
  });
}

/** Failed inputs by stage and error class, most frequent first. @throws ClickHouseStoreError */
export async function failures(ch: ClickHouse): Promise<Report['failures']> {
  const rs = await ch.rows<{ stage: string; error_class: string; c: number }>(
    `SELECT l_stage AS stage, ifNull(l_err, 'unknown') AS error_class, count() AS c
     FROM ${latest(ch)} WHERE l_kind = 'failed' GROUP BY l_stage, error_class ORDER BY c DESC, stage, error_class`,
  );
  return rs.map((r) => ({ stage: r.stage, error_class: r.error_class, count: n(r.c) }));
}

/**
 * Yield: released rows / merged PRs seen. A merged PR is a distinct key with a filter outcome other than
 * a {@link NOT_MERGED_REASONS} rejection — failures count, because the filter decides "merged?" from the
 * event before any I/O that can fail (operators/filter.ts); its repository comes from the key (`owner/repo#N`),
 * its language from the outcome, its day from its merge time (pr_events), else from its first such outcome.
 * Verified and released rows per repository, language and merge day come from the tasks table (its merged_at,
 * else the PR's creation time).
 * @throws ClickHouseStoreError
 */
export async function yieldReport(ch: ClickHouse, notMerged: readonly string[] = NOT_MERGED_REASONS): Promise<YieldReport> {
  const merged = await mergedCells(ch, notMerged);
  const rows = await ch.rows<{ repo: string; language: string; d: number; released: number; c: number }>(
    // `if` evaluates both branches in ClickHouse, hence the OrZero parse of an absent merged_at.
    `SELECT repo, language, ${RELEASED} AS released, count() AS c,
       intDiv(if(ifNull(merged_at, '') = '', created_ms, toUInt64(toUnixTimestamp(parseDateTimeBestEffortOrZero(ifNull(merged_at, '')))) * 1000), ${DAY_MS}) AS d
     FROM ${ch.database}.tasks FINAL GROUP BY repo, language, d, released`,
  );
  const tally = new YieldTally();
  for (const m of merged) tally.add({ repo: m.repo, language: m.lang || 'unknown', day: dayOf(n(m.d)) }, 'merged_prs', n(m.c));
  for (const t of rows) {
    const at = { repo: t.repo, language: t.language || 'unknown', day: dayOf(n(t.d)) };
    tally.add(at, 'verified', n(t.c));
    if (n(t.released) === 1) tally.add(at, 'released', n(t.c));
  }
  return tally.report();
}

/**
 * Merged PRs seen, aggregated in SQL down to (repository, language, merge day) cells so the report stays small
 * at millions of PRs. The day is the PR's merge time where its event gave one, else its first filter outcome's.
 */
async function mergedCells(ch: ClickHouse, notMerged: readonly string[]): Promise<Array<{ repo: string; lang: string; d: number; c: number }>> {
  const mergedCond = `l_stage = 'filter' AND NOT (l_kind = 'rejected' AND ifNull(l_reason, '') IN (${sqlList(notMerged)}))`;
  return ch.rows<{ repo: string; lang: string; d: number; c: number }>(
    `SELECT splitByChar('#', pr_id)[1] AS repo, lang, intDiv(if(merged_ms > 0, merged_ms, first_ts), ${DAY_MS}) AS d, count() AS c FROM (
       SELECT l_key AS pr_id, argMax(ifNull(l_lang, ''), l_ts) AS lang, min(l_ts) AS first_ts
       FROM ${latest(ch)} WHERE ${mergedCond} GROUP BY l_key) AS m
     ANY LEFT JOIN (SELECT pr_id, merged_ms FROM ${ch.database}.pr_events FINAL) AS e USING pr_id
     GROUP BY repo, lang, d`,
  );
}

type YieldField = 'merged_prs' | 'verified' | 'released';
type YieldCounts = Record<YieldField, number>;

/** Counts of merged PRs, verified and released rows, in total and by repository, language and day. */
class YieldTally {
  private readonly total: YieldCounts = { merged_prs: 0, verified: 0, released: 0 };
  private readonly groups = { repo: new Map<string, YieldCounts>(), language: new Map<string, YieldCounts>(), day: new Map<string, YieldCounts>() };

  add(at: { repo: string; language: string; day: string }, field: YieldField, by: number): void {
    this.total[field] += by;
    for (const g of ['repo', 'language', 'day'] as const) {
      const e = this.groups[g].get(at[g]) ?? { merged_prs: 0, verified: 0, released: 0 };
      e[field] += by;
      this.groups[g].set(at[g], e);
    }
  }

  report(): YieldReport {
    const rows = <F extends string>(m: Map<string, YieldCounts>, field: F) =>
      [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => ({ [field]: k, ...v, rate: rate(v.released, v.merged_prs) }) as YieldRow & Record<F, string>);
    return {
      ...this.total,
      rate: rate(this.total.released, this.total.merged_prs),
      by_repo: rows(this.groups.repo, 'repo'),
      by_language: rows(this.groups.language, 'language'),
      by_day: rows(this.groups.day, 'day'),
    };
  }
}

/** Released, stated rows per category (the eleven known ones always present, zero when unseen). @throws ClickHouseStoreError */
export async function categories(ch: ClickHouse): Promise<Record<string, number>> {
  const rs = await ch.rows<{ category: string; c: number }>(
    `SELECT category, count() AS c FROM ${ch.database}.tasks FINAL WHERE ${RELEASED} AND has_statement = 1 GROUP BY category ORDER BY category`,
  );
  const out: Record<string, number> = Object.fromEntries(CATEGORIES.map((c) => [c, 0]));
  for (const r of rs) out[r.category || 'uncategorised'] = (out[r.category || 'uncategorised'] ?? 0) + n(r.c);
  return out;
}

/** p50 / p95 of duration_ms per stage (quantilesExact, same answer on both engines). @throws ClickHouseStoreError */
export async function durations(ch: ClickHouse): Promise<StageDurations[]> {
  const rs = await ch.rows<{ stage: string; c: number; q: number[] }>(
    `SELECT l_stage AS stage, count() AS c, quantilesExact(0.5, 0.95)(l_dur) AS q FROM ${latest(ch)} GROUP BY l_stage`,
  );
  const by = new Map(rs.map((r) => [r.stage, r]));
  return orderStages(by.keys()).filter((s) => by.has(s)).map((stage) => {
    const r = by.get(stage)!;
    return { stage, count: n(r.c), p50_ms: n(r.q[0]), p95_ms: n(r.q[1]) };
  });
}

/** Cache hit rate per stage over outcomes that reported cache_hit. @throws ClickHouseStoreError */
export async function cache(ch: ClickHouse): Promise<StageCache[]> {
  const rs = await ch.rows<{ stage: string; lookups: number; hits: number }>(
    `SELECT l_stage AS stage, countIf(isNotNull(l_cache)) AS lookups, countIf(ifNull(l_cache, 0) = 1) AS hits
     FROM ${latest(ch)} GROUP BY l_stage HAVING lookups > 0`,
  );
  const by = new Map(rs.map((r) => [r.stage, r]));
  return orderStages(by.keys()).filter((s) => by.has(s)).map((stage) => {
    const r = by.get(stage)!;
    return { stage, lookups: n(r.lookups), hits: n(r.hits), rate: rate(n(r.hits), n(r.lookups)) };
  });
}

/** Tokens and cost per stage, totals, and per released row. @throws ClickHouseStoreError */
export async function cost(ch: ClickHouse): Promise<Report['cost']> {
  const rs = await ch.rows<{ stage: string; tin: number; tout: number; usd: number }>(
    `SELECT l_stage AS stage, sum(l_tin) AS tin, sum(l_tout) AS tout, sum(l_cost) AS usd FROM ${latest(ch)} GROUP BY l_stage`,
  );
  const verifiedRows = n((await ch.rows<{ c: number }>(`SELECT count() AS c FROM ${ch.database}.tasks FINAL WHERE ${RELEASED}`))[0]?.c);
  const by = new Map(rs.map((r) => [r.stage, r]));
  const stages = orderStages(by.keys()).filter((s) => by.has(s)).map((stage) => {
    const r = by.get(stage)!;
    return { stage, tokens_in: n(r.tin), tokens_out: n(r.tout), cost_usd: n(r.usd) };
  });
  const total = stages.reduce((a, s) => ({ tokens_in: a.tokens_in + s.tokens_in, tokens_out: a.tokens_out + s.tokens_out, cost_usd: a.cost_usd + s.cost_usd }), { tokens_in: 0, tokens_out: 0, cost_usd: 0 });
  return {
    stages,
    total,
    verified_rows: verifiedRows,
    per_verified_row: verifiedRows > 0 ? { tokens_in: total.tokens_in / verifiedRows, tokens_out: total.tokens_out / verifiedRows, cost_usd: total.cost_usd / verifiedRows } : null,
  };
}

/** Trajectory counts: stored attempts, resolved attempts, distinct tasks. @throws ClickHouseStoreError */
export async function trajectoriesSummary(ch: ClickHouse): Promise<Report['trajectories']> {
  const r = (await ch.rows<{ c: number; r: number; t: number }>(
    `SELECT count() AS c, countIf(resolved = 1) AS r, uniqExact(instance_id) AS t FROM ${ch.database}.trajectories FINAL`,
  ))[0];
  return { count: n(r?.c), resolved: n(r?.r), tasks: n(r?.t) };
}

/** Every figure of the report. @throws ClickHouseStoreError */
export async function buildReport(ch: ClickHouse, opts: { notMergedReasons?: readonly string[] } = {}): Promise<Report> {
  // Sequential on purpose: chDB runs one query at a time per session anyway, and a server gets less load.
  const stages = await funnel(ch);
  const fails = await failures(ch);
  const y = await yieldReport(ch, opts.notMergedReasons);
  const cats = await categories(ch);
  const durs = await durations(ch);
  const c = await cache(ch);
  const co = await cost(ch);
  const tr = await trajectoriesSummary(ch);
  return { stages, failures: fails, yield: y, categories: cats, durations: durs, cache: c, cost: co, trajectories: tr };
}
