/**
 * Stage verify (tests.ready → tasks.verified): FAIL_TO_PASS / PASS_TO_PASS proven by execution
 * (ARCHITECTURE.md §6; SWE-bench's validation, with SWE-bench-Live's reruns).
 *
 * Five test runs per PR (issue 15 item 3), the same evidence the former seven gave:
 * - before = parent + test patch, `runsBefore` (2) runs in total; after = parent + test patch + gold
 *   patch, `runsAfter` (3) runs in total. With a task image (the default) the last run of each state is
 *   the release check's: the gold-patch run counts as an after run and the empty-patch run as a before
 *   run, both made in the container committed as the task image (its exact state), through
 *   operators/harness/evaluate.ts `runInstance` — the code a user's evaluation runs. So 1 before run and
 *   2 after runs go in their own fresh containers (network off), then gold and empty in the task
 *   container: FAIL_TO_PASS must fail in every before run and pass in every after run, and flakes are
 *   detected over all 5 runs, exactly as over 2 + 3 separate runs.
 * - Each state's container is fresh from the environment image, so nothing one state writes reaches the
 *   other; inside a container, reruns reset the work tree between them (harness `resetCheckout`).
 *   Containers start at once (start-ups overlap the first runs), the task container is stripped while
 *   the after runs go, containers are removed in the background.
 * - Only the selected test files run (TestSpec.test_command), reporter explicit, text log kept.
 * - Statuses are combined by operators/harness/grading.ts; rejections: `patch-does-not-apply`, `timeout`,
 *   `invalid-run`, `flaky-f2p`, `pass-to-fail`, `no-f2p`, and `release-check` when the gold run does
 *   not grade resolved or the empty run does (SWE-bench grading of the final lists).
 * - Early stop: once no test can still become FAIL_TO_PASS, or a run is invalid, the remaining runs are
 *   skipped and no task image is kept.
 */
import type { Provenance, TaskVerified, TestsReady, Verification } from '../schemas/types.gen.js';
import type { Stage } from '../streams/stage.js';
import { accept, reject } from '../streams/types.js';
import type { Envelope, Outcome, OutcomeMeta } from '../streams/types.js';
import { SANDBOX_DEFAULTS, type Sandbox, type SandboxFactory } from './sandbox/types.js';
import { gradeVerification, invalidInState, invalidReason, isFail, isPass, releaseCheck, type RunRecord, type VerifyGrade } from './harness/grading.js';
import { getRunner, type Runner } from './runners/index.js';
import { destroyLater, prepareCheckout, runRepeated, type NamedPatch, type RunEvidence, type WorkFile } from './harness/runs.js';
import { commitTaskImage, stripToTask, type TaskImage } from './harness/task-image.js';
import { runInstance, type EvalRow } from './harness/evaluate.js';
import { logger } from '../streams/log.js';

const log = logger({ component: 'verify' });

/** SWE-bench instance id `owner__repo-N` from `owner/repo` and the PR number. */
export function instanceId(repo: string, number: number): string {
  return `${repo.replace('/', '__')}-${number}`;
}

export interface VerifyDeps {
  sandboxes: SandboxFactory;
  /** limit of one test run, ms; default {@link SANDBOX_DEFAULTS}.testTimeoutMs */
  runTimeoutMs?: number;
  /** before-fix runs in total, the release check's empty-patch run included; default 2, at least 1 */
  runsBefore?: number;
  /** after-fix runs in total, the release check's gold-patch run included; default 3, at least 1 */
  runsAfter?: number;
  /** build the task image and make the release check's runs in it (default true); false makes every run in the verification containers and grades the release check on them */
  taskImage?: boolean;
  /** task image repository prefix, default swe-stream/task */
  taskImagePrefix?: string;
  now?: () => number;
}

/** What one state's runs produced. */
interface StateRuns {
  runs: RunEvidence[];
  ms: number;
}

/** Test-patch part of a run: the PR's test patch, or the agent's f2p_script written as a file. */
function testInputs(t: TestsReady['tests']): { patches: NamedPatch[]; files: WorkFile[] } {
  const files = t.f2p_script && t.f2p_script_path ? [{ path: t.f2p_script_path, content: t.f2p_script }] : [];
  return { patches: t.test_patch.trim() ? [{ name: 'test', text: t.test_patch }] : [], files };
}

/** Can a test still become FAIL_TO_PASS given the runs so far (see the early-stop rule above)? */
function f2pStillPossible(before: RunRecord[], after: RunRecord[]): boolean {
  const names = new Set<string>();
  for (const r of after) for (const t of r.results) names.add(t.name);
  if (after.length === 0) {
    // Before runs only: a test must have failed (or be absent) in every run; absence is always possible
    // for a test the after runs will name, so only a run with failures/absences could matter — keep going.
    return true;
  }
  const maps = (rs: RunRecord[]) => rs.map((r) => new Map(r.results.map((t) => [t.name, t.status])));
  const bm = maps(before);
  const am = maps(after);
  for (const n of names) if (bm.every((m) => isFail(m.get(n))) && am.every((m) => isPass(m.get(n)))) return true;
  return false;
}

/** What one verification needs, shared by the steps of {@link verifyStage}. */
interface VerifyCtx {
  deps: VerifyDeps;
  env: Envelope<TestsReady>;
  runner: Runner;
  testPatches: NamedPatch[];
  files: WorkFile[];
  id: string;
  meta: OutcomeMeta;
  /** phase wall times, ms, for the log line */
  phase: Record<string, number>;
  now: () => number;
}

/** One state's runs (see {@link runRepeated}), in `sandbox` when one was started ahead of time. */
function runState(c: VerifyCtx, o: { patches: NamedPatch[]; n: number; stop: (runs: RunEvidence[]) => boolean; sandbox?: Promise<Sandbox> }): Promise<StateRuns> {
  const { environment, candidate, tests } = c.env.value;
  return runRepeated({
    sandboxes: c.deps.sandboxes, image: environment.image_id || environment.image_ref, commit: candidate.parent_commit, workdir: environment.workdir,
    preCommands: environment.pre_commands, testCommand: tests.test_command, runner: c.runner, patches: o.patches, files: c.files, n: o.n,
    timeoutMs: c.deps.runTimeoutMs ?? SANDBOX_DEFAULTS.testTimeoutMs, labels: { 'swe-stream.stage': 'verify', 'swe-stream.pr': candidate.pr_id }, signal: c.env.signal,
    stop: o.stop, sandbox: o.sandbox,
  });
}

/** The last lines of a run's log, for rejection details. */
function tail(text: string, n = 600): string {
  return text.length > n ? '…' + text.slice(-n) : text;
}


/**
 * A rejection with the evidence of the run that decided it appended to the detail: the first run invalid for
 * the rejection's own reason (a patch that did not apply, a timeout), else the first run invalid in its state
 * ({@link invalidInState}: a before run that crashed is gradable, so its log is not the cause).
 */
function rejectGrade(c: VerifyCtx, grade: { reason: string; detail: string }, runs: { before: RunEvidence[]; after: RunEvidence[] }, summary: object): Outcome<TaskVerified> {
  const all = [...runs.before, ...runs.after];
  const bad = all.find((r) => invalidReason(r) === grade.reason)
    ?? runs.before.find((r) => invalidInState('before', r) !== null) ?? runs.after.find((r) => invalidInState('after', r) !== null);
  const detail = grade.detail + (bad ? ` | ${bad.applyError ?? tail(bad.log)}` : '');
  log.info({ ...summary, reason: grade.reason }, 'verify rejected');
  return reject(grade.reason, detail, c.meta);
}

/** The release check's two runs in the task container: gold (an after run), then empty (a before run). */
interface ReleaseRuns {
  gold: RunEvidence;
  empty: RunEvidence;
  image: TaskImage;
}

/**
 * Commit the stripped task container as the task image, then run the gold patch and the empty patch in
 * it through evaluate's `runInstance`. `lists` are the provisional FAIL_TO_PASS / PASS_TO_PASS (the
 * runs' grading is redone on the final lists by the caller).
 * @throws StageError / SandboxError from the engine
 */
async function releaseRuns(c: VerifyCtx, sb: Sandbox, lists: { FAIL_TO_PASS: string[]; PASS_TO_PASS: string[] }): Promise<ReleaseRuns> {
  const { environment, candidate, tests } = c.env.value;
  const image = await commitTaskImage(sb, { prefix: c.deps.taskImagePrefix, instanceId: c.id, parentCommit: candidate.parent_commit });
  const row: EvalRow = {
    instance_id: c.id, environment, tests,
    verification: { ...lists, image_url: image.imageUrl, task_image_ref: image.ref, workdir: environment.workdir, pre_commands: environment.pre_commands, eval_command: tests.test_command },
  };
  // The committed container is the task image's state; prepare records it (outside the image) for the reset.
  await prepareCheckout(sb, environment.workdir, candidate.parent_commit, c.env.signal);
  const common = { row, sandboxes: c.deps.sandboxes, timeoutMs: c.deps.runTimeoutMs ?? SANDBOX_DEFAULTS.testTimeoutMs, signal: c.env.signal, sandbox: sb };
  const gold = await runInstance({ ...common, modelPatch: tests.gold_patch });
  const empty = await runInstance({ ...common, modelPatch: '', reset: true });
  return { gold: gold.run!, empty: empty.run!, image };
}

/** Drop a task image that will not be released (rejected after its commit). Failures are logged. */
async function dropImage(c: VerifyCtx, ref: string): Promise<void> {
  await c.deps.sandboxes.removeImage?.(ref).catch((e: unknown) => log.warn({ ref, err: (e as Error).message }, 'removing a rejected task image failed'));
}

/** The accepted record. */
function verifiedRecord(c: VerifyCtx, o: { grade: Extract<VerifyGrade, { kind: 'verified' }>; before: RunEvidence[]; after: RunEvidence[]; rc: { gold_resolved: boolean; empty_resolved: boolean }; image: TaskImage | null; t0: number }): TaskVerified {
  const { candidate, environment, tests } = c.env.value;
  const verifyMs = c.now() - o.t0;
  const imageUrl = o.image?.imageUrl ?? '';
  const verification: Verification = {
    FAIL_TO_PASS: o.grade.FAIL_TO_PASS,
    PASS_TO_PASS: o.grade.PASS_TO_PASS,
    flaky: o.grade.flaky.map((f) => ({ name: f.name, state: f.state, flake_rate: f.flake_rate })),
    runs_before: o.before.length,
    runs_after: o.after.length,
    gold_resolved: o.rc.gold_resolved,
    empty_resolved: o.rc.empty_resolved,
    image_url: imageUrl,
    task_image_ref: o.image?.ref ?? '',
    workdir: environment.workdir,
    pre_commands: environment.pre_commands,
    eval_command: tests.test_command,
    tests_ms: [...o.before, ...o.after].reduce((s, r) => s + (r.durationMs ?? 0), 0),
    verify_ms: verifyMs,
  };
  const provenance: Provenance = { stage: 'verify', method: 'harness', model: null, prompt_version: null, image_digest: imageUrl ? imageUrl.slice(imageUrl.lastIndexOf('@') + 1) : environment.image_id, duration_ms: verifyMs, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
  return { instance_id: c.id, candidate, environment, tests, verification, provenance: [...c.env.value.provenance, provenance] };
}

/** The grading steps after the runs: final grade over all runs, release check, record or rejection. */
async function conclude(c: VerifyCtx, o: { before: RunEvidence[]; after: RunEvidence[]; release: ReleaseRuns | null; t0: number }): Promise<Outcome<TaskVerified>> {
  const before = o.release ? [...o.before, o.release.empty] : o.before;
  const after = o.release ? [...o.after, o.release.gold] : o.after;
  const nBefore = c.deps.runsBefore ?? 2;
  const nAfter = c.deps.runsAfter ?? 3;
  const summary = { pr: c.env.value.candidate.pr_id, before: before.map((r) => r.results.length), after: after.map((r) => r.results.length), wallMs: c.now() - o.t0, ...c.phase };
  let grade = gradeVerification(before, after);
  // Stopped early (see the module comment): fewer runs than required can never verify.
  if (grade.kind === 'verified' && (after.length < nAfter || before.length < nBefore)) grade = { kind: 'rejected', reason: 'no-f2p', detail: 'no test can fail before and pass after', flaky: grade.flaky };
  if (grade.kind === 'rejected') {
    if (o.release) await dropImage(c, o.release.image.ref);
    return rejectGrade(c, grade, { before, after }, summary);
  }
  const rc = releaseCheck(grade, after[after.length - 1]!, before[before.length - 1]!);
  if (!rc.ok) {
    if (o.release) await dropImage(c, o.release.image.ref);
    log.info({ ...summary, goldResolved: rc.gold_resolved, emptyResolved: rc.empty_resolved }, 'release check failed');
    return reject('release-check', `gold patch resolved=${rc.gold_resolved}, empty patch resolved=${rc.empty_resolved}`, c.meta);
  }
  const value = verifiedRecord(c, { grade, before, after, rc, image: o.release?.image ?? null, t0: o.t0 });
  log.info({ ...summary, f2p: grade.FAIL_TO_PASS.length, p2p: grade.PASS_TO_PASS.length, flaky: grade.flaky.length, runs: before.length + after.length }, 'verified');
  return accept(value, c.meta);
}

/**
 * The verify stage.
 * @returns accepted TaskVerified; rejected with a reason code (see the module comment); failed with a
 *          StageError when the environment image is unusable (non-retriable) or the engine fails.
 */
export function verifyStage(deps: VerifyDeps): Stage<TestsReady, TaskVerified> {
  const now = deps.now ?? Date.now;
  const wantImage = deps.taskImage ?? true;
  // With a task image, one run of each state is the release check's (see the module comment).
  const nBefore = Math.max(1, deps.runsBefore ?? 2) - (wantImage ? 1 : 0);
  const nAfter = Math.max(1, deps.runsAfter ?? 3) - (wantImage ? 1 : 0);
  return {
    name: 'verify',
    async handle(env: Envelope<TestsReady>): Promise<Outcome<TaskVerified>> {
      const t0 = now();
      const { candidate, environment, tests } = env.value;
      const { patches: testPatches, files } = testInputs(tests);
      const c: VerifyCtx = { deps, env, runner: getRunner(environment.runner), testPatches, files, id: instanceId(candidate.repo, candidate.number), meta: { repo: candidate.repo, language: candidate.language, method: 'harness' }, phase: {}, now };
      const gold: NamedPatch = { name: 'gold', text: tests.gold_patch };
      const make = (part: string): Promise<Sandbox> => {
        const p = deps.sandboxes.create({ image: environment.image_id || environment.image_ref, network: false, workdir: environment.workdir, labels: { 'swe-stream.stage': 'verify', 'swe-stream.part': part, 'swe-stream.pr': candidate.pr_id }, signal: env.signal });
        p.catch(() => undefined); // awaited (or released) below; never an unhandled rejection
        return p;
      };
      // The containers start at once, so later states' start-ups overlap the first state's runs.
      const pending: Record<'before' | 'after' | 'task', Promise<Sandbox> | null> = { before: nBefore > 0 ? make('before') : null, after: nAfter > 0 ? make('after') : null, task: wantImage ? make('task') : null };
      const taskCreate = pending.task;
      const take = (k: keyof typeof pending): Promise<Sandbox> | undefined => { const p = pending[k]; pending[k] = null; return p ?? undefined; };
      try {
        return await runAll(c, { t0, gold, nBefore, nAfter, take });
      } finally {
        for (const p of [pending.before, pending.after, taskCreate]) p?.then(destroyLater, () => undefined);
      }
    },
  };
}

/** The runs of one verification in order (before, after, release check) with early stops; then {@link conclude}. */
async function runAll(c: VerifyCtx, o: { t0: number; gold: NamedPatch; nBefore: number; nAfter: number; take: (k: 'before' | 'after' | 'task') => Promise<Sandbox> | undefined }): Promise<Outcome<TaskVerified>> {
  const { environment, candidate } = c.env.value;
  let tp = c.now();
  const before = o.nBefore > 0 ? (await runState(c, { patches: c.testPatches, n: o.nBefore, stop: () => false, sandbox: o.take('before') })).runs : [];
  c.phase.before_ms = c.now() - tp;
  if (before.some((r) => invalidInState('before', r) !== null)) return conclude(c, { before, after: [], release: null, t0: o.t0 });
  // Strip the task container's history while the after-fix runs go; it is committed only if the task can still verify.
  let taskSb: Sandbox | null = null;
  const t = o.take('task');
  const stripped = t?.then(async (sb) => {
    taskSb = sb;
    await stripToTask(sb, { workdir: environment.workdir, parentCommit: candidate.parent_commit, signal: c.env.signal });
  });
  stripped?.catch(() => undefined);
  tp = c.now();
  const after = o.nAfter > 0 ? (await runState(c, { patches: [...c.testPatches, o.gold], n: o.nAfter, stop: (runs) => !f2pStillPossible(before, runs), sandbox: o.take('after') })).runs : [];
  c.phase.after_ms = c.now() - tp;
  const provisional = gradeVerification(before, after);
  // An invalid run, no possible FAIL_TO_PASS, or a flaky one already decide: more runs cannot verify.
  const invalid = before.some((r) => invalidInState('before', r) !== null) || after.some((r) => invalidInState('after', r) !== null);
  const hopeless = invalid || (after.length > 0 && !f2pStillPossible(before, after))
    || (provisional.kind === 'rejected' && provisional.reason === 'flaky-f2p');
  if (!stripped || hopeless) return conclude(c, { before, after, release: null, t0: o.t0 });
  tp = c.now();
  await stripped;
  const lists = provisional.kind === 'verified' ? provisional : { FAIL_TO_PASS: [], PASS_TO_PASS: [] };
  const release = await releaseRuns(c, taskSb as unknown as Sandbox, lists);
  c.phase.release_ms = c.now() - tp;
  return conclude(c, { before, after, release, t0: o.t0 });
}
