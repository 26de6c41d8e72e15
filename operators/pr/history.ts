/**
 * Merged pull requests as they appear in git history (ARCHITECTURE.md §9), whatever the merge style, anywhere
 * in the history of the scanned branches (every parent is walked, not only the first: a PR merged into `dev`
 * that reached `master` through a `dev → master` merge is found from `master`).
 *
 * Merge styles, from GitHub's docs "About merge methods on GitHub" and the commits its buttons produce:
 *  - `merge`:  "Create a merge commit": subject `Merge pull request #N from <owner>/<branch>`, two parents
 *              (second = PR head), PR title on the first body line, the description after it; or, with the
 *              repository's "Pull request title" merge message setting, subject `<PR title> (#N)`, two parents;
 *  - `squash`: "Squash and merge": one parent, subject `<PR title> (#N)`. Found on the first-parent chain of
 *              a scanned branch, or anywhere when GitHub committed it (committer `noreply@github.com`): a
 *              contributor's own commit "Fix x (#12)" on a merged side branch names an issue, not a PR;
 *  - `rebase`: "Rebase and merge": no marker. The commits of `refs/pull/N/head` that are not on the scanned
 *              branches landed there as new commits with the same author, author date and patch-id
 *              (`git patch-id --stable`), one after another; the landed range is the merge point;
 *  - `pull-ref`: `refs/pull/N/head` itself was merged by a commit without GitHub's message (merged on the
 *              command line, "Merge branch 'fix-x'").
 *
 * The PR's own change (the task's gold + test patch) is `base → commit`:
 *  - merge / pull-ref: base = merge-base(first parent of the merging commit, head), commit = head — never a
 *    diff against a moved base tip that drags in unrelated merges;
 *  - squash: base = the squash commit's parent, commit = the squash commit;
 *  - rebase: base = parent of the first landed commit, commit = the last landed commit.
 */
import path from 'node:path';
import { git } from './git-exec.js';
import { Mirror, type CommitInfo } from './mirror.js';
import { StageError } from '../../streams/types.js';
import type { PullRequestEvent } from '../../schemas/types.gen.js';

/** How a merged PR was found in history (PullRequestEvent.merge_style). */
export const MERGE_STYLES = ['merge', 'squash', 'rebase', 'pull-ref', 'fast-forward'] as const;
export type MergeStyle = (typeof MERGE_STYLES)[number];

/** One merged PR found in history. Dates are ISO 8601 as git prints them. */
export interface MergedPr {
  number: number;
  style: MergeStyle;
  /** the commit that landed the PR on a scanned branch: merge commit, squash commit, last landed commit of a rebase, or the commit that merged the head */
  sha: string;
  /** the task's base commit (SWE-bench base_commit): see the module comment */
  base: string;
  /** the end of the PR's change: `base → commit` is the PR's diff */
  commit: string;
  /** PR head: second parent of a merge commit, else refs/pull/N/head when present */
  headSha: string | null;
  /** `owner/branch` from a merge commit subject */
  headRef: string | null;
  /** the scanned branch through which the landing commit was reached (`git log --source`) */
  branch: string | null;
  title: string;
  body: string;
  authorName: string;
  authorEmail: string;
  authorDate: string;
  /** committer date of `sha` */
  mergedAt: string;
}

/** Why a `refs/pull/N/head` yielded no merged PR (skipped items of the git source). */
export const UNRESOLVED_REASONS = [
  'pull-ref-not-landed', 'pull-ref-partly-landed', 'rebase-not-contiguous', 'pull-ref-fast-forward', 'pull-ref-merged-as-other-pr', 'no-merge-base',
] as const;
export type UnresolvedReason = (typeof UNRESOLVED_REASONS)[number];

/** A PR ref (or a marked commit) that could not be turned into a merged PR, with the reason. */
export interface UnresolvedPr {
  number: number;
  reason: UnresolvedReason;
  detail: string;
}

/** A branch named in `branches=` does not exist in the repository. Never retriable. */
export class BranchNotFoundError extends StageError {
  constructor(repo: string, branches: string[]) {
    super(`${repo}: branch(es) not found: ${branches.join(', ')}`, { retriable: false, name: 'BranchNotFound' });
  }
}

/** A commit of the scanned history, with what the scan needs beyond {@link CommitInfo}. */
export interface ScannedCommit extends CommitInfo {
  committerEmail: string;
  /** author date in seconds since the epoch (the rebase key: a rebase keeps author and author date) */
  authorEpoch: number;
  /** the scanned branch (or sha) it was reached from */
  source: string;
}

// Maintainers edit the subject ("Release Merge pull request #719 from iamkun/dev"), so it is searched, not anchored.
const MERGE_RE = /\bMerge pull request #(\d+) from (\S+)/;
const SQUASH_RE = /^(.*\S)\s*\(#(\d+)\)\s*$/;
const GITHUB_COMMITTER = /^noreply@github\.com$/i;

/** A commit whose message marks a merged PR (GitHub's merge or squash message). */
export interface MarkedCommit {
  number: number;
  style: 'merge' | 'squash';
  title: string;
  body: string;
  headRef: string | null;
}

/** Recognise GitHub's merge or squash message; null for any other commit. Pure. */
export function markOfCommit(c: CommitInfo): MarkedCommit | null {
  const m = MERGE_RE.exec(c.subject);
  if (m && c.parents.length >= 2) {
    const nl = c.body.indexOf('\n');
    const title = (nl === -1 ? c.body : c.body.slice(0, nl)).trim();
    const body = nl === -1 ? '' : c.body.slice(nl + 1).trim();
    return { number: Number(m[1]), style: 'merge', title: title || c.subject, body, headRef: m[2]! };
  }
  const s = SQUASH_RE.exec(c.subject);
  if (s && c.parents.length === 1) return { number: Number(s[2]), style: 'squash', title: s[1]!, body: c.body, headRef: null };
  // GitHub's merge commit with the "Pull request title" message setting: "<title> (#N)", two parents.
  if (s && c.parents.length >= 2) return { number: Number(s[2]), style: 'merge', title: s[1]!, body: c.body, headRef: null };
  return null;
}

/** Open a local repository (bare or with a work tree) for reading through the {@link Mirror} API. */
export async function openLocalRepo(repoPath: string, name = 'local/repo'): Promise<Mirror> {
  const gitDir = (await git(['rev-parse', '--absolute-git-dir'], { cwd: path.resolve(repoPath) })).trim();
  return new Mirror(name, gitDir);
}

/** Options of {@link scanMergedPrs}. */
export interface ScanOptions {
  /** branches to scan: names, or `*` for every branch; default the branch HEAD points to */
  branches?: string[] | '*';
  /** only these PR numbers */
  prs?: Set<number>;
  /** only commits at or after this date (git --since; a bare YYYY-MM-DD is midnight UTC) */
  since?: string;
  /** tips of an earlier scan: only commits not reachable from them (shas that no longer exist are ignored) */
  after?: string[];
  /** the N most recent merged PRs (by the committer date of their landing commit) */
  limit?: number;
  signal?: AbortSignal;
}

/** What a scan found. */
export interface ScanResult {
  /** merged PRs, newest landing first, one per PR number */
  prs: MergedPr[];
  /** PR refs in the scanned window that did not resolve to a merged PR, with the reason */
  unresolved: UnresolvedPr[];
  /** the branch tips scanned (the resume point of the next scan) */
  tips: string[];
  /** how many `refs/pull/N/head` the repository has */
  pullRefs: number;
  /** the branch HEAD points to, or null */
  defaultBranch: string | null;
}

/** A scanned branch tip. */
interface Tip {
  name: string;
  sha: string;
}

/**
 * Resolve `branches` to tips. Branches are `refs/heads/*`, and in a clone with a work tree also
 * `refs/remotes/origin/*`. @throws BranchNotFoundError for a named branch that does not exist.
 */
export async function resolveBranches(repo: Mirror, branches?: string[] | '*'): Promise<Tip[]> {
  if (!branches) {
    const sha = await repo.resolve('HEAD');
    return sha ? [{ name: (await repo.defaultBranch()) ?? 'HEAD', sha }] : [];
  }
  const out = await repo.git(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/', 'refs/remotes/origin/']);
  const all = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{40}) refs\/(?:heads|remotes\/origin)\/(.+)$/.exec(line);
    if (m && m[2] !== 'HEAD' && !all.has(m[2]!)) all.set(m[2]!, m[1]!);
  }
  if (branches === '*') return [...all].map(([name, sha]) => ({ name, sha }));
  const missing = branches.filter((b) => !all.has(b));
  if (missing.length) throw new BranchNotFoundError(repo.repo, missing);
  return branches.map((name) => ({ name, sha: all.get(name)! }));
}

const LOG_FORMAT = '--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cI%x00%at%x00%ce%x00%S%x00%B%x1e';

/** Parse `git log --source` output in {@link LOG_FORMAT}. */
export function parseScanLog(out: string): ScannedCommit[] {
  const commits: ScannedCommit[] = [];
  for (const rec of out.split('\x1e')) {
    const r = rec.replace(/^\n+/, '');
    if (!r) continue;
    const [sha, parents, an, ae, ad, cd, at, ce, src, ...msg] = r.split('\0');
    if (!sha || !/^[0-9a-f]{40}$/.test(sha)) continue;
    const message = msg.join('\0').replace(/\s+$/, '');
    const nl = message.indexOf('\n');
    commits.push({
      sha, parents: parents ? parents.split(' ').filter(Boolean) : [], authorName: an ?? '', authorEmail: ae ?? '', authorDate: ad ?? '',
      committerDate: cd ?? '', authorEpoch: Number(at), committerEmail: ce ?? '', source: src ?? '',
      subject: (nl === -1 ? message : message.slice(0, nl)).trim(), body: nl === -1 ? '' : message.slice(nl + 1).trim(),
    });
  }
  return commits;
}

/** `git log` over revisions given on stdin (no argv limit for thousands of PR refs). */
async function logRevs(repo: Mirror, revs: string[], opts: { since?: string; signal?: AbortSignal; source?: boolean } = {}): Promise<ScannedCommit[]> {
  if (!revs.some((r) => !r.startsWith('^'))) return [];
  const args = ['log', '--no-color', LOG_FORMAT, '--stdin'];
  if (opts.source) args.push('--source');
  if (opts.since) args.push(`--since=${opts.since}`);
  const out = await git(args, { gitDir: repo.path, input: `${revs.join('\n')}\n`, signal: opts.signal, timeoutMs: 10 * 60_000 });
  return parseScanLog(out);
}

/** First-parent chains of the tips within the window: where a squash commit made outside GitHub may sit. */
async function firstParentShas(repo: Mirror, tips: Tip[], exclude: string[], signal?: AbortSignal): Promise<Set<string>> {
  const set = new Set<string>();
  for (const t of tips) {
    const out = await git(['rev-list', '--first-parent', '--stdin'], { gitDir: repo.path, input: [t.sha, ...exclude.map((e) => `^${e}`)].join('\n') + '\n', signal, timeoutMs: 10 * 60_000 });
    for (const s of out.split('\n')) if (s) set.add(s);
  }
  return set;
}

/**
 * Merged PRs in the history of the scanned branches, newest landing first, one per PR number (a PR seen
 * several times — merged into `dev` then carried to `master`, cherry-picked to a release branch — keeps
 * its first landing; a marker commit wins over a rebase/pull-ref match). See the module comment for styles.
 * @throws BranchNotFoundError for a missing branch; GitError when the history cannot be read.
 */
export async function scanMergedPrs(repo: Mirror, opts: ScanOptions = {}): Promise<ScanResult> {
  const tips = await resolveBranches(repo, opts.branches);
  const after = [];
  for (const a of opts.after ?? []) if (await repo.commitExists(a)) after.push(a);
  // git reads a bare date as that day at the CURRENT time of day (approxidate): pin it to midnight UTC.
  const since = opts.since && /^\d{4}-\d{2}-\d{2}$/.test(opts.since) ? `${opts.since}T00:00:00Z` : opts.since;
  const names = new Map(tips.map((t) => [t.sha, t.name]));
  const commits = await logRevs(repo, [...tips.map((t) => t.sha), ...after.map((a) => `^${a}`)], { since, signal: opts.signal, source: true });
  for (const c of commits) c.source = names.get(c.source) ?? c.source;
  const heads = await repo.pullHeads();
  const firstParents = await firstParentShas(repo, tips, after, opts.signal);
  const marked = markedPrs(commits, firstParents, heads, opts.prs);
  const ctx: ResolveCtx = { repo, commits, byId: new Map(commits.map((c) => [c.sha, c])), tips, signal: opts.signal };
  const found = await fromPullRefs(ctx, heads, new Set(marked.keys()), opts.prs);
  const all = [...marked.values(), ...found.prs].sort((a, b) => Date.parse(b.mergedAt) - Date.parse(a.mergedAt) || b.number - a.number);
  const chosen = opts.limit !== undefined ? all.slice(0, opts.limit) : all;
  const prs: MergedPr[] = [];
  const unresolved = [...found.unresolved];
  // One `git merge-base` per merge commit (957 in pallets/click): a few at a time instead of one after another.
  for (const r of await mapConcurrent(chosen, 4, (pr) => completeMerge(ctx, pr))) {
    if ('reason' in r) unresolved.push(r);
    else prs.push(r);
  }
  return { prs, unresolved, tips: tips.map((t) => t.sha), pullRefs: heads.size, defaultBranch: await repo.defaultBranch() };
}

/** `fn` over `items` with at most `n` calls in flight; results in input order. Rejects with the first error. */
async function mapConcurrent<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** What the resolution steps share. */
interface ResolveCtx {
  repo: Mirror;
  commits: ScannedCommit[];
  byId: Map<string, ScannedCommit>;
  tips: Tip[];
  signal?: AbortSignal;
}

/** Marker commits → merged PRs (merge style: base and commit still to be completed), first landing per number. */
function markedPrs(commits: ScannedCommit[], firstParents: Set<string>, heads: Map<number, string>, prs?: Set<number>): Map<number, MergedPr> {
  const out = new Map<number, MergedPr>();
  // git log lists newest first: walking it backwards makes the first landing of a number win.
  for (let i = commits.length - 1; i >= 0; i--) {
    const c = commits[i]!;
    const m = markOfCommit(c);
    if (!m || out.has(m.number) || (prs && !prs.has(m.number))) continue;
    if (m.style === 'squash' && !firstParents.has(c.sha) && !GITHUB_COMMITTER.test(c.committerEmail)) continue;
    const merge = m.style === 'merge';
    out.set(m.number, {
      number: m.number, style: m.style, sha: c.sha, base: c.parents[0]!, commit: merge ? c.parents[1]! : c.sha,
      headSha: merge ? c.parents[1]! : heads.get(m.number) ?? null, headRef: m.headRef, branch: c.source || null,
      title: m.title, body: m.body, authorName: c.authorName, authorEmail: c.authorEmail, authorDate: c.authorDate, mergedAt: c.committerDate,
    });
  }
  return out;
}

/** Merge and pull-ref PRs: base = merge-base(first parent of the merging commit, head). */
async function completeMerge(ctx: ResolveCtx, pr: MergedPr): Promise<MergedPr | UnresolvedPr> {
  if (pr.style !== 'merge' && pr.style !== 'pull-ref') return pr;
  const landing = ctx.byId.get(pr.sha);
  const target = landing?.parents[0] ?? pr.base;
  const mb = (await ctx.repo.git(['merge-base', target, pr.commit], { signal: ctx.signal }).catch(() => '')).trim();
  if (!/^[0-9a-f]{40}$/.test(mb)) return { number: pr.number, reason: 'no-merge-base', detail: `${pr.commit.slice(0, 12)} and ${target.slice(0, 12)} have no common ancestor` };
  // A head branched from the target's tip merges without changes of its own: the merge commit has the head's
  // tree, so it is the PR's commit on the target branch, as before this scan looked at merge bases.
  return { ...pr, base: mb, commit: mb === target ? pr.sha : pr.commit };
}

/**
 * PRs known only from `refs/pull/N/head`: merged by a commit without GitHub's message (pull-ref), or
 * rebase-merged (every own commit landed with the same author, author date and patch-id, contiguously).
 */
async function fromPullRefs(ctx: ResolveCtx, heads: Map<number, string>, known: Set<number>, prs?: Set<number>): Promise<{ prs: MergedPr[]; unresolved: UnresolvedPr[] }> {
  const todo = [...heads].filter(([n]) => !known.has(n) && (!prs || prs.has(n)));
  const out: MergedPr[] = [];
  const unresolved: UnresolvedPr[] = [];
  if (todo.length === 0) return { prs: out, unresolved };
  // Commits of the PR heads that are not on the scanned branches: each PR's own commits.
  const off = await logRevs(ctx.repo, [...todo.map(([, h]) => h), ...ctx.tips.map((t) => `^${t.sha}`)], { signal: ctx.signal });
  const offById = new Map(off.map((c) => [c.sha, c]));
  const rebases: { number: number; own: ScannedCommit[] }[] = [];
  const headShas = new Set(heads.values());
  for (const [number, head] of todo) {
    if (ctx.byId.has(head)) {
      const r = await pullRefMerge(ctx, { number, head, headShas });
      if ('reason' in r) unresolved.push(r);
      else out.push(r);
      continue;
    }
    const own = ownCommits(offById, head);
    if (own.length === 0) continue; // on the branches but before the scanned window
    rebases.push({ number, own });
  }
  const landed = await matchRebases(ctx, rebases);
  for (const r of landed) ('reason' in r ? unresolved : out).push(r as never);
  return { prs: out, unresolved };
}

/** The PR's own commits, oldest first: the first-parent chain from `head` while off the scanned branches. */
function ownCommits(offById: Map<string, ScannedCommit>, head: string): ScannedCommit[] {
  const chain: ScannedCommit[] = [];
  for (let c = offById.get(head); c && chain.length <= 250; c = c.parents[0] ? offById.get(c.parents[0]) : undefined) chain.push(c);
  return chain.reverse();
}

/**
 * A head that is itself in the scanned history: find the commit that merged it, or, with none, a fast-forward
 * ({@link fastForward}).
 */
async function pullRefMerge(ctx: ResolveCtx, ref: { number: number; head: string; headShas: Set<string> }): Promise<MergedPr | UnresolvedPr> {
  const { number, head } = ref;
  const merging = ctx.commits.filter((c) => c.parents.slice(1).includes(head));
  const c = merging[merging.length - 1]; // the first merge of this head
  if (!c) return fastForward(ctx, ref);
  const m = markOfCommit(c);
  if (m && m.number !== number) return { number, reason: 'pull-ref-merged-as-other-pr', detail: `head ${head.slice(0, 12)} was merged as #${m.number} (${c.sha.slice(0, 12)})` };
  const own = (await ctx.repo.log(`${c.parents[0]!}..${head}`, { max: 250, signal: ctx.signal })).reverse();
  const first = own[0];
  const h = ctx.byId.get(head)!;
  return {
    number, style: 'pull-ref', sha: c.sha, base: c.parents[0]!, commit: head, headSha: head, headRef: null, branch: c.source || null,
    title: first?.subject ?? h.subject, body: bodyOf(own), authorName: h.authorName, authorEmail: h.authorEmail, authorDate: h.authorDate, mergedAt: c.committerDate,
  };
}

/** How far back a fast-forwarded PR's own commits are looked for (a PR of more commits is not inferred). */
const FAST_FORWARD_MAX_COMMITS = 30;

/**
 * A PR whose head landed as it was (`git merge --ff-only`, or GitHub's rebase button on an up-to-date branch):
 * git records no base, so it is inferred as the parent of the PR's own commits, taken as the first-parent
 * chain back from the head while the commits are the head author's, have one parent, and are neither another
 * PR's head nor a commit that marks a PR ("Merge pull request #N", "(#N)"). The PR's diff is then its own
 * commits; a maintainer's earlier direct pushes under the same author would be included (style `fast-forward`
 * on the event lets the funnel tell these apart).
 */
function fastForward(ctx: ResolveCtx, ref: { number: number; head: string; headShas: Set<string> }): MergedPr | UnresolvedPr {
  const h = ctx.byId.get(ref.head)!;
  const own: ScannedCommit[] = [];
  for (let c: ScannedCommit | undefined = h; c && own.length < FAST_FORWARD_MAX_COMMITS; c = ctx.byId.get(c.parents[0] ?? '')) {
    const boundary = c.parents.length !== 1 || c.authorEmail !== h.authorEmail || markOfCommit(c) !== null || (c !== h && ref.headShas.has(c.sha));
    if (boundary) break;
    own.push(c);
  }
  const first = own[own.length - 1];
  const base = first?.parents[0];
  if (!first || !base || !ctx.byId.has(base)) {
    return { number: ref.number, reason: 'pull-ref-fast-forward', detail: `refs/pull/${ref.number}/head ${ref.head.slice(0, 12)} is on the branch history without a merge point, and no base could be inferred from its own commits` };
  }
  own.reverse();
  return {
    number: ref.number, style: 'fast-forward', sha: h.sha, base, commit: h.sha, headSha: h.sha, headRef: null, branch: h.source || null,
    title: own[0]!.subject, body: bodyOf(own), authorName: h.authorName, authorEmail: h.authorEmail, authorDate: h.authorDate, mergedAt: h.committerDate,
  };
}

/** A PR description from its commits, as GitHub's squash button writes it (`* subject` then the body, per commit). */
function bodyOf(own: CommitInfo[]): string {
  if (own.length <= 1) return own[0]?.body ?? '';
  return own.map((c) => `* ${c.subject}${c.body ? `\n\n${c.body}` : ''}`).join('\n\n');
}

/** Rebase matching over all candidate PRs at once (one patch-id batch). */
async function matchRebases(ctx: ResolveCtx, rebases: { number: number; own: ScannedCommit[] }[]): Promise<(MergedPr | UnresolvedPr)[]> {
  const byKey = new Map<string, ScannedCommit[]>();
  for (const c of ctx.commits) {
    if (c.parents.length !== 1) continue;
    const k = `${c.authorEmail}\0${c.authorEpoch}`;
    byKey.set(k, [...(byKey.get(k) ?? []), c]);
  }
  const need = new Set<string>();
  const plans: { number: number; own: ScannedCommit[]; cands: ScannedCommit[][] }[] = [];
  const out: (MergedPr | UnresolvedPr)[] = [];
  for (const r of rebases) {
    const own = r.own.filter((c) => c.parents.length === 1);
    const cands = own.map((c) => byKey.get(`${c.authorEmail}\0${c.authorEpoch}`) ?? []);
    const hit = cands.filter((x) => x.length > 0).length;
    if (own.length === 0 || hit === 0) {
      out.push({ number: r.number, reason: 'pull-ref-not-landed', detail: `none of the ${r.own.length} commit(s) of refs/pull/${r.number}/head landed on the scanned branches` });
      continue;
    }
    plans.push({ number: r.number, own, cands });
    for (const c of own) need.add(c.sha);
    for (const cs of cands) for (const c of cs) need.add(c.sha);
  }
  const ids = await patchIds(ctx.repo, [...need], ctx.signal);
  for (const p of plans) out.push(landedRange(ctx, p, ids));
  return out;
}

/** The landed range of one PR, or why there is none. */
function landedRange(ctx: ResolveCtx, p: { number: number; own: ScannedCommit[]; cands: ScannedCommit[][] }, ids: Map<string, string>): MergedPr | UnresolvedPr {
  const landed = p.own.map((c, i) => p.cands[i]!.find((l) => ids.get(l.sha) !== undefined && ids.get(l.sha) === ids.get(c.sha)));
  const n = landed.filter(Boolean).length;
  if (n < p.own.length) {
    return { number: p.number, reason: n === 0 ? 'pull-ref-not-landed' : 'pull-ref-partly-landed', detail: `${n} of ${p.own.length} commit(s) of refs/pull/${p.number}/head landed with the same patch-id` };
  }
  const range = landed as ScannedCommit[];
  for (let i = 1; i < range.length; i++) {
    if (range[i]!.parents[0] !== range[i - 1]!.sha) {
      return { number: p.number, reason: 'rebase-not-contiguous', detail: `landed commits ${range.map((c) => c.sha.slice(0, 12)).join(', ')} are not one after another` };
    }
  }
  const first = range[0]!;
  const last = range[range.length - 1]!;
  if (!first.parents[0]) return { number: p.number, reason: 'no-merge-base', detail: `landed commit ${first.sha.slice(0, 12)} is a root commit` };
  const head = p.own[p.own.length - 1]!;
  return {
    number: p.number, style: 'rebase', sha: last.sha, base: first.parents[0], commit: last.sha, headSha: head.sha, headRef: null, branch: last.source || null,
    title: p.own[0]!.subject, body: bodyOf(p.own), authorName: head.authorName, authorEmail: head.authorEmail, authorDate: head.authorDate, mergedAt: last.committerDate,
  };
}

/** `git patch-id --stable` of non-merge commits, sha → patch-id (commits with an empty diff are absent). */
export async function patchIds(repo: Mirror, shas: string[], signal?: AbortSignal): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (let i = 0; i < shas.length; i += 200) {
    const chunk = shas.slice(i, i + 200);
    const patches = await git(['log', '--no-walk=unsorted', '--stdin', '-p', '--no-color', '--no-ext-diff', '--no-textconv', '--format=commit %H'], { gitDir: repo.path, input: `${chunk.join('\n')}\n`, signal, timeoutMs: 10 * 60_000 });
    const out = await git(['patch-id', '--stable'], { gitDir: repo.path, input: patches, signal });
    for (const line of out.split('\n')) {
      const [id, sha] = line.split(' ');
      if (id && sha) ids.set(sha, id);
    }
  }
  return ids;
}

/**
 * The landed range of a rebase merge known from an event (GitHub's `merge_commit_sha` of a rebase merge is the
 * LAST landed commit, so its first parent alone would keep only the last commit of the PR): when the k > 1
 * commits of `head` not reachable from `landing` have, in order, the patch-ids of the k commits ending at
 * `landing` on its first-parent chain, the range is `parent of the first → landing`. null otherwise (a merge or
 * squash commit, a one-commit PR, a head that is absent): the first parent is then the right base.
 * @throws GitError when git fails for another reason than an absent commit.
 */
export async function landedRangeOf(repo: Mirror, landing: string, head: string, signal?: AbortSignal): Promise<{ base: string; commit: string } | null> {
  if (!(await repo.commitExists(head)) || !(await repo.commitExists(landing))) return null;
  const own = (await repo.log(`${landing}..${head}`, { max: 251, signal })).reverse();
  if (own.length < 2 || own.length > 250 || own.some((c) => c.parents.length !== 1)) return null;
  const chain = (await repo.log(landing, { firstParent: true, max: own.length, signal })).reverse();
  if (chain.length !== own.length || chain.some((c) => c.parents.length !== 1)) return null;
  const ids = await patchIds(repo, [...own, ...chain].map((c) => c.sha), signal);
  if (!own.every((c, i) => ids.has(c.sha) && ids.get(c.sha) === ids.get(chain[i]!.sha))) return null;
  return { base: chain[0]!.parents[0]!, commit: landing };
}

/** The merged PR `number` in the history of the default branch, or null. */
export async function findMergedPr(repo: Mirror, number: number, signal?: AbortSignal): Promise<MergedPr | null> {
  const { prs } = await scanMergedPrs(repo, { prs: new Set([number]), signal });
  return prs[0] ?? null;
}

/**
 * The task's commit range recorded on a git-history event: `base_sha → commit`. For merge/pull-ref the
 * commit is the merge commit when base_sha is its first parent (the head was up to date: same tree), else
 * the PR head; for squash/rebase the merge commit (squash commit, last landed commit). null for events of
 * other sources, whose base_sha is the base branch tip at event time, not a base commit.
 * @throws MissingCommitError when the merge commit is not in the mirror.
 */
export async function taskRangeOfEvent(mirror: Mirror, ev: PullRequestEvent): Promise<{ base: string; commit: string } | null> {
  if (ev.payload_shape !== 'git' || !ev.merge_style || !ev.base_sha || !ev.merge_commit_sha) return null;
  if (ev.merge_style !== 'merge' && ev.merge_style !== 'pull-ref') return { base: ev.base_sha, commit: ev.merge_commit_sha };
  if (!ev.head_sha) return null;
  const upToDate = (await mirror.firstParent(ev.merge_commit_sha)) === ev.base_sha;
  return { base: ev.base_sha, commit: upToDate ? ev.merge_commit_sha : ev.head_sha };
}
