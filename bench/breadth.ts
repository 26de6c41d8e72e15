/**
 * bench/breadth — the main job, rules only, on many repositories nobody tuned swe-stream for (issue 11 item 6,
 * issue 15 item 4). One `swe-stream run --until-idle` process reads the N most recent merged PRs of every
 * repository in the list through the git source, so the env build of one repository overlaps the
 * verification of another, exactly as a user's run does. Then the analytics (chDB in the run's data
 * directory) and the pr.events topic are read back.
 *
 * Prints one JSON line per repository and a total:
 *   {"bench":"breadth","repo":"owner/name","prs_seen":…,"by_merge_style":{"merge":…,"squash":…},
 *    "candidates":…,"env_built":…,"env_success":built/candidates,"verified":…,"stated":…,
 *    "yield":verified/seen,"rejections":{"stage:reason":n},"failed":n,"p50_ms":{"stage":ms}}
 *   {"bench":"breadth","total":true,…the same sums…,"repos":R,"wall_s":…,"rows_per_machine_hour":verified/(wall/3600),
 *    "cpu_util":mean busy share of all cores 0..1,"load1_max":…,"cores":…}
 *
 * Usage: npx tsx bench/breadth.ts --mirrors DIR [--list bench/breadth-repos.txt] [--prs 10] [--data-dir DIR]
 *          [--only owner/a,owner/b] [--config FILE] [--stages filter,env-build] [--no-run --wall-s S]
 * A mirror of `owner/name` is looked up as DIR/owner+name/repo, DIR/owner/name.git or DIR/owner/name (a bare or
 * working clone with full history and refs/pull/N/head where the host provides them).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openClickHouse, type ClickHouse } from '../connectors/sinks/connection.js';
import { loadConfig } from '../cli/config.js';
import { openBus } from '../cli/bus.js';
import { readTopic } from '../streams/read.js';
import type { PullRequestEvent } from '../schemas/types.gen.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const STAGES = ['filter', 'env-build', 'test-create', 'verify', 'statement', 'distill'] as const;

/** Options of one benchmark run. */
interface BreadthArgs {
  mirrors: string;
  list: string;
  prs: number;
  dataDir: string;
  only: string[] | null;
  config?: string;
  /** Only these stages (comma-separated), e.g. `filter,env-build` for environment success alone. */
  stages?: string;
  /** Analyse the data directory of an earlier run instead of running (`wallS` then comes from the caller). */
  noRun: boolean;
  wallS?: number;
}

function parse(): BreadthArgs {
  const { values } = parseArgs({
    options: {
      mirrors: { type: 'string' },
      list: { type: 'string', default: path.join(ROOT, 'bench/breadth-repos.txt') },
      prs: { type: 'string', default: '10' },
      'data-dir': { type: 'string' },
      only: { type: 'string' },
      config: { type: 'string' },
      stages: { type: 'string' },
      'no-run': { type: 'boolean', default: false },
      'wall-s': { type: 'string' },
    },
  });
  if (!values.mirrors) throw new Error('--mirrors DIR is required (where the repository mirrors are)');
  return {
    mirrors: path.resolve(values.mirrors),
    list: values.list!,
    prs: Number(values.prs),
    dataDir: path.resolve(values['data-dir'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'swe-stream-breadth-'))),
    only: values.only ? values.only.split(',') : null,
    config: values.config,
    stages: values.stages,
    noRun: values['no-run']!,
    wallS: values['wall-s'] ? Number(values['wall-s']) : undefined,
  };
}

/** `owner/name` entries of the list file (blank lines and `#` comments ignored). */
export function readRepoList(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

/** Where the mirror of `repo` is under `root`, or null. */
export function findMirror(root: string, repo: string): string | null {
  const [owner, name] = repo.split('/');
  for (const c of [path.join(root, `${owner}+${name}`, 'repo'), path.join(root, owner!, `${name}.git`), path.join(root, owner!, name!)]) {
    if (fs.existsSync(c)) return c;
  }
  return null;
}

/** Busy and total jiffies of all cores, from /proc/stat. */
function cpuTimes(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Run the main job as a child process; resolves with its wall time (s), mean CPU use and peak load. */
async function runMainJob(a: BreadthArgs, sources: string[]): Promise<{ wallS: number; cpuUtil: number; load1Max: number; exit: number }> {
  const args = ['bin/swe-stream.js', 'run', '--until-idle', '--data-dir', a.dataDir, ...(a.config ? ['--config', a.config] : []), ...(a.stages ? ['--stages', a.stages] : [])];
  for (const s of sources) args.push('--source', s);
  const t0 = Date.now();
  const c0 = cpuTimes();
  let load1Max = 0;
  const timer = setInterval(() => (load1Max = Math.max(load1Max, os.loadavg()[0]!)), 5000);
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe'] });
  const logFile = fs.createWriteStream(path.join(a.dataDir, 'breadth-run.log'));
  child.stderr.pipe(logFile);
  const exit = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  clearInterval(timer);
  const c1 = cpuTimes();
  return { wallS: (Date.now() - t0) / 1000, cpuUtil: (c1.busy - c0.busy) / Math.max(1, c1.total - c0.total), load1Max, exit };
}

/** How each PR was found (the event's merge style where the source records one). */
async function mergeStyles(dataDir: string): Promise<Map<string, Record<string, number>>> {
  const cfg = loadConfig({ env: {}, overrides: { dataDir, bus: 'embedded' } });
  const bus = await openBus(cfg);
  try {
    const events = await readTopic<PullRequestEvent & { merge_style?: string | null }>(bus.transport, bus.serde, 'pr.events');
    const out = new Map<string, Record<string, number>>();
    const seen = new Set<string>();
    for (const e of events) {
      if (seen.has(e.pr_id)) continue;
      seen.add(e.pr_id);
      const m = out.get(e.repo) ?? {};
      const style = e.merge_style ?? 'unknown';
      m[style] = (m[style] ?? 0) + 1;
      out.set(e.repo, m);
    }
    return out;
  } finally {
    await bus.transport.close();
  }
}

/** One repository's figures from stage_outcomes (FINAL, so replays count once). */
interface RepoFigures {
  repo: string;
  prs_seen: number;
  candidates: number;
  env_built: number;
  verified: number;
  stated: number;
  failed: number;
  rejections: Record<string, number>;
  p50_ms: Record<string, number>;
}

async function repoFigures(ch: ClickHouse): Promise<Map<string, RepoFigures>> {
  const rows = await ch.rows<{ repo: string; stage: string; kind: string; reason: string | null; n: number; p50: number }>(
    `SELECT ifNull(repo, '') AS repo, stage, kind, reason, count() AS n, quantile(0.5)(duration_ms) AS p50
       FROM ${ch.database}.stage_outcomes FINAL GROUP BY repo, stage, kind, reason`,
  );
  const out = new Map<string, RepoFigures>();
  const p50s = new Map<string, Array<{ n: number; p50: number }>>();
  for (const r of rows) {
    const f = out.get(r.repo) ?? { repo: r.repo, prs_seen: 0, candidates: 0, env_built: 0, verified: 0, stated: 0, failed: 0, rejections: {}, p50_ms: {} };
    out.set(r.repo, f);
    if (r.stage === 'filter') f.prs_seen += r.n;
    if (r.kind === 'accepted') {
      if (r.stage === 'filter') f.candidates += r.n;
      if (r.stage === 'env-build') f.env_built += r.n;
      if (r.stage === 'verify') f.verified += r.n;
      if (r.stage === 'statement') f.stated += r.n;
    } else if (r.kind === 'rejected' && r.reason !== 'skipped-no-llm') {
      const k = `${r.stage}:${r.reason}`;
      f.rejections[k] = (f.rejections[k] ?? 0) + r.n;
    } else if (r.kind === 'failed') f.failed += r.n;
    const key = `${r.repo}\u0000${r.stage}`;
    p50s.set(key, [...(p50s.get(key) ?? []), { n: r.n, p50: r.p50 }]);
  }
  for (const [key, parts] of p50s) {
    const [repo, stage] = key.split('\u0000') as [string, string];
    // The weighted median of per-kind medians: close enough for a p50 figure, exact when one kind dominates.
    const sorted = parts.sort((a, b) => a.p50 - b.p50);
    const half = sorted.reduce((s, p) => s + p.n, 0) / 2;
    let acc = 0;
    const hit = sorted.find((p) => (acc += p.n) >= half)!;
    out.get(repo)!.p50_ms[stage] = Math.round(hit.p50);
  }
  return out;
}

const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 1000 : null);

function emitRepo(f: RepoFigures, styles: Record<string, number>): void {
  console.log(JSON.stringify({ bench: 'breadth', ...f, by_merge_style: styles, env_success: ratio(f.env_built, f.candidates), yield: ratio(f.verified, f.prs_seen) }));
}

function emitTotal(all: RepoFigures[], styles: Record<string, number>, run: { wallS: number; cpuUtil: number; load1Max: number; exit: number }): void {
  const sum = (k: 'prs_seen' | 'candidates' | 'env_built' | 'verified' | 'stated' | 'failed') => all.reduce((s, f) => s + f[k], 0);
  const rejections: Record<string, number> = {};
  for (const f of all) for (const [k, n] of Object.entries(f.rejections)) rejections[k] = (rejections[k] ?? 0) + n;
  const per = (f: RepoFigures) => ratio(f.env_built, f.candidates);
  console.log(JSON.stringify({
    bench: 'breadth', total: true, repos: all.length,
    prs_seen: sum('prs_seen'), by_merge_style: styles, candidates: sum('candidates'), env_built: sum('env_built'),
    env_success: ratio(sum('env_built'), sum('candidates')),
    repos_env_success_ge_85: all.filter((f) => (per(f) ?? 0) >= 0.85).length,
    verified: sum('verified'), stated: sum('stated'), failed: sum('failed'), yield: ratio(sum('verified'), sum('prs_seen')),
    rejections, wall_s: Math.round(run.wallS), rows_per_machine_hour: Math.round((sum('verified') / (run.wallS / 3600)) * 10) / 10,
    cpu_util: Math.round(run.cpuUtil * 1000) / 1000, load1_max: Math.round(run.load1Max * 10) / 10, cores: os.cpus().length, exit: run.exit,
  }));
}

async function main(): Promise<void> {
  const a = parse();
  const repos = readRepoList(a.list).filter((r) => !a.only || a.only.includes(r));
  const sources: string[] = [];
  for (const repo of repos) {
    const m = findMirror(a.mirrors, repo);
    if (!m) throw new Error(`no mirror of ${repo} under ${a.mirrors}`);
    sources.push(`git:${m}?repo=${repo}&limit=${a.prs}`);
  }
  fs.mkdirSync(a.dataDir, { recursive: true });
  process.stderr.write(`breadth: ${repos.length} repositories × ${a.prs} PRs, data in ${a.dataDir} (log: breadth-run.log)\n`);
  const run = a.noRun ? { wallS: a.wallS ?? NaN, cpuUtil: NaN, load1Max: NaN, exit: 0 } : await runMainJob(a, sources);
  const styles = await mergeStyles(a.dataDir);
  // The run's analytics went where its configuration said: a ClickHouse server (SWE_STREAM_CLICKHOUSE_URL,
  // --config) or chDB in the data directory; read them from the same place.
  const { clickhouse } = loadConfig({ env: process.env, overrides: { dataDir: a.dataDir }, ...(a.config ? { file: a.config } : {}) });
  const ch = await openClickHouse({ dataDir: a.dataDir, url: clickhouse.url, database: clickhouse.database });
  try {
    const figures = await repoFigures(ch);
    const all: RepoFigures[] = [];
    const totalStyles: Record<string, number> = {};
    for (const repo of repos) {
      const f = figures.get(repo) ?? { repo, prs_seen: 0, candidates: 0, env_built: 0, verified: 0, stated: 0, failed: 0, rejections: {}, p50_ms: {} };
      const s = styles.get(repo) ?? {};
      for (const [k, n] of Object.entries(s)) totalStyles[k] = (totalStyles[k] ?? 0) + n;
      emitRepo(f, s);
      all.push(f);
    }
    emitTotal(all, totalStyles, run);
  } finally {
    await ch.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main().catch((e: unknown) => {
    process.stderr.write(`breadth: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
