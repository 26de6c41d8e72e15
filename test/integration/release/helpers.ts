/**
 * The Hugging Face `datasets` package for the release tests: installed from PyPI into a cached venv by the
 * project's own infra/hf-datasets.sh, then used as users load a release.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Install (once; cached under the infra state folder) and return the venv's python. */
export function hfPython(): string {
  return execFileSync('bash', [join(ROOT, 'infra/hf-datasets.sh'), 'install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim().split('\n').at(-1)!;
}

/** `load_dataset("parquet", data_files=file, split="train")` → rows count, column names, instance ids and one row's lists. */
export function loadWithDatasets(python: string, file: string, cacheDir: string): { num_rows: number; columns: string[]; ids: string[]; f2p: string[] } {
  const script = [
    'import json, sys',
    'from datasets import load_dataset',
    'd = load_dataset("parquet", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])',
    'print(json.dumps({"num_rows": d.num_rows, "columns": d.column_names, "ids": list(d["instance_id"]), "f2p": json.loads(d[0]["FAIL_TO_PASS"]) if d.num_rows else []}))',
  ].join('\n');
  const out = execFileSync(python, ['-c', script, file, cacheDir], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1' }, timeout: 300_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { num_rows: number; columns: string[]; ids: string[]; f2p: string[] };
}
