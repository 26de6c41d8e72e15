/**
 * Evaluation of model patches on our rows (`swe-stream evaluate --predictions FILE`), with SWE-bench's
 * harness semantics (swebench/harness/run_evaluation.py + grading.py): start the task image with the
 * network off, apply the row's test patch (or write its f2p_script), apply the model patch (`git apply`,
 * then `patch --fuzz=5`), run the row's eval command, parse with the row's runner, and call the instance
 * resolved when every FAIL_TO_PASS and PASS_TO_PASS test passes ({@link gradeEvaluation}). The verify
 * stage's release check calls {@link evaluateInstance} too, so rows are checked by the code users run.
 *
 * Predictions file: SWE-bench's format — a JSON array or JSON lines of
 * `{ instance_id, model_patch, model_name_or_path? }`.
 */
import { readFile } from 'node:fs/promises';
import type { Environment, TaskStated, TaskVerified, TestSpec, Verification } from '../../schemas/types.gen.js';
import { StageError } from '../../streams/types.js';
import { SANDBOX_DEFAULTS, type Sandbox, type SandboxFactory } from '../sandbox/types.js';
import { gradeEvaluation, type EvalReport } from './grading.js';
import { getRunner } from '../runners/index.js';
import { destroyLater, runOnce, SCRATCH, type NamedPatch, type RunEvidence } from './runs.js';
import { runnableImage } from './task-image.js';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'evaluate' });

/** One prediction in SWE-bench's format. */
export interface Prediction {
  instance_id: string;
  model_patch: string | null;
  model_name_or_path?: string;
}

/** The parts of a TaskVerified / TaskStated row evaluation needs. */
export interface EvalRow {
  instance_id: string;
  environment: Pick<Environment, 'runner'>;
  tests: Pick<TestSpec, 'test_patch' | 'f2p_script' | 'f2p_script_path'>;
  verification: Pick<Verification, 'FAIL_TO_PASS' | 'PASS_TO_PASS' | 'image_url' | 'task_image_ref' | 'workdir' | 'pre_commands' | 'eval_command'>;
}

/** Why an instance was not graded on its tests. */
export type EvalFailReason = 'unknown-instance' | 'empty-patch' | 'patch-does-not-apply' | 'test-patch-does-not-apply' | 'timeout' | 'error';

/** Outcome of one instance. */
export interface InstanceResult {
  instance_id: string;
  resolved: boolean;
  reason?: EvalFailReason;
  /** per-list success/failure, when the tests ran */
  tests?: Pick<EvalReport, 'FAIL_TO_PASS' | 'PASS_TO_PASS'>;
  /** the test command's wall time, ms */
  testsMs?: number;
  /** a short explanation (patch tool output, error message) */
  detail?: string;
}

export interface EvaluateInstanceOptions {
  row: EvalRow;
  modelPatch: string;
  sandboxes: SandboxFactory;
  /** limit of the test run, ms; default {@link SANDBOX_DEFAULTS}.testTimeoutMs */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Run in this container instead of a fresh one. It must be in the task image's state (the verify stage
   * passes the container it just committed as the task image); the caller owns and removes it.
   */
  sandbox?: Sandbox;
  /** reset the work tree first (harness `resetCheckout`), for a second run in `sandbox` */
  reset?: boolean;
}

/** An instance's result with the run behind it (verify counts the release check's runs as evidence). */
export interface InstanceRun {
  result: InstanceResult;
  /** the graded run; null when the instance had no run (see {@link evaluateInstance}) */
  run: RunEvidence | null;
}

/**
 * Run one patch on one row in a fresh container of the row's task image (or `opts.sandbox`) and grade
 * it, keeping the run's evidence.
 * Never throws for patch or test outcomes; throws SandboxError/StageError for engine failures.
 */
export async function runInstance(opts: EvaluateInstanceOptions): Promise<InstanceRun> {
  const { row } = opts;
  const v = row.verification;
  const runner = getRunner(row.environment.runner);
  const image = runnableImage(v.image_url, v.task_image_ref);
  if (!image && !opts.sandbox) throw new StageError(`row ${row.instance_id} has no task image`, { retriable: false, name: 'NoTaskImage' });
  const sb = opts.sandbox ?? (await opts.sandboxes.create({ image, network: false, workdir: v.workdir, labels: { 'swe-stream.stage': 'evaluate', 'swe-stream.instance': row.instance_id }, signal: opts.signal }));
  try {
    await sb.exec(`mkdir -p ${SCRATCH}`, { timeoutMs: 60_000 });
    const patches: NamedPatch[] = [];
    if (row.tests.test_patch.trim()) patches.push({ name: 'test', text: row.tests.test_patch });
    patches.push({ name: 'model', text: opts.modelPatch });
    const files = row.tests.f2p_script && row.tests.f2p_script_path ? [{ path: row.tests.f2p_script_path, content: row.tests.f2p_script }] : [];
    const run = await runOnce(sb, { workdir: v.workdir, preCommands: v.pre_commands, testCommand: v.eval_command, runner, patches, files, timeoutMs: opts.timeoutMs ?? SANDBOX_DEFAULTS.testTimeoutMs, signal: opts.signal }, { reset: opts.reset });
    if (!run.patchApplied) {
      const which = run.applyError?.startsWith('test:') ? 'test-patch-does-not-apply' : 'patch-does-not-apply';
      return { run, result: { instance_id: row.instance_id, resolved: false, reason: which, detail: run.applyError?.slice(-500) } };
    }
    const g = gradeEvaluation(v, run);
    const out: InstanceResult = { instance_id: row.instance_id, resolved: g.resolved, tests: { FAIL_TO_PASS: g.FAIL_TO_PASS, PASS_TO_PASS: g.PASS_TO_PASS }, testsMs: run.durationMs };
    if (g.invalid === 'timeout') out.reason = 'timeout';
    return { run, result: out };
  } finally {
    if (!opts.sandbox) destroyLater(sb);
  }
}

/**
 * Evaluate one patch on one row (see {@link runInstance}).
 * Never throws for patch or test outcomes; throws SandboxError/StageError for engine failures.
 */
export async function evaluateInstance(opts: EvaluateInstanceOptions): Promise<InstanceResult> {
  return (await runInstance(opts)).result;
}

export interface EvaluateOptions {
  predictions: Prediction[];
  rows: (TaskVerified | TaskStated | EvalRow)[];
  sandboxes: SandboxFactory;
  /** limit of one test run, ms; default {@link SANDBOX_DEFAULTS}.testTimeoutMs */
  timeoutMs?: number;
  /** instances evaluated at once; default 1 */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * Evaluate predictions against rows. An empty patch is not run and counts as not resolved (SWE-bench's
 * `empty_patch_instances`); a prediction for an unknown instance is reported, not thrown; an engine
 * failure on one instance is reported as reason `error` and the others go on.
 * @returns one result per prediction, in input order
 */
export async function evaluate(opts: EvaluateOptions): Promise<InstanceResult[]> {
  const byId = new Map(opts.rows.map((r) => [r.instance_id, r as EvalRow]));
  const results: InstanceResult[] = new Array(opts.predictions.length);
  let next = 0;
  const worker = async () => {
    while (next < opts.predictions.length) {
      const i = next++;
      const p = opts.predictions[i]!;
      const row = byId.get(p.instance_id);
      if (!row) { results[i] = { instance_id: p.instance_id, resolved: false, reason: 'unknown-instance' }; continue; }
      if (!p.model_patch || !p.model_patch.trim()) { results[i] = { instance_id: p.instance_id, resolved: false, reason: 'empty-patch' }; continue; }
      try {
        results[i] = await evaluateInstance({ row, modelPatch: p.model_patch, sandboxes: opts.sandboxes, timeoutMs: opts.timeoutMs, signal: opts.signal });
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        log.error({ instance: p.instance_id, err: (e as Error).message }, 'evaluation failed');
        results[i] = { instance_id: p.instance_id, resolved: false, reason: 'error', detail: (e as Error).message };
      }
      log.info({ instance: p.instance_id, resolved: results[i]!.resolved, reason: results[i]!.reason }, 'evaluated');
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
  return results;
}

/**
 * Read predictions: a JSON array, a single JSON object, or JSON lines.
 * @throws StageError (retriable=false) on malformed input or an entry without instance_id
 */
export function parsePredictions(text: string): Prediction[] {
  const t = text.trim();
  let items: unknown[];
  try {
    if (t.startsWith('[')) items = JSON.parse(t) as unknown[];
    else if (t === '') items = [];
    else items = t.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown);
  } catch (e) {
    throw new StageError(`predictions are neither a JSON array nor JSON lines: ${(e as Error).message}`, { retriable: false, name: 'BadPredictions' });
  }
  return items.map((x, i) => {
    const o = x as Partial<Prediction>;
    if (!o || typeof o.instance_id !== 'string') throw new StageError(`prediction ${i} has no instance_id`, { retriable: false, name: 'BadPredictions' });
    return { instance_id: o.instance_id, model_patch: typeof o.model_patch === 'string' ? o.model_patch : null, model_name_or_path: o.model_name_or_path };
  });
}

/** The JSON report of an evaluation, shaped like SWE-bench's run report plus per-instance details. */
export interface EvaluationReport {
  total_instances: number;
  submitted_instances: number;
  completed_instances: number;
  resolved_instances: number;
  unresolved_instances: number;
  empty_patch_instances: number;
  error_instances: number;
  resolved_ids: string[];
  unresolved_ids: string[];
  empty_patch_ids: string[];
  error_ids: string[];
  results: InstanceResult[];
}

/** Summarise results as {@link EvaluationReport}. `total` = rows available. */
export function summarizeEvaluation(results: InstanceResult[], total: number): EvaluationReport {
  const ids = (f: (r: InstanceResult) => boolean) => results.filter(f).map((r) => r.instance_id).sort();
  const errored = (r: InstanceResult) => r.reason === 'error' || r.reason === 'unknown-instance' || r.reason === 'test-patch-does-not-apply';
  const resolved = ids((r) => r.resolved);
  const empty = ids((r) => r.reason === 'empty-patch');
  const error = ids(errored);
  const unresolved = ids((r) => !r.resolved && r.reason !== 'empty-patch' && !errored(r));
  return {
    total_instances: total,
    submitted_instances: results.length,
    completed_instances: resolved.length + unresolved.length,
    resolved_instances: resolved.length,
    unresolved_instances: unresolved.length,
    empty_patch_instances: empty.length,
    error_instances: error.length,
    resolved_ids: resolved,
    unresolved_ids: unresolved,
    empty_patch_ids: empty,
    error_ids: error,
    results,
  };
}

/**
 * `swe-stream evaluate --predictions FILE`: read the predictions file, evaluate against `rows`, return
 * the report (the CLI prints it as JSON).
 * @throws StageError (retriable=false) when the file cannot be read or parsed
 */
export async function evaluatePredictionsFile(path: string, rows: (TaskVerified | TaskStated | EvalRow)[], opts: Omit<EvaluateOptions, 'predictions' | 'rows'>): Promise<EvaluationReport> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new StageError(`cannot read predictions ${path}: ${(e as Error).message}`, { retriable: false, name: 'BadPredictions', cause: e });
  }
  const results = await evaluate({ ...opts, predictions: parsePredictions(text), rows });
  return summarizeEvaluation(results, rows.length);
}
