/**
 * Dataset export: the released rows of the tasks table as Scale-SWE or SWE-bench rows, to JSONL or
 * Parquet (ARCHITECTURE.md §8).
 *
 * Which rows: `tasks FINAL` with gold_resolved = 1 AND empty_resolved = 0 (passed verification and the
 * release check, §6) and a problem statement (has_statement = 1: a TaskStated, the dataset row of
 * schemas/TaskStated.avsc); `since` keeps PRs created at or after a time (created_at, else merged_at) —
 * the SWE-bench-Live style cut-off for contamination-free evaluation sets. Ordered by instance_id.
 *
 * Field formats:
 * - Scale-SWE (HF card of AweAI-Team/Scale-SWE): instance_id `{user}_{repo}_pr{N}`, user = repository
 *   owner, repo = repository name, f2p_patch = the PR's test patch, f2p_script = the agent-written
 *   reproduction script or null.
 * - SWE-bench (princeton-nlp/SWE-bench on HF): instance_id `owner__repo-N`, repo `owner/repo`,
 *   base_commit = parent commit, environment_setup_commit = the parent commit too (our environment image
 *   is built at the parent commit).
 * - FAIL_TO_PASS, PASS_TO_PASS and pre_commands are JSON-encoded string lists (`"[\"t1\", \"t2\"]"`), as
 *   SWE-bench publishes them on HF, in both formats; so are our JSON columns (flaky_tests, provenance).
 * - Our own columns follow: swe_stream_id (our instance_id, the same in both formats), category,
 *   difficulty and its size, flake rates, leakage score, method and model per part, cost, tokens, wall time
 *   (total and per stage, from provenance).
 *
 * Parquet comes from ClickHouse's own Parquet output: rows are written as JSONL, then chDB reads that file
 * with an explicit structure and writes `FORMAT Parquet` (the 18.16 server has no Parquet, so the
 * conversion always runs in chDB at `<dataDir>/chdb`, whichever engine holds the tables).
 */
import { createWriteStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { openClickHouse, toStoreError, type ClickHouse } from '../sinks/connection.js';

/** Export formats. */
export const EXPORT_FORMATS = ['scale-swe', 'swe-bench'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Output file kinds, by extension. */
export const OUTPUT_KINDS = ['jsonl', 'parquet'] as const;
export type OutputKind = (typeof OUTPUT_KINDS)[number];

/** A bad export request (unknown format, extension or time). Not retriable; the CLI exits with code 2. */
export class ExportUsageError extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ExportUsageError';
  }
}

/** Column name → ClickHouse type, in output order. Types are also the Parquet structure. */
type Columns = ReadonlyArray<readonly [string, string]>;

const OWN_COLUMNS: Columns = [
  ['swe_stream_id', 'String'], ['category', 'String'], ['category_method', 'String'], ['difficulty', 'String'],
  ['difficulty_files', 'UInt32'], ['difficulty_hunks', 'UInt32'], ['difficulty_lines', 'UInt32'],
  ['flaky_tests', 'String'], ['max_flake_rate', 'Float64'], ['leakage_score', 'Float64'],
  ['env_method', 'String'], ['tests_method', 'String'], ['statement_source', 'String'], ['statement_method', 'String'],
  ['statement_model', 'Nullable(String)'], ['provenance', 'String'],
  ['cost_usd', 'Float64'], ['tokens_in', 'UInt64'], ['tokens_out', 'UInt64'], ['wall_ms', 'UInt64'], ['wall_ms_by_stage', 'String'],
];

/**
 * What another harness needs to run a row without swe-stream (ARCHITECTURE.md §8): the image by digest,
 * the work tree, the shell lines before the test command, the test command, the log parser that reads its
 * output (our runner name: pytest, jest, vitest, mocha, node-test), and an agent-written reproduction
 * script with its path. Appended to either format where the format's own fields do not already carry them.
 */
const HARNESS_COLUMNS: Columns = [
  ['image_url', 'String'], ['workdir', 'String'], ['pre_commands', 'String'], ['test_command', 'String'],
  ['log_parser', 'String'], ['f2p_script', 'Nullable(String)'], ['f2p_script_path', 'Nullable(String)'],
];

/** Columns of each format, §8 fields first (exact names), then ours. */
export const FORMAT_COLUMNS: Record<ExportFormat, Columns> = {
  'scale-swe': [
    ['instance_id', 'String'], ['user', 'String'], ['repo', 'String'], ['language', 'String'], ['workdir', 'String'],
    ['image_url', 'String'], ['patch', 'String'], ['pr_commit', 'String'], ['parent_commit', 'String'],
    ['problem_statement', 'String'], ['f2p_patch', 'String'], ['f2p_script', 'Nullable(String)'],
    ['FAIL_TO_PASS', 'String'], ['PASS_TO_PASS', 'String'], ['github_url', 'String'], ['pre_commands', 'String'],
    ...OWN_COLUMNS,
    ...HARNESS_COLUMNS.filter(([c]) => !['image_url', 'workdir', 'pre_commands', 'f2p_script'].includes(c)),
  ],
  'swe-bench': [
    ['instance_id', 'String'], ['repo', 'String'], ['base_commit', 'String'], ['patch', 'String'], ['test_patch', 'String'],
    ['problem_statement', 'String'], ['hints_text', 'String'], ['created_at', 'String'], ['FAIL_TO_PASS', 'String'],
    ['PASS_TO_PASS', 'String'], ['environment_setup_commit', 'String'],
    ...OWN_COLUMNS,
    ...HARNESS_COLUMNS,
  ],
};

/** A stored task row as read for export (columns of infra/clickhouse/002_tasks.sql). */
export interface TaskRow {
  instance_id: string; owner: string; name: string; repo: string; number: number; language: string; workdir: string;
  image_url: string; patch: string; test_patch: string; pr_commit: string; parent_commit: string; problem_statement: string;
  hints_text: string; f2p_script: string | null; FAIL_TO_PASS: string[]; PASS_TO_PASS: string[]; github_url: string;
  pre_commands: string[]; created_at: string | null; merged_at: string | null; category: string; category_method: string;
  difficulty_level: string; difficulty_files: number; difficulty_hunks: number; difficulty_lines: number; flaky_json: string;
  max_flake_rate: number; leakage_score: number; env_method: string; tests_method: string; statement_source: string;
  statement_method: string; statement_model: string | null; provenance_json: string; cost_usd: number; tokens_in: number;
  tokens_out: number; wall_ms: number; runner: string; eval_command: string; f2p_script_path: string | null;
}

/** The tasks columns {@link toDatasetRow} reads, as a SELECT list. */
export const TASK_ROW_COLUMNS = `instance_id, owner, name, repo, number, language, workdir, image_url, patch, test_patch, pr_commit, parent_commit,
       problem_statement, hints_text, f2p_script, FAIL_TO_PASS, PASS_TO_PASS, github_url, pre_commands, created_at, merged_at,
       category, category_method, difficulty_level, difficulty_files, difficulty_hunks, difficulty_lines, flaky_json,
       max_flake_rate, leakage_score, env_method, tests_method, statement_source, statement_method, statement_model,
       provenance_json, cost_usd, tokens_in, tokens_out, wall_ms, runner, eval_command, f2p_script_path`;

/** Map one stored task to an output row of `format` (keys in {@link FORMAT_COLUMNS} order). */
export function toDatasetRow(t: TaskRow, format: ExportFormat): Record<string, unknown> {
  const prov = JSON.parse(t.provenance_json || '[]') as Array<{ stage: string; duration_ms: number }>;
  const byStage: Record<string, number> = {};
  for (const p of prov) byStage[p.stage] = (byStage[p.stage] ?? 0) + Number(p.duration_ms);
  const own: Record<string, unknown> = {
    swe_stream_id: t.instance_id, category: t.category, category_method: t.category_method, difficulty: t.difficulty_level,
    difficulty_files: Number(t.difficulty_files), difficulty_hunks: Number(t.difficulty_hunks), difficulty_lines: Number(t.difficulty_lines),
    flaky_tests: t.flaky_json, max_flake_rate: Number(t.max_flake_rate), leakage_score: Number(t.leakage_score),
    env_method: t.env_method, tests_method: t.tests_method, statement_source: t.statement_source, statement_method: t.statement_method,
    statement_model: t.statement_model, provenance: t.provenance_json, cost_usd: Number(t.cost_usd), tokens_in: Number(t.tokens_in),
    tokens_out: Number(t.tokens_out), wall_ms: Number(t.wall_ms), wall_ms_by_stage: JSON.stringify(byStage),
    image_url: t.image_url, workdir: t.workdir, pre_commands: JSON.stringify(t.pre_commands), test_command: t.eval_command,
    log_parser: t.runner, f2p_script: t.f2p_script, f2p_script_path: t.f2p_script_path,
  };
  const f2p = JSON.stringify(t.FAIL_TO_PASS);
  const p2p = JSON.stringify(t.PASS_TO_PASS);
  const head: Record<string, unknown> = format === 'scale-swe'
    ? {
      instance_id: `${t.owner}_${t.name}_pr${t.number}`, user: t.owner, repo: t.name, language: t.language, workdir: t.workdir,
      image_url: t.image_url, patch: t.patch, pr_commit: t.pr_commit, parent_commit: t.parent_commit,
      problem_statement: t.problem_statement, f2p_patch: t.test_patch, f2p_script: t.f2p_script, FAIL_TO_PASS: f2p,
      PASS_TO_PASS: p2p, github_url: t.github_url, pre_commands: JSON.stringify(t.pre_commands),
    }
    : {
      instance_id: t.instance_id, repo: t.repo, base_commit: t.parent_commit, patch: t.patch, test_patch: t.test_patch,
      problem_statement: t.problem_statement, hints_text: t.hints_text, created_at: t.created_at ?? t.merged_at ?? '',
      FAIL_TO_PASS: f2p, PASS_TO_PASS: p2p, environment_setup_commit: t.parent_commit,
    };
  const row = { ...own, ...head };
  return Object.fromEntries(FORMAT_COLUMNS[format].map(([c]) => [c, row[c]]));
}

/** Options of {@link exportDataset}. */
export interface ExportOptions {
  format: string;
  /** Output path; the extension (.jsonl or .parquet) chooses the file kind. */
  out: string;
  /** Keep PRs created at or after this time (ISO 8601 date or date-time, UTC when no zone is given). */
  since?: string;
}

/** What was written. */
export interface ExportResult {
  format: ExportFormat;
  kind: OutputKind;
  path: string;
  rows: number;
}

/** Validate format, extension and `since`. @throws ExportUsageError listing the allowed values */
export function checkExportOptions(o: ExportOptions): { format: ExportFormat; kind: OutputKind; sinceMs: number | undefined } {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new ExportUsageError(`unknown export format ${JSON.stringify(o.format)}; formats: ${EXPORT_FORMATS.join(', ')}`);
  }
  const ext = /\.([A-Za-z]+)$/.exec(o.out)?.[1]?.toLowerCase();
  if (!ext || !(OUTPUT_KINDS as readonly string[]).includes(ext)) {
    throw new ExportUsageError(`unsupported output file ${JSON.stringify(o.out)}; use one of: ${OUTPUT_KINDS.map((k) => `.${k}`).join(', ')}`);
  }
  let sinceMs: number | undefined;
  if (o.since !== undefined) {
    const s = /^\d{4}-\d{2}-\d{2}$/.test(o.since) ? `${o.since}T00:00:00Z` : o.since;
    sinceMs = Date.parse(s);
    if (!Number.isFinite(sinceMs)) throw new ExportUsageError(`--since ${JSON.stringify(o.since)} is not an ISO 8601 date or date-time`);
  }
  return { format: o.format as ExportFormat, kind: ext as OutputKind, sinceMs };
}

const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * Export released rows. Writes to `<out>.tmp` and renames, so a reader never sees half a file.
 * @param ch open handle on the tables; `dataDir` is where chDB converts to Parquet
 * @throws ExportUsageError for a bad format/extension/since; ClickHouseStoreError from the engines
 */
export async function exportDataset(ch: ClickHouse, opts: ExportOptions & { dataDir: string }): Promise<ExportResult> {
  const { format, kind, sinceMs } = checkExportOptions(opts);
  const path = resolve(opts.out);
  mkdirSync(dirname(path), { recursive: true });
  const where = ['gold_resolved = 1', 'empty_resolved = 0', 'has_statement = 1'];
  if (sinceMs !== undefined) where.push(`created_ms >= ${Math.floor(sinceMs)}`);
  const query = `SELECT ${TASK_ROW_COLUMNS}
     FROM ${ch.database}.tasks FINAL WHERE ${where.join(' AND ')} ORDER BY instance_id`;
  const jsonl = kind === 'jsonl' ? `${path}.tmp` : `${path}.rows.jsonl.tmp`;
  const ws = createWriteStream(jsonl);
  let count = 0;
  try {
    // Streamed row by row: rows carry whole diffs, and a dataset can be far larger than memory.
    const rs = await ch.client.query({ query, format: 'JSONEachRow' });
    for await (const batch of rs.stream<TaskRow>()) {
      for (const row of batch) {
        if (!ws.write(`${JSON.stringify(toDatasetRow(row.json<TaskRow>(), format))}\n`)) await once(ws, 'drain');
        count++;
      }
    }
  } catch (err) {
    ws.destroy();
    rmSync(jsonl, { force: true });
    throw toStoreError(err, 'reading tasks for export failed');
  }
  ws.end();
  await once(ws, 'finish');
  try {
    if (kind === 'jsonl') {
      renameSync(jsonl, path);
    } else {
      const bytes = await jsonlToParquet(ch, opts.dataDir, jsonl, FORMAT_COLUMNS[format]);
      writeFileSync(`${path}.tmp`, bytes);
      renameSync(`${path}.tmp`, path);
    }
  } finally {
    if (kind === 'parquet') rmSync(jsonl, { force: true });
  }
  return { format, kind, path, rows: count };
}

/**
 * Convert a JSONL file to Parquet bytes with ClickHouse's Parquet output (chDB): `SELECT * FROM
 * file(jsonl, JSONEachRow, structure) FORMAT Parquet`. Uses `ch` itself when it is chDB, else a chDB
 * connection at `<dataDir>/chdb` (same path as the embedded store, which chDB allows to coexist).
 * @throws ClickHouseStoreError
 */
export async function jsonlToParquet(ch: ClickHouse, dataDir: string, jsonlPath: string, columns: Columns): Promise<Buffer> {
  const structure = columns.map(([c, t]) => `${c} ${t}`).join(', ');
  const sql = `SELECT * FROM file(${sqlString(jsonlPath)}, 'JSONEachRow', ${sqlString(structure)}) FORMAT Parquet`;
  const conv = ch.backend === 'chdb' && ch.capabilities.parquet ? ch : await openClickHouse({ dataDir, database: ch.database }, { applyDdl: false });
  try {
    const r = await conv.client.exec({ query: sql });
    const chunks: Buffer[] = [];
    for await (const c of r.stream) chunks.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(chunks);
  } catch (err) {
    throw toStoreError(err, 'Parquet conversion failed');
  } finally {
    if (conv !== ch) await conv.close();
  }
}
