/**
 * `webhook:<host>:<port>` — an HTTP receiver for GitHub webhook deliveries (GitHub docs "Validating
 * webhook deliveries" and "Webhook events and payloads").
 *
 * Per request to any path but `/healthz`:
 *  - only POST (405 otherwise); `Content-Type: application/json` required (415 — configure the hook
 *    with content type "application/json", not form-encoded);
 *  - answered before any body byte is read: a declared `Content-Length` over `maxBodyBytes` (default
 *    25 MiB, GitHub's own cap on payloads) → 413; a missing or malformed `X-Hub-Signature-256` → 401;
 *    more than `maxConcurrentReads` bodies being read, or a body that would take the bytes buffered by all
 *    requests over `maxBufferedBytes` → 503 with Retry-After (issue 14: 40 forged 25 MiB requests took the
 *    process from 345 MB to 1.2 GB when every body was buffered before its check);
 *  - the HMAC (`sha256=<hex HMAC-SHA256 of the raw body with the secret>`) is computed while the body
 *    streams in and compared with crypto.timingSafeEqual → 401 when wrong; only `pull_request` bodies are
 *    kept in memory (they are parsed), others are hashed and dropped chunk by chunk;
 *  - `X-GitHub-Delivery` dedupes: a delivery already acked answers 200 (nothing produced twice); one
 *    still in flight waits for the same outcome. The ids of produced deliveries (the last `dedupeSize`,
 *    as 72-bit hashes) are the source's cursor, which the runner writes in the same transaction as the
 *    record: a redelivery after a restart is still a duplicate;
 *  - `event_time` is the pull request's `updated_at` (else `closed_at`, `created_at`) from the payload,
 *    never the time of receipt, so a delivery replayed by any path is the same record (same outcome ids);
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
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { PullRequestEvent, Source, SourceItem } from './types.js';
import { normalizePullRequest, type NormalizeOptions } from './normalize.js';
import { logger } from '../../streams/log.js';
import { StageError } from '../../streams/types.js';

const log = logger({ component: 'source', source: 'webhook' });

/** Options of {@link WebhookSource}. */
export interface WebhookOptions extends NormalizeOptions {
  host: string;
  /** 0 picks a free port (see {@link WebhookSource.listening}) */
  port: number;
  secret: string;
  /** largest body accepted, bytes (default 25 MiB) */
  maxBodyBytes?: number;
  /** bodies read at the same time (default 16) */
  maxConcurrentReads?: number;
  /** bytes of bodies held in memory by all requests together (default 64 MiB) */
  maxBufferedBytes?: number;
  maxPending?: number;
  /** how many produced delivery ids are remembered, durably in the cursor (default 2,048) */
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

const SIG_RE = /^sha256=[0-9a-f]{64}$/i;
const CURSOR_PREFIX = 'deliveries:';
/** A delivery id as stored in the cursor: 72 bits of its SHA-256, base64url (12 characters). */
const deliveryHash = (id: string) => createHash('sha256').update(id).digest().subarray(0, 9).toString('base64url');
const ACCEPTED: Promise<number> = Promise.resolve(202);

/** The webhook source. One `items()` iteration at a time owns the listening socket. */
export class WebhookSource implements Source {
  private readonly opts: Required<WebhookOptions>;
  private readonly delivered = new Map<string, Pending>(); // in-flight and produced, by delivery hash; insertion-ordered
  /** hashes of produced deliveries, oldest first: the durable part of the dedupe memory (the cursor) */
  private produced: string[] = [];
  private reading = 0;
  private buffered = 0;
  private addr: AddressInfo | null = null;
  private waiters: Array<(a: AddressInfo) => void> = [];
  private pending = 0;
  private readonly unsettled = new Set<(status: number) => void>();
  /** replies of deliveries waiting for their ack; awaited at shutdown so each gets its 503 before sockets close */
  private readonly answering = new Set<Promise<void>>();

  constructor(readonly uri: string, opts: WebhookOptions) {
    if (!opts.secret) throw new Error('webhook: a secret is required (GitHub signs deliveries with it; unsigned receivers accept forgeries)');
    this.opts = { maxBodyBytes: 25 * 1024 * 1024, maxConcurrentReads: 16, maxBufferedBytes: 64 * 1024 * 1024, maxPending: 1000, dedupeSize: 2048, ackTimeoutMs: 30_000, cloneHosts: undefined, ...opts } as Required<WebhookOptions>;
  }

  /** Resolves with the bound address once `items()` is listening (useful with port 0). */
  listening(): Promise<AddressInfo> {
    if (this.addr) return Promise.resolve(this.addr);
    return new Promise((r) => this.waiters.push(r));
  }

  /** Seed the dedupe memory from a stored cursor (`deliveries:<hash>,<hash>,…`). */
  private restore(cursor: string | undefined): void {
    if (!cursor?.startsWith(CURSOR_PREFIX)) return;
    this.produced = cursor.slice(CURSOR_PREFIX.length).split(',').filter(Boolean).slice(-this.opts.dedupeSize);
    for (const h of this.produced) this.delivered.set(h, { done: ACCEPTED });
  }

  /** The cursor after `hash` is produced. */
  private record(hash: string): string {
    this.produced.push(hash);
    if (this.produced.length > this.opts.dedupeSize) this.produced.splice(0, this.produced.length - this.opts.dedupeSize);
    return CURSOR_PREFIX + this.produced.join(',');
  }

  /**
   * Listen and hand out deliveries until the signal aborts.
   * @throws StageError (retriable=false, name ListenError) when the address cannot be bound
   */
  async *items(o: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncGenerator<SourceItem> {
    this.restore(o.cursor);
    const queue: Array<SourceItem & { delivery?: string }> = [];
    let wake: (() => void) | null = null;
    let closed = false;
    const push = (item: SourceItem & { delivery?: string }) => {
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
    try {
      await listen(server, this.opts.host, this.opts.port);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : e.message;
      throw new StageError(`webhook: cannot listen on ${this.opts.host}:${this.opts.port}: ${why}${e.code ? ` (${e.code})` : ''}`, { retriable: false, name: 'ListenError', cause: err });
    }
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
        const { delivery, ...item } = queue.shift()!;
        // The cursor names every produced delivery: written with this record, it makes the dedupe survive a restart.
        yield item.kind === 'event' && delivery ? { ...item, cursor: this.record(delivery) } : item;
      }
    } finally {
      closed = true;
      o.signal.removeEventListener('abort', onAbort);
      // Deliveries handed out but not acked, or still queued, are answered 503 so GitHub shows them as failed.
      for (const settle of this.unsettled) settle(503);
      await Promise.allSettled([...this.answering]);
      const closedP = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await closedP;
      this.addr = null;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse, push: (i: SourceItem & { delivery?: string }) => void, isClosed: () => boolean): Promise<void> {
    const url = req.url ?? '/';
    if (url === '/healthz' || url.startsWith('/healthz?')) return reply(res, isClosed() ? 503 : 200, { ok: !isClosed(), pending: this.pending });
    if (isClosed()) return refuse(req, res, 503, 'shutting down', { 'retry-after': '5' });
    if (req.method !== 'POST') return refuse(req, res, 405, 'POST only', { allow: 'POST' });
    const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (ctype !== 'application/json') return refuse(req, res, 415, 'content type must be application/json');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > this.opts.maxBodyBytes) return refuse(req, res, 413, `body over ${this.opts.maxBodyBytes} bytes`);
    const sig = header(req, 'x-hub-signature-256');
    if (!sig || !SIG_RE.test(sig)) return this.forged(req, res, 'missing or malformed X-Hub-Signature-256');
    const eventType = header(req, 'x-github-event') ?? '';
    const keep = eventType === 'pull_request' || eventType === 'ping';
    const reserve = keep && Number.isFinite(declared) ? declared : 0;
    if (this.reading >= this.opts.maxConcurrentReads || this.buffered + reserve > this.opts.maxBufferedBytes) {
      return refuse(req, res, 503, 'too many deliveries being read', { 'retry-after': '5' });
    }
    const read = await this.readSigned(req, sig, keep, reserve);
    if (read === 'too-large') return refuse(req, res, 413, `body over ${this.opts.maxBodyBytes} bytes`);
    if (read === 'over-budget') return refuse(req, res, 503, 'too many deliveries being read', { 'retry-after': '5' });
    if (read === 'bad-signature') return this.forged(req, res, 'bad X-Hub-Signature-256');
    await this.accept(req, res, push, { eventType, body: read });
  }

  private forged(req: IncomingMessage, res: ServerResponse, why: string): void {
    log.warn({ delivery: header(req, 'x-github-delivery'), remote: req.socket.remoteAddress }, 'webhook signature rejected');
    refuse(req, res, 401, why);
  }

  /**
   * Read the body while updating the HMAC; keep it only when `keep`. The bytes kept count against
   * `maxBufferedBytes` (`reserve` of them up front, from Content-Length) until the body is released.
   */
  private readSigned(req: IncomingMessage, sig: string, keep: boolean, reserve: number): Promise<Buffer | 'too-large' | 'over-budget' | 'bad-signature'> {
    this.reading++;
    this.buffered += reserve;
    const hmac = createHmac('sha256', this.opts.secret);
    const chunks: Buffer[] = [];
    let size = 0;
    let held = reserve;
    return new Promise<Buffer | 'too-large' | 'over-budget' | 'bad-signature'>((resolve, reject) => {
      const stop = (r: 'too-large' | 'over-budget') => {
        req.removeAllListeners('data');
        chunks.length = 0;
        resolve(r);
      };
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.opts.maxBodyBytes) return stop('too-large');
        hmac.update(c);
        if (!keep) return;
        if (size > held) {
          if (this.buffered + (size - held) > this.opts.maxBufferedBytes) return stop('over-budget');
          this.buffered += size - held;
          held = size;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        const given = Buffer.from(sig.slice(7), 'hex');
        if (!timingSafeEqual(given, hmac.digest())) return resolve('bad-signature');
        resolve(Buffer.concat(chunks));
      });
      req.on('error', reject);
    }).finally(() => {
      this.reading--;
      this.buffered -= held;
    });
  }

  private async accept(req: IncomingMessage, res: ServerResponse, push: (i: SourceItem & { delivery?: string }) => void, d: { eventType: string; body: Buffer }): Promise<void> {
    const { eventType, body } = d;
    const delivery = header(req, 'x-github-delivery') ?? '';
    const hash = delivery ? deliveryHash(delivery) : '';
    if (hash) {
      const seen = this.delivered.get(hash);
      if (seen) {
        const status = await seen.done;
        // A delivery that was accepted before is acknowledged again without producing it twice.
        return reply(res, status === 202 ? 200 : status, { delivery, duplicate: true });
      }
    }
    if (eventType === 'ping') return reply(res, 200, { pong: true });
    if (eventType !== 'pull_request') {
      push({ kind: 'skipped', reason: eventType || 'no-event-type' });
      return reply(res, 202, { skipped: eventType });
    }
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return reply(res, 400, { error: `malformed JSON: ${(err as Error).message}` });
    }
    const norm = this.normalize(payload, delivery);
    if (!norm.ok) {
      push({ kind: 'bad', reason: norm.reason, detail: norm.detail, origin: `webhook:${delivery || 'no-delivery-id'}`, raw: body });
      return reply(res, 422, { error: norm.detail });
    }
    if (this.pending >= this.opts.maxPending) return reply(res, 503, { error: 'too many deliveries in flight' }, { 'retry-after': '5' });
    await this.awaitAck(res, push, { event: norm.event, delivery, hash });
  }

  private normalize(payload: unknown, delivery: string) {
    const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
    const repository = (typeof p.repository === 'object' && p.repository !== null ? p.repository : {}) as Record<string, unknown>;
    const pr = (typeof p.pull_request === 'object' && p.pull_request !== null ? p.pull_request : {}) as Record<string, unknown>;
    const time = [pr.updated_at, pr.closed_at, pr.created_at].find((t): t is string => typeof t === 'string') ?? null;
    return normalizePullRequest(
      {
        repo: typeof repository.full_name === 'string' ? repository.full_name : null,
        action: typeof p.action === 'string' ? p.action : '',
        number: typeof p.number === 'number' ? p.number : null,
        pr: p.pull_request,
        actor: p.sender,
        repository,
        source: 'webhook',
        sourceEventId: delivery || null,
        eventTime: time,
      },
      { cloneHosts: this.opts.cloneHosts },
    );
  }

  /** Hand the event to the runner and answer 202 once it is durable, 503 when it is not in time. */
  private async awaitAck(res: ServerResponse, push: (i: SourceItem & { delivery?: string }) => void, d: { event: PullRequestEvent; delivery: string; hash: string }): Promise<void> {
    const { event, delivery, hash } = d;
    this.pending++;
    let settle!: (status: number) => void;
    const done = new Promise<number>((r) => (settle = r));
    if (hash) this.remember(hash, { done });
    const timer = setTimeout(() => settle(503), this.opts.ackTimeoutMs);
    this.unsettled.add(settle);
    const answered = done.then((status) => {
      this.unsettled.delete(settle);
      clearTimeout(timer);
      this.pending--;
      // A failed delivery must be retryable by redelivery: forget it so the next attempt is not a "duplicate".
      if (status !== 202 && hash) this.delivered.delete(hash);
      reply(res, status, status === 202 ? { accepted: event.pr_id, delivery } : { error: 'not persisted; redeliver' });
    });
    this.answering.add(answered);
    void answered.finally(() => this.answering.delete(answered));
    push({ kind: 'event', event, ack: () => settle(202), delivery: hash || undefined });
    await answered;
  }

  private remember(hash: string, p: Pending): void {
    this.delivered.set(hash, p);
    // Bounded: the in-memory map keeps a little more than the durable list (in-flight deliveries on top).
    while (this.delivered.size > this.opts.dedupeSize + this.opts.maxPending) this.delivered.delete(this.delivered.keys().next().value as string);
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

/** Answer without reading (the rest of) the body, and close the connection so the client stops sending. */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  reply(res, status, { error }, { connection: 'close', ...headers });
  // Once the answer is out, discard (never buffer) what the client is still sending for a moment, so its
  // kernel does not get a reset before it has read the answer, then drop the socket either way.
  res.once('finish', () => {
    req.removeAllListeners('data');
    req.resume();
    const t = setTimeout(() => req.destroy(), 2000);
    t.unref();
    req.once('end', () => (clearTimeout(t), req.destroy()));
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
