import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GhArchiveSource, expandBraces, resolveLocations } from '../../../connectors/sources/gharchive.js';
import type { SourceItem } from '../../../connectors/sources/types.js';

// Real recordings (see test/fixtures/RECORDED.md): one complete hour and an 800-event sample.
const DATA = path.resolve(__dirname, '../../fixtures/gharchive');
const HOUR = path.join(DATA, '2015-01-01-12.json.gz');
const SAMPLE = path.join(DATA, '2021-07-21-06-to-09.json.gz');

async function collect(src: GhArchiveSource, cursor?: string): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for await (const it of src.items({ signal: new AbortController().signal, follow: false, cursor })) out.push(it);
  return out;
}
/** Inputs an item list stands for: skipped items carry a count of the lines they fold. */
const lines = (items: SourceItem[]) => items.reduce((n, i) => n + (i.kind === 'skipped' ? (i.count ?? 1) : 1), 0);
const count = (items: SourceItem[], kind: SourceItem['kind']) => (kind === 'skipped' ? lines(items.filter((i) => i.kind === 'skipped')) : items.filter((i) => i.kind === kind).length);

describe('expandBraces / resolveLocations', () => {
  it('expands hour ranges and lists', () => {
    expect(expandBraces('2015-01-01-{0..3}')).toEqual(['2015-01-01-0', '2015-01-01-1', '2015-01-01-2', '2015-01-01-3']);
    expect(expandBraces('2015-01-{01,02}-{0..1}')).toEqual(['2015-01-01-0', '2015-01-01-1', '2015-01-02-0', '2015-01-02-1']);
    expect(expandBraces('{0..23}')).toHaveLength(24);
  });
  it('resolves bare names against a base URL or directory and adds .json.gz', async () => {
    expect(await resolveLocations('2015-01-01-{0..1}')).toEqual(['https://data.gharchive.org/2015-01-01-0.json.gz', 'https://data.gharchive.org/2015-01-01-1.json.gz']);
    expect(await resolveLocations('2015-01-01-12', '/srv/gha')).toEqual(['/srv/gha/2015-01-01-12.json.gz']);
  });
  it('expands a glob in a directory, in hour order', async () => {
    expect(await resolveLocations(path.join(DATA, '*.json.gz'))).toEqual([HOUR, SAMPLE]);
  });
});

describe('GH Archive source on the real recordings', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'gha-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('2015-01-01-12: 8,273 events → 367 PullRequestEvent records, 150 merged, the rest skipped by type', async () => {
    const items = await collect(new GhArchiveSource(`gharchive:${HOUR}`, HOUR));
    expect(lines(items)).toBe(8273);
    const events = items.flatMap((i) => (i.kind === 'event' ? [i.event] : []));
    expect(events).toHaveLength(367);
    expect(count(items, 'bad')).toBe(0);
    expect(events.filter((e) => e.merged === true)).toHaveLength(150);
    expect(events.every((e) => e.payload_shape === 'full' && e.source === 'gharchive' && e.pr_id === `${e.repo}#${e.number}`)).toBe(true);
    const skipped = items.filter((i) => i.kind === 'skipped').map((i) => (i as { reason: string }).reason);
    expect(skipped).toContain('PushEvent');
    const merged = events.find((e) => e.merged)!;
    expect(merged.merge_commit_sha).toMatch(/^[0-9a-f]{40}$/);
    expect(merged.clone_url).toMatch(/^https:\/\/github\.com\/.+\.git$/);
    expect(merged.base_sha).toMatch(/^[0-9a-f]{40}$/);
    expect(merged.source_event_id).toMatch(/^\d+$/);
  });

  it('2021-07-21 sample: 800 events → 64 PullRequestEvent, 25 merged, licences recorded', async () => {
    const items = await collect(new GhArchiveSource(`gharchive:${SAMPLE}`, SAMPLE));
    expect(lines(items)).toBe(800);
    const events = items.flatMap((i) => (i.kind === 'event' ? [i.event] : []));
    expect(events).toHaveLength(64);
    expect(events.filter((e) => e.merged)).toHaveLength(25);
    expect(events.some((e) => e.license === 'MIT')).toBe(true);
  });

  it('reads the trimmed post-2025-10 shape, action "merged", with merged left null for other actions', async () => {
    // The real 2021 events cut down to the trimmed pull_request object of ARCHITECTURE.md §9.
    const lines = gunzipSync(readFileSync(SAMPLE)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const prs = lines.filter((e) => e.type === 'PullRequestEvent').slice(0, 4);
    const trimmed = prs.map((e, i) => {
      const pr = e.payload.pull_request;
      const small = { url: pr.url, id: pr.id, number: pr.number, head: { ref: pr.head.ref, sha: pr.head.sha, repo: { id: pr.head.repo?.id, url: pr.head.repo?.url, name: pr.head.repo?.name } }, base: { ref: pr.base.ref, sha: pr.base.sha, repo: { id: pr.base.repo.id, url: pr.base.repo.url, name: pr.base.repo.name } } };
      return { ...e, payload: { action: i === 0 ? 'merged' : e.payload.action, number: e.payload.number, pull_request: small } };
    });
    const file = path.join(tmp, 'trimmed.json.gz');
    await writeFile(file, gzipSync(trimmed.map((e) => JSON.stringify(e)).join('\n') + '\n'));
    const items = await collect(new GhArchiveSource(`gharchive:${file}`, file));
    const events = items.flatMap((i) => (i.kind === 'event' ? [i.event] : []));
    expect(events).toHaveLength(4);
    expect(events.every((e) => e.payload_shape === 'trimmed')).toBe(true);
    expect(events[0]!.merged).toBe(true);
    expect(events[0]!.action).toBe('merged');
    expect(events[0]!.title).toBeNull();
    expect(events[0]!.head_sha).toBe(prs[0].payload.pull_request.head.sha);
    expect(events[0]!.user_login).toBe(prs[0].actor.login); // the actor stands in for the missing user
    for (const e of events.slice(1)) expect(e.merged).toBeNull();
  });

  it('a malformed JSON line is a bad item with file:line origin, and reading goes on', async () => {
    const text = gunzipSync(readFileSync(SAMPLE)).toString('utf8').split('\n').filter(Boolean);
    const broken = [...text.slice(0, 10), '{"type":"PullRequestEvent", oops', ...text.slice(10)];
    const file = path.join(tmp, 'broken.json.gz');
    await writeFile(file, gzipSync(broken.join('\n') + '\n'));
    const items = await collect(new GhArchiveSource(`gharchive:${file}`, file));
    expect(lines(items)).toBe(801);
    const bad = items.filter((i) => i.kind === 'bad');
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ kind: 'bad', reason: 'malformed-json', origin: `${file}:11` });
    expect(count(items, 'event')).toBe(64);
  });

  it('a truncated gzip yields what decompressed, one bad item, and ends that file cleanly; the next file is read', async () => {
    const whole = readFileSync(HOUR);
    const cut = path.join(tmp, '2015-01-01-1.json.gz');
    await writeFile(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const next = path.join(tmp, '2015-01-01-2.json.gz');
    await writeFile(next, readFileSync(SAMPLE));
    const spec = path.join(tmp, '2015-01-01-{1..2}');
    const items = await collect(new GhArchiveSource(`gharchive:${spec}`, spec));
    const bad = items.filter((i) => i.kind === 'bad');
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ reason: 'truncated-gzip' });
    const fromCut = items.indexOf(bad[0]!);
    expect(lines(items.slice(0, fromCut))).toBeGreaterThan(1000); // half the file decompressed fine
    expect(lines(items.slice(0, fromCut))).toBeLessThan(8273);
    expect(lines(items.slice(fromCut + 1))).toBe(800); // the next file, whole
    expect(bad[0]!.cursor).toMatch(/1\.json\.gz#eof$/);
  });

  it('a corrupt gzip (bad header) is one bad item', async () => {
    const file = path.join(tmp, 'corrupt.json.gz');
    const buf = Buffer.from(readFileSync(SAMPLE));
    buf[0] = 0x00;
    await writeFile(file, buf);
    const items = await collect(new GhArchiveSource(`gharchive:${file}`, file));
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ kind: 'bad', reason: 'corrupt-gzip' });
  });

  it('resumes after the cursor without repeating or losing items', async () => {
    const all = await collect(new GhArchiveSource(`gharchive:${SAMPLE}`, SAMPLE));
    const mid = all.findIndex((i, k) => i.kind === 'event' && k > all.length / 2);
    const cursor = all[mid]!.cursor!;
    const rest = await collect(new GhArchiveSource(`gharchive:${SAMPLE}`, SAMPLE), cursor);
    expect(lines(all.slice(0, mid + 1)) + lines(rest)).toBe(800);
    expect(rest.filter((i) => i.kind === 'event')).toEqual(all.slice(mid + 1).filter((i) => i.kind === 'event'));
    // The last item of a file says the file is done: a resume from there reads nothing of it again.
    expect(all.at(-1)!.cursor).toBe(`${SAMPLE}#eof`);
    expect(await collect(new GhArchiveSource(`gharchive:${SAMPLE}`, SAMPLE), all.at(-1)!.cursor)).toEqual([]);
  });

  it('reads hours over HTTP (a local server standing in for data.gharchive.org), streaming, range expanded against the base URL', async () => {
    const { createServer } = await import('node:http');
    const served: string[] = [];
    const server = createServer((req, res) => {
      served.push(req.url ?? '');
      if (req.url === '/2021-07-21-6.json.gz') {
        res.writeHead(200, { 'content-type': 'application/gzip' });
        createReadStream(SAMPLE).pipe(res);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/`;
    try {
      const src = new GhArchiveSource('gharchive:2021-07-21-{6..7}', '2021-07-21-{6..7}', { base });
      const items = await collect(src);
      expect(served.sort()).toEqual(['/2021-07-21-6.json.gz', '/2021-07-21-7.json.gz']);
      expect(count(items, 'event')).toBe(64);
      // An hour that ended years ago and is still 404 is one of GH Archive's gaps: dead-lettered, then go on.
      expect(items.at(-1)).toMatchObject({ kind: 'bad', reason: 'hour-missing', detail: expect.stringContaining('404') });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a missing local file is a clear, non-retriable error, not a quiet success', async () => {
    const f = path.join(tmp, 'nope.json.gz');
    await expect(collect(new GhArchiveSource(`gharchive:${f}`, f))).rejects.toMatchObject({ name: 'ArchiveOpenError', retriable: false, message: expect.stringContaining(`${f}: no such file`) });
    // Also inside a list scanned on worker threads.
    const spec = `${tmp}/{nope,none}.json.gz`;
    await expect(collect(new GhArchiveSource(`gharchive:${spec}`, spec, { threads: 2 }))).rejects.toMatchObject({ name: 'ArchiveOpenError', message: expect.stringContaining('no such file') });
  });

  it('a 50 MB line ends as one line-too-long bad item (its head kept), in linear time; the lines around it are read', async () => {
    const text = gunzipSync(readFileSync(SAMPLE)).toString('utf8').split('\n').filter(Boolean);
    const huge = `{"id":"1","type":"PullRequestEvent","payload":{"body":"${'x'.repeat(50 * 1024 * 1024)}"}}`;
    const file = path.join(tmp, 'huge.json.gz');
    await writeFile(file, gzipSync([...text.slice(0, 5), huge, ...text.slice(5)].join('\n') + '\n'));
    const items = await collect(new GhArchiveSource(`gharchive:${file}`, file, { maxLineBytes: 16 * 1024 * 1024 }));
    const bad = items.filter((i) => i.kind === 'bad');
    expect(bad).toEqual([expect.objectContaining({ reason: 'line-too-long', origin: `${file}:6`, detail: expect.stringContaining(`line 6 is ${Buffer.byteLength(huge)} bytes`) })]);
    const raw = (bad[0] as { raw: Buffer }).raw;
    expect(raw.length).toBe(64 * 1024);
    expect(raw.subarray(0, 20).toString()).toBe(huge.slice(0, 20));
    expect(count(items, 'event')).toBe(64);
    expect(lines(items)).toBe(801);
  });

  it('whitespace-only lines are passed over, not dead-lettered as malformed JSON', async () => {
    const text = gunzipSync(readFileSync(SAMPLE)).toString('utf8').split('\n').filter(Boolean);
    const file = path.join(tmp, 'blank.json.gz');
    await writeFile(file, gzipSync([text[0], '   ', '\t', '\r', '', ...text.slice(1)].join('\n') + '\n  \n'));
    const items = await collect(new GhArchiveSource(`gharchive:${file}`, file));
    expect(count(items, 'bad')).toBe(0);
    expect(lines(items)).toBe(800);
  });

  it('decides on raw bytes: only lines naming PullRequestEvent are parsed; others are counted by their type unparsed', async () => {
    const text = gunzipSync(readFileSync(SAMPLE)).toString('utf8').split('\n').filter(Boolean);
    const file = path.join(tmp, 'raw.json.gz');
    // A cut PushEvent line is not parsed (it is skipped as PushEvent); a cut PullRequestEvent line is, and is bad.
    const push = text.find((l) => l.includes('"type":"PushEvent"'))!;
    const pr = text.find((l) => l.includes('"type":"PullRequestEvent"'))!;
    await writeFile(file, gzipSync([push.slice(0, 200), pr.slice(0, 200), 'not json at all'].join('\n')));
    const items = await collect(new GhArchiveSource(`gharchive:${file}`, file));
    expect(items.filter((i) => i.kind === 'skipped')).toEqual([expect.objectContaining({ reason: 'PushEvent', count: 1 })]);
    expect(items.filter((i) => i.kind === 'bad').map((i) => (i as { reason: string }).reason)).toEqual(['malformed-json', 'malformed-json']);
  });

  it('scans a list of hours on worker threads with the same items, in the same order, as one thread', async () => {
    const dir = await mkdtemp(path.join(tmp, 'hours-'));
    for (let h = 0; h < 4; h++) await writeFile(path.join(dir, `2015-01-01-${h}.json.gz`), readFileSync(h % 2 ? SAMPLE : HOUR));
    const spec = path.join(dir, '2015-01-01-{0..3}');
    const one = await collect(new GhArchiveSource(`gharchive:${spec}`, spec, { threads: 1 }));
    const two = await collect(new GhArchiveSource(`gharchive:${spec}`, spec, { threads: 2 }));
    expect(two).toEqual(one);
    expect(lines(one)).toBe(2 * 8273 + 2 * 800);
    // Resuming mid-list on threads continues exactly after the cursor.
    const k = one.findIndex((i) => i.kind === 'event' && i.cursor!.includes('-2.json.gz'));
    expect(await collect(new GhArchiveSource(`gharchive:${spec}`, spec, { threads: 2 }), one[k]!.cursor)).toEqual(one.slice(k + 1));
  });
});
