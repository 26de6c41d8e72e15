/**
 * The filter stage (pr.events → pr.candidates, ARCHITECTURE.md §1): decides which merged pull requests
 * are worth a sandbox, and enriches the survivors from the repository mirror.
 *
 * Order of decisions (cheap ones first; the first three need no repository, so GH Archive replays run
 * without clones):
 *  1. `not-merged`            — merged === false, or an event that is not a close/merge (trimmed events
 *                               closing without saying merged are settled from git in step 5);
 *  2. `bot-author`            — Dependabot, Renovate, `[bot]` accounts… (operators/pr/classify.ts);
 *  3. `license-not-permissive`— when the event knows the licence (GH Archive/API repo.license);
 *  4. mirror: `repo-unavailable` (rejected: the repository does not exist / cannot be reached with the
 *     network disabled — a normal end, retrying cannot help), `clone-failed` (failed, retriable: network,
 *     timeout), `commits-missing` (rejected: the merge commit is not in the repository even after a fetch —
 *     force-pushed away, or a fork's PR merged elsewhere);
 *  5. the PR commit: `merge_commit_sha`, else the merged PR #N found in the default branch's history
 *     (trimmed post-2025-10 events; `not-merged` when there is none); parent = the base commit the git
 *     source recorded (`base_sha` with `merge_style`: merge base, squash parent, landed range), else the
 *     parent of a rebase-landed range ending at `merge_commit_sha`, else its first parent
 *     (operators/pr/history.ts); title/body completed from the commit message when the event lacks them;
 *     licence from the LICENSE/COPYING file when the event did not say (`license-not-permissive`);
 *  6. on `git diff --numstat parent commit`: `binary-or-vendored-only`, `docs-config-only` (nothing but
 *     docs/config), `no-code-change` (no code file, but tests or other files), `unsupported-language`,
 *     `too-large` (more than `maxFiles` files or `maxChangedLines` added+removed lines, default 15 / 1000,
 *     counting non-vendored files except lockfiles), `no-tests` (no test file changed and no LLM test
 *     creator configured);
 *  7. full diff → hunks, patch hash (operators/pr/patch.ts patchHash over the code and test files);
 *     the diff carried downstream is exactly the one the size rule measured — text files, no lockfiles, no
 *     vendored or generated files — and `too-large` when it exceeds `maxDiffBytes` (default 262,144 bytes
 *     of UTF-8), so a 5-line fix with a regenerated package-lock.json never makes a 1 MiB record;
 *     `duplicate` when another PR with the same patch hash claimed it first in the keyed store
 *     `filter.patch-seen` on the bus (streams/store.ts: every filter worker, on any machine, agrees; the
 *     same pr_id seen again is not its own duplicate, so replays are idempotent).
 * Linked issues: the event's (body / API) plus closing keywords in the PR's commit messages.
 *  8. optional LLM judge of PR quality (`deps.judge`, off by default): after every rule passed, the
 *     model sees title, body, file list and (truncated) diff and answers `{"keep", "score", "reason"}`;
 *     `judge-rejected` when it says keep=false. An unparseable answer keeps the PR (the judge only
 *     removes; it never lets through what the rules rejected) and is logged. Provenance then says
 *     method "agent" with model, prompt version, tokens and cost.
 */
import type { ChangedFile, LinkedIssue, PrCandidate, PullRequestEvent } from '../schemas/types.gen.js';
import type { Envelope, Outcome, OutcomeMeta } from '../streams/types.js';
import { accept, fail, reject, StageError } from '../streams/types.js';
import type { Stage } from '../streams/stage.js';
import type { KeyedStore } from '../streams/store.js';
import { parseDiff, joinDiff, patchHash, type FileDiff } from './pr/patch.js';
import { MirrorCache, Mirror, MissingCommitError, RepoUnavailableError, CloneFailedError } from './pr/mirror.js';
import { findMergedPr, landedRangeOf, taskRangeOfEvent } from './pr/history.js';
import type { ChatResult, LlmClient } from './llm/client.js';
import { logger } from '../streams/log.js';
import { detectLanguage, detectLicenseText, extractLinkedIssueNumbers, fileKind, isBotAuthor, isLockfile, isVendoredPath, licenseAllowed, type LicensePolicy } from './pr/classify.js';

const judgeLog = logger({ component: 'filter', part: 'judge' });

/** Rejection reason codes of the filter (stage.outcomes `reason`). */
export const FILTER_REASONS = [
  'not-merged', 'bot-author', 'license-not-permissive', 'repo-unavailable', 'commits-missing', 'binary-or-vendored-only',
  'docs-config-only', 'no-code-change', 'unsupported-language', 'too-large', 'no-tests', 'duplicate', 'judge-rejected',
  'branch-sync', 'license-not-allowed',
] as const;

/** Long-lived branch names: a PR whose head is one of these (in the same repository) syncs branches. */
const LONG_LIVED_BRANCH = /^(main|master|dev|develop|development|next|staging|stable|trunk|release|releases?[-/].+|v?\d+(\.\d+)*\.x)$/i;

/**
 * True for a merge of one long-lived branch into another ("Merge pull request #3113 from iamkun/dev", titled
 * "D2M"): it bundles many already-merged changes, so it is not one task. Seen in dayjs, where such release
 * merges made up 8 of the 30 most recent merged PRs. Needs `headRef` as `owner/branch` (git history).
 */
export function isBranchSync(repo: string, headRef: string | null | undefined): boolean {
  // Only with the head's owner known: a bare `master` is just as often a fork's default branch carrying one
  // change (41 of the 150 merged PRs of the 2015-01-01-12 GH Archive hour), which must stay.
  const slash = headRef ? headRef.indexOf('/') : -1;
  if (!headRef || slash <= 0) return false;
  const owner = headRef.slice(0, slash);
  const branch = headRef.slice(slash + 1);
  return owner.toLowerCase() === repo.split('/')[0]!.toLowerCase() && LONG_LIVED_BRANCH.test(branch);
}
export type FilterReason = (typeof FILTER_REASONS)[number];

/** Namespace of the filter's duplicate memory: patch hash → the pr_id that claimed it first. */
export const PATCH_SEEN_STORE = 'filter.patch-seen';

/** Default bound of the diff a candidate carries (bytes of UTF-8): a quarter of Kafka's default 1 MiB record limit. */
export const MAX_DIFF_BYTES = 262_144;

/**
 * The one statement of each filter default; the `filter` section of cli/config.ts uses these as its zod
 * defaults. `maxChangedLines` counts added + removed lines; `maxDiffBytes` is bytes of UTF-8.
 */
export const FILTER_DEFAULTS = {
  maxFiles: 15,
  maxChangedLines: 1000,
  maxDiffBytes: MAX_DIFF_BYTES,
  languages: ['python', 'javascript', 'typescript'],
  licenses: 'permissive',
} as const satisfies { maxFiles: number; maxChangedLines: number; maxDiffBytes: number; languages: readonly string[]; licenses: LicensePolicy };

/** Dependencies and settings of the filter stage. */
export interface FilterDeps {
  mirrors: MirrorCache;
  /** the keyed store {@link PATCH_SEEN_STORE} on the bus (the composition root opens it: `transport.openStore`) */
  seen: KeyedStore;
  /** default {@link FILTER_DEFAULTS} */
  maxFiles?: number;
  /** added + removed; default {@link FILTER_DEFAULTS} */
  maxChangedLines?: number;
  /** bound of the carried diff in bytes (UTF-8), default {@link MAX_DIFF_BYTES} */
  maxDiffBytes?: number;
  /** default {@link FILTER_DEFAULTS} (python, javascript, typescript) */
  languages?: string[];
  /** true when an LLM Unit-test Creator is configured: PRs without test changes are then kept */
  testCreator?: boolean;
  /** Fetch before reading even when the commit is present (default false: merged commits never change). */
  refresh?: boolean;
  /** optional LLM judge of PR quality (an OpenAI-compatible client, operators/llm/client.ts); absent = rules only */
  judge?: LlmClient | null;
  /**
   * The licence rule (operators/pr/classify.ts LicensePolicy): `permissive` (default; rejects `license-not-permissive`),
   * `any`, or a list of SPDX ids (rejects `license-not-allowed`). An unknown licence is never rejected.
   */
  licenses?: LicensePolicy;
}

/** Version of the PR-judge prompt, recorded in provenance. */
export const PR_JUDGE_PROMPT_VERSION = 'filter-pr-judge/1';

const JUDGE_SYSTEM = [
  'You review merged GitHub pull requests for a dataset of software-engineering tasks (SWE-bench style):',
  'a model will be given the repository before the PR and a problem statement, and must reproduce the change so that the PR\'s tests pass.',
  'Keep a PR when it makes a self-contained, verifiable behaviour change (a bug fix or a small feature) that tests can pin down.',
  'Drop it when it is a refactor without behaviour change, formatting, typo or comment fixes, version bumps, generated or vendored code, a revert,',
  'or a change whose tests need network access, external services or special hardware.',
  'Answer with one JSON object only: {"keep": true or false, "score": 0-10, "reason": "one sentence"}.',
].join(' ');

/** Ask the judge about one candidate. @throws LlmError from the client (retriable as it says). */
async function judgePr(llm: LlmClient, c: PrCandidate['candidate'], signal: AbortSignal): Promise<{ keep: boolean; reason: string; res: ChatResult }> {
  const diff = c.diff.length > 12_000 ? `${c.diff.slice(0, 12_000)}\n… (diff truncated, ${c.diff.length} characters in all)` : c.diff;
  const user = [
    `Repository: ${c.repo}  PR #${c.number}  language: ${c.language}`,
    `Title: ${c.title}`,
    `Description:\n${c.body.slice(0, 4000) || '(none)'}`,
    `Files (${c.files.length}):\n${c.files.map((f) => `- ${f.path} [${f.kind}, +${f.additions} -${f.deletions}]`).join('\n')}`,
    `Diff:\n${diff}`,
  ].join('\n\n');
  const res = await llm.chat({ messages: [{ role: 'system', content: JUDGE_SYSTEM }, { role: 'user', content: user }], responseFormat: { type: 'json_object' }, maxTokens: 300, signal });
  const text = res.message.content ?? '';
  try {
    const m = /\{[\s\S]*\}/.exec(text);
    const v = JSON.parse(m ? m[0] : text) as { keep?: unknown; reason?: unknown };
    if (typeof v.keep !== 'boolean') throw new Error('no boolean "keep"');
    return { keep: v.keep, reason: typeof v.reason === 'string' ? v.reason : '', res };
  } catch (err) {
    judgeLog.warn({ pr: c.pr_id, err: (err as Error).message, answer: text.slice(0, 200) }, 'PR judge answer unparseable; keeping the PR');
    return { keep: true, reason: 'unparseable judge answer', res };
  }
}

const LICENSE_FILES = ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'LICENSE.rst', 'LICENCE', 'LICENCE.md', 'COPYING', 'COPYING.md', 'License.txt', 'license', 'license.md'];

/** Facts the rules work on: one changed file, from numstat and (later) the parsed diff. */
function classifyFiles(entries: { path: string; oldPath: string | null; additions: number; deletions: number; binary: boolean }[]): ChangedFile[] {
  return entries.map((e) => ({
    path: e.path,
    old_path: e.oldPath,
    kind: fileKind(e.path),
    status: 'modified',
    additions: e.additions,
    deletions: e.deletions,
    hunks: 0,
    binary: e.binary,
    vendored: isVendoredPath(e.path),
  }));
}

/** A decision that ends the filter's work on a record: a rejection, or a failure the runtime retries. */
type Stop = Outcome<never>;
const isStop = (x: object): x is Stop => 'kind' in x;

/** The settings of one filter instance, every default resolved. */
interface FilterSettings {
  maxFiles: number;
  maxLines: number;
  /** bytes of UTF-8 */
  maxDiffBytes: number;
  languages: Set<string>;
  licenses: LicensePolicy;
  licenseReason: FilterReason;
}

/** The settings of `deps`, a missing one taken from {@link FILTER_DEFAULTS}. */
function settingsOf(deps: FilterDeps): FilterSettings {
  const licenses: LicensePolicy = deps.licenses ?? FILTER_DEFAULTS.licenses;
  return {
    maxFiles: deps.maxFiles ?? FILTER_DEFAULTS.maxFiles,
    maxLines: deps.maxChangedLines ?? FILTER_DEFAULTS.maxChangedLines,
    maxDiffBytes: deps.maxDiffBytes ?? FILTER_DEFAULTS.maxDiffBytes,
    languages: new Set<string>(deps.languages ?? FILTER_DEFAULTS.languages),
    licenses,
    licenseReason: licenses === 'permissive' ? 'license-not-permissive' : 'license-not-allowed',
  };
}

/** One event on its way through the filter: the event, what the outcome's meta says so far, the record's signal. */
interface FilterJob {
  ev: PullRequestEvent;
  meta: OutcomeMeta;
  signal: AbortSignal;
}

/** Steps 1–3: what the event alone decides (no repository needed, so GH Archive replays run without clones). */
function eventRules(ev: PullRequestEvent, s: FilterSettings, meta: OutcomeMeta): Stop | null {
  if (ev.merged === false) return reject('not-merged', `action ${ev.action}, merged=false`, meta);
  if (ev.merged === null && ev.action !== 'closed' && ev.action !== 'merged') return reject('not-merged', `action ${ev.action}`, meta);
  if (isBotAuthor(ev.user_login, ev.user_type)) return reject('bot-author', `author ${ev.user_login ?? '?'}`, meta);
  if (isBranchSync(ev.repo, ev.head_ref)) return reject('branch-sync', `merges the long-lived branch ${ev.head_ref}`, meta);
  if (licenseAllowed(ev.license, s.licenses) === false) return reject(s.licenseReason, `license ${ev.license}`, meta);
  return null;
}

/** Step 4: the mirror holding the merge commit. @throws what the mirror cache throws besides its three known errors */
async function openMirror(deps: FilterDeps, job: FilterJob, cloneUrl: string): Promise<{ mirror: Mirror } | Stop> {
  const { ev } = job;
  try {
    return { mirror: await deps.mirrors.ensure(ev.repo, cloneUrl, { want: ev.merge_commit_sha ? [ev.merge_commit_sha] : [], refresh: deps.refresh || !ev.merge_commit_sha, signal: job.signal }) };
  } catch (err) {
    if (err instanceof RepoUnavailableError) return reject('repo-unavailable', err.message, job.meta);
    if (err instanceof MissingCommitError) return reject('commits-missing', err.message, job.meta);
    if (err instanceof CloneFailedError) return fail(err, true, job.meta);
    throw err;
  }
}

/** What step 5 settles: the PR commit, the parent the task is diffed against, title, body and merge style. */
interface PrCommits {
  prCommit: string;
  parent: string;
  title: string | null;
  body: string | null;
  mergeStyle: string | null;
}

/** A task range and what history adds to the event; `prCommit` null only while it is still unknown. */
type PrCommitsSoFar = Omit<PrCommits, 'parent' | 'prCommit'> & { prCommit: string | null; range: { base: string; commit: string } | null };

/**
 * The task's range as the event states it: git-history events carry it (merge base → head, squash parent →
 * squash, landed range); trimmed events and events without a merge commit are looked up in the default
 * branch's history.
 */
async function rangeOfEvent(mirror: Mirror, job: FilterJob): Promise<PrCommitsSoFar | Stop> {
  const { ev } = job;
  const p: PrCommitsSoFar = { prCommit: ev.merge_commit_sha, title: ev.title, body: ev.body, mergeStyle: ev.merge_style, range: null };
  try {
    p.range = await taskRangeOfEvent(mirror, ev);
  } catch (err) {
    if (err instanceof StageError && !err.retriable) return reject('commits-missing', err.message, job.meta);
    throw err;
  }
  if (p.range || (p.prCommit && ev.payload_shape !== 'trimmed')) return p;
  const found = await findMergedPr(mirror, ev.number, job.signal);
  if (!found && !p.prCommit) {
    return ev.merged === true
      ? reject('commits-missing', `#${ev.number} is merged but no merge or squash commit for it is on the default branch`, job.meta)
      : reject('not-merged', `no merge or squash commit for #${ev.number} on the default branch`, job.meta);
  }
  if (found) {
    p.prCommit ??= found.sha;
    // History describes the event's own merge commit only when it found that commit.
    if (found.sha === p.prCommit) {
      p.title ??= found.title;
      p.body ??= found.body;
      p.range = { base: found.base, commit: found.commit };
      p.mergeStyle ??= found.style;
    }
  }
  return p;
}

/**
 * Step 5: the PR commit and its parent; title and body completed from the commit message when the event
 * lacks them. Else the first parent of the merge commit.
 */
async function resolveCommits(mirror: Mirror, job: FilterJob): Promise<PrCommits | Stop> {
  const { ev } = job;
  const p = await rangeOfEvent(mirror, job);
  if (isStop(p)) return p;
  // rangeOfEvent returns a known PR commit or stops.
  let prCommit = p.prCommit!;
  let { range } = p;
  let parent: string;
  try {
    // A rebase merge's merge_commit_sha is its last landed commit: take the whole landed range.
    if (!range && ev.head_sha && ev.head_sha !== prCommit) range = await landedRangeOf(mirror, prCommit, ev.head_sha, job.signal);
    parent = range?.base ?? (await mirror.firstParent(prCommit));
    prCommit = range?.commit ?? prCommit;
  } catch (err) {
    if (err instanceof MissingCommitError || (err instanceof StageError && !err.retriable)) return reject('commits-missing', (err as Error).message, job.meta);
    throw err;
  }
  let { title, body } = p;
  if (!title || body === null) {
    const [c] = await mirror.log(prCommit, { max: 1 });
    title ||= c?.subject ?? `#${ev.number}`;
    body ??= c?.body ?? '';
  }
  return { prCommit, parent, title, body, mergeStyle: p.mergeStyle };
}

/** What step 6 found out about the changed files. `counted`: the files the size rule counts. */
interface FileFacts {
  files: ChangedFile[];
  real: ChangedFile[];
  counted: ChangedFile[];
  language: string;
}

/** Step 6: the rules on the file list (`git diff --numstat parent commit`). */
async function fileRules(mirror: Mirror, job: FilterJob, o: { commits: PrCommits; settings: FilterSettings; testCreator: boolean }): Promise<FileFacts | Stop> {
  const { parent, prCommit } = o.commits;
  const s = o.settings;
  const meta = job.meta;
  const files = classifyFiles(await mirror.numstat(parent, prCommit, { signal: job.signal }));
  if (files.length === 0) return reject('no-code-change', 'empty diff', meta);
  const real = files.filter((f) => !f.vendored && !f.binary);
  if (real.length === 0) return reject('binary-or-vendored-only', `${files.length} file(s), all binary or vendored`, meta);
  const code = real.filter((f) => f.kind === 'code');
  const tests = real.filter((f) => f.kind === 'test');
  if (code.length === 0) {
    if (real.every((f) => f.kind === 'docs' || f.kind === 'config')) return reject('docs-config-only', kinds(real), meta);
    return reject('no-code-change', kinds(real), meta);
  }
  const rootFiles = (await mirror.git(['ls-tree', '--name-only', parent])).split('\n').filter(Boolean);
  const lang = detectLanguage(files, rootFiles);
  if (!lang || lang === 'other' || !s.languages.has(lang)) return reject('unsupported-language', `language ${lang ?? 'unknown'}; code files: ${code.slice(0, 5).map((f) => f.path).join(', ')}`, { ...meta, language: lang ?? undefined });
  const metaL = { ...meta, language: lang };
  const counted = files.filter((f) => !f.vendored && !isLockfile(f.path));
  const changed = counted.reduce((n, f) => n + f.additions + f.deletions, 0);
  if (counted.length > s.maxFiles || changed > s.maxLines) return reject('too-large', `${counted.length} files, ${changed} changed lines (limits ${s.maxFiles} / ${s.maxLines})`, metaL);
  if (tests.length === 0 && !o.testCreator) return reject('no-tests', `no test file changed (${kinds(real)}) and no LLM test creator configured`, metaL);
  return { files, real, counted, language: lang };
}

/** Status, hunks, binary flag and old path of each file, from the parsed diff. Mutates `files`. */
function annotateFiles(files: ChangedFile[], parsed: FileDiff[]): void {
  const byPath = new Map<string, FileDiff>(parsed.map((d) => [d.path, d]));
  for (const f of files) {
    const d = byPath.get(f.path);
    if (!d) continue;
    f.status = d.status;
    f.hunks = d.hunks.length;
    f.binary ||= d.binary;
    if (d.status === 'renamed') f.old_path = d.oldPath;
    else f.old_path = null;
  }
}

/**
 * Step 7, first half: the diff carried downstream — the one the size rule measured (no binary, vendored,
 * generated or lock files) — bounded by `maxDiffBytes`, and its patch hash over the code and test files.
 */
async function carriedDiff(mirror: Mirror, job: FilterJob, o: { commits: PrCommits; facts: FileFacts; maxDiffBytes: number }): Promise<{ diff: string; hash: string } | Stop> {
  const parsed = parseDiff(await mirror.diff(o.commits.parent, o.commits.prCommit, { signal: job.signal }));
  annotateFiles(o.facts.files, parsed);
  const carried = parsed.filter((d) => !d.binary && !isVendoredPath(d.path) && !isLockfile(d.path));
  const diff = joinDiff(carried);
  const diffBytes = Buffer.byteLength(diff, 'utf8');
  if (diffBytes > o.maxDiffBytes) return reject('too-large', `diff of the counted files is ${diffBytes} bytes (limit ${o.maxDiffBytes})`, job.meta);
  return { diff, hash: patchHash(carried.filter((d) => ['code', 'test'].includes(fileKind(d.path)))) };
}

/** The candidate record of a PR that passed every rule. */
function candidateRecord(job: FilterJob, o: { cloneUrl: string; commits: PrCommits; facts: FileFacts; diff: string; hash: string; linked: LinkedIssue[]; license: string | null; t0: number }): PrCandidate {
  const { ev } = job;
  const { files, counted } = o.facts;
  const countedSet = new Set(counted.map((f) => f.path));
  const size = {
    files: counted.length,
    hunks: files.filter((f) => countedSet.has(f.path)).reduce((s, f) => s + f.hunks, 0),
    lines_added: counted.reduce((s, f) => s + f.additions, 0),
    lines_removed: counted.reduce((s, f) => s + f.deletions, 0),
  };
  return {
    candidate: {
      pr_id: ev.pr_id,
      repo: ev.repo,
      number: ev.number,
      clone_url: o.cloneUrl,
      language: o.facts.language,
      pr_commit: o.commits.prCommit,
      parent_commit: o.commits.parent,
      head_sha: ev.head_sha,
      title: o.commits.title ?? '',
      body: o.commits.body ?? '',
      user_login: ev.user_login,
      created_at: ev.created_at,
      merged_at: ev.merged_at,
      linked_issues: o.linked,
      files,
      size,
      diff: o.diff,
      patch_hash: o.hash,
      license: o.license,
      merge_style: o.commits.mergeStyle ?? null,
    },
    provenance: [{ stage: 'filter', method: 'rules', model: null, prompt_version: null, image_digest: null, duration_ms: Date.now() - o.t0, tokens_in: 0, tokens_out: 0, cost_usd: 0 }],
  };
}

/** Step 8: the optional LLM judge. It only removes; the accepted record's provenance then says `agent`. */
async function judged(judge: LlmClient, job: FilterJob, candidate: PrCandidate, t0: number): Promise<Outcome<PrCandidate>> {
  const j = await judgePr(judge, candidate.candidate, job.signal);
  const agentMeta = { ...job.meta, method: 'agent', model: j.res.model, tokensIn: j.res.tokensIn, tokensOut: j.res.tokensOut, costUsd: j.res.costUsd };
  if (!j.keep) return reject('judge-rejected', j.reason.slice(0, 500), agentMeta);
  candidate.provenance = [{ ...candidate.provenance[0]!, method: 'agent', model: j.res.model, prompt_version: PR_JUDGE_PROMPT_VERSION, duration_ms: Date.now() - t0, tokens_in: j.res.tokensIn, tokens_out: j.res.tokensOut, cost_usd: j.res.costUsd }];
  return accept(candidate, agentMeta);
}

/**
 * Build the filter stage: the steps of the module comment in order, the first rejection ending a record.
 * @returns accepted PrCandidate; rejected with a {@link FilterReason}; failed (retriable) when a clone
 *          failed; throws what the mirror and the judge throw otherwise (GitError, LlmError, StageError)
 */
export function filterStage(deps: FilterDeps): Stage<PullRequestEvent, PrCandidate> {
  const s = settingsOf(deps);

  async function handle(env: Envelope<PullRequestEvent>): Promise<Outcome<PrCandidate>> {
    const t0 = Date.now();
    const ev = env.value;
    const job: FilterJob = { ev, meta: { repo: ev.repo, method: 'rules' }, signal: env.signal };
    const early = eventRules(ev, s, job.meta);
    if (early) return early;
    const cloneUrl = ev.clone_url ?? `https://github.com/${ev.repo}.git`;
    const m = await openMirror(deps, job, cloneUrl);
    if (isStop(m)) return m;
    const { mirror } = m;
    const commits = await resolveCommits(mirror, job);
    if (isStop(commits)) return commits;
    let license = ev.license;
    if (!license) {
      license = await detectRepoLicense(mirror, commits.prCommit);
      if (licenseAllowed(license, s.licenses) === false) return reject(s.licenseReason, `license ${license} (from the licence file)`, job.meta);
    }
    const facts = await fileRules(mirror, job, { commits, settings: s, testCreator: !!deps.testCreator });
    if (isStop(facts)) return facts;
    const jobL: FilterJob = { ...job, meta: { ...job.meta, language: facts.language } };
    const d = await carriedDiff(mirror, jobL, { commits, facts, maxDiffBytes: s.maxDiffBytes });
    if (isStop(d)) return d;
    const linked = mergeLinked(ev.linked_issues, await commitLinks(mirror, commits.parent, commits.prCommit, ev.repo));
    // Claimed with the input's origin: on the embedded log the claim commits with this record's outcome.
    const owner = await deps.seen.putIfAbsent(d.hash, ev.pr_id, { origin: env.origin });
    if (owner !== ev.pr_id) return reject('duplicate', `same patch as ${owner} (patch hash ${d.hash.slice(0, 12)})`, jobL.meta);
    const candidate = candidateRecord(jobL, { cloneUrl, commits, facts, ...d, linked, license: license ?? null, t0 });
    return deps.judge ? judged(deps.judge, jobL, candidate, t0) : accept(candidate, jobL.meta);
  }

  return { name: 'filter', handle };
}

function kinds(files: ChangedFile[]): string {
  const c: Record<string, number> = {};
  for (const f of files) c[f.kind] = (c[f.kind] ?? 0) + 1;
  return Object.entries(c).map(([k, n]) => `${n} ${k}`).join(', ');
}

/** SPDX id from the licence file at `commit`, or null. */
async function detectRepoLicense(mirror: Mirror, commit: string): Promise<string | null> {
  const root = (await mirror.git(['ls-tree', '--name-only', commit])).split('\n').filter(Boolean);
  for (const name of LICENSE_FILES) {
    if (!root.includes(name)) continue;
    const id = detectLicenseText(await mirror.showFile(commit, name));
    if (id) return id;
  }
  return null;
}

/** Closing references in the messages of the commits the PR brought (parent..commit, at most 250). */
async function commitLinks(mirror: Mirror, parent: string, commit: string, repo: string): Promise<LinkedIssue[]> {
  const commits = await mirror.log(`${parent}..${commit}`, { max: 250 });
  const nums = new Set<number>();
  for (const c of commits) for (const n of extractLinkedIssueNumbers(`${c.subject}\n${c.body}`, repo)) nums.add(n);
  return [...nums].map((n) => ({ number: n, title: null, body: null, source: 'commit' }));
}

/** Union by issue number; an entry with a title (from the API) wins over a bare reference. */
function mergeLinked(a: LinkedIssue[], b: LinkedIssue[]): LinkedIssue[] {
  const out = new Map<number, LinkedIssue>();
  for (const l of [...a, ...b]) {
    const cur = out.get(l.number);
    if (!cur || (!cur.title && l.title)) out.set(l.number, l);
  }
  return [...out.values()];
}
