/**
 * `webhook:<host>:<port>` — an HTTP receiver for GitHub webhook deliveries (GitHub docs "Validating
 * webhook deliveries" and "Webhook events and payloads").
 *
 * Per request to any path but `/healthz`:
 *  - only POST (405 otherwise); `Content-Type: application/json` required (415 — configure the hook
 *    with content type "application/json", not form-encoded);
 *  - body larger than `maxBodyBytes` (default 25 MiB, GitHub's own cap on payloads) → 413, read no further;
 *  - `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the secret>` verified with
 *    crypto.timingSafeEqual → 401 when missing or wrong;
 *  - `X-GitHub-Delivery` dedupes: a delivery already acked answers 200 (nothing produced twice); one
 *    still in flight waits for the same outcome;
 *  - `ping` → 200; event types other than `pull_request` → a `skipped` item and 202;
 *  - a `pull_request` delivery becomes an `event` item whose `ack` the runner calls once the record is
 *    durably in pr.events; only then does the receiver answer 202, so an accepted delivery is never
 *    lost. If the consumer stops first the answer is 503 (GitHub shows it as failed; redeliver it).
 *  - at most `maxPending` deliveries wait for their ack; beyond that 503 with Retry-After.
 * `GET /healthz` → 200 `{"ok":true,"pending":n}` while listening.
 *
 * follow=false is not meaningful for a receiver: it listens until the signal aborts either way.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Source, SourceItem } from './types.js';
import { normalizePullRequest } from './normalize.js';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'source', source: 'webhook' });

/** Options of {@link WebhookSource}. */
export interface WebhookOptions {
  host: string;
  /** 0 picks a free port (see {@link WebhookSource.listening}) */
  port: number;
  secret: string;
  maxBodyBytes?: number;
  maxPending?: number;
  /** how many delivery ids to remember for dedupe (default 100 000) */
  dedupeSize?: number;
  /** how long to wait for the runner's ack before answering 503 (default 30 s; GitHub times out at 10 s and marks failed anyway) */
  ackTimeoutMs?: number;
}

/**
 * Verify a GitHub `X-Hub-Signature-256` header against the raw body, in constant time.
 * Returns false for a missing/malformed header (never throws).
 */
export function verifySignature(secret: string, body: Buffer, header: string | undefined | null): boolean {
  if (!header || !header.startsWith('sha256=')) return false;
  const given = Buffer.from(header.slice(7), 'hex');
  const want = createHmac('sha256', secret).update(body).digest();
  // timingSafeEqual throws on different lengths; a length mismatch is a mismatch.
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The header value GitHub would send for `body` (tests and tools). */
export function signBody(secret: string, body: Buffer | string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

type Pending = { done: Promise<number> };

/** The webhook source. One `items()` iteration at a time owns the listening socket. */
export class WebhookSource implements Source {
  private readonly opts: Required<WebhookOptions>;
  private readonly delivered = new Map<string, Pending>(); // insertion-ordered: oldest evicted first
  private addr: AddressInfo | null = null;
  private waiters: Array<(a: AddressInfo) => void> = [];
  private pending = 0;
  private readonly unsettled = new Set<(status: number) => void>();
  /** replies of deliveries waiting for their ack; awaited at shutdown so each gets its 503 before sockets close */
  private readonly answering = new Set<Promise<void>>();

  constructor(readonly uri: string, opts: WebhookOptions) {
    if (!opts.secret) throw new Error('webhook: a secret is required (GitHub signs deliveries with it; unsigned receivers accept forgeries)');
    this.opts = { maxBodyBytes: 25 * 1024 * 1024, maxPending: 1000, dedupeSize: 100_000, ackTimeoutMs: 30_000, ...opts };
  }

  /** Resolves with the bound address once `items()` is listening (useful with port 0). */
  listening(): Promise<AddressInfo> {
    if (this.addr) return Promise.resolve(this.addr);
    return new Promise((r) => this.waiters.push(r));
  }

  async *items(o: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncGenerator<SourceItem> {
    const queue: SourceItem[] = [];
    let wake: (() => void) | null = null;
    let closed = false;
    const push = (item: SourceItem) => {
      queue.push(item);
      wake?.();
    };
    const server = createServer((req, res) => {
      this.handle(req, res, push, () => closed).catch((err: unknown) => {
        log.error({ err: (err as Error).message }, 'webhook handler failed');
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      });
    });
    server.requestTimeout = 60_000;
    await listen(server, this.opts.host, this.opts.port);
    this.addr = server.address() as AddressInfo;
    for (const w of this.waiters.splice(0)) w(this.addr);
    log.info({ host: this.addr.address, port: this.addr.port }, 'webhook receiver listening');
    const onAbort = () => wake?.();
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!o.signal.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          continue;
        }
        yield queue.shift()!;
      }
    } finally {
      closed = true;
      o.signal.removeEventListener('abort', onAbort);
      // Deliveries queued but never handed out are not acked: their requests get 503 via their ack timeout/closed check.
      // Deliveries handed out but not acked, or still queued, are answered 503 so GitHub shows them as failed.
      for (const settle of this.unsettled) settle(503);
      await Promise.allSettled([...this.answering]);
      const closedP = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closedP;
      this.addr = null;
    }
  }

  private remember(id: string, p: Pending): void {
    this.delivered.set(id, p);
    if (this.delivered.size > this.opts.dedupeSize) this.delivered.delete(this.delivered.keys().next().value as string);
  }

  private async handle(req: IncomingMessage, res: ServerResponse, push: (i: SourceItem) => void, isClosed: () => boolean): Promise<void> {
    const url = req.url ?? '/';
    if (url === '/healthz' || url.startsWith('/healthz?')) return reply(res, isClosed() ? 503 : 200, { ok: !isClosed(), pending: this.pending });
    if (isClosed()) return reply(res, 503, { error: 'shutting down' }, { 'retry-after': '5' });
    if (req.method !== 'POST') return reply(res, 405, { error: 'POST only' }, { allow: 'POST' });
    const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ctype !== 'application/json') {
      req.resume();
      return reply(res, 415, { error: 'content type must be application/json' });
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > this.opts.maxBodyBytes) {
      req.resume();
      return reply(res, 413, { error: `body over ${this.opts.maxBodyBytes} bytes` }, { connection: 'close' });
    }
    const body = await readBody(req, this.opts.maxBodyBytes);
    if (body === null) return reply(res, 413, { error: `body over ${this.opts.maxBodyBytes} bytes` }, { connection: 'close' });
    const sig = header(req, 'x-hub-signature-256');
    if (!verifySignature(this.opts.secret, body, sig)) {
      log.warn({ delivery: header(req, 'x-github-delivery'), remote: req.socket.remoteAddress }, 'webhook signature rejected');
      return reply(res, 401, { error: 'bad or missing X-Hub-Signature-256' });
    }
    const delivery = header(req, 'x-github-delivery') ?? '';
    const eventType = header(req, 'x-github-event') ?? '';
    if (delivery) {
      const seen = this.delivered.get(delivery);
      if (seen) {
        const status = await seen.done;
        // A delivery that was accepted before is acknowledged again without producing it twice.
        return reply(res, status === 202 ? 200 : status, { delivery, duplicate: true });
      }
    }
    if (eventType === 'ping') return reply(res, 200, { pong: true });
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return reply(res, 400, { error: `malformed JSON: ${(err as Error).message}` });
    }
    if (eventType !== 'pull_request') {
      push({ kind: 'skipped', reason: eventType || 'no-event-type' });
      return reply(res, 202, { skipped: eventType });
    }
    const p = payload as Record<string, unknown>;
    const repository = (typeof p.repository === 'object' && p.repository !== null ? p.repository : {}) as Record<string, unknown>;
    const norm = normalizePullRequest({
      repo: typeof repository.full_name === 'string' ? repository.full_name : null,
      action: typeof p.action === 'string' ? p.action : '',
      number: typeof p.number === 'number' ? p.number : null,
      pr: p.pull_request,
      actor: p.sender,
      repository,
      source: 'webhook',
      sourceEventId: delivery || null,
      eventTime: new Date().toISOString(),
    });
    if (!norm.ok) {
      push({ kind: 'bad', reason: norm.reason, detail: norm.detail, origin: `webhook:${delivery || 'no-delivery-id'}`, raw: body });
      return reply(res, 422, { error: norm.detail });
    }
    if (this.pending >= this.opts.maxPending) return reply(res, 503, { error: 'too many deliveries in flight' }, { 'retry-after': '5' });
    this.pending++;
    let settle!: (status: number) => void;
    const done = new Promise<number>((r) => (settle = r));
    if (delivery) this.remember(delivery, { done });
    const timer = setTimeout(() => settle(503), this.opts.ackTimeoutMs);
    this.unsettled.add(settle);
    const answered = done.then((status) => {
      this.unsettled.delete(settle);
      clearTimeout(timer);
      this.pending--;
      // A failed delivery must be retryable by redelivery: forget it so the next attempt is not a "duplicate".
      if (status !== 202 && delivery) this.delivered.delete(delivery);
      reply(res, status, status === 202 ? { accepted: norm.event.pr_id, delivery } : { error: 'not persisted; redeliver' });
    });
    this.answering.add(answered);
    void answered.finally(() => this.answering.delete(answered));
    push({ kind: 'event', event: norm.event, ack: () => settle(202) });
    await answered;
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Read the body, or null (and stop reading) once it exceeds `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => { if (!over) resolve(Buffer.concat(chunks)); });
    req.on('error', reject);
  });
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
