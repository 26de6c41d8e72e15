import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { MirrorCache, MissingCommitError, RepoUnavailableError } from '../../../operators/pr/mirror.js';

async function tarNames(buf: Buffer): Promise<string[]> {
  const ex = tar.extract();
  const names: string[] = [];
  ex.on('entry', (h, stream, next) => {
    if (h.type === 'file') names.push(h.name);
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((r) => ex.on('finish', () => r()));
  Readable.from(buf).pipe(ex);
  await done;
  return names.sort();
}

describe('mirror cache on a generated repository', () => {
  let repo: GeneratedRepo;
  let dataDir: string;
  beforeAll(async () => {
    repo = await createRepo({ language: 'python' });
    dataDir = await mkdtemp(path.join(tmpdir(), 'mirrors-'));
  });
  afterAll(async () => {
    await repo.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('clones once under <dataDir>/mirrors/<owner>/<repo>.git when many callers ask at once (in-process and across cache instances)', async () => {
    const a = new MirrorCache({ dataDir, network: false, localPaths: [tmpdir()] });
    const b = new MirrorCache({ dataDir, network: false, localPaths: [tmpdir()] }); // a second instance stands for a second process: only the lock file serialises it
    const want = [repo.prs[0]!.prCommit];
    const mirrors = await Promise.all([...Array(4)].map((_, i) => (i % 2 ? b : a).ensure(repo.repo, repo.path, { want })));
    const expected = path.join(dataDir, 'mirrors', 'acme', 'mathlib-python.git');
    expect(new Set(mirrors.map((m) => m.path))).toEqual(new Set([expected]));
    expect(readdirSync(path.join(dataDir, 'mirrors', 'acme'))).toEqual(['mathlib-python.git']); // no temp dirs or locks left
    expect(await mirrors[0]!.defaultBranch()).toBe('main');
    const heads = await mirrors[0]!.pullHeads();
    expect(heads.get(1)).toBe(repo.prs[0]!.headSha);
    expect(heads.size).toBe(repo.prs.length);
  });

  it('reads commits, parents, diffs, files and archives', async () => {
    const cache = new MirrorCache({ dataDir, network: false, localPaths: [tmpdir()] });
    const m = await cache.ensure(repo.repo, repo.path);
    const pr = repo.prs[0]!;
    expect(await m.commitExists(pr.prCommit)).toBe(true);
    expect(await m.commitExists('0'.repeat(40))).toBe(false);
    expect(await m.firstParent(pr.prCommit)).toBe(pr.parentCommit);
    expect(await m.parents(pr.prCommit)).toEqual([pr.parentCommit, pr.headSha]);
    const diff = await m.diff(pr.parentCommit, pr.prCommit);
    expect(diff).toBe(execFileSync('git', ['diff', pr.parentCommit, pr.prCommit], { cwd: repo.path }).toString());
    const ns = await m.numstat(pr.parentCommit, pr.prCommit);
    expect(ns.map((e) => e.path).sort()).toEqual([...pr.codeFiles, ...pr.testFiles].sort());
    expect(await m.showFile(pr.prCommit, 'mathlib/clamp.py')).toContain('if x > hi:');
    expect(await m.showFile(pr.parentCommit, 'tests/test_clamp.py')).toBeNull();
    const files = await m.listFiles(pr.prCommit);
    expect(files).toContain('tests/test_clamp.py');
    expect(await tarNames(await m.archive(pr.prCommit))).toEqual(files.slice().sort());
    const log = await m.log('HEAD', { firstParent: true });
    expect(log.map((c) => c.sha)).toContain(pr.prCommit);
    expect(log.at(-1)!.sha).toBe(repo.rootCommit);
  });

  it('fetches incrementally when a wanted commit is new, and says which commits are missing (retriable=false)', async () => {
    const cache = new MirrorCache({ dataDir, network: false, localPaths: [tmpdir()] });
    await writeFile(path.join(repo.path, 'NEW.md'), 'new\n');
    execFileSync('git', ['add', 'NEW.md'], { cwd: repo.path });
    execFileSync('git', ['-c', 'user.name=M', '-c', 'user.email=m@example.com', 'commit', '-q', '-m', 'New file'], { cwd: repo.path });
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo.path }).toString().trim();
    const m = await cache.ensure(repo.repo, repo.path, { want: [sha] });
    expect(await m.commitExists(sha)).toBe(true);
    const gone = 'deadbeef'.repeat(5);
    const err = await cache.ensure(repo.repo, repo.path, { want: [gone] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingCommitError);
    expect(err).toMatchObject({ retriable: false, message: expect.stringContaining(gone) });
    await expect(m.firstParent(gone)).rejects.toBeInstanceOf(MissingCommitError);
    // revisions come from event payloads: an option-shaped one never reaches git
    await expect(m.diff('--output=/tmp/pwned', sha)).rejects.toMatchObject({ name: 'InvalidRevision', retriable: false });
    expect(await m.commitExists('--all')).toBe(false);
  });

  it('a local clone URL is cloned only under localPaths (what git: sources named), also offline; odd URLs never reach git', async () => {
    const strict = new MirrorCache({ dataDir: await mkdtemp(path.join(tmpdir(), 'mirror-strict-')), network: false });
    await expect(strict.ensure(repo.repo, repo.path)).rejects.toMatchObject({ name: 'RepoUnavailable', retriable: false, message: expect.stringContaining('only git: sources') });
    await expect(strict.ensure(repo.repo, `file://${repo.path}`)).rejects.toMatchObject({ name: 'RepoUnavailable' });
    const other = new MirrorCache({ dataDir: await mkdtemp(path.join(tmpdir(), 'mirror-other-')), network: true, localPaths: [path.join(tmpdir(), 'elsewhere')] });
    await expect(other.ensure(repo.repo, repo.path)).rejects.toMatchObject({ name: 'RepoUnavailable' });
    for (const odd of ['--upload-pack=touch /tmp/x', 'ext::sh -c touch% /tmp/x', 'fd::3']) {
      await expect(other.ensure('acme/odd', odd)).rejects.toMatchObject({ name: 'RepoUnavailable', retriable: false });
    }
    expect((await strict.ensure(repo.repo, repo.path).catch((e: Error) => e)) instanceof RepoUnavailableError).toBe(true);
  });

  it('unavailable repositories: missing local path, remote URL with the network off, invalid names', async () => {
    const cache = new MirrorCache({ dataDir, network: false, localPaths: [tmpdir()] });
    await expect(cache.ensure('acme/nothing', path.join(dataDir, 'does-not-exist'))).rejects.toMatchObject({ name: 'RepoUnavailable', retriable: false });
    await expect(cache.ensure('acme/remote', 'https://github.com/acme/remote.git')).rejects.toBeInstanceOf(RepoUnavailableError);
    const notRepo = await mkdtemp(path.join(tmpdir(), 'notrepo-'));
    await expect(cache.ensure('acme/notrepo', notRepo)).rejects.toMatchObject({ retriable: false });
    await rm(notRepo, { recursive: true, force: true });
    expect(() => cache.pathFor('../../etc')).toThrow(/invalid repository name/);
    // an invalid name is permanent: never retried as if transient
    await expect(cache.ensure('not a repo', 'https://github.com/x/y.git')).rejects.toMatchObject({ name: 'InvalidRepoName', retriable: false });
    expect(existsSync(path.join(dataDir, 'mirrors', 'acme', 'nothing.git'))).toBe(false);
  });

  it('breaks a stale lock left by a dead process', async () => {
    const cache = new MirrorCache({ dataDir, network: false, localPaths: [tmpdir()] });
    const p = cache.pathFor('acme/locked');
    execFileSync('mkdir', ['-p', path.dirname(p)]);
    // pid 2^22+1 is above the largest pid Linux allows (pid_max ≤ 2^22), so it names no live process.
    await writeFile(`${p}.lock`, JSON.stringify({ pid: 4194305, host: (await import('node:os')).hostname(), at: new Date().toISOString() }));
    const m = await cache.ensure('acme/locked', repo.path);
    expect(await m.commitExists(repo.rootCommit)).toBe(true);
    expect(existsSync(`${p}.lock`)).toBe(false);
  });

  it('breaks an empty lock a process killed while taking it left behind, once it is a few seconds old', async () => {
    const cache = new MirrorCache({ dataDir, network: false, localPaths: [tmpdir()] });
    const p = cache.pathFor('acme/empty-lock');
    execFileSync('mkdir', ['-p', path.dirname(p)]);
    await writeFile(`${p}.lock`, '');
    const old = new Date(Date.now() - 10_000);
    await utimes(`${p}.lock`, old, old);
    const t0 = Date.now();
    const m = await cache.ensure('acme/empty-lock', repo.path);
    expect(Date.now() - t0).toBeLessThan(30_000); // not the lock wait (the fetch timeout) nor the 60 min staleness
    expect(await m.commitExists(repo.rootCommit)).toBe(true);
    expect(readdirSync(path.dirname(p)).filter((n) => n.startsWith('empty-lock.git.lock'))).toEqual([]); // no lock, no temporary lock files
  });
});
