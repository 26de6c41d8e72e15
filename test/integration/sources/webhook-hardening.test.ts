/**
 * The webhook receiver under the faults of issue 14: replays across a restart (delivery ids kept durably in
 * the cursor the runner writes with the record; event_time from the payload), memory amplification by
 * forged large bodies (bounded concurrent reads, 401/413 before the body), a payload that names its own
 * clone URL, and a port that cannot be bound (one clear line, non-zero exit).
 */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { WebhookSource } from '../../../connectors/sources/webhook.js';
import { PR_EVENTS_TARGET } from '../../../connectors/sources/types.js';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import { allTopics, prCatalog } from '../../../operators/pr/topology.js';
import { runSource } from '../../../streams/source-runner.js';
import type { PullRequestEvent } from '../../../schemas/types.gen.js';
import { waitFor } from '../../helpers/wait.js';

const ROOT = path.resolve(__dirname, '../../..');
const BODY = readFileSync(path.resolve(__dirname, '../../fixtures/webhooks/pull_request.closed.json'));
const SECRET = 'It\'s a Secret to Everybody';
const sign = (body: Buffer, secret = SECRET) => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
const serde = new EmbeddedSerde({ catalog: prCatalog() });
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function post(port: number, body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'POST', headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    // The server may answer and close before the whole body is sent: that answer is the result.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    req.end(body);
  });
}
const hook = (delivery: string, body = BODY) => ({ 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': delivery, 'x-hub-signature-256': sign(body) });

async function openLog(): Promise<EmbeddedTransport> {
  const dir = mkdtempSync(join(tmpdir(), 'webhook-log-'));
  dirs.push(dir);
  const t = new EmbeddedTransport({ path: join(dir, 'log.db'), pollMs: 5 });
  await t.ensureTopics(allTopics().map((name) => ({ name, partitions: 3 })));
  return t;
}
async function events(t: EmbeddedTransport): Promise<PullRequestEvent[]> {
  const out: PullRequestEvent[] = [];
  for (const p of await t.topicOffsets('pr.events'))
    for (const r of await t.read('pr.events', p.partition, '0', 1000)) out.push((await serde.decode('pr.events', r.value!, r.headers)) as PullRequestEvent);
  return out;
}

/** Run a webhook source into the log until `stop()`. */
async function receiver(t: EmbeddedTransport) {
  const src = new WebhookSource('webhook:127.0.0.1:0', { host: '127.0.0.1', port: 0, secret: SECRET, maxBodyBytes: 25 * 1024 * 1024 });
  const ac = new AbortController();
  const run = runSource(src, t, serde, { signal: ac.signal, follow: true, target: PR_EVENTS_TARGET, lingerMs: 5 });
  const { port } = await src.listening();
  return { port, stop: async () => (ac.abort(), await run) };
}

describe('webhook replays across a restart', () => {
  it('a redelivery after a restart is a duplicate (200), not a second record; event_time is the payload\'s', async () => {
    const t = await openLog();
    const r1 = await receiver(t);
    expect((await post(r1.port, BODY, hook('72d3162e-cc78-11e3-81ab-4c9367dc0958'))).status).toBe(202);
    await r1.stop();

    const r2 = await receiver(t);
    const again = await post(r2.port, BODY, hook('72d3162e-cc78-11e3-81ab-4c9367dc0958'));
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toMatchObject({ duplicate: true });
    // A different delivery of the same payload (a manual re-send) is a new record, byte-identical but for its id.
    expect((await post(r2.port, BODY, hook('second-delivery'))).status).toBe(202);
    await r2.stop();

    const evs = await events(t);
    expect(evs.map((e) => e.source_event_id)).toEqual(['72d3162e-cc78-11e3-81ab-4c9367dc0958', 'second-delivery']);
    const payload = JSON.parse(BODY.toString('utf8'));
    expect(evs.every((e) => e.event_time === payload.pull_request.updated_at)).toBe(true);
    await t.close();
  });
});

describe('webhook bodies are bounded', () => {
  it('40 concurrent forged 25 MiB deliveries: 401/413/503, nothing produced, memory bounded', async () => {
    const t = await openLog();
    const r = await receiver(t);
    const big = Buffer.alloc(25 * 1024 * 1024 - 1024, 0x20);
    const before = process.memoryUsage().rss;
    let peak = before;
    const probe = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        post(r.port, big, { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': `forged-${i}`, 'x-hub-signature-256': i % 2 ? 'sha256=' + '0'.repeat(64) : 'garbage' }).then((x) => x.status),
      ),
    );
    clearInterval(probe);
    // Malformed signatures are refused before the body; well-formed forgeries are read (at most 64 MiB at once) and refused.
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(20);
    expect(statuses.every((s) => s === 401 || s === 503)).toBe(true);
    // The client's one 25 MiB buffer plus at most the receiver's 64 MiB budget and socket buffers.
    expect(peak - before).toBeLessThan(300 * 1024 * 1024);
    expect((await post(r.port, Buffer.alloc(26 * 1024 * 1024), hook('too-big', Buffer.alloc(1)))).status).toBe(413);
    await r.stop();
    expect(await events(t)).toEqual([]);
    await t.close();
  });
});

describe('webhook payloads do not choose what we clone', () => {
  it('a clone_url pointing at a local path or another host is replaced by the GitHub URL of the repository', async () => {
    const t = await openLog();
    const r = await receiver(t);
    const evil = JSON.parse(BODY.toString('utf8'));
    evil.repository.clone_url = '/srv/secret-repo';
    evil.pull_request.base.repo.clone_url = 'file:///srv/secret-repo';
    const b1 = Buffer.from(JSON.stringify(evil));
    evil.repository.clone_url = evil.pull_request.base.repo.clone_url = 'https://evil.example/Codertocat/Hello-World.git';
    const b2 = Buffer.from(JSON.stringify(evil));
    expect((await post(r.port, b1, hook('evil-1', b1))).status).toBe(202);
    expect((await post(r.port, b2, hook('evil-2', b2))).status).toBe(202);
    await r.stop();
    expect((await events(t)).map((e) => e.clone_url)).toEqual(['https://github.com/Codertocat/Hello-World.git', 'https://github.com/Codertocat/Hello-World.git']);
    await t.close();
  });
});

describe('a port that cannot be bound', () => {
  let busy: Server;
  afterAll(() => new Promise<void>((r) => busy.close(() => r())));

  it('the source throws one clear ListenError; `swe-stream run` exits non-zero with one line', async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    const src = new WebhookSource(`webhook:127.0.0.1:${port}`, { host: '127.0.0.1', port, secret: SECRET });
    const it = src.items({ signal: new AbortController().signal, follow: true })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ name: 'ListenError', retriable: false, message: `webhook: cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)` });

    const dataDir = mkdtempSync(join(tmpdir(), 'webhook-cli-'));
    dirs.push(dataDir);
    const child = spawn(process.execPath, [join(ROOT, 'bin/swe-stream.js'), 'run', '--source', `webhook:127.0.0.1:${port}`, '--data-dir', dataDir, '--no-sink', '--stages', 'filter'], {
      env: { ...process.env, SWE_STREAM_WEBHOOK_SECRET: SECRET, SWE_STREAM_BUS: 'embedded', SWE_STREAM_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // Before the fix the process logged and ran on forever: give it a minute, then count that as the failure.
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    clearTimeout(guard);
    await waitFor(() => child.stderr.readableEnded, 'stderr closed');
    expect(code).toBe(1);
    expect(stderr).toContain(`swe-stream: webhook: cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)\n`);
  });
});
