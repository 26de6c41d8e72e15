/**
 * bench/sandbox — sandbox overhead and environment reuse (issue 4).
 *
 * 1. `lifecycle`: --iterations (default 20) times: create a container of the offline Python base image
 *    (network off) → first exec (`true`) → remove. Reports create→first-exec and the whole cycle, p50/p95 in
 *    ms, and the 1-minute load average. Target: create→first exec ≤ 500 ms p50. `lifecycle-pooled`: the same
 *    with a warm pool of two started containers (the engine's container start is most of the cost).
 * 2. `env-build`: cold vs warm env-build for consecutive PRs of one repository, with a fresh image prefix so
 *    the first build is cold. With `--repo <git dir> --name owner/repo --language python|javascript` it
 *    takes the repository's two most recent merged PRs (older first); without, it generates a small
 *    Python repository with two commits and unchanged manifests. Target: warm ≤ 5 % of cold.
 *    The bench's images are removed afterwards.
 *
 * Prints one JSON line per measurement:
 *   {"bench":"sandbox","case":"lifecycle","iterations":20,"create_to_first_exec_ms":{"p50":…,"p95":…},"cycle_ms":{…}}
 *   {"bench":"sandbox","case":"env-build","repo":"…","cold_ms":…,"warm_ms":…,"warm_over_cold":0.03,"tests_parsed":…}
 * Run: `npx tsx bench/sandbox.ts [--iterations 20] [--skip-env] [--repo DIR --name owner/repo --language python]`.
 */
import { parseArgs } from 'node:util';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { DockerSandboxFactory } from '../operators/sandbox/docker.js';
import { envBuildStage } from '../operators/env-build.js';
import { openLocalRepo, scanMergedPrs } from '../operators/pr/history.js';
import type { Candidate } from '../schemas/types.gen.js';

const run = promisify(execFile);

/** p-th percentile (nearest rank) of `xs`, ms. */
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function lifecycle(f: DockerSandboxFactory, image: string, n: number, label = 'lifecycle'): Promise<void> {
  const first: number[] = [];
  const cycle: number[] = [];
  // One untimed round so image layers are in the page cache, as in a running pipeline.
  const warm = await f.create({ image, network: false });
  await warm.exec('true', { timeoutMs: 10_000 });
  await warm.destroy();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const sb = await f.create({ image, network: false, workdir: '/testbed' });
    const r = await sb.exec('true', { timeoutMs: 10_000 });
    const t1 = performance.now();
    await sb.destroy();
    const t2 = performance.now();
    if (r.exitCode !== 0) throw new Error(`exec failed: ${r.stderr}`);
    first.push(t1 - t0);
    cycle.push(t2 - t0);
  }
  const round = (x: number) => Math.round(x);
  console.log(JSON.stringify({ bench: 'sandbox', case: label, load1: +loadavg()[0].toFixed(1), image, iterations: n, create_to_first_exec_ms: { p50: round(pct(first, 50)), p95: round(pct(first, 95)) }, cycle_ms: { p50: round(pct(cycle, 50)), p95: round(pct(cycle, 95)) }, target_p50_ms: 500 }));
}

function candidate(repo: string, dir: string, parent: string, language: string, n: number): Candidate {
  return {
    pr_id: `${repo}#${n}`, repo, number: n, clone_url: dir, language, pr_commit: parent, parent_commit: parent, head_sha: null, title: '', body: '',
    user_login: null, created_at: null, merged_at: null, linked_issues: [], files: [], size: { files: 0, hunks: 0, lines_added: 0, lines_removed: 0 }, diff: '', patch_hash: '', license: null, merge_style: null,
  };
}

/** A small Python repository with two commits whose manifests are the same. Returns [dir, [sha1, sha2]]. */
async function generatedRepo(root: string): Promise<[string, string[]]> {
  const dir = join(root, 'calc');
  await mkdir(dir, { recursive: true });
  const g = (...a: string[]) => run('git', a, { cwd: dir });
  await g('init', '-q', '-b', 'main');
  const files: Array<Record<string, string>> = [
    {
      'pyproject.toml': '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "calc"\nversion = "0.1"\n[tool.setuptools]\npackages = ["calc"]\n',
      'calc/__init__.py': 'def add(a, b):\n    return a + b\n',
      'tests/test_calc.py': 'from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n',
    },
    { 'calc/__init__.py': 'def add(a, b):\n    return b + a\n' },
  ];
  const shas: string[] = [];
  for (const f of files) {
    for (const [p, t] of Object.entries(f)) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), t);
    }
    await g('add', '-A');
    await g('-c', 'user.name=b', '-c', 'user.email=b@example.com', 'commit', '-q', '-m', 'c');
    shas.push((await g('rev-parse', 'HEAD')).stdout.trim());
  }
  return [dir, shas];
}

async function envBuild(f: DockerSandboxFactory, opts: { repo?: string; name?: string; language?: string }): Promise<void> {
  const prefix = `swe-stream-bench/env-${randomBytes(3).toString('hex')}`;
  const root = await mkdtemp(join(tmpdir(), 'swe-stream-bench-'));
  try {
    let dir: string;
    let name: string;
    let language: string;
    let parents: string[];
    if (opts.repo) {
      dir = opts.repo;
      name = opts.name ?? 'local/repo';
      language = opts.language ?? 'python';
      const prs = await scanMergedPrs(await openLocalRepo(dir, name), { limit: 2 });
      prs.prs.reverse();
      parents = prs.prs.map((p) => p.base);
    } else {
      [dir, parents] = await generatedRepo(root);
      name = 'bench/calc';
      language = 'python';
    }
    const stage = envBuildStage({ sandboxes: f, repoPath: async () => dir, imagePrefix: prefix });
    const times: number[] = [];
    let tests = 0;
    const hits: boolean[] = [];
    for (const [i, parent] of parents.entries()) {
      const c = candidate(name, dir, parent, language, i + 1);
      const t0 = performance.now();
      const o = await stage.handle({ key: c.pr_id, value: { candidate: c, provenance: [] }, origin: { topic: 'bench', partition: 0, offset: String(i) }, attempt: 1, signal: new AbortController().signal });
      times.push(performance.now() - t0);
      if (o.kind !== 'accepted') throw new Error(`env-build ${o.kind}: ${o.kind === 'rejected' ? `${o.reason} ${o.detail}` : o.error.message}`);
      tests = o.value.environment.tests_parsed;
      hits.push(o.value.environment.cache_hit);
    }
    console.log(JSON.stringify({ bench: 'sandbox', case: 'env-build', repo: name, cold_ms: Math.round(times[0]), warm_ms: Math.round(times[1]), warm_over_cold: +(times[1] / times[0]).toFixed(4), cache_hits: hits, tests_parsed: tests, target_ratio: 0.05 }));
  } finally {
    const images = await f.docker.listImages({ filters: { reference: [`${prefix}-*`] } });
    for (const i of images) await f.docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string', default: '20' },
      'skip-env': { type: 'boolean', default: false },
      repo: { type: 'string' },
      name: { type: 'string' },
      language: { type: 'string' },
    },
  });
  const f = new DockerSandboxFactory({ labels: { 'swe-stream.bench': 'sandbox' } });
  await f.sweep();
  const image = await f.baseImage('python');
  await lifecycle(f, image, Number(values.iterations));
  // The same with a warm pool of two started containers (DockerSandboxOptions.warmPool).
  const pooled = new DockerSandboxFactory({ labels: { 'swe-stream.bench': 'sandbox' }, warmPool: 2 });
  try {
    await lifecycle(pooled, image, Number(values.iterations), 'lifecycle-pooled');
  } finally {
    await pooled.close();
  }
  if (!values['skip-env']) await envBuild(f, { repo: values.repo, name: values.name, language: values.language });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
