/**
 * The GitHub REST source against a local HTTP server that replays the recorded API responses in
 * test/fixtures/github-api (request URL → status, ETag, body). The recordings hold single pulls; the
 * list endpoint `GET /repos/{o}/{r}/pulls?state=closed` is answered with the recorded pull objects of
 * that repository that are closed (the list items GitHub returns are the same objects).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GitHubSource } from '../../../connectors/sources/github.js';
import type { SourceItem } from '../../../connectors/sources/types.js';
import { statementFromIssues } from '../../../operators/statement.js';

const DIR = path.resolve(__dirname, '../../fixtures/github-api');

interface Recorded { request: { method: string; url: string }; response: { status: number; etag: string | null; body: unknown } }

class Replay {
  server!: Server;
  base = '';
  routes = new Map<string, Recorded['response']>();
  log: Array<{ path: string; status: number; auth?: string; inm?: string }> = [];
  /** scripted failures answered before the recording, per path prefix */
  failures: Array<{ match: string; status: number; headers: Record<string, string> }> = [];
  overrides = new Map<string, unknown>();

  load() {
    for (const f of readdirSync(DIR).filter((f) => f.endsWith('.json'))) {
      const r = JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as Recorded;
      this.routes.set(new URL(r.request.url).pathname, r.response);
    }
  }
  async start() {
    this.load();
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        this.log.push({ path: url.pathname, status, auth: req.headers.authorization, inm: req.headers['if-none-match'] as string | undefined });
        const text = body === undefined ? '' : JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(text);
      };
      const fi = this.failures.findIndex((f) => url.pathname.startsWith(f.match));
      if (fi >= 0) {
        const f = this.failures.splice(fi, 1)[0]!;
        return send(f.status, { message: 'API rate limit exceeded' }, f.headers);
      }
      if (this.overrides.has(url.pathname)) return send(200, this.overrides.get(url.pathname));
      const m = /^\/repos\/([^/]+)\/([^/]+)\/pulls$/.exec(url.pathname);
      if (m) {
        const prefix = `/repos/${m[1]}/${m[2]}/pulls/`;
        const state = url.searchParams.get('state') ?? 'open';
        const items = [...this.routes.entries()].filter(([p]) => p.startsWith(prefix) && /^\d+$/.test(p.slice(prefix.length))).map(([, r]) => r.body as { state: string; updated_at: string }).filter((b) => state === 'all' || b.state === state).sort((a, b) => b.updated_at.localeCompare(a.updated_at));
        if (items.length === 0 && !this.routes.has(`/repos/${m[1]}/${m[2]}`)) return send(404, { message: 'Not Found' });
        const page = Number(url.searchParams.get('page') ?? 1);
        const per = Number(url.searchParams.get('per_page') ?? 30);
        const body = items.slice((page - 1) * per, page * per);
        const etag = `"list-${m[1]}-${page}-${body.length}"`;
        if (req.headers['if-none-match'] === etag) return send(304, undefined, { etag });
        return send(200, body, { etag });
      }
      const rec = this.routes.get(url.pathname);
      if (!rec) return send(404, { message: 'Not Found' });
      const etag = rec.etag ? `"${rec.etag.replace(/"/g, '')}"` : undefined;
      if (etag && req.headers['if-none-match'] === etag) return send(304, undefined, { etag });
      send(rec.status, rec.body, etag ? { etag } : {});
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop() {
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function collect(src: GitHubSource, opts: { cursor?: string; follow?: boolean; signal?: AbortSignal } = {}): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for await (const it of src.items({ signal: opts.signal ?? new AbortController().signal, follow: opts.follow ?? false, cursor: opts.cursor })) out.push(it);
  return out;
}

describe('github: source against recorded API responses', () => {
  const replay = new Replay();
  beforeAll(() => replay.start());
  afterAll(() => replay.stop());

  it('reads a merged PR by number with repository licence and clone URL (PyGithub#31)', async () => {
    const src = new GitHubSource('github:PyGithub/PyGithub?prs=31', 'PyGithub/PyGithub', { baseUrl: replay.base, prs: [31], token: 'ghp_testtoken000000000000000000000000' });
    const items = await collect(src);
    expect(items).toHaveLength(1);
    const it0 = items[0]!;
    expect(it0.kind).toBe('event');
    if (it0.kind !== 'event') return;
    expect(it0.event).toMatchObject({
      pr_id: 'PyGithub/PyGithub#31', repo: 'PyGithub/PyGithub', number: 31, source: 'github', payload_shape: 'api', merged: true,
      merged_at: '2012-05-27T10:29:07Z', merge_commit_sha: '28ae6dd10ebccd5eaf8db8dacb5b699ee7f4a663', user_login: 'jacquev6', user_type: 'User',
      license: 'LGPL-3.0', clone_url: 'https://github.com/PyGithub/PyGithub.git',
    });
    expect(replay.log.every((l) => l.auth === 'token ghp_testtoken000000000000000000000000')).toBe(true);
  });

  it('completes closing-keyword issues from the issues endpoint', async () => {
    // A copy of the recorded pulls/31 whose body links issue #28 (the recorded issue).
    const pr31 = replay.routes.get('/repos/PyGithub/PyGithub/pulls/31')!.body as Record<string, unknown>;
    replay.overrides.set('/repos/PyGithub/PyGithub/pulls/31', { ...pr31, body: 'Improves coverage.\n\nFixes #28' });
    try {
      const items = await collect(new GitHubSource('github:PyGithub/PyGithub?prs=31', 'PyGithub/PyGithub', { baseUrl: replay.base, prs: [31] }));
      const ev = items[0]!.kind === 'event' ? items[0]!.event : null;
      expect(ev?.linked_issues).toEqual([{ number: 28, title: 'Issue created by PyGithub', body: 'Body edited by PyGithub\n', source: 'api' }]);
    } finally {
      replay.overrides.delete('/repos/PyGithub/PyGithub/pulls/31');
    }
  });

  it('fetches a merged PR\'s files (PyGithub#31: 45 files with patches)', async () => {
    const items = await collect(new GitHubSource('github:PyGithub/PyGithub?prs=31', 'PyGithub/PyGithub', { baseUrl: replay.base, prs: [31] }));
    const ev = items[0]!.kind === 'event' ? items[0]!.event : null;
    expect(ev?.files).toHaveLength(45);
    expect(ev!.files![0]).toEqual({ path: 'codegen/templates/GithubObject.py', old_path: null, kind: 'code', status: 'modified', additions: 1, deletions: 1, hunks: 1, binary: false, vendored: false });
    expect(ev!.files!.some((f) => f.kind === 'test')).toBe(true);
    expect(replay.log.some((l) => l.path === '/repos/PyGithub/PyGithub/pulls/31/files' && l.status === 200)).toBe(true);
  });

  it('finds closing references in the commits too, and the statement then comes from the issue text', async () => {
    // The recorded commits of pulls/31, the last one's message given a closing keyword for issue #28.
    const commits = replay.routes.get('/repos/PyGithub/PyGithub/pulls/31/commits')!.body as Array<{ commit: { message: string } }>;
    const edited = commits.map((c, i) => (i === commits.length - 1 ? { ...c, commit: { ...c.commit, message: `${c.commit.message}\n\nCloses #28` } } : c));
    replay.overrides.set('/repos/PyGithub/PyGithub/pulls/31/commits', edited);
    try {
      const items = await collect(new GitHubSource('github:PyGithub/PyGithub?prs=31', 'PyGithub/PyGithub', { baseUrl: replay.base, prs: [31] }));
      const ev = items[0]!.kind === 'event' ? items[0]!.event : null;
      expect(ev?.linked_issues).toEqual([{ number: 28, title: 'Issue created by PyGithub', body: 'Body edited by PyGithub\n', source: 'api' }]);
      expect(statementFromIssues(ev!.linked_issues)).toBe('Issue created by PyGithub\n\nBody edited by PyGithub');
    } finally {
      replay.overrides.delete('/repos/PyGithub/PyGithub/pulls/31/commits');
    }
  });

  it('PRs whose files and commits are not recorded (404) keep files null and their body references', async () => {
    const items = await collect(new GitHubSource('github:austinsasko/PyGithub', 'austinsasko/PyGithub', { baseUrl: replay.base }));
    const ev = items.find((i) => i.kind === 'event');
    expect(ev && ev.kind === 'event' ? ev.event.files : 'none').toBeNull();
  });

  it('a repository answer naming another host for clone_url is not trusted', async () => {
    const repo = replay.routes.get('/repos/PyGithub/PyGithub')!.body as Record<string, unknown>;
    replay.overrides.set('/repos/PyGithub/PyGithub', { ...repo, clone_url: 'file:///etc' });
    try {
      const items = await collect(new GitHubSource('github:PyGithub/PyGithub?prs=31', 'PyGithub/PyGithub', { baseUrl: replay.base, prs: [31] }));
      expect(items[0]!.kind === 'event' && items[0]!.event.clone_url).toBe('https://github.com/PyGithub/PyGithub.git');
    } finally {
      replay.overrides.delete('/repos/PyGithub/PyGithub');
    }
  });

  it('lists closed PRs since the cursor: merged → event, unmerged → skipped; resuming from the cursor yields nothing new', async () => {
    const src = new GitHubSource('github:MarcoFalke/PyGithub', 'MarcoFalke/PyGithub', { baseUrl: replay.base });
    const items = await collect(src);
    expect(items.map((i) => i.kind)).toEqual(['skipped', 'event']);
    expect(items[0]).toMatchObject({ reason: 'closed-unmerged' });
    const ev = items[1]!.kind === 'event' ? items[1]!.event : null;
    expect(ev).toMatchObject({ pr_id: 'MarcoFalke/PyGithub#2', merged: true, merge_commit_sha: 'ba5bf2d76a75fb8b2118726d4ea708ffe6133a8b' });
    const cursor = items[1]!.cursor!;
    expect(cursor).toBe('2018-05-22T14:53:13Z|2');
    expect(await collect(new GitHubSource('github:MarcoFalke/PyGithub', 'MarcoFalke/PyGithub', { baseUrl: replay.base }), { cursor })).toEqual([]);
  });

  it('waits on a primary rate limit until x-ratelimit-reset, and on retry-after, instead of failing', async () => {
    const waits: number[] = [];
    const now = 1_700_000_000_000;
    replay.failures.push({ match: '/repos/austinsasko/PyGithub', status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 30) } });
    replay.failures.push({ match: '/repos/austinsasko/PyGithub/pulls', status: 429, headers: { 'retry-after': '7' } });
    const src = new GitHubSource('github:austinsasko/PyGithub', 'austinsasko/PyGithub', { baseUrl: replay.base, now: () => now, wait: async (ms) => void waits.push(ms) });
    const items = await collect(src);
    expect(waits).toEqual([31_000, 7_000]);
    expect(src.stats.rateLimitWaits).toBe(2);
    expect(items.filter((i) => i.kind === 'event').map((i) => (i.kind === 'event' ? i.event.pr_id : ''))).toEqual(['austinsasko/PyGithub#21']);
  });

  it('follow mode polls with If-None-Match; unchanged pages come back 304', async () => {
    const ac = new AbortController();
    let polls = 0;
    const src = new GitHubSource('github:MarcoFalke/PyGithub', 'MarcoFalke/PyGithub', {
      baseUrl: replay.base,
      pollSeconds: 5,
      wait: async (ms) => {
        expect(ms).toBe(5000);
        if (++polls === 3) ac.abort();
      },
    });
    const items = await collect(src, { follow: true, signal: ac.signal });
    expect(items.filter((i) => i.kind === 'event')).toHaveLength(1); // emitted once, not again on the next polls
    expect(src.stats.notModified).toBeGreaterThanOrEqual(2);
    const listCalls = replay.log.filter((l) => l.path === '/repos/MarcoFalke/PyGithub/pulls');
    expect(listCalls.at(-1)).toMatchObject({ status: 304 });
    expect(listCalls.at(-1)!.inm).toMatch(/^"list-/);
  });

  it('a repository that does not exist fails with retriable=false', async () => {
    const src = new GitHubSource('github:nobody/nothing', 'nobody/nothing', { baseUrl: replay.base });
    await expect(collect(src)).rejects.toMatchObject({ retriable: false, name: 'GitHubApiError' });
  });
});
