/**
 * `git:<path|url>[?prs=1,2&since=YYYY-MM-DD&limit=N&repo=owner/name&poll=SECONDS]` — merged pull
 * requests read from a repository's first-parent history (merge commits "Merge pull request #N from …"
 * and squash commits "<title> (#N)", see operators/pr/history.ts).
 *
 * A local path is read in place; a URL is cloned into the mirror cache first. The repository name
 * (`owner/repo`, used in pr_id) is the `repo` parameter, else the `origin` remote's URL, else the path's
 * or URL's last two components (`.git` stripped). `clone_url` is the local path or the URL, so the
 * mirror cache can clone what the filter needs.
 *
 * Order: oldest first (so the cursor — the sha of the last emitted merge commit — is a resume point);
 * with `limit` the N most recent, most recent first, and the cursor is only set on the last item (the
 * newest tip seen). With follow=true the source polls HEAD every `poll` seconds (default 60) for merges
 * after the cursor.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import type { PullRequestEvent } from '../../schemas/types.gen.js';
import type { Source, SourceItem } from './types.js';
import type { Mirror, MirrorCache } from '../../operators/pr/mirror.js';
import { openLocalRepo, scanMergedPrs, type MergedPr } from '../../operators/pr/history.js';
import { isLocalCloneUrl } from '../../operators/pr/mirror.js';
import { extractLinkedIssueNumbers, isBotAuthor } from '../../operators/pr/classify.js';

/** Parsed `git:` URI. */
export interface GitSpec {
  location: string;
  prs?: Set<number>;
  since?: string;
  limit?: number;
  repo?: string;
  pollSeconds: number;
}

/**
 * Parse the part after `git:`.
 * @throws Error for a bad `prs`, `since`, `limit`, `repo` or `poll` value.
 */
export function parseGitSpec(rest: string): GitSpec {
  const q = rest.indexOf('?');
  const location = q === -1 ? rest : rest.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : rest.slice(q + 1));
  if (!location) throw new Error('git: source needs a path or URL');
  const spec: GitSpec = { location, pollSeconds: 60 };
  for (const [k, v] of params) {
    if (k === 'prs') {
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

/** Build the PullRequestEvent of one merged PR found in history. */
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
    base_ref: defaultBranch,
    base_sha: pr.parent,
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
    files: null,
  };
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
      const local = await openLocalRepo(abs);
      const origin = (await local.git(['config', '--get', 'remote.origin.url']).catch(() => '')).trim();
      const name = this.spec.repo ?? (origin ? repoNameFromLocation(origin) : null) ?? repoNameFromLocation(abs);
      if (!name) throw new Error(`git: cannot tell owner/repo for ${abs}; pass ?repo=owner/name`);
      return { repo: local, name, cloneUrl: abs };
    }
    const name = this.spec.repo ?? repoNameFromLocation(loc);
    if (!name) throw new Error(`git: cannot tell owner/repo for ${loc}; pass ?repo=owner/name`);
    const repo = await this.mirrors.ensure(name, loc, { refresh: true, signal });
    return { repo, name, cloneUrl: loc };
  }

  async *items(o: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncGenerator<SourceItem> {
    let cursor = o.cursor;
    for (;;) {
      if (o.signal.aborted) return;
      const { repo, name, cloneUrl } = await this.openRepo(o.signal);
      const branch = await repo.defaultBranch();
      const tip = await repo.resolve('HEAD');
      if (tip && cursor && !(await repo.commitExists(cursor))) cursor = undefined; // history rewritten: rescan
      if (tip && tip !== cursor) {
        const found = await scanMergedPrs(repo, { prs: this.spec.prs, since: this.spec.since, limit: this.spec.limit, after: cursor, signal: o.signal });
        const ordered = this.spec.limit !== undefined ? found : [...found].reverse();
        for (let i = 0; i < ordered.length; i++) {
          if (o.signal.aborted) return;
          const pr = ordered[i]!;
          const last = i === ordered.length - 1;
          const itemCursor = this.spec.limit !== undefined ? (last ? tip : undefined) : pr.sha;
          yield { kind: 'event', event: eventFromMergedPr(pr, name, cloneUrl, branch), cursor: itemCursor };
        }
        if (ordered.length === 0) yield { kind: 'skipped', reason: 'no-new-merges', cursor: tip };
        cursor = tip;
      }
      if (!o.follow) return;
      await abortableDelay(this.spec.pollSeconds * 1000, o.signal);
    }
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
