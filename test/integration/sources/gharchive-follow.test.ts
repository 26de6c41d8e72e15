/**
 * GH Archive follow mode against a local HTTP server standing in for data.gharchive.org, whose hour files
 * appear over time: the source waits for each next hour (404 = not yet published, retried with backoff),
 * stores its cursor with its records on the embedded log, resumes after a restart, and neither skips nor
 * repeats an hour. The clock is injected (the hours are 2015's real ones), the backoff is short.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import { allTopics, prCatalog } from '../../../operators/pr/topology.js';
import { runSource, type SourceStats } from '../../../streams/source-runner.js';
import { GhArchiveSource } from '../../../connectors/sources/gharchive.js';
import { PR_EVENTS_TARGET } from '../../../connectors/sources/types.js';
import type { PullRequestEvent, DeadLetter } from '../../../schemas/types.gen.js';
import { waitFor } from '../../helpers/wait.js';

const DATA = path.resolve(__dirname, '../../fixtures/gharchive');
const HOUR = readFileSync(path.join(DATA, '2015-01-01-12.json.gz')); // 367 PullRequestEvent
const SAMPLE = readFileSync(path.join(DATA, '2021-07-21-06-to-09.json.gz')); // 64 PullRequestEvent
/** The sample with every event id changed, so a third hour's events are distinct from the first's. */
const SAMPLE_RENUMBERED = gzipSync(
  gunzipSync(SAMPLE).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.stringify({ ...JSON.parse(l), id: `9${JSON.parse(l).id}` })).join('\n') + '\n',
);
const serde = new EmbeddedSerde({ catalog: prCatalog() });
const NOW = Date.UTC(2015, 0, 1, 13, 30); // 2015-01-01 13:30 UTC: hours 10–12 may still appear

describe('gharchive follow mode (hours appearing over time, with a restart)', () => {
  const published = new Map<string, Buffer>();
  const requests: string[] = [];
  let server: Server;
  let base: string;
  let dir: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const body = published.get(req.url ?? '');
      if (!body) return void res.writeHead(404).end('Not Found');
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    dir = mkdtempSync(join(tmpdir(), 'gha-follow-'));
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const open = () =>
    new GhArchiveSource('gharchive:2015-01-01-10..', '2015-01-01-10..', { base, now: () => NOW, retry: { initialMs: 5, maxMs: 20 } });
  const events = async (t: EmbeddedTransport) => {
    const out: PullRequestEvent[] = [];
    for (const p of await t.topicOffsets('pr.events'))
      for (const r of await t.read('pr.events', p.partition, '0', 1_000_000)) out.push((await serde.decode('pr.events', r.value!, r.headers)) as PullRequestEvent);
    return out;
  };
  const hits = (name: string) => requests.filter((u) => u === `/${name}.json.gz`).length;

  it('waits for each next hour, resumes from its cursor after a restart, never skips or repeats one', async () => {
    const t = new EmbeddedTransport({ path: join(dir, 'log.db'), pollMs: 5 });
    await t.ensureTopics(allTopics().map((name) => ({ name, partitions: 3 })));
    published.set('/2015-01-01-10.json.gz', SAMPLE);

    // First run: hour 10 is read; hour 11 is not published yet and is asked for again and again.
    const ac1 = new AbortController();
    const st1: SourceStats = { uri: 'gharchive:2015-01-01-10..', events: 0, skipped: {}, bad: {}, done: false };
    const run1 = runSource(open(), t, serde, { signal: ac1.signal, follow: true, target: PR_EVENTS_TARGET, lingerMs: 5 }, st1);
    await waitFor(async () => (await events(t)).length === 64 && hits('2015-01-01-11') >= 3, 'hour 10 read and hour 11 retried');
    expect(await (await t.openStore('source-cursors')).get('gharchive:2015-01-01-10..')).toBe(`${base}2015-01-01-10.json.gz#eof`);
    ac1.abort();
    await run1;

    // Restart: hour 11 has appeared meanwhile; hour 10 is not fetched again.
    published.set('/2015-01-01-11.json.gz', HOUR);
    const ac2 = new AbortController();
    const st2: SourceStats = { uri: 'gharchive:2015-01-01-10..', events: 0, skipped: {}, bad: {}, done: false };
    const run2 = runSource(open(), t, serde, { signal: ac2.signal, follow: true, target: PR_EVENTS_TARGET, lingerMs: 5 }, st2);
    await waitFor(async () => (await events(t)).length === 64 + 367 && hits('2015-01-01-12') >= 2, 'hour 11 read after the restart');
    // Hour 12 appears while the source waits for it.
    published.set('/2015-01-01-12.json.gz', SAMPLE_RENUMBERED);
    await waitFor(async () => (await events(t)).length === 64 + 367 + 64, 'hour 12 read when it appeared');
    ac2.abort();
    await run2;

    expect(hits('2015-01-01-10')).toBe(1);
    expect(hits('2015-01-01-11')).toBeGreaterThanOrEqual(4); // 404s, then the file
    const all = await events(t);
    const ids = all.map((e) => e.source_event_id);
    expect(new Set(ids).size).toBe(ids.length); // nothing repeated
    expect(st1.events + st2.events).toBe(64 + 367 + 64); // nothing lost
    expect(st2.skipped.PushEvent).toBeGreaterThan(0);
    await t.close();
  });

  it('an hour still 404 long after it ended is one hour-missing dead letter, and the next hour is read', async () => {
    const t = new EmbeddedTransport({ path: join(dir, 'gap.db'), pollMs: 5 });
    await t.ensureTopics(allTopics().map((name) => ({ name, partitions: 3 })));
    published.set('/2015-01-02-1.json.gz', SAMPLE);
    const src = new GhArchiveSource('gharchive:2015-01-02-0..', '2015-01-02-0..', { base, now: () => Date.UTC(2015, 0, 2, 8, 30), retry: { initialMs: 5, maxMs: 20 } });
    const st = await runSource(src, t, serde, { signal: new AbortController().signal, follow: false, target: PR_EVENTS_TARGET, lingerMs: 5 });
    expect(st).toMatchObject({ events: 64, bad: { 'hour-missing': 1 }, done: true });
    const dlq = (await t.read('pr.events.dlq', 0, '0', 10)).concat(...(await Promise.all([1, 2].map((p) => t.read('pr.events.dlq', p, '0', 10)))));
    const dead = (await Promise.all(dlq.map((r) => serde.decode('pr.events.dlq', r.value!, r.headers)))) as DeadLetter[];
    expect(dead).toEqual([expect.objectContaining({ reason: 'hour-missing', original_offset: `${base}2015-01-02-0.json.gz:0` })]);
    // With follow=false the open range ends at the first hour that may still be published (2015-01-02-2: ended 5.5 h before "now").
    expect(hits('2015-01-02-2')).toBe(1);
    await t.close();
  });

  it('`latest` starts at the last complete hour and, without a cursor, never reaches back', async () => {
    const seen: string[] = [];
    const src = new GhArchiveSource('gharchive:latest', 'latest', {
      base,
      now: () => Date.UTC(2015, 0, 1, 11, 5),
      fetch: async (u) => {
        seen.push(String(u));
        return new Response(null, { status: 404 });
      },
      retry: { initialMs: 5, maxMs: 20 },
    });
    const items = [];
    for await (const it of src.items({ signal: new AbortController().signal, follow: false })) items.push(it);
    expect(items).toEqual([]);
    expect(seen).toEqual([`${base}2015-01-01-10.json.gz`]);
    expect(() => new GhArchiveSource('gharchive:2015-13-01-0..', '2015-13-01-0..')).toThrow(/YYYY-MM-DD-H\.\./);
  });
});
