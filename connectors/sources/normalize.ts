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

/** Settings of {@link normalizePullRequest} that come from configuration, never from the event. */
export interface NormalizeOptions {
  /**
   * Hosts whose `clone_url` an event may name (default {@link DEFAULT_CLONE_HOSTS}); a URL on any other
   * host, a local path, or a URL with credentials is replaced by the one built from the repository name.
   */
  cloneHosts?: readonly string[];
}

/** The only host an event's clone URL may name unless configured otherwise (`SWE_STREAM_CLONE_HOSTS`). */
export const DEFAULT_CLONE_HOSTS: readonly string[] = ['github.com'];

/**
 * The clone URL of `repo` (`owner/name`) given what an event claims. An event is untrusted input (a
 * crafted archive line or a webhook with a leaked secret must not choose what we clone — issue 14,
 * security item 1): the claim is kept only when it is an https URL without userinfo, on an allowed host,
 * whose path is exactly `/<owner>/<name>` or `/<owner>/<name>.git` of the same repository (case-insensitive,
 * as GitHub treats names). Anything else gives `https://github.com/<owner>/<name>.git`. Only `git:` sources,
 * which the operator names on the command line, may clone a local path.
 */
export function trustedCloneUrl(repo: string, claimed: string | null, hosts: readonly string[] = DEFAULT_CLONE_HOSTS): string {
  const built = `https://github.com/${repo}.git`;
  if (!claimed) return built;
  let u: URL;
  try {
    u = new URL(claimed);
  } catch {
    return built;
  }
  if (u.protocol !== 'https:' || u.username || u.password || u.search || u.hash || u.port) return built;
  if (!hosts.some((h) => h.toLowerCase() === u.hostname.toLowerCase())) return built;
  const want = `/${repo}`.toLowerCase();
  const have = u.pathname.toLowerCase().replace(/\.git$/, '');
  return have === want ? `https://${u.hostname.toLowerCase()}/${repo}.git` : built;
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
 * `{ok:false, reason:'missing-fields'|'not-an-object', detail}` instead. `clone_url` goes through
 * {@link trustedCloneUrl}: what the payload says is a claim, not a decision.
 */
export function normalizePullRequest(input: PullRequestInput, opts: NormalizeOptions = {}): NormalizeResult {
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
    clone_url: trustedCloneUrl(repo!, str(baseRepo.clone_url) ?? (isObj(input.repository) ? str(input.repository.clone_url) : null), opts.cloneHosts),
    linked_issues: linked,
    labels,
    license: licenseOf(baseRepo) ?? licenseOf(input.repository),
    merge_style: null,
    files: null,
  };
  return { ok: true, event };
}
