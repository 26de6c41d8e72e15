/**
 * Mapping from the Avro records of the sunk topics to ClickHouse rows of infra/clickhouse/*.sql, and
 * validation of those records against their Avro schemas before they are buffered.
 *
 * Topics → tables: stage.outcomes → stage_outcomes (key outcome_id), tasks.verified and tasks.stated →
 * tasks (key instance_id), trajectories → trajectories (key trajectory_id), pr.events → pr_events (key pr_id).
 */
import { schemaOf, type RecordTypeName } from '../../schemas/index.js';
import type { PullRequestEvent, StageOutcome, TaskStated, TaskVerified, Trajectory } from '../../schemas/types.gen.js';

/** Topics the ClickHouse sink accepts. */
export const SINK_TOPICS = ['stage.outcomes', 'tasks.verified', 'tasks.stated', 'trajectories', 'pr.events'] as const;
export type SinkTopic = (typeof SINK_TOPICS)[number];

/** Tables written by the sink. */
export type SinkTable = 'stage_outcomes' | 'tasks' | 'trajectories' | 'pr_events';

const TOPIC_TABLE: Record<SinkTopic, { table: SinkTable; type: RecordTypeName }> = {
  'stage.outcomes': { table: 'stage_outcomes', type: 'StageOutcome' },
  'tasks.verified': { table: 'tasks', type: 'TaskVerified' },
  'tasks.stated': { table: 'tasks', type: 'TaskStated' },
  trajectories: { table: 'trajectories', type: 'Trajectory' },
  'pr.events': { table: 'pr_events', type: 'PullRequestEvent' },
};

/** A row ready for `INSERT … FORMAT JSONEachRow`; `id` is the table key, `row` the column values. */
export interface SinkRow {
  table: SinkTable;
  id: string;
  row: Record<string, unknown>;
}

/**
 * A record that does not match its Avro schema (missing or mistyped fields) or a topic the sink does not
 * handle. Never retriable: the same record fails the same way; the caller dead-letters it.
 */
export class InvalidRecordError extends Error {
  readonly retriable = false;
  /** Avro paths of the offending fields, e.g. `["outcome_id", "ts_ms"]`. */
  readonly paths: string[];
  readonly topic: string;
  constructor(topic: string, message: string, paths: string[]) {
    super(message);
    this.name = 'InvalidRecordError';
    this.topic = topic;
    this.paths = paths;
  }
}

const b = (v: boolean | null | undefined): number | null => (v === null || v === undefined ? null : v ? 1 : 0);

/** The table a topic is stored in. @throws InvalidRecordError for a topic the sink does not handle. */
export function tableOf(topic: string): SinkTable {
  const t = (TOPIC_TABLE as Record<string, { table: SinkTable } | undefined>)[topic];
  if (!t) throw new InvalidRecordError(topic, `the ClickHouse sink does not store topic ${topic} (stores ${SINK_TOPICS.join(', ')})`, []);
  return t.table;
}

/**
 * Check a record against the Avro type of its topic (schemas/*.avsc) and collect the paths of every bad field.
 * Longs may be JS numbers (avsc's default long type). @throws InvalidRecordError listing the paths.
 */
export function validateRecord(topic: string, record: unknown): void {
  tableOf(topic);
  const type = schemaOf(TOPIC_TABLE[topic as SinkTopic].type).type;
  const paths: string[] = [];
  const ok = type.isValid(record, { errorHook: (path: string[]) => { paths.push(path.join('.') || '(record)'); } });
  if (!ok) {
    const shown = paths.slice(0, 10).join(', ');
    throw new InvalidRecordError(topic, `invalid ${TOPIC_TABLE[topic as SinkTopic].type} record on ${topic}: bad or missing field(s) ${shown}`, paths);
  }
}

/**
 * Row of stage_outcomes. `_version` = ts_ms·1024 + min(attempts, 1023): latest outcome wins, a later
 * attempt wins a tie on ts_ms (infra/clickhouse/001_stage_outcomes.sql).
 */
export function outcomeRow(o: StageOutcome, ingestedMs: number): SinkRow {
  return {
    table: 'stage_outcomes',
    id: o.outcome_id,
    row: {
      outcome_id: o.outcome_id, stage: o.stage, key: o.key, kind: o.kind, reason: o.reason, detail: o.detail,
      error_class: o.error_class, retriable: b(o.retriable), attempts: o.attempts, input_topic: o.input_topic,
      input_partition: o.input_partition, input_offset: o.input_offset, output_topic: o.output_topic,
      ts_ms: o.ts_ms, duration_ms: Math.max(0, o.duration_ms), repo: o.repo, language: o.language, method: o.method,
      model: o.model, cache_hit: b(o.cache_hit), tokens_in: o.tokens_in, tokens_out: o.tokens_out, cost_usd: o.cost_usd,
      ingested_ms: ingestedMs,
      _version: o.ts_ms * 1024 + Math.min(Math.max(o.attempts, 0), 1023),
    },
  };
}

function isStated(t: TaskVerified | TaskStated): t is TaskStated {
  return (t as TaskStated).statement !== undefined && (t as TaskStated).statement !== null;
}

/** Scale of the stage rank in tasks._version: 10¹³ ms ≈ 317 years of ingest timestamps below it. */
const RANK_SCALE = 10 ** 13;

/**
 * Row of tasks from a TaskVerified or TaskStated. `_version` = rank·10¹³ + ingestedMs (rank 1 verified,
 * 2 stated), so a statement is never overwritten by a late TaskVerified replay.
 * Cost, tokens and wall time are sums over the record's provenance (one entry per stage).
 */
export function taskRow(t: TaskVerified | TaskStated, ingestedMs: number): SinkRow {
  const c = t.candidate;
  const [owner, name] = splitRepo(c.repo);
  const st = isStated(t) ? t.statement : null;
  const rank = st ? 2 : 1;
  const prov = t.provenance ?? [];
  const sum = (f: (p: (typeof prov)[number]) => number): number => prov.reduce((a, p) => a + f(p), 0);
  const created = Date.parse(c.created_at ?? c.merged_at ?? '');
  return {
    table: 'tasks',
    id: t.instance_id,
    row: {
      instance_id: t.instance_id, stage_rank: rank, pr_id: c.pr_id, repo: c.repo, owner, name, number: c.number,
      language: c.language, clone_url: c.clone_url, github_url: `https://github.com/${c.repo}`,
      pr_commit: c.pr_commit, parent_commit: c.parent_commit, head_sha: c.head_sha, title: c.title,
      user_login: c.user_login, created_at: c.created_at, merged_at: c.merged_at,
      created_ms: Number.isFinite(created) ? created : 0,
      patch: t.tests.gold_patch, test_patch: t.tests.test_patch, test_files: t.tests.test_files,
      test_command: t.tests.test_command, f2p_script: t.tests.f2p_script, f2p_script_path: t.tests.f2p_script_path,
      tests_method: t.tests.method,
      FAIL_TO_PASS: t.verification.FAIL_TO_PASS, PASS_TO_PASS: t.verification.PASS_TO_PASS,
      flaky_json: JSON.stringify(t.verification.flaky ?? []),
      max_flake_rate: (t.verification.flaky ?? []).reduce((m, f) => Math.max(m, f.flake_rate), 0),
      runs_before: t.verification.runs_before, runs_after: t.verification.runs_after,
      gold_resolved: t.verification.gold_resolved ? 1 : 0, empty_resolved: t.verification.empty_resolved ? 1 : 0,
      image_url: t.verification.image_url, task_image_ref: t.verification.task_image_ref,
      workdir: t.verification.workdir, pre_commands: t.verification.pre_commands ?? [],
      eval_command: t.verification.eval_command, tests_ms: t.verification.tests_ms, verify_ms: t.verification.verify_ms,
      env_image_ref: t.environment.image_ref, env_image_id: t.environment.image_id, env_method: t.environment.method,
      env_cache_hit: t.environment.cache_hit ? 1 : 0, env_build_ms: t.environment.build_ms, runner: t.environment.runner,
      has_statement: st ? 1 : 0,
      problem_statement: st?.problem_statement ?? '', hints_text: st?.hints_text ?? '',
      statement_source: st?.source ?? '', statement_method: st?.method ?? '', statement_model: st?.model ?? null,
      leakage_score: st?.leakage_score ?? 0, leakage_evidence_json: JSON.stringify(st?.leakage_evidence ?? []),
      category: st?.category ?? '', category_method: st?.category_method ?? '',
      difficulty_level: st?.difficulty.level ?? '', difficulty_files: st?.difficulty.files ?? c.size.files,
      difficulty_hunks: st?.difficulty.hunks ?? c.size.hunks,
      difficulty_lines: st?.difficulty.lines ?? c.size.lines_added + c.size.lines_removed,
      provenance_json: JSON.stringify(prov),
      tokens_in: sum((p) => p.tokens_in), tokens_out: sum((p) => p.tokens_out), cost_usd: sum((p) => p.cost_usd),
      wall_ms: sum((p) => p.duration_ms),
      record_json: JSON.stringify(t),
      ingested_ms: ingestedMs,
      _version: rank * RANK_SCALE + ingestedMs,
    },
  };
}

/** Row of trajectories; `_version` = ingestedMs (a replay carries the same content). */
export function trajectoryRow(t: Trajectory, ingestedMs: number): SinkRow {
  return {
    table: 'trajectories',
    id: t.trajectory_id,
    row: {
      trajectory_id: t.trajectory_id, instance_id: t.instance_id, pr_id: t.pr_id, attempt: t.attempt, model: t.model,
      prompt_version: t.prompt_version, messages_json: t.messages_json, final_patch: t.final_patch,
      exit_status: t.exit_status, resolved: t.resolved ? 1 : 0, steps: t.steps, tokens_in: t.tokens_in,
      tokens_out: t.tokens_out, cost_usd: t.cost_usd, duration_ms: t.duration_ms, ingested_ms: ingestedMs,
      _version: ingestedMs,
    },
  };
}

/** Row of pr_events: one per PR, the latest event wins (`_version` = ingestedMs); merged_ms 0 when unknown. */
export function prEventRow(e: PullRequestEvent, ingestedMs: number): SinkRow {
  const merged = Date.parse(e.merged_at ?? '');
  return {
    table: 'pr_events',
    id: e.pr_id,
    row: {
      pr_id: e.pr_id, repo: e.repo, number: e.number, source: e.source, merged: b(e.merged), merged_at: e.merged_at,
      merged_ms: Number.isFinite(merged) && merged > 0 ? merged : 0, merge_style: e.merge_style ?? null, base_ref: e.base_ref,
      ingested_ms: ingestedMs, _version: ingestedMs,
    },
  };
}

/**
 * Validate and map one record of a sunk topic to its row.
 * @throws InvalidRecordError (retriable = false) for an unknown topic or a record that fails its Avro schema
 */
export function toRow(topic: string, record: unknown, ingestedMs: number): SinkRow {
  validateRecord(topic, record);
  switch (topic as SinkTopic) {
    case 'stage.outcomes': return outcomeRow(record as StageOutcome, ingestedMs);
    case 'tasks.verified': return taskRow(record as TaskVerified, ingestedMs);
    case 'tasks.stated': return taskRow(record as TaskStated, ingestedMs);
    case 'trajectories': return trajectoryRow(record as Trajectory, ingestedMs);
    case 'pr.events': return prEventRow(record as PullRequestEvent, ingestedMs);
  }
}

/** `owner/name` → [owner, name]; a repo without a slash is all name. */
export function splitRepo(repo: string): [string, string] {
  const i = repo.indexOf('/');
  return i < 0 ? ['', repo] : [repo.slice(0, i), repo.slice(i + 1)];
}
