/**
 * The living dataset's tables (infra/clickhouse/004_revalidations.sql): re-validations, pushed task
 * images, releases. Reads and writes shared by `revalidate`, `images`, `release`, `evaluate --dataset` and
 * `report`. Every read takes an `asOfMs` upper bound on ingestion time, so a release reads one snapshot.
 */
import { createHash } from 'node:crypto';
import { toStoreError, type ClickHouse } from '../sinks/connection.js';
import type { RevalidationOutcome } from '../../schemas/revalidation.js';

/** One row of `revalidations`. Times epoch ms, durations ms (one per test run, gold then empty, per round). */
export interface RevalidationRow {
  revalidation_id: string;
  instance_id: string;
  repo: string;
  started_ms: number;
  runs: number;
  outcome: RevalidationOutcome;
  retire: number;
  detail: string;
  gold_resolved_runs: number;
  empty_resolved_runs: number;
  flipped_tests: string[];
  durations_ms: number[];
  image_url: string;
  ingested_ms: number;
}

/** One row of `task_images`: a task image pushed to the OCI registry. Sizes in bytes. */
export interface TaskImageRow {
  instance_id: string;
  local_ref: string;
  local_id: string;
  /** `<registry>/<repository>@sha256:<manifest digest>`: pullable anywhere the registry is reachable */
  image_url: string;
  unique_bytes: number;
  unique_compressed_bytes: number;
  pushed_ms: number;
}

/** One row of `releases`. */
export interface ReleaseRow {
  name: string;
  created_ms: number;
  as_of_ms: number;
  created_after_ms: number;
  instance_ids: string[];
  image_urls: string[];
  content_hashes: string[];
  dir: string;
  command: string;
}

/** A retired task: the first re-validation that retired it. */
export interface Retirement {
  instance_id: string;
  outcome: RevalidationOutcome;
  detail: string;
  started_ms: number;
}

export const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * Insert rows into one of the living dataset's tables. A unique token per call: chDB keeps settings on
 * its session, so an insert must never inherit another batch's deduplication token.
 * @throws ClickHouseStoreError
 */
export async function insertRows(ch: ClickHouse, table: 'revalidations' | 'task_images' | 'releases', rows: object[]): Promise<void> {
  if (!rows.length) return;
  const token = createHash('sha256').update(table).update(JSON.stringify(rows)).digest('hex').slice(0, 40);
  try {
    await ch.client.insert({
      table: `${ch.database}.${table}`, values: rows as Record<string, unknown>[], format: 'JSONEachRow',
      clickhouse_settings: ch.capabilities.dedupToken ? { insert_deduplication_token: token, insert_deduplicate: 1 } : {},
    });
  } catch (err) {
    throw toStoreError(err, `insert into ${table} failed`);
  }
}

/** Tasks retired as of `asOfMs` (epoch ms), by instance id. @throws ClickHouseStoreError */
export async function retiredTasks(ch: ClickHouse, asOfMs: number): Promise<Map<string, Retirement>> {
  // Aliases differ from column names: ClickHouse would substitute an alias named like a column into the other aggregates.
  const rows = await ch.rows<{ instance_id: string; r_outcome: RevalidationOutcome; r_detail: string; r_started: number }>(`SELECT instance_id, argMin(outcome, started_ms) AS r_outcome,
      argMin(detail, started_ms) AS r_detail, min(started_ms) AS r_started
    FROM ${ch.database}.revalidations FINAL WHERE retire = 1 AND ingested_ms <= ${Math.floor(asOfMs)} GROUP BY instance_id`);
  return new Map(rows.map((r) => [r.instance_id, { instance_id: r.instance_id, outcome: r.r_outcome, detail: r.r_detail, started_ms: Number(r.r_started) }]));
}

/** The latest re-validation of each task as of `asOfMs`, infrastructure failures ignored. @throws ClickHouseStoreError */
export async function lastRevalidations(ch: ClickHouse, asOfMs: number): Promise<Map<string, { outcome: RevalidationOutcome; started_ms: number; runs: number }>> {
  const rows = await ch.rows<{ instance_id: string; r_outcome: RevalidationOutcome; r_started: number; r_runs: number }>(`SELECT instance_id,
      argMax(outcome, started_ms) AS r_outcome, max(started_ms) AS r_started, argMax(runs, started_ms) AS r_runs
    FROM ${ch.database}.revalidations FINAL WHERE outcome != 'infra-failure' AND ingested_ms <= ${Math.floor(asOfMs)} GROUP BY instance_id`);
  return new Map(rows.map((r) => [r.instance_id, { outcome: r.r_outcome, started_ms: Number(r.r_started), runs: Number(r.r_runs) }]));
}

/** The latest pushed image of each task. @throws ClickHouseStoreError */
export async function pushedImages(ch: ClickHouse): Promise<Map<string, TaskImageRow>> {
  const rows = await ch.rows<Record<string, string | number>>(`SELECT instance_id, argMax(local_ref, pushed_ms) AS r_local_ref, argMax(local_id, pushed_ms) AS r_local_id,
      argMax(image_url, pushed_ms) AS r_image_url, argMax(unique_bytes, pushed_ms) AS r_unique,
      argMax(unique_compressed_bytes, pushed_ms) AS r_compressed, max(pushed_ms) AS r_pushed
    FROM ${ch.database}.task_images GROUP BY instance_id`);
  return new Map(rows.map((r) => [String(r.instance_id), {
    instance_id: String(r.instance_id), local_ref: String(r.r_local_ref), local_id: String(r.r_local_id), image_url: String(r.r_image_url),
    unique_bytes: Number(r.r_unique), unique_compressed_bytes: Number(r.r_compressed), pushed_ms: Number(r.r_pushed),
  }]));
}

/** Every release, oldest first. @throws ClickHouseStoreError */
export async function listReleases(ch: ClickHouse): Promise<ReleaseRow[]> {
  const rows = await ch.rows<ReleaseRow>(`SELECT name, created_ms, as_of_ms, created_after_ms, instance_ids, image_urls, content_hashes, dir, command
    FROM ${ch.database}.releases FINAL ORDER BY created_ms`);
  return rows.map((r) => ({ ...r, created_ms: Number(r.created_ms), as_of_ms: Number(r.as_of_ms), created_after_ms: Number(r.created_after_ms) }));
}

/** Per-repository stability from the latest re-validation of each task (for `report`). */
export interface RepoStability {
  repo: string;
  /** tasks re-validated at least once (infrastructure failures included) */
  tasks: number;
  /** tasks with at least one re-validation that ran (not an infrastructure failure); stable = validated - retired */
  validated: number;
  retired: number;
  infra_failures: number;
  last_ms: number;
}

/** Stability per repository over every re-validation so far (a retired task stays retired). @throws ClickHouseStoreError */
export async function stabilityByRepo(ch: ClickHouse): Promise<RepoStability[]> {
  const rows = await ch.rows<RepoStability>(`SELECT repo, uniqExact(instance_id) AS tasks,
      uniqExactIf(instance_id, outcome != 'infra-failure') AS validated, uniqExactIf(instance_id, retire = 1) AS retired,
      countIf(outcome = 'infra-failure') AS infra_failures, max(started_ms) AS last_ms
    FROM ${ch.database}.revalidations FINAL GROUP BY repo ORDER BY repo`);
  return rows.map((r) => ({ repo: r.repo, tasks: Number(r.tasks), validated: Number(r.validated), retired: Number(r.retired), infra_failures: Number(r.infra_failures), last_ms: Number(r.last_ms) }));
}
