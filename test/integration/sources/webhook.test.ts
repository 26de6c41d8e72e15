import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'node:http';
import { createHmac } from 'node:crypto';
import { WebhookSource, verifySignature } from '../../../connectors/sources/webhook.js';
import { openSource } from '../../../connectors/sources/index.js';
import { MirrorCache } from '../../../operators/pr/mirror.js';
import type { SourceItem } from '../../../connectors/sources/types.js';

const FILE = path.resolve(__dirname, '../../fixtures/webhooks/pull_request.closed.json');
const SECRET = 'It\'s a Secret to Everybody';

/** Real HMAC-SHA256 over the raw body, as GitHub computes X-Hub-Signature-256. */
const sign = (body: Buffer, secret = SECRET) => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');

function post(port: number, body: Buffer, headers: Record<string, string>, pathName = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: pathName, method: 'POST', headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
function get(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: p }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    }).on('error', reject).end();
  });
}

describe('verifySignature (GitHub docs "Validating webhook deliveries" test vector)', () => {
  it('accepts the documented example and rejects others', () => {
    // From the GitHub docs: secret "It's a Secret to Everybody", payload "Hello, World!".
    const sig = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(verifySignature(SECRET, Buffer.from('Hello, World!'), sig)).toBe(true);
    expect(verifySignature(SECRET, Buffer.from('Hello, World?'), sig)).toBe(false);
    expect(verifySignature('other', Buffer.from('Hello, World!'), sig)).toBe(false);
    expect(verifySignature(SECRET, Buffer.from('Hello, World!'), 'sha256=00')).toBe(false);
    expect(verifySignature(SECRET, Buffer.from('Hello, World!'), undefined)).toBe(false);
    expect(verifySignature(SECRET, Buffer.from('Hello, World!'), sig.replace('sha256=', 'sha1='))).toBe(false);
  });
});

describe('webhook source on a real delivery', () => {
  const body = readFileSync(FILE);
  let src: WebhookSource;
  let port: number;
  const ac = new AbortController();
  const received: SourceItem[] = [];
  let onItem: ((i: SourceItem) => void) | null = null;
  let loop: Promise<void>;

  const nextItem = () => new Promise<SourceItem>((r) => (onItem = r));
  const headers = (delivery: string, extra: Record<string, string> = {}) => ({ 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': delivery, 'x-hub-signature-256': sign(body), ...extra });

  beforeAll(async () => {
    src = new WebhookSource('webhook:127.0.0.1:0', { host: '127.0.0.1', port: 0, secret: SECRET, maxBodyBytes: 64 * 1024, ackTimeoutMs: 60_000 });
    loop = (async () => {
      for await (const it of src.items({ signal: ac.signal, follow: true })) {
        received.push(it);
        const f = onItem;
        onItem = null;
        f?.(it);
      }
    })();
    port = (await src.listening()).port;
  });
  afterAll(async () => {
    ac.abort();
    await loop;
  });

  it('answers /healthz', async () => {
    const r = await get(port, '/healthz');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ ok: true });
  });

  it('a signed delivery becomes an event, and 202 is sent only after the runner acks', async () => {
    const itemP = nextItem();
    let answered = false;
    const resP = post(port, body, headers('d-1')).then((r) => ((answered = true), r));
    const item = await itemP;
    expect(item.kind).toBe('event');
    if (item.kind !== 'event') return;
    expect(item.event).toMatchObject({ pr_id: 'Codertocat/Hello-World#2', action: 'closed', merged: false, source: 'webhook', source_event_id: 'd-1', payload_shape: 'full' });
    expect(answered).toBe(false); // nothing is answered before the record is durable
    item.ack!();
    const res = await resP;
    expect(res.status).toBe(202);
  });

  it('a replayed delivery id is answered 200 and not produced again', async () => {
    const before = received.length;
    const res = await post(port, body, headers('d-1'));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ duplicate: true });
    expect(received.length).toBe(before);
  });

  it('forged, missing and wrong-secret signatures → 401, nothing produced', async () => {
    const before = received.length;
    const forged = Buffer.from(body.toString('utf8').replace('"merged": false', '"merged": true'));
    expect(forged.equals(body)).toBe(false);
    expect((await post(port, forged, headers('d-2'))).status).toBe(401); // signature of the original body
    expect((await post(port, body, headers('d-3', { 'x-hub-signature-256': sign(body, 'wrong secret') }))).status).toBe(401);
    const { 'x-hub-signature-256': _, ...unsigned } = headers('d-4');
    expect((await post(port, body, unsigned)).status).toBe(401);
    expect(received.length).toBe(before);
  });

  it('an oversized body → 413; a form-encoded body → 415; GET → 405', async () => {
    const big = Buffer.alloc(65 * 1024, 0x20);
    expect((await post(port, big, headers('d-5', { 'x-hub-signature-256': sign(big) }))).status).toBe(413);
    const form = Buffer.from('payload=' + encodeURIComponent(body.toString('utf8')));
    expect((await post(port, form, headers('d-6', { 'content-type': 'application/x-www-form-urlencoded', 'x-hub-signature-256': sign(form) }))).status).toBe(415);
    expect((await get(port, '/')).status).toBe(405);
  });

  it('ping → 200; other event types → skipped item and 202', async () => {
    const ping = Buffer.from(JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 }));
    expect((await post(port, ping, { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': 'p-1', 'x-hub-signature-256': sign(ping) })).status).toBe(200);
    const itemP = nextItem();
    const push = Buffer.from(JSON.stringify({ ref: 'refs/heads/main' }));
    const r = await post(port, push, { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'p-2', 'x-hub-signature-256': sign(push) });
    expect(r.status).toBe(202);
    expect(await itemP).toEqual({ kind: 'skipped', reason: 'push' });
  });

  it('a signed pull_request delivery without a pull request is a bad item and 422', async () => {
    const itemP = nextItem();
    const junk = Buffer.from(JSON.stringify({ action: 'closed' }));
    const r = await post(port, junk, { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': 'b-1', 'x-hub-signature-256': sign(junk) });
    expect(r.status).toBe(422);
    expect(await itemP).toMatchObject({ kind: 'bad', origin: 'webhook:b-1' });
  });
});

describe('webhook source shutdown', () => {
  it('a delivery the runner never acked is answered 503 when the source stops (GitHub can redeliver it)', async () => {
    const body = readFileSync(FILE);
    const src = new WebhookSource('webhook:127.0.0.1:0', { host: '127.0.0.1', port: 0, secret: SECRET });
    const ac = new AbortController();
    const it = src.items({ signal: ac.signal, follow: true })[Symbol.asyncIterator]();
    const first = it.next();
    const { port } = await src.listening();
    const resP = post(port, body, { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': 'x-1', 'x-hub-signature-256': sign(body) });
    const item = await first;
    expect(item.value.kind).toBe('event');
    ac.abort();
    await it.return?.(undefined);
    expect((await resP).status).toBe(503);
  });

  it('openSource needs a secret and a host:port', () => {
    const mirrors = new MirrorCache({ dataDir: '/tmp/unused' });
    expect(() => openSource('webhook:127.0.0.1:9999', { dataDir: '/tmp', mirrors })).toThrow(/secret/);
    expect(() => openSource('webhook:nonsense', { dataDir: '/tmp', mirrors, webhookSecret: 's' })).toThrow(/host>:<port/);
    expect(openSource('webhook:127.0.0.1:9999', { dataDir: '/tmp', mirrors, webhookSecret: 's' })).toBeInstanceOf(WebhookSource);
    expect(() => openSource('ftp:x', { dataDir: '/tmp', mirrors })).toThrow(/unknown scheme/);
  });
});
