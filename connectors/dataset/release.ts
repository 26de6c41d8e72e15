/**
 * Releases (`swe-stream release NAME`, ARCHITECTURE.md §8 "living dataset"): an immutable, dated snapshot
 * of the released rows.
 *
 * Directory `<out>/<NAME>/`:
 * - `swe-bench.parquet`, `swe-bench.jsonl`, `scale-swe.parquet`, `scale-swe.jsonl` — both row formats of
 *   connectors/dataset/export.ts (with the columns another harness needs: image by digest, test command,
 *   log parser, pre_commands);
 * - `README.md` — the dataset card: Hugging Face YAML front matter (`configs` → data files, so
 *   `load_dataset(dir)` and `load_dataset("parquet", data_files=…)` both work), counts by repository,
 *   language, category, difficulty and merge month, cut-off dates, stability from the last re-validation,
 *   unique image bytes per task, the command that made it;
 * - `CHANGES.md` — against the previous release: added, retired (with the re-validation's reason), removed
 *   for another reason, changed (row content differs);
 * - `release.json` — the manifest (name, times, instance ids, image urls, counts);
 * - `SHA256SUMS` — `sha256sum -c` format over every other file.
 *
 * One snapshot: every read is bounded by `asOfMs` on ingestion time (rows, retirements), and the newest
 * version of each task at that time is taken, so rows written while the release is made are not in it.
 * Immutable: an existing directory or release name is refused; files are written into a sibling
 * temporary directory, made read-only, and the directory renamed into place at the end.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ClickHouse } from '../sinks/connection.js';
import { EXPORT_FORMATS, FORMAT_COLUMNS, jsonlToParquet, TASK_ROW_COLUMNS, toDatasetRow, type TaskRow } from './export.js';
import { insertRows, lastRevalidations, listReleases, pushedImages, retiredTasks, type ReleaseRow, type Retirement, type TaskImageRow } from './store.js';
import { renderCard, renderChanges, type CardInput, type Changes } from './card.js';

/** A bad release request (name taken, directory exists, bad time). Not retriable; the CLI exits 2. */
export class ReleaseUsageError extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ReleaseUsageError';
  }
}

/** Release names become directory names and ids: letters, digits, `.`, `_`, `-`. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Options of {@link createRelease}. Times are epoch ms. */
export interface ReleaseOptions {
  name: string;
  /** parent directory; the release is `<out>/<name>` */
  out: string;
  /** chDB data directory (Parquet conversion) */
  dataDir: string;
  /** snapshot time: rows and retirements ingested after it are not seen; default now */
  asOfMs?: number;
  /** keep PRs created at or after this time (SWE-bench-Live style contamination cut-off) */
  createdAfterMs?: number;
  /** the command line that made the release, for the card */
  command: string;
  /** allow rows whose task image was never pushed (their image_url stays the local reference) */
  localImages?: boolean;
  now?: () => number;
}

/** What was written. */
export interface ReleaseResult {
  name: string;
  dir: string;
  rows: number;
  added: number;
  retired: number;
  changed: number;
  files: string[];
}

/** Parse an ISO 8601 date or date-time (UTC when no zone) to epoch ms. @throws ReleaseUsageError */
export function parseTime(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v;
  const ms = Date.parse(s);
  if (!Number.isFinite(ms)) throw new ReleaseUsageError(`${flag} ${JSON.stringify(v)} is not an ISO 8601 date or date-time`);
  return ms;
}

/** A row read from the snapshot: the export columns plus what the card and CHANGES need. */
export interface SnapshotRow extends TaskRow {
  created_ms: number;
  merged_ms_text: string | null;
  env_image_id: string;
  task_image_ref: string;
}

/**
 * The released rows as of `asOfMs`: newest version of each task ingested by then, passed verification
 * and the release check, stated, created at or after `createdAfterMs`.
 * @throws ClickHouseStoreError
 */
export async function readSnapshot(ch: ClickHouse, o: { asOfMs: number; createdAfterMs?: number }): Promise<SnapshotRow[]> {
  const where = ['gold_resolved = 1', 'empty_resolved = 0', 'has_statement = 1'];
  if (o.createdAfterMs !== undefined) where.push(`created_ms >= ${Math.floor(o.createdAfterMs)}`);
  const sql = `SELECT * FROM (
      SELECT ${TASK_ROW_COLUMNS}, created_ms, gold_resolved, empty_resolved, has_statement, env_image_id, task_image_ref
      FROM ${ch.database}.tasks WHERE ingested_ms <= ${Math.floor(o.asOfMs)}
      ORDER BY instance_id, _version DESC LIMIT 1 BY instance_id)
    WHERE ${where.join(' AND ')} ORDER BY instance_id`;
  const rows = await ch.rows<SnapshotRow>(sql);
  return rows.map((r) => ({ ...r, created_ms: Number(r.created_ms), merged_ms_text: r.merged_at }));
}

/** SHA-256 of a row's SWE-bench JSON without the image (a re-push alone is not a change). */
function contentHash(row: Record<string, unknown>): string {
  const { image_url: _i, ...rest } = row;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

/** Compare with the previous release (ids and content hashes). */
function diffReleases(prev: ReleaseRow | undefined, now: { ids: string[]; hashes: string[] }, retired: Map<string, Retirement>): Changes {
  const prevHash = new Map((prev?.instance_ids ?? []).map((id, i) => [id, prev!.content_hashes[i] ?? '']));
  const nowSet = new Set(now.ids);
  const added = now.ids.filter((id) => !prevHash.has(id));
  const changed = now.ids.filter((id, i) => prevHash.has(id) && prevHash.get(id) !== now.hashes[i]);
  const gone = [...prevHash.keys()].filter((id) => !nowSet.has(id));
  return {
    previous: prev ? { name: prev.name, created_ms: prev.created_ms } : null,
    added,
    changed,
    retired: gone.filter((id) => retired.has(id)).map((id) => ({ id, reason: `${retired.get(id)!.outcome}: ${retired.get(id)!.detail}` })),
    removed: gone.filter((id) => !retired.has(id)),
  };
}

/** Write `SHA256SUMS` over every file of `dir` (sorted), in `sha256sum -c` format. */
function writeChecksums(dir: string): void {
  const lines = readdirSync(dir).filter((f) => f !== 'SHA256SUMS').sort()
    .map((f) => `${createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')}  ${f}`);
  writeFileSync(join(dir, 'SHA256SUMS'), lines.join('\n') + '\n');
}

/** Refuse a taken name or an existing directory. @throws ReleaseUsageError */
function checkFresh(name: string, dir: string, releases: ReleaseRow[]): void {
  if (!NAME_RE.test(name)) throw new ReleaseUsageError(`release name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' (at most 100)`);
  if (releases.some((r) => r.name === name)) throw new ReleaseUsageError(`release ${name} exists; releases are immutable, choose a new name`);
  if (existsSync(dir)) throw new ReleaseUsageError(`${dir} exists; releases are immutable, choose a new name or --out`);
}

/** Rows of one format, image_url replaced by the pushed reference. */
function formatRows(rows: SnapshotRow[], images: Map<string, TaskImageRow>, format: (typeof EXPORT_FORMATS)[number]): Record<string, unknown>[] {
  return rows.map((r) => toDatasetRow({ ...r, image_url: images.get(r.instance_id)?.image_url ?? r.image_url }, format));
}

/**
 * Make a release (see the module comment).
 * @throws ReleaseUsageError (name taken, directory exists, unpushed images without `localImages`);
 *         ClickHouseStoreError from the engines
 */
export async function createRelease(ch: ClickHouse, o: ReleaseOptions): Promise<ReleaseResult> {
  const now = o.now ?? Date.now;
  const createdMs = now();
  const asOfMs = o.asOfMs ?? createdMs;
  const dir = resolve(o.out, o.name);
  const releases = await listReleases(ch);
  checkFresh(o.name, dir, releases);
  const retired = await retiredTasks(ch, asOfMs);
  const rows = (await readSnapshot(ch, { asOfMs, createdAfterMs: o.createdAfterMs })).filter((r) => !retired.has(r.instance_id));
  const images = await pushedImages(ch);
  const unpushed = rows.filter((r) => !images.has(r.instance_id)).map((r) => r.instance_id);
  if (unpushed.length && !o.localImages) {
    throw new ReleaseUsageError(`${unpushed.length} task image(s) not in the OCI registry (${unpushed.slice(0, 5).join(', ')}${unpushed.length > 5 ? ', …' : ''}); run \`swe-stream images push\` first, or pass --local-images`);
  }
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const byFormat = Object.fromEntries(EXPORT_FORMATS.map((f) => [f, formatRows(rows, images, f)])) as Record<(typeof EXPORT_FORMATS)[number], Record<string, unknown>[]>;
    for (const f of EXPORT_FORMATS) {
      const jsonl = join(tmp, `${f}.jsonl`);
      writeFileSync(jsonl, byFormat[f].map((r) => JSON.stringify(r) + '\n').join(''));
      writeFileSync(join(tmp, `${f}.parquet`), await jsonlToParquet(ch, o.dataDir, jsonl, FORMAT_COLUMNS[f]));
    }
    const ids = rows.map((r) => r.instance_id);
    const hashes = byFormat['swe-bench'].map(contentHash);
    const prev = releases.filter((r) => r.created_ms <= createdMs).at(-1);
    const changes = diffReleases(prev, { ids, hashes }, retired);
    const card: CardInput = { name: o.name, createdMs, asOfMs, createdAfterMs: o.createdAfterMs, command: o.command, rows, retired, images, lastRevalidation: await lastRevalidations(ch, asOfMs), changes };
    writeFileSync(join(tmp, 'README.md'), renderCard(card));
    writeFileSync(join(tmp, 'CHANGES.md'), renderChanges(o.name, changes));
    const imageUrls = byFormat['swe-bench'].map((r) => String(r.image_url));
    writeFileSync(join(tmp, 'release.json'), JSON.stringify({ name: o.name, created: new Date(createdMs).toISOString(), as_of: new Date(asOfMs).toISOString(), created_after: o.createdAfterMs !== undefined ? new Date(o.createdAfterMs).toISOString() : null, command: o.command, rows: rows.length, previous: prev?.name ?? null, instances: ids.map((id, i) => ({ instance_id: id, image_url: imageUrls[i], content_sha256: hashes[i] })) }, null, 2) + '\n');
    writeChecksums(tmp);
    for (const f of readdirSync(tmp)) chmodSync(join(tmp, f), 0o444);
    renameSync(tmp, dir);
    chmodSync(dir, 0o555);
    const row: ReleaseRow = { name: o.name, created_ms: createdMs, as_of_ms: asOfMs, created_after_ms: o.createdAfterMs ?? 0, instance_ids: ids, image_urls: imageUrls, content_hashes: hashes, dir, command: o.command };
    await insertRows(ch, 'releases', [row]);
    return { name: o.name, dir, rows: rows.length, added: changes.added.length, retired: changes.retired.length, changed: changes.changed.length, files: readdirSync(dir).sort() };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
