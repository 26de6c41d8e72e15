/**
 * Scanning one GH Archive hour at gunzip speed: the part of ./gharchive.ts that touches every line, shared by
 * the in-thread reader and the worker threads (./gharchive-worker.ts).
 *
 * Why it is shaped like this (issue 15, "GH Archive scan at gunzip speed"; issue 14, "a 50 MB line took 7 min"):
 *  - lines are found with `Buffer.indexOf(0x0a)` inside each decompressed chunk and handed on as views of
 *    that chunk — no string per line, no copy unless a line spans chunks, and then the pieces are joined
 *    once (linear in the line's length, never re-concatenated per chunk);
 *  - a line longer than `maxLineBytes` is not kept: its pieces are dropped as they arrive and it ends as a
 *    `line-too-long` bad item carrying only its first {@link TOO_LONG_PREFIX_BYTES} bytes;
 *  - the decision is made on raw bytes: only a line containing the bytes `"PullRequestEvent"` is
 *    JSON-parsed (a PullRequestEvent line must contain them; GH Archive writes compact JSON). Every
 *    other line is counted as skipped under the value of its first `"type":"…"` (the event type in
 *    GH Archive's field order), without parsing;
 *  - whitespace-only lines are ignored (no item), as JSON Lines readers do.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { SourceItem } from './types.js';
import { normalizePullRequest, type Json, type NormalizeOptions } from './normalize.js';
import { StageError } from '../../streams/types.js';

/** True for an http(s) URL (else a local path). */
export const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/** Thrown when a location cannot be opened; `status` for HTTP, `code` for the file system. */
export class ArchiveOpenError extends StageError {
  constructor(message: string, readonly status?: number, readonly code?: string) {
    super(message, { retriable: status === undefined ? code !== 'ENOENT' && code !== 'EISDIR' : status !== 404, name: 'ArchiveOpenError' });
  }
}


/** Default cap on one line (bytes of decompressed JSON). GitHub caps webhook payloads at 25 MiB; real archive lines stay far below. */
export const DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024;
/** How much of a too-long line is kept for the dead-letter record (bytes). */
export const TOO_LONG_PREFIX_BYTES = 64 * 1024;

const PR_NEEDLE = Buffer.from('"PullRequestEvent"');
const TYPE_NEEDLE = Buffer.from('"type":"');

/** Options of a scan of one file. */
export interface ScanOptions extends NormalizeOptions {
  /** the file or URL, used in origins (`<loc>:<line>`) and cursors (`<loc>#<line>`) */
  loc: string;
  /** lines up to and including this one were handed out before (resume): they are counted, not emitted */
  skipThrough: number;
  /** cap on one line in bytes (default {@link DEFAULT_MAX_LINE_BYTES}) */
  maxLineBytes?: number;
}

/** Turn one decoded GH Archive event into an item. Exported for tests and the bench. */
export function itemFromArchiveEvent(e: unknown, origin: string, raw: Buffer, cursor?: string, opts: NormalizeOptions = {}): SourceItem {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return { kind: 'bad', reason: 'not-an-event', detail: 'line is JSON but not an object', origin, raw, cursor };
  const ev = e as Json;
  if (ev.type !== 'PullRequestEvent') return { kind: 'skipped', reason: typeof ev.type === 'string' ? ev.type : 'untyped', cursor };
  const payload = (typeof ev.payload === 'object' && ev.payload !== null ? ev.payload : {}) as Json;
  const repoObj = (typeof ev.repo === 'object' && ev.repo !== null ? ev.repo : {}) as Json;
  const res = normalizePullRequest(
    {
      repo: typeof repoObj.name === 'string' ? repoObj.name : null,
      action: typeof payload.action === 'string' ? payload.action : '',
      number: typeof payload.number === 'number' ? payload.number : null,
      pr: payload.pull_request,
      actor: ev.actor,
      source: 'gharchive',
      sourceEventId: ev.id === undefined || ev.id === null ? null : String(ev.id),
      eventTime: typeof ev.created_at === 'string' ? ev.created_at : null,
    },
    opts,
  );
  if (!res.ok) return { kind: 'bad', reason: res.reason, detail: res.detail, origin, raw, cursor };
  return { kind: 'event', event: res.event, cursor };
}

const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

function blank(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) if (!isSpace(line[i]!)) return false;
  return true;
}

/** The event type of a line that is not a PullRequestEvent, read from its first `"type":"…"` without parsing. */
function rawType(line: Buffer): string {
  const at = line.indexOf(TYPE_NEEDLE);
  if (at < 0) return 'untyped';
  const from = at + TYPE_NEEDLE.length;
  const to = line.indexOf(0x22, from);
  // An event type is a short identifier; anything else (a cut line, a nested object's odd value) is not one.
  if (to < 0 || to - from > 64) return 'untyped';
  return line.toString('latin1', from, to);
}

/**
 * The line-by-line state of one file: feed decompressed chunks with {@link push}, then {@link end}. Each
 * call returns the items the chunk completed, skipped lines folded into `skipped` items with a `count`
 * (one per event type per chunk), so the cost per skipped line is one byte search.
 */
export class ArchiveScanner {
  /** lines seen so far (1-based number of the last complete line) */
  lineNo = 0;
  private pieces: Buffer[] = [];
  private pendingBytes = 0;
  private tooLong = false;
  private prefix: Buffer | null = null;
  private readonly max: number;
  private skips = new Map<string, number>();
  /** line number of the last skipped line not yet handed out (its cursor is built only then) */
  private skipLine = 0;

  constructor(private readonly o: ScanOptions) {
    this.max = o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  /** Items completed by this chunk, in line order. */
  push(chunk: Buffer): SourceItem[] {
    const out: SourceItem[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.pieces.length === 0 && !this.tooLong) this.line(piece, out);
      else {
        this.append(piece);
        this.finishPending(out);
      }
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
    this.flushSkips(out);
    return out;
  }

  /** Items of a last line without a newline, and the final skip counts. */
  end(): SourceItem[] {
    const out: SourceItem[] = [];
    if (this.pieces.length || this.tooLong) this.finishPending(out);
    this.flushSkips(out);
    return out;
  }

  private append(piece: Buffer): void {
    if (this.tooLong) {
      this.pendingBytes += piece.length; // counted for the detail, not kept
      return;
    }
    if (this.pendingBytes + piece.length > this.max) {
      // Keep only the head of the line for the dead letter; drop the rest as it streams by (linear, bounded).
      const joined = Buffer.concat([...this.pieces, piece], Math.min(TOO_LONG_PREFIX_BYTES, this.pendingBytes + piece.length));
      this.prefix = joined;
      this.tooLong = true;
      this.pieces = [];
    } else this.pieces.push(piece);
    this.pendingBytes += piece.length;
  }

  private finishPending(out: SourceItem[]): void {
    if (this.tooLong) {
      const n = ++this.lineNo;
      const bytes = this.pendingBytes;
      const prefix = this.prefix!;
      this.tooLong = false;
      this.prefix = null;
      this.pendingBytes = 0;
      if (n <= this.o.skipThrough) return;
      this.flushSkips(out);
      out.push({ kind: 'bad', reason: 'line-too-long', detail: `line ${n} is ${bytes} bytes, over the limit of ${this.max} bytes; its first ${prefix.length} bytes are kept`, origin: `${this.o.loc}:${n}`, raw: Buffer.from(prefix), cursor: `${this.o.loc}#${n}` });
      return;
    }
    const line = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.pendingBytes);
    this.pieces = [];
    this.pendingBytes = 0;
    this.line(line, out);
  }

  private line(line: Buffer, out: SourceItem[]): void {
    const n = ++this.lineNo;
    if (n <= this.o.skipThrough) return;
    if (line.length === 0 || (isSpace(line[0]!) && blank(line))) return;
    if (line.indexOf(PR_NEEDLE) < 0 && line.indexOf(TYPE_NEEDLE) >= 0) {
      const t = rawType(line);
      this.skips.set(t, (this.skips.get(t) ?? 0) + 1);
      this.skipLine = n;
      return;
    }
    this.flushSkips(out);
    const cursor = `${this.o.loc}#${n}`;
    const origin = `${this.o.loc}:${n}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.toString('utf8'));
    } catch (err) {
      out.push({ kind: 'bad', reason: 'malformed-json', detail: (err as Error).message, origin, raw: Buffer.from(line), cursor });
      return;
    }
    const item = itemFromArchiveEvent(parsed, origin, line, cursor, this.o);
    // `raw` must not pin the decompressed chunk the line is a view of.
    if (item.kind === 'bad' && item.raw) item.raw = Buffer.from(item.raw);
    out.push(item);
  }

  private flushSkips(out: SourceItem[]): void {
    if (this.skips.size === 0) return;
    const cursor = `${this.o.loc}#${this.skipLine}`;
    for (const [reason, count] of this.skips) out.push({ kind: 'skipped', reason, count, cursor });
    this.skips = new Map();
  }
}

/**
 * Open a local file or URL as a byte stream.
 * @throws ArchiveOpenError (status for HTTP answers, code for file-system errors)
 */
export async function openLocation(loc: string, signal: AbortSignal, fetchImpl: typeof fetch = fetch): Promise<Readable> {
  if (isUrl(loc)) {
    let res: Response;
    try {
      res = await fetchImpl(loc, { signal });
    } catch (err) {
      throw new ArchiveOpenError(`gharchive: ${loc}: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      throw new ArchiveOpenError(`gharchive: ${loc}: HTTP ${res.status}${res.status === 404 ? ' (not published, or not in GH Archive)' : ''}`, res.status);
    }
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }
  try {
    const st = await stat(loc);
    if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ArchiveOpenError(`gharchive: ${loc}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, undefined, e.code);
  }
  return createReadStream(loc, { highWaterMark: 1 << 20 });
}

/**
 * Decompress (when `.gz`) and scan one opened file. Items come in file order; a gzip or read error ends the
 * file with one bad item (`truncated-gzip`, `corrupt-gzip`, `read-error`).
 */
export async function* scanStream(input: Readable, o: ScanOptions, signal: AbortSignal): AsyncGenerator<SourceItem> {
  const gz = o.loc.endsWith('.gz');
  // 1 MiB output chunks: zlib's default 16 KiB would hand over ~7 archive lines per chunk.
  const decoded = gz ? input.pipe(createGunzip({ chunkSize: 1 << 20 })) : input;
  // pipe() does not forward errors: a read error of the file must end the gunzip stream too.
  if (gz) input.on('error', (err) => decoded.destroy(err));
  const onAbort = () => decoded.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  const scanner = new ArchiveScanner(o);
  try {
    for await (const chunk of decoded as AsyncIterable<Buffer>) yield* scanner.push(chunk);
    yield* scanner.end();
  } catch (err) {
    if (signal.aborted) return;
    const e = err as NodeJS.ErrnoException;
    // zlib: Z_BUF_ERROR "unexpected end of file" (truncated), Z_DATA_ERROR "incorrect header check" / "invalid … " (corrupt).
    const reason = e.code === 'Z_BUF_ERROR' ? 'truncated-gzip' : e.code?.startsWith('Z_') ? 'corrupt-gzip' : 'read-error';
    const n = scanner.lineNo;
    yield { kind: 'bad', reason, detail: `${e.message} after line ${n}; the partial last line, if any, is dropped`, origin: `${o.loc}:${n + 1}`, cursor: `${o.loc}#${n}` };
  } finally {
    signal.removeEventListener('abort', onAbort);
    input.destroy();
  }
}

