/**
 * `git:<path|url>[?branches=main,dev|*&prs=1,2&since=YYYY-MM-DD&limit=N&repo=owner/name&poll=SECONDS]` —
 * merged pull requests read from a repository's history, every merge style (merge commits, squash commits,
 * rebase merges and PR refs merged on the command line; see operators/pr/history.ts), anywhere in the
 * history of the scanned branches (`branches=`, default the branch HEAD points to, `*` for all).
 *
 * A local path is read in place; a URL is cloned into the mirror cache first. The repository name
 * (`owner/repo`, used in pr_id) is the `repo` parameter, else the `origin` remote's URL, else the path's
 * or URL's last two components (`.git` stripped). `clone_url` is the local path or the URL, so the
 * mirror cache can clone what the filter needs.
 *
 * Each event says how the PR was found (`merge_style`) and carries the task's base commit in `base_sha`
 * (the merge base of head and target, the squash commit's parent, the parent of a rebase-landed range).
 *
 * Order: oldest first; the cursor is the space-separated list of scanned branch tips (a resume point:
 * the next scan reads only commits not reachable from them), and each event's cursor adds its landing
 * commit. With `limit` the N most recent, most recent first, and the cursor is only set on the last item.
 * With follow=true the source polls every `poll` seconds (default 60) for merges after the cursor.
 *
 * Bad input is one item, never a crash: a repository whose history cannot be read (`history-unreadable`,
 * `repo-unavailable`, `clone-failed`), a branch that does not exist (`branch-not-found`), a PR asked for
 * with `prs=` that is not merged in the scanned history (`pr-not-found`: its ref is missing, or it did not
 * land). PR refs that did not resolve to a merged PR are counted as skipped with their reason
 * (`pull-ref-not-landed`, `pull-ref-partly-landed`, `rebase-not-contiguous`, `pull-ref-fast-forward`, …)
 * on the first scan.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import type { PullRequestEvent } from '../../schemas/types.gen.js';
import type { Source, SourceItem } from './types.js';
import type { Mirror, MirrorCache } from '../../operators/pr/mirror.js';
import { CloneFailedError, RepoUnavailableError, isLocalCloneUrl } from '../../operators/pr/mirror.js';
import { BranchNotFoundError, openLocalRepo, scanMergedPrs, type MergedPr, type ScanResult } from '../../operators/pr/history.js';
import { extractLinkedIssueNumbers, isBotAuthor } from '../../operators/pr/classify.js';

/** Parsed `git:` URI. */
export interface GitSpec {
  location: string;
  /** branches to scan; absent = the branch HEAD points to */
  branches?: string[] | '*';
  prs?: Set<number>;
  since?: string;
  limit?: number;
  repo?: string;
  pollSeconds: number;
}

/**
 * Parse the part after `git:`.
 * @throws Error for a bad `branches`, `prs`, `since`, `limit`, `repo` or `poll` value.
 */
export function parseGitSpec(rest: string): GitSpec {
  const q = rest.indexOf('?');
  const location = q === -1 ? rest : rest.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : rest.slice(q + 1));
  if (!location) throw new Error('git: source needs a path or URL');
  const spec: GitSpec = { location, pollSeconds: 60 };
  for (const [k, v] of params) {
    if (k === 'branches') spec.branches = parseBranches(v);
    else if (k === 'prs') {
      const nums = v.split(',').filter(Boolean).map(Number);
      if (!nums.length || nums.some((n) => !Number.isSafeInteger(n) || n <= 0)) throw new Error(`git: bad prs=${v}`);
      spec.prs = new Set(nums);
    } else if (k === 'since') {
      if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(Date.parse(v))) throw new Error(`git: bad since=${v} (want YYYY-MM-DD)`);
      spec.since = v;
    } else if (k === 'limit') {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`git: bad limit=${v}`);
      spec.limit = n;
    } else if (k === 'repo') {
      if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(v)) throw new Error(`git: bad repo=${v} (want owner/name)`);
      spec.repo = v;
    } else if (k === 'poll') {
      const n = Number(v);
      if (!(n > 0)) throw new Error(`git: bad poll=${v}`);
      spec.pollSeconds = n;
    } else throw new Error(`git: unknown parameter ${k}`);
  }
  return spec;
}

/** `*` or a comma-separated list of branch names (git's ref-name rules, checked loosely). @throws Error for a bad name. */
function parseBranches(v: string): string[] | '*' {
  if (v === '*') return '*';
  const names = v.split(',').map((b) => b.trim()).filter(Boolean);
  const bad = names.find((b) => b.startsWith('-') || b.includes('..') || /[\s~^:?*[\\]/.test(b));
  if (!names.length || bad !== undefined) throw new Error(`git: bad branches=${v} (want * or names separated by commas)`);
  return names;
}

/** `owner/repo` from the last two components of a path or URL (`.git` stripped), or null. */
export function repoNameFromLocation(loc: string): string | null {
  const clean = loc.replace(/\/+$/, '').replace(/\.git$/, '');
  const m = /([A-Za-z0-9_.-]+)[/:]([A-Za-z0-9_.-]+)$/.exec(clean);
  return m ? `${m[1]}/${m[2]}` : null;
}

/** Login from a GitHub noreply e-mail (`123+login@users.noreply.github.com` or `login@users.noreply.github.com`). */
export function loginFromEmail(email: string): string | null {
  const m = /^(?:\d+\+)?([^@]+)@users\.noreply\.github\.com$/i.exec(email);
  return m ? m[1]! : null;
}

/**
 * Build the PullRequestEvent of one merged PR found in history: `merge_commit_sha` = the landing commit,
 * `base_sha` = the task's base commit, `head_sha` = the PR head, `merge_style` = how it was found,
 * `base_ref` = the scanned branch it was reached from (else the default branch).
 */
export function eventFromMergedPr(pr: MergedPr, repo: string, cloneUrl: string, defaultBranch: string | null): PullRequestEvent {
  const login = loginFromEmail(pr.authorEmail) ?? (pr.style === 'merge' && pr.headRef ? pr.headRef.split('/')[0]! : pr.authorName);
  const text = `${pr.title}\n${pr.body}`;
  return {
    pr_id: `${repo}#${pr.number}`,
    repo,
    number: pr.number,
    action: 'closed',
    source: 'git',
    source_event_id: pr.sha,
    event_time: pr.mergedAt,
    payload_shape: 'git',
    merged: true,
    merged_at: pr.mergedAt,
    merge_commit_sha: pr.sha,
    base_ref: pr.branch && !/^[0-9a-f]{40}$/.test(pr.branch) ? pr.branch : defaultBranch,
    base_sha: pr.base,
    head_ref: pr.headRef,
    head_sha: pr.headSha,
    title: pr.title,
    body: pr.body,
    user_login: login,
    user_type: isBotAuthor(login, null, pr.authorEmail) ? 'Bot' : 'User',
    created_at: null,
    clone_url: cloneUrl,
    linked_issues: extractLinkedIssueNumbers(text, repo).map((n) => ({ number: n, title: null, body: null, source: 'commit' })),
    labels: [],
    license: null,
    merge_style: pr.style,
    files: null,
  };
}

/** The bad-input reason code of an error met while opening or scanning a repository; null for a programming error. */
export function scanFailureReason(err: unknown): string | null {
  if (err instanceof BranchNotFoundError) return 'branch-not-found';
  if (err instanceof RepoUnavailableError) return 'repo-unavailable';
  if (err instanceof CloneFailedError) return 'clone-failed';
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError) return null;
  return 'history-unreadable';
}

/** Parse a cursor: the space-separated branch tips of an earlier scan (a single sha from older versions is one tip). */
function cursorTips(cursor: string | undefined): string[] {
  return (cursor ?? '').split(' ').filter((s) => /^[0-9a-f]{40}$/.test(s));
}

/** The git-history source. */
export class GitSource implements Source {
  private readonly spec: GitSpec;
  constructor(readonly uri: string, rest: string, private readonly mirrors: MirrorCache) {
    this.spec = parseGitSpec(rest);
  }

  private async openRepo(signal: AbortSignal): Promise<{ repo: Mirror; name: string; cloneUrl: string }> {
    const loc = this.spec.location;
    if (isLocalCloneUrl(loc) || existsSync(loc)) {
      const abs = path.resolve(loc.startsWith('file://') ? new URL(loc).pathname : loc);
      if (!existsSync(abs)) throw new RepoUnavailableError(`git: ${abs} does not exist`);
      const local = await openLocalRepo(abs);
      const origin = (await local.git(['config', '--get', 'remote.origin.url']).catch(() => '')).trim();
      const name = this.spec.repo ?? (origin ? repoNameFromLocation(origin) : null) ?? repoNameFromLocation(abs);
      if (!name) throw new RepoUnavailableError(`git: cannot tell owner/repo for ${abs}; pass ?repo=owner/name`);
      return { repo: await openLocalRepo(abs, name), name, cloneUrl: abs };
    }
    const name = this.spec.repo ?? repoNameFromLocation(loc);
    if (!name) throw new RepoUnavailableError(`git: cannot tell owner/repo for ${loc}; pass ?repo=owner/name`);
    const repo = await this.mirrors.ensure(name, loc, { refresh: true, signal });
    return { repo, name, cloneUrl: loc };
  }

  async *items(o: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncGenerator<SourceItem> {
    let cursor = o.cursor;
    let first = true;
    for (;;) {
      if (o.signal.aborted) return;
      let opened: { repo: Mirror; name: string; cloneUrl: string };
      let scan: ScanResult | null;
      try {
        opened = await this.openRepo(o.signal);
        scan = await this.scan(opened.repo, cursor, o.signal);
      } catch (err) {
        if (o.signal.aborted) return;
        const reason = scanFailureReason(err);
        if (reason === null) throw err;
        // A retriable failure in follow mode is met again at the next poll; anything else is one bad item.
        if (!(o.follow && (err as { retriable?: boolean }).retriable === true)) yield { kind: 'bad', reason, detail: (err as Error).message, origin: this.uri };
        if (!o.follow) return;
        await abortableDelay(this.spec.pollSeconds * 1000, o.signal);
        continue;
      }
      if (scan) {
        yield* this.emit(scan, opened, cursor, first && !cursor);
        cursor = scan.tips.join(' ');
      }
      first = false;
      if (!o.follow) return;
      await abortableDelay(this.spec.pollSeconds * 1000, o.signal);
    }
  }

  /** Scan after `cursor`; null when the branch tips are still the cursor's (nothing new). */
  private async scan(repo: Mirror, cursor: string | undefined, signal: AbortSignal): Promise<ScanResult | null> {
    const after = cursorTips(cursor);
    const { branches, prs, since, limit } = this.spec;
    const result = await scanMergedPrs(repo, { branches, prs, since, limit, after, signal });
    const same = result.tips.length === after.length && result.tips.every((t) => after.includes(t));
    return same && after.length > 0 ? null : result;
  }

  /** Events (oldest first, or newest first with `limit`), then skipped/bad items for what did not resolve. */
  private *emit(scan: ScanResult, r: { repo: Mirror; name: string; cloneUrl: string }, cursor: string | undefined, initial: boolean): Generator<SourceItem> {
    const tips = scan.tips.join(' ');
    const ordered = this.spec.limit !== undefined ? scan.prs : [...scan.prs].reverse();
    const prior = cursorTips(cursor);
    const branch = scan.defaultBranch;
    for (let i = 0; i < ordered.length; i++) {
      const pr = ordered[i]!;
      const last = i === ordered.length - 1;
      const itemCursor = this.spec.limit !== undefined ? (last ? tips : undefined) : last ? tips : [...prior, pr.sha].join(' ');
      yield { kind: 'event', event: eventFromMergedPr(pr, r.name, r.cloneUrl, branch), cursor: itemCursor };
    }
    if (initial) {
      for (const u of scan.unresolved) yield { kind: 'skipped', reason: u.reason };
      const found = new Set(scan.prs.map((p) => p.number));
      const why = new Map(scan.unresolved.map((u) => [u.number, u.detail]));
      for (const n of this.spec.prs ?? []) {
        if (found.has(n)) continue;
        yield { kind: 'bad', reason: 'pr-not-found', detail: why.get(n) ?? `#${n}: no merge or squash commit in the scanned history and no refs/pull/${n}/head`, origin: `${this.uri}#${n}` };
      }
    }
    if (ordered.length === 0) yield { kind: 'skipped', reason: 'no-new-merges', cursor: tips };
  }
}
/** Resolve after `ms`, or at once when `signal` aborts (never rejects). */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
