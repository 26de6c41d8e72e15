/**
 * Merged pull requests as they appear in git history (ARCHITECTURE.md §9):
 *  - merge commits made by GitHub's "Create a merge commit" button: subject
 *    `Merge pull request #N from <owner>/<branch>`, two parents (second = PR head), PR title as the
 *    first body line and the PR description after it;
 *  - squash commits made by "Squash and merge": one parent, subject `<PR title> (#N)`, the PR's commit
 *    messages or description as the body.
 * Rebase merges leave no marker and are not detected. Source of the formats: GitHub docs "About merge
 * methods on GitHub" and the commits those buttons produce.
 */
import path from 'node:path';
import { git } from './git-exec.js';
import { Mirror, type CommitInfo } from './mirror.js';

/** One merged PR found in history. Dates are ISO 8601 as git prints them. */
export interface MergedPr {
  number: number;
  style: 'merge' | 'squash';
  /** the merge or squash commit on the mainline */
  sha: string;
  /** first parent of `sha` */
  parent: string;
  /** PR head: second parent of a merge commit, else refs/pull/N/head when present */
  headSha: string | null;
  /** `owner/branch` from a merge commit subject */
  headRef: string | null;
  title: string;
  body: string;
  authorName: string;
  authorEmail: string;
  authorDate: string;
  /** committer date of the merge/squash commit */
  mergedAt: string;
}

const MERGE_RE = /^Merge pull request #(\d+) from (\S+)/;
const SQUASH_RE = /^(.*\S)\s*\(#(\d+)\)\s*$/;

/** Recognise a merged-PR commit; null for any other commit. Pure. */
export function mergedPrFromCommit(c: CommitInfo): MergedPr | null {
  const m = MERGE_RE.exec(c.subject);
  if (m && c.parents.length >= 2) {
    const nl = c.body.indexOf('\n');
    const title = (nl === -1 ? c.body : c.body.slice(0, nl)).trim();
    const body = nl === -1 ? '' : c.body.slice(nl + 1).trim();
    return {
      number: Number(m[1]), style: 'merge', sha: c.sha, parent: c.parents[0]!, headSha: c.parents[1] ?? null, headRef: m[2]!,
      title: title || c.subject, body, authorName: c.authorName, authorEmail: c.authorEmail, authorDate: c.authorDate, mergedAt: c.committerDate,
    };
  }
  const s = SQUASH_RE.exec(c.subject);
  if (s && c.parents.length === 1) {
    return {
      number: Number(s[2]), style: 'squash', sha: c.sha, parent: c.parents[0]!, headSha: null, headRef: null,
      title: s[1]!, body: c.body, authorName: c.authorName, authorEmail: c.authorEmail, authorDate: c.authorDate, mergedAt: c.committerDate,
    };
  }
  return null;
}

/** Open a local repository (bare or with a work tree) for reading through the {@link Mirror} API. */
export async function openLocalRepo(repoPath: string, name = 'local/repo'): Promise<Mirror> {
  const gitDir = (await git(['rev-parse', '--absolute-git-dir'], { cwd: path.resolve(repoPath) })).trim();
  return new Mirror(name, gitDir);
}

/** Options of {@link scanMergedPrs}. */
export interface ScanOptions {
  /** revision to walk (default HEAD) */
  rev?: string;
  /** only these PR numbers */
  prs?: Set<number>;
  /** only commits at or after this date (git --since) */
  since?: string;
  /** only commits after this one (exclusive), i.e. the range `<after>..<rev>` */
  after?: string;
  /** the N most recent merged PRs */
  limit?: number;
  signal?: AbortSignal;
}

/**
 * Merged PRs on the first-parent history of `rev`, newest first. A PR number seen twice (a revert
 * re-landed, a re-merge) keeps its newest commit. Heads come from `refs/pull/N/head` when present.
 */
export async function scanMergedPrs(repo: Mirror, opts: ScanOptions = {}): Promise<MergedPr[]> {
  const rev = opts.after ? `${opts.after}..${opts.rev ?? 'HEAD'}` : (opts.rev ?? 'HEAD');
  // git reads a bare date as that day at the CURRENT time of day (approxidate), so `since=2024-01-02` would
  // drop PRs merged that morning depending on when the scan runs: pin it to midnight UTC.
  const since = opts.since && /^\d{4}-\d{2}-\d{2}$/.test(opts.since) ? `${opts.since}T00:00:00Z` : opts.since;
  const commits = await repo.log(rev, { firstParent: true, since, signal: opts.signal });
  const heads = await repo.pullHeads();
  const out: MergedPr[] = [];
  const seen = new Set<number>();
  for (const c of commits) {
    const pr = mergedPrFromCommit(c);
    if (!pr || seen.has(pr.number)) continue;
    if (opts.prs && !opts.prs.has(pr.number)) continue;
    seen.add(pr.number);
    pr.headSha = heads.get(pr.number) ?? pr.headSha;
    out.push(pr);
    if (opts.limit !== undefined && out.length >= opts.limit) break;
    if (opts.prs && seen.size === opts.prs.size) break;
  }
  return out;
}

/** The merged-PR commit of PR `number` on the first-parent history of HEAD, or null. */
export async function findMergedPr(repo: Mirror, number: number, signal?: AbortSignal): Promise<MergedPr | null> {
  const [pr] = await scanMergedPrs(repo, { prs: new Set([number]), signal });
  return pr ?? null;
}
