/**
 * The distill stage (tasks.stated → trajectories; ARCHITECTURE.md §1, issue 6): a solver agent in the spirit of
 * mini-swe-agent runs K attempts on each task; each attempt's final diff is graded by the evaluation harness;
 * every attempt becomes one Trajectory record (OpenAI chat messages + info), resolved or not.
 *
 * - Without a solver LLM: the outcome is `rejected` with reason `skipped-no-llm` (method `skipped`); the task
 *   already reached the dataset through tasks.stated.
 * - Isolation: each attempt runs in a fresh container of the TASK image (`verification.task_image_ref`: the
 *   environment plus the parent-commit checkout with later history removed), network off, so neither the gold
 *   patch nor future commits are reachable — checked before every attempt ({@link assertNoFutureHistory}). The
 *   solver sees only the problem statement (prompts/solver.vN.md).
 * - The attempt's result is `git add -A && git diff --cached` in the workdir (new files included, as
 *   SWE-agent/mini-swe-agent collect it), graded by `deps.grade(task, patch)` — the same harness as `evaluate`.
 *   An empty diff is not graded: the release check already proved the empty patch does not resolve the task.
 * - Errors: an LLM outage (a retriable LlmError: the client does not retry), a sandbox engine failure or a
 *   grading failure fails the record retriably — a half-graded set of attempts would bias the pass rate — and
 *   the runtime retries it from its due-time retry topic. A non-retriable LLM error (e.g. context too long)
 *   ends that attempt with exit status `error`, kept and graded.
 * - One attempt is one record in the keyed store `distill.attempts` on the bus (streams/store.ts, key = the
 *   trajectory id): each finished, graded attempt is stored as it ends, so a retry of the task re-runs only
 *   the attempts that did not finish — one failing attempt repeats only itself, on any worker. The entries
 *   are deleted when the task's trajectories are emitted (embedded: in the same transaction).
 * - Solver pass rate (resolved attempts / K) is a difficulty signal: returned by {@link solverPassRate} and
 *   logged per task; in SQL it is `avg(resolved)` over the task's trajectories of one model.
 * Trajectory ids are `<instance_id>__<model>__<attempt>`, stable across replays (idempotent sinks).
 */
import type { TaskStated, Trajectory } from '../schemas/types.gen.js';
import type { Stage } from '../streams/stage.js';
import { StageError, accept, fail, reject, type Envelope, type Outcome } from '../streams/types.js';
import { logger } from '../streams/log.js';
import type { LlmClient } from './llm/client.js';
import { renderPrompt } from './llm/prompts.js';
import { runAgent, type AgentBudgets, type AgentRunResult } from './agents/loop.js';
import type { Sandbox, SandboxFactory } from './sandbox/types.js';
import type { KeyedStore } from '../streams/store.js';

/** Namespace of finished attempts: trajectory id → the attempt's Trajectory record (JSON). */
export const DISTILL_ATTEMPTS_STORE = 'distill.attempts';

const log = logger({ component: 'stage', stage: 'distill' });

/** Grades a candidate patch on a task with the evaluation harness: true = resolved (every F2P and P2P passes). May throw (infrastructure). */
export type GradeFn = (task: TaskStated, patch: string, signal?: AbortSignal) => Promise<boolean>;

/** Dependencies of the distill stage. */
export interface DistillDeps {
  /** the solver; null/undefined → `skipped-no-llm` */
  solver?: LlmClient | null;
  /** containers from the task image; required when a solver is configured */
  sandboxes?: SandboxFactory | null;
  grade: GradeFn;
  /** finished attempts ({@link DISTILL_ATTEMPTS_STORE}); without it a retry re-runs every attempt */
  attemptsStore?: KeyedStore | null;
  /** attempts per task, K (default 3) */
  attempts?: number;
  /** per attempt (default 50 steps, 1M tokens, $2, 30 min) */
  budgets?: AgentBudgets;
  /** per bash command, ms (default 120 000) */
  commandTimeoutMs?: number;
  /** prompt version of prompts/solver.vN.md (default: latest) */
  promptVersion?: number;
  /**
   * Sampling temperature of the attempts (default: the solver's configured temperature). K attempts at
   * temperature 0 are near-identical, so a warning is logged when K > 1 and the temperature is 0.
   */
  temperature?: number;
}

const DEFAULT_BUDGETS: AgentBudgets = { maxSteps: 50, maxTokens: 1_000_000, maxCostUsd: 2, maxWallMs: 30 * 60_000 };
const DIFF_TIMEOUT_MS = 120_000;

/** Resolved share of a set of attempts (0…1), or null for none. */
export function solverPassRate(trajectories: Pick<Trajectory, 'resolved'>[]): number | null {
  return trajectories.length ? trajectories.filter((t) => t.resolved).length / trajectories.length : null;
}

/** Deterministic id of one attempt. */
export function trajectoryId(instanceId: string, model: string, attempt: number): string {
  return `${instanceId}__${model.replace(/[^\w.-]+/g, '-')}__${attempt}`;
}

/**
 * The final diff of the working tree in `workdir` against HEAD, new files included.
 * @throws StageError (retriable) when git fails in the container.
 */
export async function collectDiff(sandbox: Sandbox, workdir: string, signal?: AbortSignal): Promise<string> {
  const r = await sandbox.exec('git add -A >/dev/null 2>&1; git -c core.fileMode=false diff --cached --no-color --no-ext-diff HEAD', { cwd: workdir, timeoutMs: DIFF_TIMEOUT_MS, signal, maxOutputBytes: 16 << 20 });
  if (r.exitCode !== 0 || r.truncated) {
    throw new StageError(`git diff in the solver container failed (exit ${r.exitCode}${r.truncated ? ', output truncated' : ''}): ${r.stderr.slice(-500)}`, { retriable: true, name: 'DiffError' });
  }
  return r.stdout;
}

/**
 * Guard for "no access to the fix": the task image must not contain the PR's commit (ARCHITECTURE.md §6: later
 * history removed). A task image that still has it would let the solver `git show` the answer.
 * @throws StageError (not retriable, name `HistoryLeak`) when the commit is reachable; (retriable) when git cannot run.
 */
export async function assertNoFutureHistory(sandbox: Sandbox, workdir: string, prCommit: string, signal?: AbortSignal): Promise<void> {
  if (!/^[0-9a-f]{7,64}$/i.test(prCommit)) return;
  const r = await sandbox.exec(`if git cat-file -e ${prCommit}^{commit} 2>/dev/null; then echo VISIBLE; else echo absent; fi`, { cwd: workdir, timeoutMs: 60_000, signal });
  if (r.exitCode !== 0) throw new StageError(`history check failed (exit ${r.exitCode}): ${r.stderr.slice(-300)}`, { retriable: true, name: 'HistoryCheckError' });
  if (r.stdout.includes('VISIBLE')) {
    throw new StageError(`task image contains the PR commit ${prCommit}: the solver could read the fix`, { retriable: false, name: 'HistoryLeak' });
  }
}

/** What one solver attempt needs. `workdir` is the task's; `temperature` undefined means the solver's configured one. */
interface AttemptInput {
  t: TaskStated;
  attempt: number;
  workdir: string;
  prompt: ReturnType<typeof renderPrompt>;
  solver: LlmClient;
  sandboxes: SandboxFactory;
  temperature: number | undefined;
  signal: AbortSignal;
}

/** What an attempt cost: tokens and USD. */
interface AttemptCost {
  tokensIn: number;
  tokensOut: number;
  costUsd: number;
}

/** The trajectory record of a finished attempt. */
function trajectoryOf(a: AttemptInput, run: AgentRunResult<unknown>, o: { patch: string; resolved: boolean }): Trajectory {
  const { t, attempt } = a;
  return {
    trajectory_id: trajectoryId(t.instance_id, run.model, attempt),
    instance_id: t.instance_id,
    pr_id: t.candidate.pr_id,
    attempt,
    model: run.model,
    prompt_version: a.prompt.version,
    messages_json: JSON.stringify(run.messages),
    final_patch: o.patch,
    exit_status: run.exitStatus,
    resolved: o.resolved,
    steps: run.steps,
    tokens_in: run.tokensIn,
    tokens_out: run.tokensOut,
    cost_usd: run.costUsd,
    duration_ms: run.durationMs,
  };
}

/**
 * One attempt in a fresh task-image container: the solver loop, the diff, its grade.
 * @returns the trajectory, or the retriable error that ended the attempt (LLM outage) with what it cost
 * @throws StageError / SandboxError from the history check, the diff or the grader
 */
async function runAttempt(deps: DistillDeps, a: AttemptInput): Promise<({ trajectory: Trajectory } | { error: StageError }) & AttemptCost> {
  const { t, attempt, workdir } = a;
  const c = t.candidate;
  const sandbox = await a.sandboxes.create({
    image: t.verification.task_image_ref,
    network: false,
    workdir,
    labels: { 'swe-stream.stage': 'distill', 'swe-stream.key': c.pr_id, 'swe-stream.attempt': String(attempt) },
    signal: a.signal,
  });
  try {
    await assertNoFutureHistory(sandbox, workdir, c.pr_commit, a.signal);
    const run = await runAgent({
      llm: a.solver,
      system: a.prompt.system,
      user: a.prompt.user,
      sandbox,
      workdir,
      budgets: deps.budgets ?? DEFAULT_BUDGETS,
      commandTimeoutMs: deps.commandTimeoutMs ?? 120_000,
      bashPrefix: t.verification.pre_commands.join('\n') || undefined,
      temperature: a.temperature,
      signal: a.signal,
    });
    const cost = { tokensIn: run.tokensIn, tokensOut: run.tokensOut, costUsd: run.costUsd };
    if (run.exitStatus === 'error' && run.error?.retriable) {
      return { error: new StageError(`solver attempt ${attempt}: ${run.error.message}`, { retriable: true, name: run.error.name }), ...cost };
    }
    const patch = await collectDiff(sandbox, workdir, a.signal);
    const resolved = patch.trim() === '' ? false : await deps.grade(t, patch, a.signal);
    return { trajectory: trajectoryOf(a, run, { patch, resolved }), ...cost };
  } finally {
    await sandbox.destroy();
  }
}

/**
 * The distill stage: K solver attempts per task (see the file comment), each finished attempt kept in the
 * attempts store so a retried record does not pay for it twice.
 * @returns accepted with every trajectory (`values`); rejected `skipped-no-llm` without a solver; failed
 *          (retriable) on an LLM outage. @throws RangeError for a bad `attempts`; StageError without sandboxes
 */
export function distillStage(deps: DistillDeps): Stage<TaskStated, Trajectory> {
  const k = deps.attempts ?? 3;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`attempts must be a positive integer, got ${k}`);
  const temperature = deps.temperature ?? deps.solver?.config.temperature;
  if (deps.solver && k > 1 && temperature === 0) log.warn({ attempts: k, model: deps.solver.model }, 'K > 1 solver attempts at temperature 0 will be near-identical; set llm.agents.solver.temperature');

  async function handle(env: Envelope<TaskStated>): Promise<Outcome<Trajectory>> {
    const t = env.value;
    const c = t.candidate;
    const solver = deps.solver;
    if (!solver) return reject('skipped-no-llm', undefined, { repo: c.repo, language: c.language, method: 'skipped' });
    if (!deps.sandboxes) throw new StageError('distill: a solver is configured but no SandboxFactory was given', { retriable: false });
    const workdir = t.verification.workdir || t.environment.workdir;
    const p = renderPrompt('solver', { repo: c.repo, language: c.language, workdir, problem_statement: t.statement.problem_statement }, deps.promptVersion);
    const out: Trajectory[] = [];
    const sum = { tokensIn: 0, tokensOut: 0, costUsd: 0 };
    const meta = () => ({ repo: c.repo, language: c.language, method: 'agent', model: solver.model, ...sum });

    const store = deps.attemptsStore ?? null;
    const keyOf = (attempt: number) => trajectoryId(t.instance_id, solver.model, attempt);
    for (let attempt = 1; attempt <= k; attempt++) {
      const done = store ? await store.get(keyOf(attempt)) : null;
      if (done !== null) {
        // Finished by an earlier try of this record: its trajectory stands, tokens and cost were spent then.
        const tr = JSON.parse(done) as Trajectory;
        out.push(tr);
        sum.tokensIn += tr.tokens_in;
        sum.tokensOut += tr.tokens_out;
        sum.costUsd += tr.cost_usd;
        continue;
      }
      const r = await runAttempt(deps, { t, attempt, workdir, prompt: p, solver, sandboxes: deps.sandboxes, temperature, signal: env.signal });
      sum.tokensIn += r.tokensIn;
      sum.tokensOut += r.tokensOut;
      sum.costUsd += r.costUsd;
      if ('error' in r) return fail(r.error, true, meta());
      out.push(r.trajectory);
      if (store) await store.put(keyOf(attempt), JSON.stringify(r.trajectory), { origin: env.origin });
    }
    if (store) for (let attempt = 1; attempt <= k; attempt++) await store.delete(keyOf(attempt), { origin: env.origin });
    log.info({ key: env.key, model: solver.model, attempts: k, passRate: solverPassRate(out), ...sum }, 'distilled');
    return { kind: 'accepted', value: out[0]!, values: out, meta: meta() };
  }
  return { name: 'distill', handle };
}
