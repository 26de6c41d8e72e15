/**
 * `github:<owner>/<repo>[?prs=1,2&poll=SECONDS&base=URL]` — merged pull requests from the GitHub REST
 * API through Octokit (@octokit/rest).
 *
 * Listing: `GET /repos/{o}/{r}/pulls?state=closed&sort=updated&direction=desc` page by page until the
 * stored cursor is reached, then emitted oldest-updated first; only PRs with `merged_at` become events
 * (closed-unmerged ones are `skipped`). With `prs=` exactly those PRs are read (`GET …/pulls/{n}`).
 * Per merged PR (GraphQL-free, so a plain token or none works):
 *  - its files: `GET …/pulls/{n}/files` page by page (100 per page; GitHub lists at most 3,000), as
 *    `files` (path, previous path, status, additions, deletions, hunks counted from the patch, binary when
 *    GitHub shows no patch for a changed file, kind and vendored by operators/pr/classify);
 *  - the issues it closes: closing keywords (GitHub docs "Linking a pull request to an issue": close,
 *    fixes, resolved… #N or owner/repo#N of the same repository) in the PR body, then in its commits'
 *    messages (`GET …/pulls/{n}/commits`; GitHub closes those too when they reach the default branch),
 *    each completed with `GET …/issues/{n}` (title, body; source "api") so statements come from the issue
 *    text as SWE-bench's do. A reference to a pull request, or to an issue that is gone, stays a bare
 *    number (source "body" / "commit").
 * A 404/410/401 on files or commits (a PR deleted since, a token without access) leaves `files` null or
 * adds nothing; other failures fail the source (retriable). The repository's licence and clone URL come
 * from `GET /repos/{o}/{r}` once per iteration; the clone URL is kept only on github.com or the API's own
 * host (GitHub Enterprise), see normalize.ts trustedCloneUrl.
 *
 * HTTP behaviour: token from `GITHUB_TOKEN` (never logged); conditional requests with `If-None-Match`
 * and a per-source ETag cache, so an unchanged poll costs no rate limit (GitHub docs "Best practices for
 * using the REST API": conditional requests); on 403/429 with `x-ratelimit-remaining: 0` the source
 * waits until `x-ratelimit-reset` (epoch seconds), and on `retry-after` that many seconds (secondary
 * rate limits), then retries — it never fails because of a rate limit. `base` (or the `baseUrl` option)
 * points it at GitHub Enterprise or a test server.
 *
 * Cursor: `<updated_at>|<n1,n2,…>` — the newest `updated_at` emitted and the PR numbers emitted at that
 * exact instant (so PRs sharing the timestamp are neither lost nor repeated on resume). A PR updated
 * after its merge (a comment) is emitted again; downstream is keyed by pr_id and idempotent.
 */
import { Octokit } from '@octokit/rest';
import type { PullRequestEvent, LinkedIssue, ChangedFile } from '../../schemas/types.gen.js';
import type { Source, SourceItem } from './types.js';
import { normalizePullRequest, trustedCloneUrl, DEFAULT_CLONE_HOSTS, type Json } from './normalize.js';
import { abortableDelay } from './git.js';
import { StageError } from '../../streams/types.js';
import { logger } from '../../streams/log.js';
import { extractLinkedIssueNumbers, fileKind, isVendoredPath } from '../../operators/pr/classify.js';

const log = logger({ component: 'source', source: 'github' });

/** Options of {@link GitHubSource}. */
export interface GitHubSourceOptions {
  token?: string;
  /** API base URL (default https://api.github.com) */
  baseUrl?: string;
  /** only these PR numbers */
  prs?: number[];
  /** follow-mode poll interval in seconds (default 60) */
  pollSeconds?: number;
  /** the wait used for rate limits and polling; tests inject one that records and returns at once */
  wait?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** cap on one rate-limit wait (default 1 h) */
  maxWaitMs?: number;
  /** pages of 100 to read per listing at most (default 10) */
  maxPages?: number;
  /** clock for `x-ratelimit-reset` (default Date.now) */
  now?: () => number;
}

interface Cached { etag: string; data: unknown }

/** Parse `<updated_at>|<n,…>`; null for an absent/invalid cursor. */
export function parseGitHubCursor(c: string | undefined): { updated: string; numbers: Set<number> } | null {
  if (!c) return null;
  const [updated, nums = ''] = c.split('|');
  if (!updated || Number.isNaN(Date.parse(updated))) return null;
  return { updated, numbers: new Set(nums.split(',').filter(Boolean).map(Number)) };
}

/** The GitHub REST source. */
export class GitHubSource implements Source {
  private readonly octokit: Octokit;
  private readonly etags = new Map<string, Cached>();
  private readonly owner: string;
  private readonly name: string;
  /** hosts a clone URL from the API may name: github.com and the API's own host */
  private readonly cloneHosts: string[];
  /** requests made, by outcome (for tests and metrics) */
  readonly stats = { requests: 0, notModified: 0, rateLimitWaits: 0 };

  constructor(readonly uri: string, readonly repo: string, private readonly opts: GitHubSourceOptions = {}) {
    const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repo);
    if (!m) throw new Error(`github: bad repository ${JSON.stringify(repo)} (want owner/repo)`);
    this.owner = m[1]!;
    this.name = m[2]!;
    const apiHost = new URL(opts.baseUrl ?? 'https://api.github.com').hostname;
    this.cloneHosts = [...DEFAULT_CLONE_HOSTS, ...(apiHost === 'api.github.com' ? [] : [apiHost])];
    this.octokit = new Octokit({
      auth: opts.token,
      baseUrl: opts.baseUrl ?? 'https://api.github.com',
      userAgent: 'swe-stream',
      // Octokit's request log reports every non-2xx (304s, rate limits) as an error; this source decides what is one.
      log: { debug: () => {}, info: () => {}, warn: (msg: string) => log.debug(msg), error: (msg: string) => log.debug(msg) },
    });
  }

  private wait(ms: number, signal: AbortSignal): Promise<void> {
    return (this.opts.wait ?? abortableDelay)(ms, signal);
  }

  /**
   * GET with ETag cache and rate-limit waits. Returns the (possibly cached) body.
   * @throws StageError retriable=false for 404/410/401; retriable=true for other HTTP/network errors.
   */
  async get<T>(route: string, params: Record<string, string | number>, signal: AbortSignal): Promise<T> {
    const key = route + JSON.stringify(params);
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      const cached = this.etags.get(key);
      this.stats.requests++;
      try {
        const res = await this.octokit.request(route, { ...params, headers: cached ? { 'if-none-match': cached.etag } : {}, request: { signal } });
        const etag = res.headers.etag;
        if (etag) this.etags.set(key, { etag, data: res.data });
        return res.data as T;
      } catch (err) {
        const e = err as { status?: number; response?: { headers?: Record<string, string | undefined> }; message?: string };
        if (e.status === 304 && cached) {
          this.stats.notModified++;
          return cached.data as T;
        }
        const h = e.response?.headers ?? {};
        const waitMs = this.rateLimitWait(e.status, h);
        if (waitMs !== null) {
          this.stats.rateLimitWaits++;
          log.warn({ route, status: e.status, waitMs }, 'GitHub rate limit: waiting');
          await this.wait(waitMs, signal);
          continue;
        }
        if (signal.aborted) throw err;
        const status = e.status ?? 0;
        const permanent = status === 404 || status === 410 || status === 401 || status === 422;
        throw new StageError(`GitHub ${route} ${JSON.stringify(params)}: ${status || 'network'} ${e.message ?? ''}`.trim(), { retriable: !permanent, name: 'GitHubApiError', cause: err });
      }
    }
  }

  /** ms to wait before retrying a rate-limited request, or null when the error is not a rate limit. */
  rateLimitWait(status: number | undefined, h: Record<string, string | undefined>): number | null {
    if (status !== 403 && status !== 429) return null;
    const cap = this.opts.maxWaitMs ?? 3_600_000;
    const retryAfter = h['retry-after'];
    if (retryAfter !== undefined && retryAfter !== '') {
      const s = Number(retryAfter);
      return Math.min(cap, Number.isFinite(s) ? Math.max(0, s * 1000) : 60_000);
    }
    if (h['x-ratelimit-remaining'] === '0') {
      const reset = Number(h['x-ratelimit-reset']);
      const now = (this.opts.now ?? Date.now)();
      return Math.min(cap, Number.isFinite(reset) ? Math.max(0, reset * 1000 - now) + 1000 : 60_000);
    }
    // GitHub docs: a 429 without headers is a secondary limit; wait at least a minute.
    return status === 429 ? 60_000 : null;
  }

  /** Repository metadata (licence, clone URL); {} when the endpoint has nothing (the pulls carry base.repo too). */
  private async repoInfo(signal: AbortSignal): Promise<Json> {
    try {
      return await this.get<Json>('GET /repos/{owner}/{repo}', { owner: this.owner, repo: this.name }, signal);
    } catch (err) {
      if (err instanceof StageError && !err.retriable) {
        log.warn({ repo: this.repo, err: err.message }, 'repository metadata unavailable; using the pull requests\' base.repo');
        return {};
      }
      throw err;
    }
  }

  /** GitHub answered that the thing is not there for us (gone, or no access): a fact, not a failure. */
  private static absent(err: unknown): boolean {
    return err instanceof StageError && !err.retriable;
  }

  /** The PR's changed files, or null when GitHub will not list them. */
  private async files(n: number, signal: AbortSignal): Promise<ChangedFile[] | null> {
    const out: ChangedFile[] = [];
    try {
      for (let page = 1; page <= 30; page++) {
        const items = await this.get<Json[]>('GET /repos/{owner}/{repo}/pulls/{pull_number}/files', { owner: this.owner, repo: this.name, pull_number: n, per_page: 100, page }, signal);
        for (const f of items) out.push(changedFile(f));
        if (items.length < 100) break;
      }
    } catch (err) {
      if (GitHubSource.absent(err)) return null;
      throw err;
    }
    return out;
  }

  /** Closing references in the PR's commit messages (the first 250 commits, GitHub's cap for this endpoint). */
  private async commitRefs(n: number, signal: AbortSignal): Promise<number[]> {
    const out: number[] = [];
    try {
      for (let page = 1; page <= 3; page++) {
        const items = await this.get<Json[]>('GET /repos/{owner}/{repo}/pulls/{pull_number}/commits', { owner: this.owner, repo: this.name, pull_number: n, per_page: 100, page }, signal);
        for (const c of items) {
          const msg = (c.commit as Json | undefined)?.message;
          if (typeof msg === 'string') out.push(...extractLinkedIssueNumbers(msg, this.repo));
        }
        if (items.length < 100) break;
      }
    } catch (err) {
      if (GitHubSource.absent(err)) return [];
      throw err;
    }
    return out;
  }

  /** Issues closed by references in the body (first) and the commits, each with its text when it is an issue. */
  private async linkedIssues(refs: { body: number[]; commits: number[] }, signal: AbortSignal): Promise<LinkedIssue[]> {
    const out: LinkedIssue[] = [];
    const seen = new Set<number>();
    const all = [...refs.body.map((n) => ({ n, from: 'body' as const })), ...refs.commits.map((n) => ({ n, from: 'commit' as const }))];
    for (const { n, from } of all) {
      if (seen.has(n)) continue;
      seen.add(n);
      try {
        const issue = await this.get<Json>('GET /repos/{owner}/{repo}/issues/{issue_number}', { owner: this.owner, repo: this.name, issue_number: n }, signal);
        if (issue.pull_request) continue; // "fixes #12" where #12 is a PR links nothing
        out.push({ number: n, title: typeof issue.title === 'string' ? issue.title : null, body: typeof issue.body === 'string' ? issue.body : null, source: 'api' });
      } catch (err) {
        if (!GitHubSource.absent(err)) throw err;
        out.push({ number: n, title: null, body: null, source: from }); // deleted/transferred issue: keep the reference only
      }
    }
    return out;
  }

  private async toEvent(pr: Json, repoJson: Json, signal: AbortSignal): Promise<PullRequestEvent | { bad: string }> {
    const res = normalizePullRequest({ repo: this.repo, action: 'closed', number: typeof pr.number === 'number' ? pr.number : null, pr, repository: repoJson, source: 'github', sourceEventId: `${String(pr.id)}@${String(pr.updated_at)}`, eventTime: typeof pr.merged_at === 'string' ? pr.merged_at : null });
    if (!res.ok) return { bad: res.detail };
    const ev = res.event;
    if (ev.merged === null) ev.merged = pr.merged_at ? true : false; // list items have merged_at but no `merged`
    ev.files = await this.files(ev.number, signal);
    ev.linked_issues = await this.linkedIssues({ body: extractLinkedIssueNumbers(ev.body, this.repo), commits: await this.commitRefs(ev.number, signal) }, signal);
    if (!ev.license) {
      const lic = repoJson.license as Json | null | undefined;
      ev.license = lic && typeof lic.spdx_id === 'string' ? lic.spdx_id : null;
    }
    if (typeof repoJson.clone_url === 'string') ev.clone_url = trustedCloneUrl(this.repo, repoJson.clone_url, this.cloneHosts);
    return ev;
  }

  async *items(o: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncGenerator<SourceItem> {
    let cursor = parseGitHubCursor(o.cursor);
    for (;;) {
      if (o.signal.aborted) return;
      let repoJson: Json;
      try {
        repoJson = await this.repoInfo(o.signal);
      } catch (err) {
        if (o.signal.aborted) return;
        throw err;
      }
      if (this.opts.prs?.length) {
        for (const n of this.opts.prs) {
          if (o.signal.aborted) return;
          const pr = await this.get<Json>('GET /repos/{owner}/{repo}/pulls/{pull_number}', { owner: this.owner, repo: this.name, pull_number: n }, o.signal);
          yield* this.emit(pr, repoJson, undefined, o.signal);
        }
        if (!o.follow) return;
      } else {
        const fresh = await this.listSince(cursor, o.signal);
        for (const pr of fresh) {
          if (o.signal.aborted) return;
          const updated = String(pr.updated_at);
          const numbers = cursor && cursor.updated === updated ? new Set(cursor.numbers) : new Set<number>();
          numbers.add(Number(pr.number));
          cursor = { updated, numbers };
          yield* this.emit(pr, repoJson, `${updated}|${[...numbers].join(',')}`, o.signal);
        }
        if (!o.follow) return;
      }
      await this.wait((this.opts.pollSeconds ?? 60) * 1000, o.signal);
    }
  }

  private async *emit(pr: Json, repoJson: Json, cursor: string | undefined, signal: AbortSignal): AsyncGenerator<SourceItem> {
    if (!pr.merged_at) {
      yield { kind: 'skipped', reason: pr.state === 'open' ? 'open' : 'closed-unmerged', cursor };
      return;
    }
    const ev = await this.toEvent(pr, repoJson, signal);
    if ('bad' in ev) yield { kind: 'bad', reason: 'missing-fields', detail: ev.bad, origin: `${this.uri}#${String(pr.number)}`, raw: Buffer.from(JSON.stringify(pr)), cursor };
    else yield { kind: 'event', event: ev, cursor };
  }

  /** Closed PRs updated at/after the cursor (minus those already emitted at that instant), oldest first. */
  private async listSince(cursor: { updated: string; numbers: Set<number> } | null, signal: AbortSignal): Promise<Json[]> {
    const out: Json[] = [];
    const maxPages = this.opts.maxPages ?? 10;
    for (let page = 1; page <= maxPages; page++) {
      const items = await this.get<Json[]>('GET /repos/{owner}/{repo}/pulls', { owner: this.owner, repo: this.name, state: 'closed', sort: 'updated', direction: 'desc', per_page: 100, page }, signal);
      let reached = false;
      for (const pr of items) {
        const updated = String(pr.updated_at);
        if (cursor) {
          const cmp = Date.parse(updated) - Date.parse(cursor.updated);
          if (cmp < 0 || (cmp === 0 && cursor.numbers.has(Number(pr.number)))) {
            if (cmp < 0) reached = true;
            continue;
          }
        }
        out.push(pr);
      }
      if (reached || items.length < 100) break;
    }
    return out.sort((a, b) => Date.parse(String(a.updated_at)) - Date.parse(String(b.updated_at)) || Number(a.number) - Number(b.number));
  }
}

/**
 * One entry of `GET …/pulls/{n}/files` as a ChangedFile. GitHub's statuses added/removed/modified/renamed/
 * copied/changed/unchanged map onto added/deleted/modified/renamed; counts may come as numbers or strings
 * (old recordings); hunks are the `@@` headers of the patch; a changed file with neither a patch nor line
 * counts is binary (GitHub's own rendering of binary files).
 */
export function changedFile(f: Json): ChangedFile {
  const path = typeof f.filename === 'string' ? f.filename : '';
  const patch = typeof f.patch === 'string' ? f.patch : null;
  const raw = typeof f.status === 'string' ? f.status : 'modified';
  const status = raw === 'removed' ? 'deleted' : raw === 'added' || raw === 'renamed' ? raw : raw === 'copied' ? 'added' : 'modified';
  const num = (v: unknown) => (Number.isSafeInteger(Number(v)) ? Number(v) : 0);
  const additions = num(f.additions);
  const deletions = num(f.deletions);
  return {
    path,
    old_path: typeof f.previous_filename === 'string' ? f.previous_filename : null,
    kind: fileKind(path),
    status,
    additions,
    deletions,
    hunks: patch ? (patch.match(/^@@ /gm) ?? []).length : 0,
    binary: patch === null && additions + deletions === 0 && status !== 'deleted',
    vendored: isVendoredPath(path),
  };
}
