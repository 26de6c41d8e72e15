/**
 * The statement stage (tasks.verified → tasks.stated; ARCHITECTURE.md §1, §7; issue 6): writes the problem
 * statement, runs the leakage gate on it, optionally has an LLM judge it, and fills category and difficulty.
 *
 * Without a statement-writer LLM (rules):
 * - the linked issues' title + body (SWE-bench: `problem_statement` is the issue title and body), several
 *   issues joined; else the PR title + body cleaned of HTML comments, checklists, template headings left
 *   empty, closing keywords and bot boilerplate.
 * - Leakage policy: human-written issue text may legitimately mention a file (a traceback) or a function, so
 *   a rule-based statement is rejected (`leaky-statement`) only on STRONG evidence — a quoted code line of the
 *   fix or a FAIL_TO_PASS test name — or, for PR text (written by the fixer, who tends to describe the fix),
 *   when the score reaches {@link PR_TEXT_MAX_SCORE}. Otherwise it is kept with its score and evidence stored.
 * With a statement-writer LLM (Problem Statement Writer agent, prompts/statement-writer.vN.md):
 * - the agent reads the PR, linked issues, the patch, the FAIL_TO_PASS tests and (when a SandboxFactory is
 *   given) the repository at the parent commit through read-only use of `bash`/`read_file` in a throwaway,
 *   network-less container of the task image; it submits the statement.
 * - The gate checks the submission inside the loop: a flagged statement gets exactly one rewrite request
 *   listing the evidence; whatever comes next is final, and a statement still flagged is rejected
 *   (`leaky-statement`). An agent run that ends without a statement (budget, non-retriable LLM error) falls
 *   back to the rule path (recorded as `rules`, tokens still counted); an LLM outage (retriable error) fails
 *   the record retriably.
 * Judge (optional, prompts/judge.vN.md): verdict `vague | needs-more | gives-solution | ok` stored in
 * Statement.judge; it rejects (`judge-<verdict>`) only for the verdicts listed in `judgeRejects` (default none:
 * datasets filter on the stored verdict). A judge or classifier call that fails after the
 * client's retries is logged and recorded as null / rules — the statement itself is done and paid for.
 */
import type { TaskStated, TaskVerified, Statement, Provenance, LinkedIssue } from '../schemas/types.gen.js';
import type { Stage } from '../streams/stage.js';
import { accept, fail, reject, type Envelope, type Outcome, type OutcomeMeta } from '../streams/types.js';
import { logger } from '../streams/log.js';
import type { LlmClient } from './llm/client.js';
import { renderPrompt, renderSection } from './llm/prompts.js';
import { runAgent, type AgentBudgets } from './agents/loop.js';
import type { Sandbox, SandboxFactory } from './sandbox/types.js';
import { checkLeakage, publicApiNames, type LeakageInput, type LeakageResult } from './quality/leakage.js';
import { classifyByRules, classifyWithLlm, type CategoryResult } from './quality/categories.js';
import { difficultyOfPatch } from './quality/difficulty.js';

const log = logger({ component: 'stage', stage: 'statement' });

/** Score from which PR-text statements are rejected (≈ a file path plus two identifiers, or a path and a literal). */
export const PR_TEXT_MAX_SCORE = 0.75;

/** Dependencies of the statement stage; every LLM is optional (null → the rule path for that part). */
export interface StatementDeps {
  /** Problem Statement Writer; null/undefined → rule path */
  writer?: LlmClient | null;
  /** optional statement judge */
  judge?: LlmClient | null;
  /** optional classifier agent for the category; else rules */
  classifier?: LlmClient | null;
  /** containers for the writer's read-only repository tools; without it the writer works from the prompt only */
  sandboxes?: SandboxFactory | null;
  /** writer limits (default 30 steps, 300k tokens, $0.50, 10 min) */
  writerBudgets?: AgentBudgets;
  /** per-command timeout of the writer's bash tool, ms (default 60 000) */
  commandTimeoutMs?: number;
  /** judge verdicts that reject the task (`judge-<verdict>`); default none: the verdict is only stored */
  judgeRejects?: Array<'vague' | 'needs-more' | 'gives-solution'>;
}

const DEFAULT_WRITER_BUDGETS: AgentBudgets = { maxSteps: 30, maxTokens: 300_000, maxCostUsd: 0.5, maxWallMs: 10 * 60_000 };
const MIN_STATEMENT_CHARS = 20;
const MAX_PATCH_CHARS_IN_PROMPT = 40_000;

/**
 * Clean a PR or issue body of what templates add: HTML comments, task-list checkboxes, headings left empty,
 * closing-keyword lines (`Fixes #12`), `<details>` blocks of bot output, trailing signatures. Source of the
 * patterns: GitHub's PR-template conventions (docs.github.com "About issue and pull request templates").
 */
export function cleanBody(body: string | null | undefined): string {
  if (!body) return '';
  let t = body.replace(/\r\n?/g, '\n');
  t = t.replace(/<!--[\s\S]*?(-->|$)/g, '');
  t = t.replace(/<details>[\s\S]*?<\/details>/gi, '');
  const lines = t.split('\n').filter((l) => {
    if (/^\s*[-*+]\s+\[[ xX]\]/.test(l)) return false; // checklist items
    if (isClosingLine(l)) return false;
    if (/^\s*(signed-off-by|co-authored-by|reviewed-by|change-id):/i.test(l)) return false;
    // squash-merge bodies carry bot commits and revert notes (pre-commit.ci, dependabot, git revert)
    if (/^\s*[*-]?\s*\[pre-commit\.ci\]|^\s*for more information, see https:\/\/pre-commit\.ci|^\s*This reverts commit [0-9a-f]{7,40}/i.test(l)) return false;
    return true;
  });
  // Drop headings whose section is empty (template headings nobody filled in).
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^\s*#{1,6}\s/.test(l) || /^\s*\*\*[^*]+\*\*\s*:?\s*$/.test(l)) {
      let j = i + 1;
      while (j < lines.length && lines[j]!.trim() === '') j++;
      if (j >= lines.length || /^\s*#{1,6}\s/.test(lines[j]!) || /^\s*\*\*[^*]+\*\*\s*:?\s*$/.test(lines[j]!)) continue;
    }
    out.push(l);
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

const CLOSING_KEYWORD = /\b(close[sd]?|fix(e[sd])?|resolve[sd]?)\b/gi;
const ISSUE_REF = /(([\w.-]+\/[\w.-]+)?#\d+|https:\/\/github\.com\/\S+\/issues\/\d+)/g;
/** A line made only of closing keywords and issue references (`Fixes #1, closes owner/repo#2`). */
function isClosingLine(l: string): boolean {
  if (!CLOSING_KEYWORD.test(l)) return false;
  CLOSING_KEYWORD.lastIndex = 0;
  return l.replace(CLOSING_KEYWORD, '').replace(ISSUE_REF, '').replace(/\band\b|[\s,.:;]/gi, '') === '';
}

/** SWE-bench-style statement from linked issues (title + body each), or null when none has text. */
export function statementFromIssues(issues: LinkedIssue[]): string | null {
  const parts = issues
    .filter((i) => (i.title ?? '').trim() || (i.body ?? '').trim())
    .map((i) => [i.title?.trim(), cleanBody(i.body)].filter(Boolean).join('\n\n'));
  return parts.length ? parts.join('\n\n') : null;
}

/** Statement from the PR's own title and cleaned body. */
export function statementFromPr(title: string, body: string): string {
  return [title.trim(), cleanBody(body)].filter(Boolean).join('\n\n');
}

/** The rule path's decision on a gate result: reject (true) or keep with evidence (false). */
export function rejectRuleStatement(r: LeakageResult, source: 'issue' | 'pr'): boolean {
  return r.strong || (source === 'pr' && r.score >= PR_TEXT_MAX_SCORE);
}

/** A diff adding `script` at `path`, so an agent-written f2p_script is treated like a test patch by the gate. */
function scriptAsDiff(path: string, script: string): string {
  const lines = script.replace(/\n$/, '').split('\n');
  return `diff --git a/${path} b/${path}\nnew file mode 100644\n--- /dev/null\n+++ b/${path}\n@@ -0,0 +1,${lines.length} @@\n${lines.map((l) => `+${l}`).join('\n')}\n`;
}

/**
 * What a statement of this task must not reveal, as leakage-gate input (everything but the statement): the gold
 * patch, the test patch plus any agent-written f2p_script, FAIL_TO_PASS, and the test commands. End-to-end tests
 * use it to re-check every statement the pipeline produced: `checkLeakage({ ...leakageInputOf(row), statement })`.
 */
export function leakageInputOf(t: TaskVerified | TaskStated): Omit<LeakageInput, 'statement'> {
  return {
    patch: t.tests.gold_patch,
    testPatch: [t.tests.test_patch, t.tests.f2p_script ? scriptAsDiff(t.tests.f2p_script_path ?? 'f2p_test', t.tests.f2p_script) : ''].join(''),
    failToPass: t.verification.FAIL_TO_PASS,
    testCommands: [t.tests.test_command, t.verification.eval_command].filter((x) => !!x),
  };
}

const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n)}\n… [${s.length - n} more characters not shown]`);

interface Acct {
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
}

/** One task on its way through the stage: the record, the gate's inputs, and the LLM spend so far (added to in place). */
interface StatementJob {
  env: Envelope<TaskVerified>;
  t: TaskVerified;
  /** the test patch plus any agent-written f2p_script, as the gate sees it */
  testPatch: string;
  /** the leakage gate for this task: statement → result */
  gate: (statement: string) => LeakageResult;
  acct: Acct;
}

/** A statement and where it came from; `leak` is the gate's result on it. */
interface Written {
  text: string;
  source: 'issue' | 'pr' | 'agent';
  method: 'rules' | 'agent';
  model: string | null;
  promptVersion: string | null;
  leak: LeakageResult;
}

/** A decision that ends the stage's work on a record: a rejection, or a failure the runtime retries. */
type Stop = Outcome<never>;
const isStop = (x: object): x is Stop => 'kind' in x;

/** The job of one record: its leakage-gate inputs taken once, the spend at zero. */
function jobOf(env: Envelope<TaskVerified>): StatementJob {
  const t = env.value;
  const secrets = leakageInputOf(t);
  return { env, t, testPatch: secrets.testPatch ?? '', gate: (statement) => checkLeakage({ ...secrets, statement }), acct: { tokensIn: 0, tokensOut: 0, costUsd: 0 } };
}

/** The outcome's meta with the spend so far (read when called: later steps add to it). */
function metaOf(job: StatementJob, extra: Partial<OutcomeMeta> = {}): OutcomeMeta {
  const c = job.t.candidate;
  return { repo: c.repo, language: c.language, ...job.acct, ...extra };
}

const evidenceList = (leak: LeakageResult) => leak.evidence.map((e) => `${e.kind}:${e.match}`).join(', ');

/**
 * The writer path: the agent's statement, a rejection when it is still flagged after its one rewrite, a
 * retriable failure on an LLM outage, or null when the agent ended without a statement (the rule path follows).
 */
async function agentStatement(deps: StatementDeps, writer: LlmClient, job: StatementJob): Promise<Written | Stop | null> {
  const r = await writeWithAgent(deps, writer, job);
  job.acct.tokensIn += r.tokensIn;
  job.acct.tokensOut += r.tokensOut;
  job.acct.costUsd += r.costUsd;
  if (r.kind === 'outage') return fail(r.error, true, metaOf(job, { method: 'agent', model: writer.model }));
  if (r.kind === 'none') {
    log.warn({ key: job.env.key, exitStatus: r.exitStatus }, 'statement writer ended without a statement; using the rule path');
    return null;
  }
  if (r.leak.flagged) {
    return reject('leaky-statement', `agent statement still flagged after one rewrite: ${evidenceList(r.leak)}`.slice(0, 2000), metaOf(job, { method: 'agent', model: r.model }));
  }
  return { text: r.statement, source: 'agent', method: 'agent', model: r.model, promptVersion: r.promptVersion, leak: r.leak };
}

/** The rule path: the linked issues' text, else the PR's; rejected when empty or leaking (see {@link rejectRuleStatement}). */
function ruleStatement(job: StatementJob): Written | Stop {
  const c = job.t.candidate;
  // An issue with only a terse title ("Bug") says less than the PR: fall back to the PR text then.
  const issueText = statementFromIssues(c.linked_issues);
  const fromIssues = issueText !== null && issueText.length >= MIN_STATEMENT_CHARS ? issueText : null;
  const source = fromIssues ? 'issue' : 'pr';
  const text = fromIssues ?? statementFromPr(c.title, c.body);
  if (text.length < MIN_STATEMENT_CHARS) return reject('empty-statement', `${text.length} characters after cleaning`, metaOf(job, { method: 'rules' }));
  const leak = job.gate(text);
  if (rejectRuleStatement(leak, source)) return reject('leaky-statement', `${source} text: ${evidenceList(leak)}`.slice(0, 2000), metaOf(job, { method: 'rules' }));
  return { text, source, method: 'rules', model: null, promptVersion: null, leak };
}

/** The accepted record: the statement with its gate result, verdict, category and difficulty, and the stage's provenance. */
function statedRecord(job: StatementJob, w: Written, o: { judge: string | null; category: CategoryResult; started: number }): TaskStated {
  const { t, acct } = job;
  const gold = t.tests.gold_patch;
  const statement: Statement = {
    problem_statement: w.text,
    hints_text: '',
    source: w.source,
    method: w.method,
    model: w.model,
    prompt_version: w.promptVersion,
    leakage_score: w.leak.score,
    leakage_evidence: w.leak.evidence,
    judge: o.judge,
    category: o.category.category,
    category_method: o.category.method,
    difficulty: difficultyOfPatch(gold),
  };
  const prov: Provenance = { stage: 'statement', method: w.method, model: w.model, prompt_version: w.promptVersion, image_digest: null, duration_ms: Date.now() - o.started, tokens_in: acct.tokensIn, tokens_out: acct.tokensOut, cost_usd: acct.costUsd };
  return { instance_id: t.instance_id, candidate: t.candidate, environment: t.environment, tests: t.tests, verification: t.verification, statement, provenance: [...t.provenance, prov] };
}

/**
 * The statement stage: write (agent, else rules) → gate → judge → category → record. See the file comment
 * for the policy; never throws for expected conditions (returns outcomes). Throws SandboxError when the
 * writer's container cannot be created (retriable as the engine says).
 */
export function statementStage(deps: StatementDeps = {}): Stage<TaskVerified, TaskStated> {
  async function handle(env: Envelope<TaskVerified>): Promise<Outcome<TaskStated>> {
    const started = Date.now();
    const job = jobOf(env);
    const { t } = job;
    const byAgent = deps.writer ? await agentStatement(deps, deps.writer, job) : null;
    const written = byAgent ?? ruleStatement(job);
    if (isStop(written)) return written;
    const judge = deps.judge ? await judgeStatement(deps.judge, written.text, job) : null;
    if (judge && (deps.judgeRejects as string[] | undefined)?.includes(judge)) {
      return reject(`judge-${judge}`, written.text.slice(0, 500), metaOf(job, { method: written.method, model: written.model ?? undefined }));
    }
    const category = await categorize(deps.classifier ?? null, `${t.candidate.title}\n\n${written.text}`, job);
    return accept(statedRecord(job, written, { judge, category, started }), metaOf(job, { method: written.method, model: written.model ?? undefined }));
  }
  return { name: 'statement', handle };
}

type WriterResult = Acct &
  (
    | { kind: 'ok'; statement: string; model: string; promptVersion: string; leak: LeakageResult }
    | { kind: 'none'; exitStatus: string }
    | { kind: 'outage'; error: Error }
  );

/** The writer's prompt: the PR, its issues, the patches (clipped), FAIL_TO_PASS, the public API names, and what tools it has. */
function writerPrompt(job: StatementJob, o: { sandbox: Sandbox | null; workdir: string }) {
  const { t } = job;
  const c = t.candidate;
  const issues = c.linked_issues.length
    ? c.linked_issues.map((i) => `### #${i.number}: ${i.title ?? ''}\n\n${cleanBody(i.body)}`).join('\n\n')
    : '(none)';
  const api = publicApiNames(t.tests.gold_patch, job.testPatch);
  return renderPrompt('statement-writer', {
    repo: c.repo,
    language: c.language,
    pr_title: c.title,
    pr_body: cleanBody(c.body) || '(empty)',
    linked_issues: issues,
    gold_patch: clip(t.tests.gold_patch, MAX_PATCH_CHARS_IN_PROMPT),
    test_patch: clip(job.testPatch, MAX_PATCH_CHARS_IN_PROMPT),
    fail_to_pass: t.verification.FAIL_TO_PASS.map((n) => `- ${n}`).join('\n') || '(none)',
    public_api: api.length ? api.map((n) => `- ${n}`).join('\n') : '(none)',
    tools_note: o.sandbox
      ? `You can explore the repository as it was BEFORE the change with \`bash\` and \`read_file\` (working directory ${o.workdir}). Use them read-only.`
      : 'You have no repository access; work from the material below.',
  });
}

/**
 * The submit tool's check: too short is refused; a statement the gate flags gets one rewrite request with
 * the evidence, and the next submission is final (judged by the stage). `last` keeps the latest gate result.
 */
function submitCheck(gate: StatementJob['gate'], last: { leak: LeakageResult | null }): (s: { statement: string }) => string | null {
  let rewrites = 0;
  return (s) => {
    if (s.statement.trim().length < MIN_STATEMENT_CHARS) return 'the statement is empty or too short; describe the observed and expected behaviour.';
    last.leak = gate(s.statement);
    if (last.leak.flagged && rewrites === 0) {
      rewrites++;
      return renderSection('statement-writer', 'rewrite', { evidence: last.leak.evidence.map((e) => `- ${e.kind}: ${e.match}`).join('\n') });
    }
    return null;
  };
}

/**
 * Run the Problem Statement Writer, in a network-less container of the task image when sandboxes are
 * given. @throws SandboxError when that container cannot be created (the runtime retries the record)
 */
async function writeWithAgent(deps: StatementDeps, llm: LlmClient, job: StatementJob): Promise<WriterResult> {
  const { t } = job;
  const workdir = t.verification.workdir || t.environment.workdir;
  const sandbox = deps.sandboxes && t.verification.task_image_ref
    ? await deps.sandboxes.create({ image: t.verification.task_image_ref, network: false, workdir, labels: { 'swe-stream.stage': 'statement', 'swe-stream.key': t.candidate.pr_id }, signal: job.env.signal })
    : null;
  try {
    const p = writerPrompt(job, { sandbox, workdir });
    const last: { leak: LeakageResult | null } = { leak: null };
    const run = await runAgent<{ statement: string }>({
      llm,
      system: p.system,
      user: p.user,
      sandbox,
      workdir,
      tools: sandbox ? ['bash', 'read_file'] : [],
      submit: {
        description: 'Hand in the final problem statement (Markdown).',
        parameters: { type: 'object', properties: { statement: { type: 'string', description: 'the problem statement' } }, required: ['statement'] },
        validate: submitCheck(job.gate, last),
      },
      budgets: deps.writerBudgets ?? DEFAULT_WRITER_BUDGETS,
      commandTimeoutMs: deps.commandTimeoutMs ?? 60_000,
      bashPrefix: t.verification.pre_commands.join('\n') || undefined,
      signal: job.env.signal,
    });
    const acct = { tokensIn: run.tokensIn, tokensOut: run.tokensOut, costUsd: run.costUsd };
    if (run.exitStatus === 'submitted' && run.submission) {
      return { kind: 'ok', statement: run.submission.statement.trim(), model: run.model, promptVersion: p.version, leak: last.leak ?? job.gate(run.submission.statement), ...acct };
    }
    if (run.exitStatus === 'error' && run.error?.retriable) {
      const e = new Error(`statement writer: ${run.error.message}`);
      e.name = run.error.name;
      return { kind: 'outage', error: e, ...acct };
    }
    return { kind: 'none', exitStatus: run.exitStatus, ...acct };
  } finally {
    await sandbox?.destroy();
  }
}

const JUDGE_VERDICTS = ['vague', 'needs-more', 'gives-solution', 'ok'] as const;

/** The judge's verdict on `statement`; `unparsed` for an answer without a known verdict, null when the call failed. */
async function judgeStatement(llm: LlmClient, statement: string, job: StatementJob): Promise<string | null> {
  const { env, acct } = job;
  try {
    const p = renderPrompt('judge', { statement, patch: clip(job.t.tests.gold_patch, MAX_PATCH_CHARS_IN_PROMPT), fail_to_pass: job.t.verification.FAIL_TO_PASS.map((n) => `- ${n}`).join('\n') || '(none)' });
    const r = await llm.chat({ messages: [{ role: 'system', content: p.system }, { role: 'user', content: p.user }], responseFormat: { type: 'json_object' }, signal: env.signal });
    acct.tokensIn += r.tokensIn;
    acct.tokensOut += r.tokensOut;
    acct.costUsd += r.costUsd;
    const text = r.message.content ?? '';
    let verdict: unknown;
    try {
      verdict = (JSON.parse(/\{[\s\S]*\}/.exec(text)?.[0] ?? 'null') as { verdict?: unknown } | null)?.verdict;
    } catch {
      verdict = undefined; // handled below: an unparseable answer is recorded as such
    }
    const v = typeof verdict === 'string' ? verdict.toLowerCase().trim() : '';
    if ((JUDGE_VERDICTS as readonly string[]).includes(v)) return v;
    log.warn({ key: env.key, answer: text.slice(0, 200) }, 'judge answer has no known verdict');
    return 'unparsed';
  } catch (e) {
    if (env.signal.aborted) throw e;
    log.warn({ key: env.key, err: (e as Error).message }, 'statement judge failed; recording no verdict');
    return null;
  }
}

/** The category of `text` (title + statement): the classifier agent's when configured and answering, else the rules'. */
async function categorize(llm: LlmClient | null, text: string, job: StatementJob): Promise<CategoryResult> {
  const { env, acct } = job;
  const gold = job.t.tests.gold_patch;
  if (!llm) return classifyByRules(text, gold);
  try {
    const r = await classifyWithLlm(llm, text, gold, env.signal);
    acct.tokensIn += r.tokensIn ?? 0;
    acct.tokensOut += r.tokensOut ?? 0;
    acct.costUsd += r.costUsd ?? 0;
    return r;
  } catch (e) {
    if (env.signal.aborted) throw e;
    log.warn({ key: env.key, err: (e as Error).message }, 'classifier agent failed; using the rules');
    return classifyByRules(text, gold);
  }
}
