import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { GitSource, parseGitSpec, repoNameFromLocation } from '../../../connectors/sources/git.js';
import { openSource } from '../../../connectors/sources/index.js';
import { MirrorCache } from '../../../operators/pr/mirror.js';
import type { PullRequestEvent } from '../../../schemas/types.gen.js';
import type { Source, SourceItem } from '../../../connectors/sources/types.js';

async function collect(src: Source, cursor?: string): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for await (const it of src.items({ signal: new AbortController().signal, follow: false, cursor })) out.push(it);
  return out;
}
const events = (items: SourceItem[]): PullRequestEvent[] => items.flatMap((i) => (i.kind === 'event' ? [i.event] : []));

describe('git: URI parsing', () => {
  it('parses parameters and rejects bad ones', () => {
    expect(parseGitSpec('/r?prs=1,2&since=2024-01-02&limit=3&repo=a/b')).toMatchObject({ location: '/r', since: '2024-01-02', limit: 3, repo: 'a/b' });
    expect(() => parseGitSpec('/r?prs=x')).toThrow(/prs/);
    expect(() => parseGitSpec('/r?since=yesterday')).toThrow(/since/);
    expect(() => parseGitSpec('/r?limit=0')).toThrow(/limit/);
    expect(() => parseGitSpec('/r?colour=blue')).toThrow(/unknown parameter/);
  });
  it('names the repository from the last two components', () => {
    expect(repoNameFromLocation('/data/iamkun/dayjs.git')).toBe('iamkun/dayjs');
    expect(repoNameFromLocation('https://github.com/pallets/click.git')).toBe('pallets/click');
    expect(repoNameFromLocation('git@github.com:tj/commander.js.git')).toBe('tj/commander.js');
  });
});

describe.each(['python', 'javascript'] as const)('git source on a generated %s repository', (language) => {
  let repo: GeneratedRepo;
  let tmp: string;
  let mirrors: MirrorCache;
  beforeAll(async () => {
    repo = await createRepo({ language });
    tmp = await mkdtemp(path.join(tmpdir(), 'gitsrc-'));
    mirrors = new MirrorCache({ dataDir: tmp, network: false });
  });
  afterAll(async () => {
    await repo.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });

  it('finds every merged PR in both styles, oldest first, with commits, head, title, body and linked issues', async () => {
    const src = openSource(`git:${repo.path}`, { dataDir: tmp, mirrors });
    const evs = events(await collect(src));
    expect(evs.map((e) => e.number)).toEqual(repo.prs.map((p) => p.number));
    for (const pr of repo.prs) {
      const e = evs.find((x) => x.number === pr.number)!;
      expect(e).toMatchObject({
        pr_id: `${repo.repo}#${pr.number}`, repo: repo.repo, source: 'git', payload_shape: 'git', action: 'closed', merged: true,
        merge_commit_sha: pr.prCommit, base_sha: pr.parentCommit, head_sha: pr.headSha, base_ref: 'main', title: pr.title, body: pr.body,
        clone_url: repo.path, source_event_id: pr.prCommit,
      });
    }
    const merge = evs.find((e) => e.number === 1)!;
    expect(merge.head_ref).toBe('contributor1/fix-clamp');
    expect(merge.user_login).toBe('contributor1');
    expect(merge.linked_issues).toEqual([{ number: 101, title: null, body: null, source: 'commit' }]);
    const bot = evs.find((e) => e.number === 5)!;
    expect(bot).toMatchObject({ user_login: 'dependabot[bot]', user_type: 'Bot' });
  });

  it('limit=N gives the N most recent, most recent first; prs= selects; since= cuts by merge date', async () => {
    expect(events(await collect(new GitSource('git:x', `${repo.path}?limit=2`, mirrors))).map((e) => e.number)).toEqual([7, 6]);
    expect(events(await collect(new GitSource('git:x', `${repo.path}?prs=2,6`, mirrors))).map((e) => e.number)).toEqual([2, 6]);
    const all = events(await collect(new GitSource('git:x', repo.path, mirrors)));
    const day = all[4]!.merged_at!.slice(0, 10);
    const later = all.filter((e) => e.merged_at!.slice(0, 10) >= day).map((e) => e.number);
    expect(events(await collect(new GitSource('git:x', `${repo.path}?since=${day}`, mirrors))).map((e) => e.number)).toEqual(later);
    expect(later.length).toBeLessThan(all.length);
  });

  it('resumes after its cursor, and names the repository from the origin remote', async () => {
    const items = await collect(new GitSource('git:x', repo.path, mirrors));
    const rest = events(await collect(new GitSource('git:x', repo.path, mirrors), items[2]!.cursor));
    expect(rest.map((e) => e.number)).toEqual([4, 5, 6, 7]);
    const clone = path.join(tmp, 'clone');
    execFileSync('git', ['clone', '-q', repo.path, clone]);
    execFileSync('git', ['remote', 'set-url', 'origin', 'https://github.com/octo/renamed.git'], { cwd: clone });
    const evs = events(await collect(new GitSource('git:x', `${clone}?prs=1`, mirrors)));
    expect(evs[0]!.pr_id).toBe('octo/renamed#1');
    expect(evs[0]!.clone_url).toBe(clone);
  });

  it('follow mode picks up a PR merged after the first scan', async () => {
    const ac = new AbortController();
    const src = new GitSource('git:x', `${repo.path}?poll=0.02`, mirrors);
    const seen: number[] = [];
    let added = false;
    for await (const it of src.items({ signal: ac.signal, follow: true })) {
      if (it.kind === 'event') seen.push(it.event.number);
      if (it.kind === 'event' && it.event.number === 7 && !added) {
        added = true;
        await writeFile(path.join(repo.path, 'NOTES.txt'), 'more\n');
        execFileSync('git', ['add', 'NOTES.txt'], { cwd: repo.path });
        execFileSync('git', ['-c', 'user.name=M', '-c', 'user.email=m@example.com', 'commit', '-q', '-m', 'Add notes (#8)'], { cwd: repo.path });
      }
      if (it.kind === 'event' && it.event.number === 8) ac.abort();
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    execFileSync('git', ['reset', '-q', '--hard', 'HEAD~1'], { cwd: repo.path });
  });
});

describe('git: branches=', () => {
  it('parses * and lists, refuses option-like or malformed names', () => {
    expect(parseGitSpec('/r?branches=*').branches).toBe('*');
    expect(parseGitSpec('/r?branches=main,release/1.x').branches).toEqual(['main', 'release/1.x']);
    expect(parseGitSpec('/r').branches).toBeUndefined();
    expect(() => parseGitSpec('/r?branches=--all')).toThrow(/branches/);
    expect(() => parseGitSpec('/r?branches=a..b')).toThrow(/branches/);
    expect(() => parseGitSpec('/r?branches=')).toThrow(/branches/);
  });
});
