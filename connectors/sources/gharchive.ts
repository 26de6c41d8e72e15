/**
 * `gharchive:<file|url|glob|range>` — hourly GH Archive dumps (https://www.gharchive.org: one gzipped
 * file per hour, one JSON event per line, named `YYYY-MM-DD-H.json.gz` with an unpadded hour).
 *
 * Each file is decompressed as a stream (zlib gunzip → line splitter); nothing is loaded whole. Only
 * `PullRequestEvent` lines become events (both payload shapes, see ./normalize.ts); every other event
 * type is a `skipped` item. A line that is not JSON, or a PullRequestEvent without repo/number, is a
 * `bad` item and reading goes on. A truncated or corrupt gzip stream yields one `bad` item and ends that
 * file cleanly (the next file, if any, is read).
 *
 * Locations: a local file, an http(s) URL, a glob in the last path component (`/data/2015-01-01-*.json.gz`),
 * or an hour range with brace expansion `2015-01-01-{0..23}` (also `{0..23}` on any component). A bare
 * name without a directory is resolved against `base` (default https://data.gharchive.org/); the
 * `.json.gz` suffix is added when missing.
 *
 * Cursor: `<location>#<line>` of the last item handed out; resuming skips every earlier file and the
 * lines up to and including that line.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Source, SourceItem } from './types.js';
import { normalizePullRequest, type Json } from './normalize.js';

/** Options of {@link GhArchiveSource}. */
export interface GhArchiveOptions {
  /** base URL or directory for bare names and ranges (default https://data.gharchive.org/) */
  base?: string;
  /** fetch implementation for URLs (default global fetch) */
  fetch?: typeof fetch;
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

const isUrl = (s: string) => /^https?:\/\//i.test(s);

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
}

/**
 * The ordered list of locations (paths or URLs) a `gharchive:` spec names.
 * @throws Error when a glob matches nothing or a directory does not exist.
 */
export async function resolveLocations(spec: string, base = 'https://data.gharchive.org/'): Promise<string[]> {
  const out: string[] = [];
  for (let loc of expandBraces(spec)) {
    if (!isUrl(loc) && !loc.includes('/') && !loc.includes('*') && !loc.includes('?')) {
      loc = isUrl(base) ? new URL(loc, base.endsWith('/') ? base : base + '/').toString() : path.join(base, loc);
    }
    if (!/\.json(\.gz)?$/.test(loc) && !/[*?]/.test(loc)) loc += '.json.gz';
    if (!isUrl(loc) && /[*?]/.test(path.basename(loc))) {
      const dir = path.dirname(loc);
      const re = globToRegExp(path.basename(loc));
      const names = (await readdir(dir)).filter((n) => re.test(n)).sort(compareHourNames);
      if (names.length === 0) throw new Error(`gharchive: no file matches ${loc}`);
      out.push(...names.map((n) => path.join(dir, n)));
    } else out.push(loc);
  }
  return out;
}

/** Order GH Archive names by date and numeric hour (`…-2` before `…-10`), else lexically. */
function compareHourNames(a: string, b: string): number {
  const ra = /(\d{4}-\d{2}-\d{2})-(\d{1,2})\b/.exec(a);
  const rb = /(\d{4}-\d{2}-\d{2})-(\d{1,2})\b/.exec(b);
  if (ra && rb) return ra[1] === rb[1] ? Number(ra[2]) - Number(rb[2]) : ra[1]!.localeCompare(rb[1]!);
  return a.localeCompare(b);
}

/** Split a byte stream into lines (without the newline); a final line without a newline is yielded too. */
async function* lines(stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let i: number;
    while ((i = buf.indexOf(10)) !== -1) {
      yield buf.subarray(0, i);
      buf = buf.subarray(i + 1);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length) yield rest;
}

function parseCursor(cursor: string | undefined): { loc: string; line: number } | null {
  if (!cursor) return null;
  const i = cursor.lastIndexOf('#');
  if (i < 0) return null;
  const line = Number(cursor.slice(i + 1));
  return Number.isSafeInteger(line) ? { loc: cursor.slice(0, i), line } : null;
}

/** Turn one decoded GH Archive event into an item. Exported for tests and the bench. */
export function itemFromArchiveEvent(e: unknown, origin: string, raw: Buffer, cursor?: string): SourceItem {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return { kind: 'bad', reason: 'not-an-event', detail: 'line is JSON but not an object', origin, raw, cursor };
  const ev = e as Json;
  if (ev.type !== 'PullRequestEvent') return { kind: 'skipped', reason: typeof ev.type === 'string' ? ev.type : 'untyped', cursor };
  const payload = (typeof ev.payload === 'object' && ev.payload !== null ? ev.payload : {}) as Json;
  const repoObj = (typeof ev.repo === 'object' && ev.repo !== null ? ev.repo : {}) as Json;
  const res = normalizePullRequest({
    repo: typeof repoObj.name === 'string' ? repoObj.name : null,
    action: typeof payload.action === 'string' ? payload.action : '',
    number: typeof payload.number === 'number' ? payload.number : null,
    pr: payload.pull_request,
    actor: ev.actor,
    source: 'gharchive',
    sourceEventId: ev.id === undefined || ev.id === null ? null : String(ev.id),
    eventTime: typeof ev.created_at === 'string' ? ev.created_at : null,
  });
  if (!res.ok) return { kind: 'bad', reason: res.reason, detail: res.detail, origin, raw, cursor };
  return { kind: 'event', event: res.event, cursor };
}

/** The GH Archive source. */
export class GhArchiveSource implements Source {
  constructor(readonly uri: string, private readonly spec: string, private readonly opts: GhArchiveOptions = {}) {}

  async *items(o: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncGenerator<SourceItem> {
    // GH Archive hours are immutable once published: follow mode has nothing more to wait for.
    const locations = await resolveLocations(this.spec, this.opts.base);
    const resume = parseCursor(o.cursor);
    let start = 0;
    if (resume) {
      const i = locations.indexOf(resume.loc);
      if (i >= 0) start = i;
    }
    for (let f = start; f < locations.length; f++) {
      if (o.signal.aborted) return;
      const loc = locations[f]!;
      const skipThrough = resume && resume.loc === loc ? resume.line : 0;
      yield* this.readOne(loc, skipThrough, o.signal);
    }
  }

  private async open(loc: string, signal: AbortSignal): Promise<Readable> {
    if (isUrl(loc)) {
      const res = await (this.opts.fetch ?? fetch)(loc, { signal });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} for ${loc}`);
      return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    }
    await stat(loc); // a clear ENOENT before the stream starts
    return createReadStream(loc);
  }

  private async *readOne(loc: string, skipThrough: number, signal: AbortSignal): AsyncGenerator<SourceItem> {
    let input: Readable;
    try {
      input = await this.open(loc, signal);
    } catch (err) {
      if (signal.aborted) return;
      yield { kind: 'bad', reason: 'unreadable', detail: (err as Error).message, origin: loc, cursor: `${loc}#0` };
      return;
    }
    const gz = loc.endsWith('.gz');
    const decoded = gz ? input.pipe(createGunzip()) : input;
    // pipe() does not forward errors: a read error of the file must end the gunzip stream too.
    if (gz) input.on('error', (err) => decoded.destroy(err));
    const onAbort = () => decoded.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    let lineNo = 0;
    try {
      for await (const line of lines(decoded as AsyncIterable<Buffer>)) {
        lineNo++;
        if (lineNo <= skipThrough) continue;
        const cursor = `${loc}#${lineNo}`;
        const origin = `${loc}:${lineNo}`;
        if (line.length === 0 || (line.length === 1 && line[0] === 13)) continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line.toString('utf8'));
        } catch (err) {
          yield { kind: 'bad', reason: 'malformed-json', detail: (err as Error).message, origin, raw: Buffer.from(line), cursor };
          continue;
        }
        yield itemFromArchiveEvent(parsed, origin, Buffer.from(line), cursor);
      }
    } catch (err) {
      if (signal.aborted) return;
      const e = err as NodeJS.ErrnoException;
      // zlib: Z_BUF_ERROR "unexpected end of file" (truncated), Z_DATA_ERROR "incorrect header check" / "invalid … " (corrupt).
      const reason = e.code === 'Z_BUF_ERROR' ? 'truncated-gzip' : e.code?.startsWith('Z_') ? 'corrupt-gzip' : 'read-error';
      yield { kind: 'bad', reason, detail: `${e.message} after line ${lineNo}; the partial last line, if any, is dropped`, origin: `${loc}:${lineNo + 1}`, cursor: `${loc}#${lineNo}` };
    } finally {
      signal.removeEventListener('abort', onAbort);
      input.destroy();
    }
  }
}
