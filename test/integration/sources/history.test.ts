import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHistoryRepo, type HistoryRepo } from '../../helpers/git-repos.js';
import { openLocalRepo, scanMergedPrs, type MergedPr } from '../../../operators/pr/history.js';
import { GitSource } from '../../../connectors/sources/git.js';
import { MirrorCache } from '../../../operators/pr/mirror.js';
import { filterStage, PATCH_SEEN_STORE } from '../../../operators/filter.js';
import { tempStore } from '../../helpers/store.js';
import type { Mirror } from '../../../operators/pr/mirror.js';
import type { PrCandidate, PullRequestEvent } from '../../../schemas/types.gen.js';
import type { SourceItem } from '../../../connectors/sources/types.js';

async function collect(src: GitSource, cursor?: string): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for await (const it of src.items({ signal: new AbortController().signal, follow: false, cursor })) out.push(it);
  return out;
}
const events = (items: SourceItem[]): PullRequestEvent[] => items.flatMap((i) => (i.kind === 'event' ? [i.event] : []));
const byNumber = (prs: MergedPr[]) => new Map(prs.map((p) => [p.number, p]));

describe('merged PRs in every merge style (generated history)', () => {
  let h: HistoryRepo;
  let repo: Mirror;
  let tmp: string;
  beforeAll(async () => {
    h = await createHistoryRepo();
    repo = await openLocalRepo(h.path, h.repo);
    tmp = await mkdtemp(path.join(tmpdir(), 'history-'));
  });
  afterAll(async () => {
    await h.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });

  const git = (...args: string[]) => execFileSync('git', args, { cwd: h.path, encoding: 'utf8' }).trim();
  const diffFiles = (base: string, commit: string) => git('diff', '--name-only', base, commit).split('\n').filter(Boolean).sort();

  it('finds merge, squash, rebase and pull-ref PRs anywhere in main\'s history, with the base commit and the PR\'s own diff', async () => {
    const scan = await scanMergedPrs(repo);
    const got = byNumber(scan.prs);
    // main reaches #7, #8, #10 through the dev → main merges; #6 sits on release/1.x only.
    expect([...got.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 13]);
    const expectStyle: Record<number, string> = { 1: 'merge', 2: 'squash', 3: 'rebase', 4: 'pull-ref', 5: 'merge', 7: 'merge', 8: 'squash', 10: 'rebase', 13: 'fast-forward' };
    for (const [n, style] of Object.entries(expectStyle)) {
      const want = h.prs.find((p) => p.number === Number(n))!;
      const pr = got.get(Number(n))!;
      expect({ n, style: pr.style, base: pr.base, commit: pr.commit, sha: pr.sha }).toEqual({ n, style, base: want.base, commit: want.commit, sha: want.landingSha });
      expect(diffFiles(pr.base, pr.commit)).toEqual(want.files);
    }
    // #5 forked before #1–#4 landed: its base is that old commit, not main's tip, so none of their files leak in.
    const five = got.get(5)!;
    expect(five.base).not.toBe(git('rev-parse', `${five.sha}^1`));
    expect(got.get(8)!.branch).toBe('main');
    expect(got.get(3)!.title).toBe('Change 1 of PR 3');
    expect(got.get(3)!.headSha).toBe(h.prs.find((p) => p.number === 3)!.headSha);
    expect(scan.pullRefs).toBe(13);
  });

  it('reports what did not resolve: a closed PR; a contributor\'s "(#101)" commit on a side branch is no PR; a fast-forward stops at the merge before it', async () => {
    const scan = await scanMergedPrs(repo);
    const why = new Map(scan.unresolved.map((u) => [u.number, u.reason]));
    expect(why.get(12)).toBe('pull-ref-not-landed');
    expect(why.has(13)).toBe(false);
    // #13's two commits landed on top of #11's dev → main merge commit: that merge is the inferred base, not part of the PR.
    const ff = scan.prs.find((p) => p.number === 13)!;
    expect(ff.title).toBe('Change 1 of PR 13');
    expect(ff.base).toBe(h.prs.find((p) => p.number === 13)!.base);
    expect(git('log', '-1', '--format=%s', ff.base)).toMatch(/^Merge pull request #11 /);
    expect(scan.prs.some((p) => p.number === 101)).toBe(false);
  });

  it('branches= selects what is scanned: a PR into a release branch, and one event per PR number across branches', async () => {
    const rel = byNumber((await scanMergedPrs(repo, { branches: ['release/1.x'] })).prs);
    expect([...rel.keys()].sort((a, b) => a - b)).toEqual([1, 2, 6]);
    const six = h.prs.find((p) => p.number === 6)!;
    expect(rel.get(6)).toMatchObject({ style: 'squash', base: six.base, commit: six.commit, branch: 'release/1.x' });
    expect(diffFiles(rel.get(6)!.base, rel.get(6)!.commit)).toEqual(six.files);
    const all = (await scanMergedPrs(repo, { branches: '*' })).prs;
    expect(all.filter((p) => p.number === 2)).toHaveLength(1);
    // #2 landed twice (squash on main, cherry-pick on release/1.x): the first landing is kept.
    expect(all.find((p) => p.number === 2)!.sha).toBe(h.prs.find((p) => p.number === 2)!.landingSha);
    expect(new Set(all.map((p) => p.number))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13]));
    await expect(scanMergedPrs(repo, { branches: ['nope'] })).rejects.toThrow(/branch\(es\) not found: nope/);
  });

  it('the git source emits merge_style and the task base; limit and prs select; bad input is one item', async () => {
    const mirrors = new MirrorCache({ dataDir: tmp, network: false });
    const items = await collect(new GitSource('git:x', `${h.path}?branches=*`, mirrors));
    const evs = events(items);
    expect(evs).toHaveLength(12);
    expect(new Set(evs.map((e) => e.pr_id)).size).toBe(12);
    const three = evs.find((e) => e.number === 3)!;
    const want3 = h.prs.find((p) => p.number === 3)!;
    expect(three).toMatchObject({ merge_style: 'rebase', base_sha: want3.base, merge_commit_sha: want3.commit, head_sha: want3.headSha, base_ref: 'main' });
    expect(evs.find((e) => e.number === 6)).toMatchObject({ merge_style: 'squash', base_ref: 'release/1.x' });
    const skipped = items.flatMap((i) => (i.kind === 'skipped' ? [i.reason] : []));
    expect(skipped.sort()).toEqual(['pull-ref-not-landed']);
    expect(evs.find((e) => e.number === 13)).toMatchObject({ merge_style: 'fast-forward' });

    const latest = events(await collect(new GitSource('git:x', `${h.path}?limit=2`, mirrors)));
    expect(latest.map((e) => e.number)).toEqual([13, 11]);
    const asked = await collect(new GitSource('git:x', `${h.path}?prs=3,12,99`, mirrors));
    expect(events(asked).map((e) => e.number)).toEqual([3]);
    const bad = asked.flatMap((i) => (i.kind === 'bad' ? [i] : []));
    expect(bad.map((b) => [b.reason, b.origin])).toEqual([['pr-not-found', 'git:x#12'], ['pr-not-found', 'git:x#99']]);
    expect(bad[0]!.detail).toMatch(/none of the 1 commit\(s\) of refs\/pull\/12\/head landed/);
    expect(bad[1]!.detail).toMatch(/no refs\/pull\/99\/head/);

    const noBranch = await collect(new GitSource('git:x', `${h.path}?branches=gone`, mirrors));
    expect(noBranch).toEqual([expect.objectContaining({ kind: 'bad', reason: 'branch-not-found', origin: 'git:x' })]);
    const notRepo = await collect(new GitSource('git:x', `${tmp}?repo=a/b`, mirrors));
    expect(notRepo).toEqual([expect.objectContaining({ kind: 'bad', reason: 'history-unreadable' })]);
  });

  it('resumes after its cursor: a rebase merge landing later is found, nothing earlier again', async () => {
    const mirrors = new MirrorCache({ dataDir: tmp, network: false });
    const first = await collect(new GitSource('git:x', h.path, mirrors));
    const cursor = first.map((i) => i.cursor).filter(Boolean).pop()!;
    expect(cursor.split(' ')).toHaveLength(1);
    git('checkout', '-q', '-b', 'late', 'main');
    execFileSync('git', ['-c', 'user.name=L', '-c', 'user.email=l@example.com', 'commit', '-q', '--allow-empty', '-m', 'placeholder'], { cwd: h.path });
    git('checkout', '-q', 'main');
    git('cherry-pick', h.prs.find((p) => p.number === 12)!.headSha);
    try {
      const next = await collect(new GitSource('git:x', h.path, mirrors), cursor);
      expect(events(next).map((e) => [e.number, e.merge_style])).toEqual([[12, 'rebase']]);
    } finally {
      git('reset', '-q', '--hard', 'HEAD~1');
      git('branch', '-q', '-D', 'late');
    }
  });

  it('the filter diffs the recorded range: base commit and PR diff downstream', async () => {
    const mirrors = new MirrorCache({ dataDir: path.join(tmp, 'f'), network: false, localPaths: [h.path] });
    const evs = events(await collect(new GitSource('git:x', `${h.path}?branches=*`, mirrors)));
    const stage = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), testCreator: true });
    for (const n of [3, 5, 6]) {
      const ev = evs.find((e) => e.number === n)!;
      const o = await stage.handle({ key: ev.pr_id, value: ev, origin: { topic: 'pr.events', partition: 0, offset: String(n) }, attempt: 1, signal: new AbortController().signal });
      expect(o.kind, JSON.stringify(o)).toBe('accepted');
      const c = (o as { value: PrCandidate }).value.candidate;
      const want = h.prs.find((p) => p.number === n)!;
      expect(c).toMatchObject({ parent_commit: want.base, pr_commit: want.commit, merge_style: ev.merge_style });
      expect(c.files.map((f) => f.path).sort()).toEqual(want.files);
    }
    // A GitHub event of the rebase merge (no merge_style, base_sha = the base branch tip at event time,
    // merge_commit_sha = the LAST landed commit): the filter still takes the whole landed range.
    const three = evs.find((e) => e.number === 3)!;
    const gh: PullRequestEvent = { ...three, source: 'gharchive', payload_shape: 'full', merge_style: null, base_sha: git('rev-parse', 'main') };
    const o = await stage.handle({ key: gh.pr_id, value: gh, origin: { topic: 'pr.events', partition: 0, offset: '99' }, attempt: 1, signal: new AbortController().signal });
    const want3 = h.prs.find((p) => p.number === 3)!;
    expect(o.kind === 'accepted' && o.value.candidate).toMatchObject({ parent_commit: want3.base, pr_commit: want3.commit, merge_style: null });
    await stage.close?.();
  });
});
