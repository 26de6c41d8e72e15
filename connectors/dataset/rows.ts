/**
 * Rows of a release as the evaluation harness needs them (`swe-stream evaluate --dataset RELEASE`): read
 * the release's `swe-bench.jsonl` (or a given SWE-bench JSONL file with our harness columns), check it
 * against the release's `SHA256SUMS` when present, and map each row to an {@link EvalRow}. Nothing but
 * the file is needed: the row carries the image by digest, workdir, pre_commands, test command and log
 * parser (connectors/dataset/export.ts HARNESS_COLUMNS).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * A release row as the evaluation harness reads it: structurally operators/harness/evaluate.ts `EvalRow`
 * (connectors/ do not import the harness; the CLI hands these rows to it).
 */
export interface EvalRow {
  instance_id: string;
  environment: { runner: string };
  tests: { test_patch: string; f2p_script: string | null; f2p_script_path: string | null };
  verification: { FAIL_TO_PASS: string[]; PASS_TO_PASS: string[]; image_url: string; task_image_ref: string; workdir: string; pre_commands: string[]; eval_command: string };
}

/** A release that cannot be read (missing file, checksum mismatch, row without harness columns). Not retriable. */
export class ReleaseReadError extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'ReleaseReadError';
  }
}

const list = (v: unknown): string[] => (typeof v === 'string' ? (JSON.parse(v) as string[]) : Array.isArray(v) ? (v as string[]) : []);

/** Map one SWE-bench row of a release to an EvalRow. @throws ReleaseReadError when a harness column is missing */
export function evalRowOf(r: Record<string, unknown>): EvalRow {
  for (const c of ['instance_id', 'image_url', 'workdir', 'test_command', 'log_parser', 'FAIL_TO_PASS', 'PASS_TO_PASS']) {
    if (r[c] === undefined || r[c] === null) throw new ReleaseReadError(`row ${String(r.instance_id)} has no ${c}: not a swe-stream release row`);
  }
  return {
    instance_id: String(r.instance_id),
    environment: { runner: String(r.log_parser) },
    tests: { test_patch: String(r.test_patch ?? ''), f2p_script: (r.f2p_script as string | null) ?? null, f2p_script_path: (r.f2p_script_path as string | null) ?? null },
    verification: {
      FAIL_TO_PASS: list(r.FAIL_TO_PASS), PASS_TO_PASS: list(r.PASS_TO_PASS), image_url: String(r.image_url), task_image_ref: '',
      workdir: String(r.workdir), pre_commands: list(r.pre_commands), eval_command: String(r.test_command),
    },
  };
}

/**
 * Read a release's rows: `path` is a release directory (its swe-bench.jsonl) or a JSONL file.
 * @throws ReleaseReadError
 */
export function readReleaseRows(path: string): EvalRow[] {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'swe-bench.jsonl') : path;
  if (!existsSync(file)) throw new ReleaseReadError(`${file} does not exist: --dataset takes a release directory or its swe-bench.jsonl`);
  const bytes = readFileSync(file);
  const sums = join(dirname(file), 'SHA256SUMS');
  if (existsSync(sums)) {
    const want = readFileSync(sums, 'utf8').split('\n').map((l) => l.split(/\s+/)).find((p) => p[1] === basename(file))?.[0];
    const got = createHash('sha256').update(bytes).digest('hex');
    if (want && want !== got) throw new ReleaseReadError(`${file} does not match SHA256SUMS (want ${want}, got ${got}): the release was modified`);
  }
  return bytes.toString('utf8').split('\n').filter((l) => l.trim()).map((l) => evalRowOf(JSON.parse(l) as Record<string, unknown>));
}
