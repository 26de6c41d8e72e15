/**
 * `gharchive:<file|url|glob|range|hour..|latest>` — hourly GH Archive dumps (https://www.gharchive.org: one
 * gzipped file per hour, one JSON event per line, named `YYYY-MM-DD-H.json.gz` with an unpadded hour,
 * published some minutes after the hour ends).
 *
 * Each file is decompressed as a stream and scanned on raw bytes (./gharchive-scan.ts): only
 * `PullRequestEvent` lines are parsed and become events (both payload shapes, see ./normalize.ts); other
 * event types are counted as `skipped` by type; a line that is not JSON, a PullRequestEvent without
 * repo/number, or a line over `maxLineBytes` is a `bad` item (`malformed-json`, `missing-fields`,
 * `line-too-long`) and reading goes on. A truncated or corrupt gzip stream yields one `bad` item and ends
 * that file (the next file is read).
 *
 * Specs:
 *  - a local file, an http(s) URL, a glob in the last path component (`/data/2015-01-01-*.json.gz`), or
 *    brace expansion `2015-01-01-{0..23}` — a finite list, read in order. With two or more files they are
 *    scanned `threads` at a time on worker threads (./gharchive-worker.ts) and handed out in order;
 *  - `YYYY-MM-DD-H..` (every hour from that one on) and `latest` (from the last complete hour on) — an
 *    open range. With follow=false it ends at the first hour not yet published; with follow=true it waits
 *    for each next hour: a 404 ("not yet published"), a 5xx or a network error is retried with backoff
 *    (`retry.initialMs` doubling up to `retry.maxMs`). An hour still 404 more than `retry.gapAfterMs`
 *    after it ended is one of GH Archive's known gaps: it becomes one `hour-missing` bad item (dead-lettered,
 *    never silently passed over) and the next hour is read.
 * A bare name without a directory is resolved against `base` (default https://data.gharchive.org/); the
 * `.json.gz` suffix is added when missing.
 *
 * A local file that does not exist, or a URL of a finite list that answers 404 for an hour that may still
 * be published, is an error (retriable=false / true): the run stops with one clear message instead of
 * reporting success over nothing.
 *
 * Cursor: `<location>#<line>` of the last item handed out, and `<location>#eof` once a file is done, so a
 * restart resumes inside the file or at the next one — never skipping or repeating an hour.
 */
import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Source, SourceItem } from './types.js';
import { ArchiveOpenError, openLocation, scanStream, type ScanOptions } from './gharchive-scan.js';
import { WorkerPool } from './gharchive-pool.js';
import type { NormalizeOptions } from './normalize.js';
import { isUrl } from './gharchive-scan.js';
import { abortableDelay } from './git.js';
import { StageError } from '../../streams/types.js';
import { logger } from '../../streams/log.js';

export { itemFromArchiveEvent, ArchiveOpenError } from './gharchive-scan.js';

const log = logger({ component: 'source', source: 'gharchive' });
const HOUR_MS = 3_600_000;
const DEFAULT_BASE = 'https://data.gharchive.org/';

/** Options of {@link GhArchiveSource}. */
export interface GhArchiveOptions extends NormalizeOptions {
  /** base URL or directory for bare names, ranges, `…..` and `latest` (default https://data.gharchive.org/) */
  base?: string;
  /** fetch implementation for URLs (default global fetch) */
  fetch?: typeof fetch;
  /** worker threads for a list of files (default: the cores available; 1 scans in this thread) */
  threads?: number;
  /** cap on one line in bytes (default 32 MiB) */
  maxLineBytes?: number;
  /** waiting for hours of an open range (ms): first backoff, largest backoff, when a 404 hour counts as missing */
  retry?: { initialMs?: number; maxMs?: number; gapAfterMs?: number };
  /** clock (ms since the epoch) for `latest` and the missing-hour rule (default Date.now) */
  now?: () => number;
  /** the wait between retries; tests inject a short one (default an abortable timer) */
  wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * Expand `{a..b}` numeric ranges and `{x,y}` lists (bash-style brace expansion, one level per brace,
 * left to right). `2015-01-01-{0..2}` → `2015-01-01-0`, `…-1`, `…-2`.
 */
export function expandBraces(pattern: string): string[] {
  const m = /\{([^{}]*)\}/.exec(pattern);
  if (!m) return [pattern];
  const inner = m[1]!;
  const pre = pattern.slice(0, m.index);
  const post = pattern.slice(m.index + m[0].length);
  let alts: string[];
  const r = /^(-?\d+)\.\.(-?\d+)$/.exec(inner);
  if (r) {
    const a = Number(r[1]);
    const b = Number(r[2]);
    const step = a <= b ? 1 : -1;
    alts = [];
    for (let i = a; step > 0 ? i <= b : i >= b; i += step) alts.push(String(i));
  } else alts = inner.split(',');
  return alts.flatMap((alt) => expandBraces(pre + alt + post));
}


function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
}

function resolveBare(name: string, base: string): string {
  let loc = name;
  if (!isUrl(loc) && !loc.includes('/') && !loc.includes('*') && !loc.includes('?')) {
    loc = isUrl(base) ? new URL(loc, base.endsWith('/') ? base : base + '/').toString() : path.join(base, loc);
  }
  if (!/\.json(\.gz)?$/.test(loc) && !/[*?]/.test(loc)) loc += '.json.gz';
  return loc;
}

/**
 * The ordered list of locations (paths or URLs) a finite `gharchive:` spec names.
 * @throws Error when a glob matches nothing or a directory does not exist.
 */
export async function resolveLocations(spec: string, base = DEFAULT_BASE): Promise<string[]> {
  const out: string[] = [];
  for (const name of expandBraces(spec)) {
    const loc = resolveBare(name, base);
    if (!isUrl(loc) && /[*?]/.test(path.basename(loc))) {
      const dir = path.dirname(loc);
      const re = globToRegExp(path.basename(loc));
      const names = (await readdir(dir)).filter((n) => re.test(n)).sort(compareHourNames);
      if (names.length === 0) throw new StageError(`gharchive: no file matches ${loc}`, { retriable: false, name: 'ArchiveOpenError' });
      out.push(...names.map((n) => path.join(dir, n)));
    } else out.push(loc);
  }
  return out;
}

const HOUR_NAME = /(\d{4})-(\d{2})-(\d{2})-(\d{1,2})(?:\.json(?:\.gz)?)?$/;

/** Order GH Archive names by date and numeric hour (`…-2` before `…-10`), else lexically. */
function compareHourNames(a: string, b: string): number {
  const ha = hourOf(a);
  const hb = hourOf(b);
  if (ha !== null && hb !== null) return ha - hb;
  return a.localeCompare(b);
}

/** The hour (ms since the epoch, UTC) a GH Archive name stands for, or null. */
export function hourOf(name: string): number | null {
  const m = HOUR_NAME.exec(name);
  if (!m) return null;
  const [y, mo, d, h] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  const t = Date.UTC(y, mo - 1, d, h);
  const back = new Date(t);
  // Date.UTC rolls 2015-13-01 over into 2016: a name is an hour only when it reads back the same.
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && back.getUTCHours() === h ? t : null;
}

/** The GH Archive name of an hour: `YYYY-MM-DD-H` (unpadded hour). */
export function hourName(t: number): string {
  const d = new Date(t);
  return `${d.toISOString().slice(0, 10)}-${d.getUTCHours()}`;
}

function parseCursor(cursor: string | undefined): { loc: string; line: number } | null {
  if (!cursor) return null;
  const i = cursor.lastIndexOf('#');
  if (i < 0) return null;
  const tail = cursor.slice(i + 1);
  const line = tail === 'eof' ? Infinity : Number(tail);
  return tail === 'eof' || Number.isSafeInteger(line) ? { loc: cursor.slice(0, i), line } : null;
}

/** The GH Archive source. */
export class GhArchiveSource implements Source {
  private readonly openFrom: number | 'latest' | null;

  /** @throws Error for an open range whose start is not an hour (`YYYY-MM-DD-H..`). */
  constructor(readonly uri: string, private readonly spec: string, private readonly opts: GhArchiveOptions = {}) {
    if (spec === 'latest') this.openFrom = 'latest';
    else if (spec.endsWith('..') && !spec.includes('{')) {
      const t = hourOf(spec.slice(0, -2));
      if (t === null) throw new Error(`gharchive: ${JSON.stringify(spec)}: an open range is YYYY-MM-DD-H.. (e.g. 2026-12-01-0..)`);
      this.openFrom = t;
    } else this.openFrom = null;
  }

  async *items(o: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncGenerator<SourceItem> {
    const resume = parseCursor(o.cursor);
    if (this.openFrom !== null) {
      yield* this.openRange(resume, o.signal, o.follow);
      return;
    }
    // A finite list: hours are immutable once published, so follow mode has nothing more to wait for.
    const locations = await resolveLocations(this.spec, this.opts.base);
    let start = 0;
    if (resume) {
      const i = locations.indexOf(resume.loc);
      if (i >= 0) start = resume.line === Infinity ? i + 1 : i;
    }
    const todo = locations.slice(start).map((loc) => ({ loc, skipThrough: resume && resume.loc === loc ? resume.line : 0 }));
    const threads = Math.max(1, Math.min(this.opts.threads ?? availableParallelism(), todo.length));
    if (threads > 1) {
      yield* this.pooled(todo, threads, o.signal);
      return;
    }
    for (const t of todo) {
      if (o.signal.aborted) return;
      yield* this.readOne(t.loc, t.skipThrough, o.signal, false);
    }
  }

  private scanOptions(loc: string, skipThrough: number): ScanOptions {
    return { loc, skipThrough, maxLineBytes: this.opts.maxLineBytes, cloneHosts: this.opts.cloneHosts };
  }

  /** Every hour from the start (or the cursor) on; see the module comment for waits and gaps. */
  private async *openRange(resume: { loc: string; line: number } | null, signal: AbortSignal, follow: boolean): AsyncGenerator<SourceItem> {
    const now = this.opts.now ?? Date.now;
    let hour = this.openFrom === 'latest' ? Math.floor(now() / HOUR_MS) * HOUR_MS - HOUR_MS : (this.openFrom as number);
    let skipThrough = 0;
    const at = resume ? hourOf(resume.loc) : null;
    // The cursor of this URI wins over `latest` and over a start it has passed: a restart neither skips nor repeats.
    if (resume && at !== null && (this.openFrom === 'latest' || at >= hour)) {
      hour = resume.line === Infinity ? at + HOUR_MS : at;
      skipThrough = resume.line === Infinity ? 0 : resume.line;
    }
    const base = this.opts.base ?? DEFAULT_BASE;
    for (;; hour += HOUR_MS, skipThrough = 0) {
      const loc = resolveBare(hourName(hour), base);
      for (let attempt = 0; ; attempt++) {
        if (signal.aborted) return;
        const r = yield* this.readOne(loc, skipThrough, signal, true);
        if (r === 'done') break;
        if (r !== 'not-found' && !follow) throw r; // a transient failure with nothing to wait for: say so
        const lateBy = now() - (hour + HOUR_MS);
        if (r === 'not-found' && lateBy > (this.opts.retry?.gapAfterMs ?? 6 * HOUR_MS)) {
          yield { kind: 'bad', reason: 'hour-missing', detail: `${loc} is still 404, ${Math.round(lateBy / 60_000)} min after the hour ended: a gap in GH Archive`, origin: `${loc}:0`, cursor: `${loc}#eof` };
          break;
        }
        if (!follow) return; // everything published so far is read
        const backoff = Math.min(this.opts.retry?.maxMs ?? 600_000, (this.opts.retry?.initialMs ?? 60_000) * 2 ** Math.min(attempt, 20));
        const wait = Math.max(backoff, Math.min(hour + HOUR_MS - now(), this.opts.retry?.maxMs ?? 600_000));
        log.info({ loc, attempt, waitMs: wait, why: r === 'not-found' ? 'not yet published' : (r as Error).message }, 'waiting for the next GH Archive hour');
        await (this.opts.wait ?? abortableDelay)(wait, signal);
      }
    }
  }

  /** Finite lists of two or more files: `threads` files scanned at once on worker threads, handed out in order. */
  private async *pooled(todo: Array<{ loc: string; skipThrough: number }>, threads: number, signal: AbortSignal): AsyncGenerator<SourceItem> {
    const pool = new WorkerPool(threads);
    try {
      for await (const file of pool.scanInOrder(todo.map((t) => this.scanOptions(t.loc, t.skipThrough)), signal)) {
        try {
          yield* withEof(file.loc, file.items);
        } catch (err) {
          if (!(err instanceof ArchiveOpenError)) throw err;
          yield* this.onOpenError(file.loc, err);
        }
      }
    } finally {
      await pool.close();
    }
  }

  /**
   * What a location that cannot be opened means. In a finite list: a missing local file is an error; an
   * HTTP 404 for an hour older than the gap limit is a `hour-missing` bad item, otherwise an error.
   */
  private async *onOpenError(loc: string, err: ArchiveOpenError): AsyncGenerator<SourceItem> {
    const h = hourOf(loc);
    const now = (this.opts.now ?? Date.now)();
    if (err.status === 404 && h !== null && now - (h + HOUR_MS) > (this.opts.retry?.gapAfterMs ?? 6 * HOUR_MS)) {
      yield { kind: 'bad', reason: 'hour-missing', detail: `${loc}: HTTP 404 for an hour that ended long ago: a gap in GH Archive`, origin: `${loc}:0`, cursor: `${loc}#eof` };
      return;
    }
    throw err;
  }

  private async open(loc: string, signal: AbortSignal): Promise<Readable> {
    return openLocation(loc, signal, this.opts.fetch);
  }

  /**
   * Read one file. In an open range (`open`), returns 'not-found' for a 404 and the error for any other
   * failure to open, so the caller can wait; otherwise throws them. 'done' once the file was read.
   */
  private async *readOne(loc: string, skipThrough: number, signal: AbortSignal, open: boolean): AsyncGenerator<SourceItem, 'done' | 'not-found' | Error> {
    let input: Readable;
    try {
      input = await this.open(loc, signal);
    } catch (err) {
      if (signal.aborted) return 'done';
      const e = err instanceof ArchiveOpenError ? err : new ArchiveOpenError(`gharchive: ${loc}: ${(err as Error).message}`);
      if (open) return e.status === 404 ? 'not-found' : e;
      yield* this.onOpenError(loc, e);
      return 'done';
    }
    yield* withEof(loc, scanStream(input, this.scanOptions(loc, skipThrough), signal));
    return 'done';
  }
}

/** Hand items on one behind, so the last item of a file carries the cursor `<loc>#eof` (the file is done). */
async function* withEof(loc: string, items: AsyncIterable<SourceItem> | Iterable<SourceItem>): AsyncGenerator<SourceItem> {
  let held: SourceItem | undefined;
  for await (const it of items) {
    if (held) yield held;
    held = it;
  }
  if (held) yield { ...held, cursor: `${loc}#eof` };
}
