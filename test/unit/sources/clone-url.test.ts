/**
 * An event must not decide what we clone (issue 14, security item 1): a crafted GH Archive line or webhook
 * payload naming a local path, a file: URL, another host, credentials or another repository gets the URL
 * built from the repository name.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { trustedCloneUrl } from '../../../connectors/sources/normalize.js';
import { cloneHostsFrom } from '../../../connectors/sources/index.js';
import { GhArchiveSource } from '../../../connectors/sources/gharchive.js';

const SAMPLE = path.resolve(__dirname, '../../fixtures/gharchive/2021-07-21-06-to-09.json.gz');

describe('trustedCloneUrl', () => {
  const built = 'https://github.com/octo/repo.git';
  it.each([
    ['/srv/private-repo', built],
    ['file:///srv/private-repo', built],
    ['../../etc', built],
    ['git@github.com:octo/repo.git', built],
    ['http://github.com/octo/repo.git', built],
    ['https://evil.example/octo/repo.git', built],
    ['https://token@github.com/octo/repo.git', built],
    ['https://github.com:8443/octo/repo.git', built],
    ['https://github.com/other/repo.git', built],
    ['https://github.com/octo/repo.git?upload-pack=x', built],
    [null, built],
    ['https://github.com/octo/repo.git', built],
    ['https://github.com/Octo/Repo', built],
  ])('%s → %s', (claim, want) => {
    expect(trustedCloneUrl('octo/repo', claim)).toBe(want);
  });
  it('keeps the URL on an allowed enterprise host for the same repository', () => {
    expect(trustedCloneUrl('octo/repo', 'https://ghe.example.com/octo/repo.git', ['github.com', 'ghe.example.com'])).toBe('https://ghe.example.com/octo/repo.git');
    expect(trustedCloneUrl('octo/repo', 'https://ghe.example.com/octo/repo.git')).toBe(built);
  });
  it('SWE_STREAM_CLONE_HOSTS: host names only, github.com always included', () => {
    expect(cloneHostsFrom(undefined)).toBeUndefined();
    expect(cloneHostsFrom('GHE.example.com, git.corp')).toEqual(['github.com', 'ghe.example.com', 'git.corp']);
    expect(() => cloneHostsFrom('https://ghe.example.com')).toThrow(/not a host name/);
    expect(() => cloneHostsFrom('/srv')).toThrow(/not a host name/);
  });
});

describe('GH Archive lines cannot choose the clone', () => {
  it('a crafted PullRequestEvent whose base repo clone_url is a local path gets the GitHub URL', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'gha-clone-'));
    try {
      const lines = gunzipSync(readFileSync(SAMPLE)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const pr = lines.find((e) => e.type === 'PullRequestEvent');
      pr.payload.pull_request.base.repo.clone_url = '/home/user/private';
      const file = path.join(tmp, 'crafted.json.gz');
      await writeFile(file, gzipSync(JSON.stringify(pr) + '\n'));
      const items = [];
      for await (const it of new GhArchiveSource(`gharchive:${file}`, file).items({ signal: new AbortController().signal, follow: false })) items.push(it);
      expect(items).toHaveLength(1);
      expect(items[0]!.kind === 'event' && items[0]!.event.clone_url).toBe(`https://github.com/${pr.repo.name}.git`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
