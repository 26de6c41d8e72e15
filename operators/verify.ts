/**
 * Stage verify (tests.ready → tasks.verified): FAIL_TO_PASS / PASS_TO_PASS proven by execution
 * (ARCHITECTURE.md §6; SWE-bench's validation, with SWE-bench-Live's reruns).
 *
 * - before = parent + test patch, `runsBefore` (2) runs; after = parent + test patch + gold patch,
 *   `runsAfter` (3) runs. Each state gets its own fresh container from the environment image with the
 *   network off, so nothing one state writes can reach the other; inside a state, reruns share the
 *   container and the work tree is reset between them (harness `resetCheckout`: tracked files to the
 *   parent, every new untracked/ignored path removed, installs kept), which keeps the stage's wall time
 *   close to the tests' own. To the same end all containers are started at once (their start-up overlaps
 *   the before runs), the task container is stripped while the after runs go, and containers are
 *   removed in the background.
 * - Only the selected test files run (TestSpec.test_command), reporter explicit, text log kept.
 * - Statuses are combined by operators/harness/grading.ts; rejections: `patch-does-not-apply`, `timeout`,
 *   `invalid-run`, `flaky-f2p`, `pass-to-fail`, `no-f2p`, and `release-check` when the task image does
 *   not grade gold → resolved, empty → not resolved.
 * - Early stop: once no test can still become FAIL_TO_PASS (none failed in every before run and passed
 *   in every after run so far) the remaining runs are skipped and the task is rejected (`no-f2p`, or
 *   `pass-to-fail` when the runs so far show one); an invalid run (patch, timeout, nothing parsed) ends
 *   verification at once, since any invalid run rejects.
 * - Then the task container is committed as the task image (operators/harness/task-image.ts) and the release
 *   check runs in that same container — the image's exact state — through operators/harness/evaluate.ts
 *   `evaluateInstance`, the code a user's evaluation runs.
 */
import type { Provenance, TaskVerified, TestsReady, Verification } from '../schemas/types.gen.js';
import type { Stage } from '../streams/stage.js';
import { accept, reject } from '../streams/types.js';
import type { Envelope, Outcome, OutcomeMeta } from '../streams/types.js';
import type { Sandbox, SandboxFactory } from './sandbox/types.js';
import { gradeVerification, invalidReason, isFail, isPass, releaseCheck, type RunRecord } from './harness/grading.js';
import { getRunner, type Runner } from './runners/index.js';
import { destroyLater, prepareCheckout, resetCheckout, runRepeated, type NamedPatch, type RunEvidence, type WorkFile } from './harness/runs.js';
import { commitTaskImage, stripToTask } from './harness/task-image.js';
import { evaluateInstance } from './harness/evaluate.js';
import { logger } from '../streams/log.js';

const log = logger({ component: 'verify' });

/** SWE-bench instance id `owner__repo-N` from `owner/repo` and the PR number. */
export function instanceId(repo: string, number: number): string {
  return `${repo.replace('/', '__')}-${number}`;
}

export interface VerifyDeps {
  sandboxes: SandboxFactory;
  /** limit of one test run, ms; default 900 000 (15 min) */
  runTimeoutMs?: number;
  /** default 2 */
  runsBefore?: number;
  /** default 3 */
  runsAfter?: number;
  /** build the task image and run the release check in it (default true); false grades the release check on the verification runs (tests only) */
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

/** One state's runs (see {@link runRepeated}), in `sandbox` when one was started ahead of time. */
function runState(deps: VerifyDeps, v: TestsReady, runner: Runner, patches: NamedPatch[], files: WorkFile[], n: number, signal: AbortSignal, stop: (runs: RunEvidence[]) => boolean, sandbox?: Promise<Sandbox>): Promise<StateRuns> {
  const { environment, candidate } = v;
  return runRepeated({
    sandboxes: deps.sandboxes, image: environment.image_id || environment.image_ref, commit: candidate.parent_commit, workdir: environment.workdir,
    preCommands: environment.pre_commands, testCommand: v.tests.test_command, runner, patches, files, n, timeoutMs: deps.runTimeoutMs ?? 900_000,
    labels: { 'swe-stream.stage': 'verify', 'swe-stream.pr': candidate.pr_id }, signal, stop, sandbox,
  });
}

/** The last lines of a run's log, for rejection details. */
function tail(text: string, n = 600): string {
  return text.length > n ? '…' + text.slice(-n) : text;
}

/**
 * The verify stage.
 * @returns accepted TaskVerified; rejected with a reason code (see the module comment); failed with a
 *          StageError when the environment image is unusable (non-retriable) or the engine fails.
 */
export function verifyStage(deps: VerifyDeps): Stage<TestsReady, TaskVerified> {
  const now = deps.now ?? Date.now;
  const nBefore = deps.runsBefore ?? 2;
  const nAfter = deps.runsAfter ?? 3;
  return {
    name: 'verify',
    async handle(env: Envelope<TestsReady>): Promise<Outcome<TaskVerified>> {
      const t0 = now();
      const v = env.value;
      const { candidate, environment, tests } = v;
      const meta: OutcomeMeta = { repo: candidate.repo, language: candidate.language, method: 'harness' };
      const id = instanceId(candidate.repo, candidate.number);
      const runner = getRunner(environment.runner);
      const { patches: testPatches, files } = testInputs(tests);
      const gold: NamedPatch = { name: 'gold', text: tests.gold_patch };

      // The three containers start at once, so the second state's and the task image's container starts
      // overlap the first state's runs instead of adding to the stage's wall time.
      const image = environment.image_id || environment.image_ref;
      const wantImage = deps.taskImage ?? true;
      const make = (stage: string) => {
        const p = deps.sandboxes.create({ image, network: false, workdir: environment.workdir, labels: { 'swe-stream.stage': 'verify', 'swe-stream.part': stage, 'swe-stream.pr': candidate.pr_id }, signal: env.signal });
        p.catch(() => undefined); // awaited (or released) below; never an unhandled rejection
        return p;
      };
      const pending: Record<'before' | 'after' | 'task', Promise<Sandbox> | null> = { before: make('before'), after: make('after'), task: wantImage ? make('task') : null };
      /** Hand a pending container to its user (who then removes it); what is never taken is removed in `finally`. */
      const take = (k: keyof typeof pending): Promise<Sandbox> | undefined => {
        const p = pending[k];
        pending[k] = null;
        return p ?? undefined;
      };
      const release = (p: Promise<Sandbox> | null) => { p?.then(destroyLater, () => undefined); };
      let taskSb: Sandbox | null = null;
      const taskCreate = pending.task;
      try {
        const phase: Record<string, number> = {};
        let tp = now();
        const before = await runState(deps, v, runner, testPatches, files, nBefore, env.signal, () => false, take('before'));
        phase.before_ms = now() - tp;
        const early = before.runs.find((r) => invalidReason(r) !== null);
        let after: StateRuns = { runs: [], ms: 0 };
        let stripped: Promise<void> | null = null;
        if (!early) {
          // Strip the task container's history while the after-fix runs go; it is committed only if the task verifies.
          const t = take('task');
          if (t) {
            stripped = t.then(async (sb) => {
              taskSb = sb;
              await stripToTask(sb, { workdir: environment.workdir, parentCommit: candidate.parent_commit, signal: env.signal });
            });
            stripped.catch(() => undefined);
          }
          tp = now();
          after = await runState(deps, v, runner, [...testPatches, gold], files, nAfter, env.signal, (runs) => !f2pStillPossible(before.runs, runs), take('after'));
          phase.after_ms = now() - tp;
        }
        const testsMs = [...before.runs, ...after.runs].reduce((s, r) => s + (r.durationMs ?? 0), 0);
        const summary = { pr: candidate.pr_id, before: before.runs.map((r) => r.results.length), after: after.runs.map((r) => r.results.length), testsMs, ...phase };

        let grade = gradeVerification(before.runs, after.runs);
        // Stopped early (see above): fewer runs than required can never verify.
        if (grade.kind === 'verified' && (after.runs.length < nAfter || before.runs.length < nBefore)) grade = { kind: 'rejected', reason: 'no-f2p', detail: 'no test can fail before and pass after', flaky: grade.flaky };
        if (grade.kind === 'rejected') {
          const bad = [...before.runs, ...after.runs].find((r) => invalidReason(r) !== null);
          const detail = grade.detail + (bad ? ` | ${bad.applyError ?? tail(bad.log)}` : '');
          log.info({ ...summary, wallMs: now() - t0, reason: grade.reason }, 'verify rejected');
          return reject(grade.reason, detail, meta);
        }

        // Task image and release check, graded by evaluate's code in the very container committed as the task image.
        let imageUrl = '';
        let taskRef = '';
        let goldResolved: boolean;
        let emptyResolved: boolean;
        let releaseMs = 0;
        const verification0 = { FAIL_TO_PASS: grade.FAIL_TO_PASS, PASS_TO_PASS: grade.PASS_TO_PASS };
        if (stripped) {
          tp = now();
          await stripped;
          const sb = taskSb as unknown as Sandbox;
          const img = await commitTaskImage(sb, { prefix: deps.taskImagePrefix, instanceId: id, parentCommit: candidate.parent_commit });
          phase.image_ms = now() - tp;
          imageUrl = img.imageUrl;
          taskRef = img.ref;
          const row = { instance_id: id, environment, tests, verification: { ...verification0, image_url: imageUrl, task_image_ref: taskRef, workdir: environment.workdir, pre_commands: environment.pre_commands, eval_command: tests.test_command } };
          tp = now();
          // The committed container is the task image's state; prepare records it (outside the image) for the reset.
          await prepareCheckout(sb, environment.workdir, candidate.parent_commit, env.signal);
          const g = await evaluateInstance({ row, modelPatch: tests.gold_patch, sandboxes: deps.sandboxes, timeoutMs: deps.runTimeoutMs, signal: env.signal, sandbox: sb });
          await resetCheckout(sb, environment.workdir, env.signal);
          const e = await evaluateInstance({ row, modelPatch: '', sandboxes: deps.sandboxes, timeoutMs: deps.runTimeoutMs, signal: env.signal, sandbox: sb });
          phase.release_ms = now() - tp;
          goldResolved = g.resolved;
          emptyResolved = e.resolved;
          releaseMs = (g.testsMs ?? 0) + (e.testsMs ?? 0);
        } else {
          const rc = releaseCheck(verification0, after.runs[0]!, before.runs[0]!);
          goldResolved = rc.gold_resolved;
          emptyResolved = rc.empty_resolved;
        }
        if (!goldResolved || emptyResolved) {
          log.info({ ...summary, goldResolved, emptyResolved }, 'release check failed');
          return reject('release-check', `gold patch resolved=${goldResolved}, empty patch resolved=${emptyResolved}`, meta);
        }

        const verifyMs = now() - t0;
        const verification: Verification = {
          FAIL_TO_PASS: grade.FAIL_TO_PASS,
          PASS_TO_PASS: grade.PASS_TO_PASS,
          flaky: grade.flaky.map((f) => ({ name: f.name, state: f.state, flake_rate: f.flake_rate })),
          runs_before: before.runs.length,
          runs_after: after.runs.length,
          gold_resolved: goldResolved,
          empty_resolved: emptyResolved,
          image_url: imageUrl,
          task_image_ref: taskRef,
          workdir: environment.workdir,
          pre_commands: environment.pre_commands,
          eval_command: tests.test_command,
          tests_ms: testsMs + releaseMs,
          verify_ms: verifyMs,
        };
        const provenance: Provenance = { stage: 'verify', method: 'harness', model: null, prompt_version: null, image_digest: imageUrl ? imageUrl.slice(imageUrl.lastIndexOf('@') + 1) : environment.image_id, duration_ms: verifyMs, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
        log.info({ ...summary, f2p: grade.FAIL_TO_PASS.length, p2p: grade.PASS_TO_PASS.length, flaky: grade.flaky.length, verifyMs }, 'verified');
        return accept({ instance_id: id, candidate, environment, tests, verification, provenance: [...v.provenance, provenance] }, meta);
      } finally {
        release(pending.before);
        release(pending.after);
        // The task container, whether stripping finished or not (destroy is idempotent; its image, if committed, stays).
        release(taskCreate);
      }
    },
  };
}
