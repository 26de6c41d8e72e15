import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { filterStage, PATCH_SEEN_STORE } from '../../../operators/filter.js';
import { tempStore } from '../../helpers/store.js';
import type { KeyedStore } from '../../../streams/store.js';
import { MirrorCache } from '../../../operators/pr/mirror.js';
import { GitSource } from '../../../connectors/sources/git.js';
import { GhArchiveSource } from '../../../connectors/sources/gharchive.js';
import type { PrCandidate, PullRequestEvent } from '../../../schemas/types.gen.js';
import type { Envelope, Outcome } from '../../../streams/types.js';
import type { Stage } from '../../../streams/stage.js';

const env = (value: PullRequestEvent, offset = 0): Envelope<PullRequestEvent> => ({ key: value.pr_id, value, origin: { topic: 'pr.events', partition: 0, offset: String(offset) }, attempt: 1, signal: new AbortController().signal });

async function gitEvents(repo: GeneratedRepo, mirrors: MirrorCache): Promise<PullRequestEvent[]> {
  const out: PullRequestEvent[] = [];
  for await (const it of new GitSource('git:x', repo.path, mirrors).items({ signal: new AbortController().signal, follow: false })) if (it.kind === 'event') out.push(it.event);
  return out;
}
const reason = (o: Outcome<PrCandidate>) => (o.kind === 'rejected' ? o.reason : o.kind);

describe.each(['python', 'javascript'] as const)('filter on a generated %s repository', (language) => {
  let repo: GeneratedRepo;
  let dataDir: string;
  let mirrors: MirrorCache;
  let stage: Stage<PullRequestEvent, PrCandidate>;
  let evs: PullRequestEvent[];
  let seen: KeyedStore & { close(): Promise<void> };
  beforeAll(async () => {
    repo = await createRepo({ language });
    dataDir = await mkdtemp(path.join(tmpdir(), 'filter-'));
    mirrors = new MirrorCache({ dataDir, network: false, localPaths: [repo.path] });
    seen = await tempStore(PATCH_SEEN_STORE);
    stage = filterStage({ mirrors, seen });
    evs = await gitEvents(repo, mirrors);
  });
  afterAll(async () => {
    await seen.close();
    await repo.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('decides every PR kind: fixes with tests accepted in both merge styles, the rest rejected by reason', async () => {
    const outcomes = await Promise.all(evs.map((e, i) => stage.handle(env(e, i)))); // concurrently, as the runtime would
    expect(Object.fromEntries(evs.map((e, i) => [e.number, reason(outcomes[i]!)]))).toEqual({
      1: 'accepted', 2: 'accepted', 3: 'no-tests', 4: 'docs-config-only', 5: 'bot-author', 6: 'no-tests', 7: 'unsupported-language',
    });
  });

  it('a merge-commit PR: diff = first parent..merge commit (the net change), files split into code and tests', async () => {
    const pr = repo.prs.find((p) => p.number === 1)!;
    const o = await stage.handle(env(evs.find((e) => e.number === 1)!));
    expect(o.kind).toBe('accepted');
    if (o.kind !== 'accepted') return;
    const c = o.value.candidate;
    expect(c).toMatchObject({ pr_id: `${repo.repo}#1`, language, pr_commit: pr.prCommit, parent_commit: pr.parentCommit, head_sha: pr.headSha, clone_url: repo.path, title: pr.title, license: 'MIT' });
    expect(c.diff).toBe(execFileSync('git', ['diff', pr.parentCommit, pr.prCommit], { cwd: repo.path }).toString());
    expect(c.files.filter((f) => f.kind === 'code').map((f) => f.path)).toEqual(pr.codeFiles);
    expect(c.files.filter((f) => f.kind === 'test').map((f) => f.path)).toEqual(pr.testFiles);
    expect(c.files.find((f) => f.kind === 'test')).toMatchObject({ status: 'added', hunks: 1, binary: false, vendored: false });
    expect(c.size).toMatchObject({ files: 2, hunks: 2 });
    expect(c.size.lines_added).toBeGreaterThan(0);
    expect(c.linked_issues.map((l) => l.number)).toEqual([101]);
    expect(c.patch_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(o.value.provenance).toEqual([expect.objectContaining({ stage: 'filter', method: 'rules' })]);
    expect(o.meta).toMatchObject({ repo: repo.repo, language, method: 'rules' });
  });

  it('a squash PR: parent = the squash commit\'s parent', async () => {
    const pr = repo.prs.find((p) => p.number === 2)!;
    const o = await stage.handle(env(evs.find((e) => e.number === 2)!));
    expect(o.kind === 'accepted' && o.value.candidate).toMatchObject({ pr_commit: pr.prCommit, parent_commit: pr.parentCommit, title: pr.title });
  });

  it('replaying the same pr_id is not a duplicate; the same patch under another pr_id is', async () => {
    const e1 = evs.find((e) => e.number === 1)!;
    expect((await stage.handle(env(e1))).kind).toBe('accepted');
    const fork = { ...e1, pr_id: `octo/fork#${e1.number}`, repo: 'octo/fork' };
    const o = await stage.handle(env(fork));
    expect(o).toMatchObject({ kind: 'rejected', reason: 'duplicate', detail: expect.stringContaining(e1.pr_id) });
  });

  it('the duplicate memory is the store, not the stage: a new stage instance on the same store still knows the hash', async () => {
    const again = filterStage({ mirrors, seen });
    const e2 = evs.find((e) => e.number === 2)!;
    expect(await again.handle(env({ ...e2, pr_id: 'octo/fork#2', repo: 'octo/fork' }))).toMatchObject({ reason: 'duplicate' });
  });

  it('no test change is accepted when an LLM test creator is configured; size limits are configurable', async () => {
    const s = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), testCreator: true });
    expect((await s.handle(env(evs.find((e) => e.number === 3)!))).kind).toBe('accepted');
    const small = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), maxFiles: 1 });
    expect(await small.handle(env(evs.find((e) => e.number === 1)!))).toMatchObject({ reason: 'too-large', detail: expect.stringContaining('2 files') });
    const few = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), maxChangedLines: 3 });
    expect(await few.handle(env(evs.find((e) => e.number === 1)!))).toMatchObject({ reason: 'too-large' });
  });

  it('a trimmed event (no merge sha, title, merged flag) is completed from git', async () => {
    const pr = repo.prs.find((p) => p.number === 2)!;
    const e = evs.find((x) => x.number === 2)!;
    const trimmed: PullRequestEvent = { ...e, source: 'gharchive', payload_shape: 'trimmed', action: 'closed', merged: null, merge_commit_sha: null, title: null, body: null, base_sha: null, user_login: 'contributor2' };
    const s = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE) });
    const o = await s.handle(env(trimmed));
    expect(o.kind === 'accepted' && o.value.candidate).toMatchObject({ pr_commit: pr.prCommit, parent_commit: pr.parentCommit, title: pr.title, body: pr.body });
    // a trimmed "closed" for a PR that never landed is not merged
    expect(await s.handle(env({ ...trimmed, number: 99, pr_id: `${repo.repo}#99` }))).toMatchObject({ reason: 'not-merged' });
  });

  it('not-merged needs no repository; commits gone from the mirror; unavailable repositories', async () => {
    const e = evs.find((x) => x.number === 1)!;
    const s = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE) });
    expect(await s.handle(env({ ...e, merged: false, clone_url: '/nonexistent' }))).toMatchObject({ kind: 'rejected', reason: 'not-merged' });
    expect(await s.handle(env({ ...e, merge_commit_sha: 'deadbeef'.repeat(5) }))).toMatchObject({ kind: 'rejected', reason: 'commits-missing' });
    expect(await s.handle(env({ ...e, repo: 'gone/away', pr_id: 'gone/away#1', clone_url: 'https://github.com/gone/away.git' }))).toMatchObject({ kind: 'rejected', reason: 'repo-unavailable' });
  });
});

describe('the diff a candidate carries', () => {
  it('is the diff the rules measured: a small fix with a regenerated lockfile and vendored files stays small; the bound is enforced', async () => {
    const lock = JSON.stringify({ lockfileVersion: 3, packages: Object.fromEntries(Array.from({ length: 12_000 }, (_, i) => [`node_modules/pkg-${i}`, { version: `1.0.${i}`, integrity: `sha512-${'x'.repeat(64)}` }])) }, null, 2);
    const repo = await createRepo({ language: 'javascript', prs: [{ number: 1, style: 'squash', kind: 'fix', extraFiles: { 'package-lock.json': lock, 'vendor/lib.js': 'module.exports = 1;\n'.repeat(500) } }] });
    const dataDir = await mkdtemp(path.join(tmpdir(), 'filter-diff-'));
    const seen = await tempStore(PATCH_SEEN_STORE);
    try {
      const mirrors = new MirrorCache({ dataDir, network: false, localPaths: [repo.path] });
      const [e] = await gitEvents(repo, mirrors);
      const pr = repo.prs[0]!;
      expect(lock.length).toBeGreaterThan(1 << 20); // the lockfile alone would break Kafka's 1 MiB record limit
      const o = await filterStage({ mirrors, seen }).handle(env(e!));
      expect(o.kind).toBe('accepted');
      if (o.kind !== 'accepted') return;
      const c = o.value.candidate;
      expect(c.diff).toBe(execFileSync('git', ['diff', pr.parentCommit, pr.prCommit, '--', ...pr.codeFiles, ...pr.testFiles], { cwd: repo.path }).toString());
      expect(c.diff).not.toContain('package-lock.json');
      expect(c.diff).not.toContain('vendor/lib.js');
      expect(Buffer.byteLength(c.diff)).toBeLessThan(4096);
      // the file list still names every changed file, flagged
      expect(c.files.map((f) => f.path).sort()).toEqual([...pr.codeFiles, ...pr.testFiles, 'package-lock.json', 'vendor/lib.js'].sort());
      const bytes = Buffer.byteLength(c.diff);
      const tight = await filterStage({ mirrors, seen, maxDiffBytes: bytes - 1 }).handle(env({ ...e!, pr_id: 'octo/other#1' }));
      expect(tight).toMatchObject({ kind: 'rejected', reason: 'too-large', detail: `diff of the counted files is ${bytes} bytes (limit ${bytes - 1})` });
    } finally {
      await seen.close();
      await repo.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('filter licence rule', () => {
  it('rejects a GPL repository (licence from the event, or from the LICENSE file), unless the setting allows it', async () => {
    const repo = await createRepo({ language: 'python', repo: 'acme/gpl-lib', license: 'GPL-3.0', prs: [{ number: 1, style: 'squash', kind: 'fix' }] });
    const dataDir = await mkdtemp(path.join(tmpdir(), 'filter-lic-'));
    try {
      const mirrors = new MirrorCache({ dataDir, network: false, localPaths: [repo.path] });
      const [e] = await gitEvents(repo, mirrors);
      const s = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE) });
      expect(await s.handle(env(e!))).toMatchObject({ reason: 'license-not-permissive', detail: expect.stringContaining('GPL-3.0') });
      expect(await s.handle(env({ ...e!, license: 'AGPL-3.0', clone_url: '/nonexistent' }))).toMatchObject({ reason: 'license-not-permissive' });
      expect((await s.handle(env({ ...e!, license: 'MIT' }))).kind).toBe('accepted'); // the event's licence wins when known
      // The rule is a setting: `any`, or a list of SPDX ids (SWE-bench itself includes GPL/LGPL projects).
      expect((await filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), licenses: 'any' }).handle(env(e!))).kind).toBe('accepted');
      const list = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE), licenses: ['MIT', 'LGPL-2.1'] });
      expect(await list.handle(env(e!))).toMatchObject({ reason: 'license-not-allowed', detail: 'license GPL-3.0 (from the licence file)' });
      expect((await list.handle(env({ ...e!, license: 'LGPL-2.1-only' }))).kind).toBe('accepted');
    } finally {
      await repo.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

const GHA = path.resolve(__dirname, '../../fixtures/gharchive');

describe('GH Archive → filter (repositories not available offline)', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'filter-gha-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  async function run(file: string) {
    const mirrors = new MirrorCache({ dataDir, network: false });
    const stage = filterStage({ mirrors, seen: await tempStore(PATCH_SEEN_STORE) });
    const counts: Record<string, number> = {};
    let events = 0;
    let merged = 0;
    let i = 0;
    for await (const it of new GhArchiveSource(`gharchive:${file}`, file).items({ signal: new AbortController().signal, follow: false })) {
      if (it.kind !== 'event') continue;
      events++;
      if (it.event.merged) merged++;
      const o = await stage.handle(env(it.event, i++));
      const r = reason(o);
      counts[r] = (counts[r] ?? 0) + 1;
    }
    await stage.close?.();
    return { events, merged, counts };
  }

  it('2015-01-01-12: 367 events, 217 not-merged; the 150 merged reach the merged-PR rules and end without a clone', async () => {
    const r = await run(path.join(GHA, '2015-01-01-12.json.gz'));
    expect(r.events).toBe(367);
    expect(r.merged).toBe(150);
    expect(r.counts['not-merged']).toBe(217);
    const rest = Object.entries(r.counts).filter(([k]) => k !== 'not-merged');
    expect(rest.reduce((s, [, n]) => s + n, 0)).toBe(150);
    // Network is off: every merged PR that passes the author/licence rules ends as repo-unavailable (rejected, not retried).
    expect(Object.keys(Object.fromEntries(rest)).every((k) => ['repo-unavailable', 'bot-author', 'license-not-permissive'].includes(k))).toBe(true);
    expect(r.counts['repo-unavailable']).toBeGreaterThan(100);
    console.log('2015-01-01-12 filter outcomes', JSON.stringify(r.counts));
  });

  it('2021-07-21 sample: 64 events, 39 not-merged, 25 merged', async () => {
    const r = await run(path.join(GHA, '2021-07-21-06-to-09.json.gz'));
    expect(r.events).toBe(64);
    expect(r.merged).toBe(25);
    expect(r.counts['not-merged']).toBe(39);
    console.log('2021 sample filter outcomes', JSON.stringify(r.counts));
  });
});
