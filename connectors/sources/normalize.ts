/**
 * Turning a GitHub pull-request object (from a GH Archive / Events API PullRequestEvent, a `pull_request`
 * webhook delivery, or the REST API's pulls endpoint) into a PullRequestEvent record.
 *
 * Two payload shapes exist (ARCHITECTURE.md §9; GitHub changelog 2025-08 "Upcoming changes to GitHub
 * Events API payloads", effective 2025-10-07): the full pull request (title, body, merged, merged_at,
 * merge_commit_sha, user, base/head with repo) and the trimmed object `{url, id, number, head:{ref, sha,
 * repo}, base:{ref, sha, repo}}` where merges may appear as action "merged". A trimmed event leaves the
 * fields it does not carry null (merged stays null unless the action says "merged"); the filter
 * completes them from git.
 */
import type { LinkedIssue, PullRequestEvent } from '../../schemas/types.gen.js';
import { extractLinkedIssueNumbers } from '../../operators/pr/classify.js';

/** Loose JSON object. */
export type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const REPO_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** Input of {@link normalizePullRequest}. */
export interface PullRequestInput {
  /** `owner/repo` of the base repository, when the envelope says it (GH Archive `repo.name`, webhook `repository.full_name`) */
  repo?: string | null;
  action: string;
  /** payload.number, when the envelope carries it */
  number?: number | null;
  /** the pull_request object */
  pr: unknown;
  /** who triggered the event (GH Archive `actor`, webhook `sender`): the author fallback for trimmed payloads */
  actor?: unknown;
  /** webhook `repository` object (licence, clone_url) */
  repository?: unknown;
  source: 'gharchive' | 'webhook' | 'github';
  sourceEventId?: string | null;
  eventTime?: string | null;
}

/** Result: an event, or why the input is not usable (a `bad` item for the source). */
export type NormalizeResult = { ok: true; event: PullRequestEvent } | { ok: false; reason: string; detail: string };

const TRIMMED_KEYS = new Set(['url', 'id', 'number', 'head', 'base', 'node_id']);

/** `full` unless the object only has the keys of the post-2025-10 trimmed shape. */
export function payloadShape(pr: Json): 'full' | 'trimmed' {
  return Object.keys(pr).every((k) => TRIMMED_KEYS.has(k)) ? 'trimmed' : 'full';
}

function repoFromUrl(url: string | null): string | null {
  // https://api.github.com/repos/<owner>/<repo>/pulls/<n>
  const m = url ? /\/repos\/([^/]+\/[^/]+)\/pulls\/\d+/.exec(url) : null;
  return m ? m[1]! : null;
}

function licenseOf(repo: unknown): string | null {
  if (!isObj(repo) || !isObj(repo.license)) return null;
  return str(repo.license.spdx_id) ?? str(repo.license.key);
}

/**
 * Build a PullRequestEvent from a pull-request object. Never throws on bad input: returns
 * `{ok:false, reason:'missing-fields'|'not-an-object', detail}` instead.
 */
export function normalizePullRequest(input: PullRequestInput): NormalizeResult {
  const pr = input.pr;
  if (!isObj(pr)) return { ok: false, reason: 'not-an-object', detail: 'pull_request is missing or not an object' };
  const shape = payloadShape(pr);
  const base = isObj(pr.base) ? pr.base : {};
  const head = isObj(pr.head) ? pr.head : {};
  const baseRepo = isObj(base.repo) ? base.repo : {};
  const repo = [input.repo, str(baseRepo.full_name), repoFromUrl(str(pr.url))].find((r): r is string => typeof r === 'string' && REPO_RE.test(r)) ?? null;
  const number = typeof input.number === 'number' ? input.number : typeof pr.number === 'number' ? pr.number : null;
  const missing: string[] = [];
  if (!repo) missing.push('repo');
  if (number === null || !Number.isSafeInteger(number) || number <= 0) missing.push('number');
  if (!input.action) missing.push('action');
  if (missing.length) return { ok: false, reason: 'missing-fields', detail: `pull request event without ${missing.join(', ')}` };

  const user = isObj(pr.user) ? pr.user : shape === 'trimmed' && isObj(input.actor) ? input.actor : {};
  const body = str(pr.body);
  let merged: boolean | null = null;
  if (shape === 'full') merged = typeof pr.merged === 'boolean' ? pr.merged : pr.merged_at ? true : input.action === 'closed' ? false : null;
  if (input.action === 'merged') merged = true;
  // An "opened" full payload says merged:false, which is true *now*: only a closed/merged event settles it.
  const linked: LinkedIssue[] = extractLinkedIssueNumbers(body, repo!).map((n) => ({ number: n, title: null, body: null, source: 'body' }));
  const labels = Array.isArray(pr.labels) ? pr.labels.map((l) => (isObj(l) ? str(l.name) : str(l))).filter((l): l is string => !!l) : [];
  const event: PullRequestEvent = {
    pr_id: `${repo}#${number}`,
    repo: repo!,
    number: number!,
    action: input.action,
    source: input.source,
    source_event_id: input.sourceEventId ?? null,
    event_time: input.eventTime ?? null,
    payload_shape: input.source === 'github' ? 'api' : shape,
    merged,
    merged_at: str(pr.merged_at),
    merge_commit_sha: merged === false ? null : str(pr.merge_commit_sha),
    base_ref: str(base.ref),
    base_sha: str(base.sha),
    head_ref: str(head.ref),
    head_sha: str(head.sha),
    title: str(pr.title),
    body,
    user_login: str(user.login),
    user_type: str(user.type),
    created_at: str(pr.created_at),
    clone_url: str(baseRepo.clone_url) ?? (isObj(input.repository) ? str(input.repository.clone_url) : null) ?? `https://github.com/${repo}.git`,
    linked_issues: linked,
    labels,
    license: licenseOf(baseRepo) ?? licenseOf(input.repository),
    merge_style: null,
  };
  return { ok: true, event };
}
