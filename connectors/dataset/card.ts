/**
 * The dataset card (`README.md`) and `CHANGES.md` of a release (connectors/dataset/release.ts). The card
 * opens with Hugging Face's YAML front matter (`configs` with `data_files`, per the Hub's dataset card
 * specification), so the directory loads as a dataset with one config per row format.
 */
import type { Retirement, TaskImageRow } from './store.js';
import type { RevalidationOutcome } from '../../schemas/revalidation.js';

/** Differences against the previous release. */
export interface Changes {
  previous: { name: string; created_ms: number } | null;
  added: string[];
  changed: string[];
  retired: { id: string; reason: string }[];
  /** gone for another reason than retirement (e.g. the row no longer passes the release filter) */
  removed: string[];
}

/** The fields of a snapshot row the card counts. */
export interface CardRow {
  instance_id: string;
  repo: string;
  language: string;
  category: string;
  difficulty_level: string;
  created_at: string | null;
  merged_at: string | null;
}

/** Everything the card shows. Times epoch ms. */
export interface CardInput {
  name: string;
  createdMs: number;
  asOfMs: number;
  createdAfterMs?: number;
  command: string;
  rows: CardRow[];
  retired: Map<string, Retirement>;
  images: Map<string, TaskImageRow>;
  lastRevalidation: Map<string, { outcome: RevalidationOutcome; started_ms: number; runs: number }>;
  changes: Changes;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** `| key | count |` rows, largest first, then by key. */
function countTable(title: string, values: string[]): string {
  const m = new Map<string, number>();
  for (const v of values) m.set(v || '(none)', (m.get(v || '(none)') ?? 0) + 1);
  const rows = [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return [`| ${title} | tasks |`, '|---|---:|', ...rows.map(([k, n]) => `| ${k.replace(/\|/g, '\\|')} | ${n} |`)].join('\n');
}

/** Nearest-rank percentile of sorted numbers (p in 0..100); 0 for none. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;

/** Stability and image-size sections. */
function stabilitySection(c: CardInput): string {
  const ids = c.rows.map((r) => r.instance_id);
  const validated = ids.filter((id) => c.lastRevalidation.has(id));
  const stable = validated.filter((id) => c.lastRevalidation.get(id)!.outcome === 'stable');
  const last = validated.length ? Math.max(...validated.map((id) => c.lastRevalidation.get(id)!.started_ms)) : null;
  const unique = ids.map((id) => c.images.get(id)?.unique_bytes).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const compressed = ids.map((id) => c.images.get(id)?.unique_compressed_bytes).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  return [
    '## Stability',
    '',
    `Each released task is re-validated in fresh containers from its task image (network off): the gold patch must resolve and the empty patch must not, in every run. A task that stops resolving or whose tests flip is retired from later releases (never deleted).`,
    '',
    `- re-validated: ${validated.length} of ${ids.length} tasks${last !== null ? `, last on ${iso(last)}` : ''}`,
    `- stable at their last re-validation: ${stable.length}`,
    `- retired before this release (excluded): ${c.retired.size}`,
    '',
    '## Task images',
    '',
    `Every row's \`image_url\` is ${unique.length === ids.length ? 'a pullable registry reference by digest' : `a pullable registry reference by digest for ${unique.length} of ${ids.length} rows (the rest are local references)`}. Bytes each task adds on top of its environment image (layers not shared with it):`,
    '',
    `- uncompressed: median ${mb(percentile(unique, 50))}, p90 ${mb(percentile(unique, 90))}`,
    `- in the registry (compressed): median ${mb(percentile(compressed, 50))}, p90 ${mb(percentile(compressed, 90))}`,
  ].join('\n');
}

/** The dataset card. */
export function renderCard(c: CardInput): string {
  const months = c.rows.map((r) => (r.merged_at ?? r.created_at ?? '').slice(0, 7));
  const created = c.rows.map((r) => r.created_at ?? r.merged_at ?? '').filter(Boolean).sort();
  const merged = c.rows.map((r) => r.merged_at ?? '').filter(Boolean).sort();
  return [
    '---',
    'configs:',
    '- config_name: swe-bench',
    '  data_files: swe-bench.parquet',
    '  default: true',
    '- config_name: scale-swe',
    '  data_files: scale-swe.parquet',
    'tags:',
    '- swe-bench',
    '- code',
    '---',
    '',
    `# ${c.name}`,
    '',
    `${c.rows.length} verified software-engineering task instances from merged GitHub pull requests, made by swe-stream: each with the repository at the parent commit in a task image, FAIL_TO_PASS / PASS_TO_PASS tests proven by running them before and after the fix, and a problem statement that passed a leakage gate.`,
    '',
    '## Files',
    '',
    '| file | what |',
    '|---|---|',
    '| `swe-bench.parquet`, `swe-bench.jsonl` | SWE-bench rows (instance_id `owner__repo-N`, base_commit, patch, test_patch, …) |',
    '| `scale-swe.parquet`, `scale-swe.jsonl` | Scale-SWE rows (image_url, workdir, f2p_patch, pre_commands, …) |',
    '| `CHANGES.md` | added, retired and changed tasks against the previous release |',
    '| `release.json` | manifest: instance ids, image urls, content hashes |',
    '| `SHA256SUMS` | `sha256sum -c SHA256SUMS` |',
    '',
    'Load with Hugging Face `datasets`: `load_dataset("parquet", data_files="swe-bench.parquet")`. Evaluate with `swe-stream evaluate --dataset <this directory> --predictions FILE` (needs only Docker and access to the registry in `image_url`); every row carries `image_url`, `workdir`, `pre_commands`, `test_command` and `log_parser` for other harnesses.',
    '',
    '## Snapshot',
    '',
    `- made: ${iso(c.createdMs)}; rows as of ${iso(c.asOfMs)}`,
    `- PRs created ${c.createdAfterMs !== undefined ? `at or after ${iso(c.createdAfterMs)}` : 'at any time'}; earliest ${created[0] ?? '-'}, latest ${created.at(-1) ?? '-'}`,
    `- merged between ${merged[0] ?? '-'} and ${merged.at(-1) ?? '-'}`,
    `- previous release: ${c.changes.previous?.name ?? 'none'}; ${c.changes.added.length} added, ${c.changes.retired.length} retired, ${c.changes.changed.length} changed, ${c.changes.removed.length} removed (see CHANGES.md)`,
    `- command: \`${c.command}\``,
    '',
    '## Counts',
    '',
    countTable('repository', c.rows.map((r) => r.repo)), '',
    countTable('language', c.rows.map((r) => r.language)), '',
    countTable('category', c.rows.map((r) => r.category)), '',
    countTable('difficulty', c.rows.map((r) => r.difficulty_level)), '',
    countTable('merge month', months), '',
    stabilitySection(c),
    '',
  ].join('\n');
}

/** CHANGES.md. */
export function renderChanges(name: string, ch: Changes): string {
  const list = (xs: string[]) => (xs.length ? xs.map((x) => `- ${x}`).join('\n') : '- none');
  return [
    `# Changes in ${name}`,
    '',
    ch.previous ? `Against ${ch.previous.name} (${iso(ch.previous.created_ms)}).` : 'First release: every task is added.',
    '',
    `## Added (${ch.added.length})`, '', list(ch.added), '',
    `## Retired (${ch.retired.length})`, '', 'Re-validation found these no longer reproducible; they stay in earlier releases and are never deleted.', '',
    list(ch.retired.map((r) => `${r.id}: ${r.reason}`)), '',
    `## Changed (${ch.changed.length})`, '', list(ch.changed), '',
    `## Removed for other reasons (${ch.removed.length})`, '', list(ch.removed), '',
  ].join('\n');
}
