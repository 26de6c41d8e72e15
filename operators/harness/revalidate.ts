/**
 * Re-validation of one released task (ARCHITECTURE.md §8 "living dataset"): `runs` rounds of the gold
 * patch and the empty patch, each in a fresh container from the task image (network off; pulled by
 * `image_url` when it is a registry reference), graded by {@link runInstance} — the code verify and a
 * user's evaluation run. Third-party 3× gold sweeps keep 87.7% of Scale-SWE and 70.6% of SWE-rebench V2
 * (issue 12): a released task can rot.
 *
 * Outcome:
 * - `infra-failure` — the image could not be pulled or a container could not start or run: recorded with
 *   the error, never retires the task (the next re-validation tries again);
 * - `flipped` — a FAIL_TO_PASS or PASS_TO_PASS test changed outcome between runs of the same patch;
 * - `not-resolving` — the gold patch did not resolve in some run;
 * - `resolves-empty` — the empty patch resolved in some run;
 * - `stable` — otherwise. The middle three retire the task from later releases.
 */
import type Docker from 'dockerode';
import type { SandboxFactory } from '../sandbox/types.js';
import { runInstance, type EvalRow, type InstanceResult } from './evaluate.js';
import { isRegistryRef, pullImage } from './task-image.js';
import { logger } from '../../streams/log.js';
import { RETIRING_OUTCOMES, type RevalidationOutcome } from '../../schemas/revalidation.js';

const log = logger({ component: 'revalidate' });


/** What one task's re-validation found. Times epoch ms; durations ms, one per test run (gold, empty, per round). */
export interface TaskRevalidation {
  instance_id: string;
  started_ms: number;
  runs: number;
  outcome: RevalidationOutcome;
  retire: boolean;
  detail: string;
  gold_resolved_runs: number;
  empty_resolved_runs: number;
  flipped_tests: string[];
  durations_ms: number[];
  image_url: string;
}

/** Options of {@link revalidateTask}. */
export interface RevalidateTaskOptions {
  row: EvalRow;
  goldPatch: string;
  sandboxes: SandboxFactory;
  /** the engine, to pull registry images that are not local */
  docker: Docker;
  /** rounds of gold + empty; default 3 */
  runs?: number;
  /** limit of one test run, ms; default SANDBOX_DEFAULTS.testTimeoutMs (operators/sandbox/types.ts) */
  timeoutMs?: number;
  signal?: AbortSignal;
  now?: () => number;
}

/** Tests whose pass/fail differs between results of the same patch. */
export function flippedTests(results: InstanceResult[]): string[] {
  const seen = new Map<string, Set<boolean>>();
  for (const r of results) {
    if (!r.tests) continue;
    for (const list of [r.tests.FAIL_TO_PASS, r.tests.PASS_TO_PASS]) {
      for (const t of list.success) seen.set(t, (seen.get(t) ?? new Set()).add(true));
      for (const t of list.failure) seen.set(t, (seen.get(t) ?? new Set()).add(false));
    }
  }
  return [...seen].filter(([, s]) => s.size > 1).map(([t]) => t).sort();
}

/** Classify a task's rounds (see the module comment). */
export function classify(gold: InstanceResult[], empty: InstanceResult[]): { outcome: RevalidationOutcome; detail: string; flipped: string[] } {
  const flipped = [...new Set([...flippedTests(gold), ...flippedTests(empty)])].sort();
  const goldOk = gold.filter((r) => r.resolved).length;
  const emptyOk = empty.filter((r) => r.resolved).length;
  if (flipped.length) return { outcome: 'flipped', detail: `tests changed outcome between runs: ${flipped.slice(0, 5).join(', ')}${flipped.length > 5 ? ', …' : ''}`, flipped };
  if (goldOk < gold.length) {
    const bad = gold.find((r) => !r.resolved)!;
    const why = bad.reason ?? `failing: ${[...(bad.tests?.FAIL_TO_PASS.failure ?? []), ...(bad.tests?.PASS_TO_PASS.failure ?? [])].slice(0, 5).join(', ')}`;
    return { outcome: 'not-resolving', detail: `gold patch resolved in ${goldOk} of ${gold.length} runs (${why}${bad.detail ? `: ${bad.detail.slice(-300)}` : ''})`, flipped };
  }
  if (emptyOk > 0) return { outcome: 'resolves-empty', detail: `empty patch resolved in ${emptyOk} of ${empty.length} runs`, flipped };
  return { outcome: 'stable', detail: `gold resolved and empty not in all ${gold.length} runs`, flipped };
}

/**
 * Re-validate one task: pull, then `runs` rounds of gold and empty in fresh containers.
 * @throws programming errors (TypeError, RangeError, ReferenceError, SyntaxError) and aborts; every other
 *         failure is an `infra-failure` outcome
 */
export async function revalidateTask(o: RevalidateTaskOptions): Promise<TaskRevalidation> {
  const { row } = o;
  const now = o.now ?? Date.now;
  const started = now();
  const runs = Math.max(1, o.runs ?? 3);
  const gold: InstanceResult[] = [];
  const empty: InstanceResult[] = [];
  const durations: number[] = [];
  const base = { instance_id: row.instance_id, started_ms: started, runs, image_url: row.verification.image_url };
  try {
    if (isRegistryRef(row.verification.image_url)) await pullImage(o.docker, row.verification.image_url);
    for (let i = 0; i < runs; i++) {
      for (const [patch, into] of [[o.goldPatch, gold], ['', empty]] as const) {
        const { result } = await runInstance({ row, modelPatch: patch, sandboxes: o.sandboxes, timeoutMs: o.timeoutMs, signal: o.signal });
        into.push(result);
        durations.push(result.testsMs ?? 0);
      }
    }
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError) throw e;
    if (o.signal?.aborted) throw e;
    const err = e as Error;
    log.warn({ instance: row.instance_id, err: err.message }, 're-validation could not run: infrastructure failure');
    return { ...base, outcome: 'infra-failure', retire: false, detail: `${err.name}: ${err.message}`.slice(0, 2000), gold_resolved_runs: gold.filter((r) => r.resolved).length, empty_resolved_runs: empty.filter((r) => r.resolved).length, flipped_tests: [], durations_ms: durations };
  }
  const c = classify(gold, empty);
  return { ...base, outcome: c.outcome, retire: RETIRING_OUTCOMES.includes(c.outcome), detail: c.detail, gold_resolved_runs: gold.filter((r) => r.resolved).length, empty_resolved_runs: empty.filter((r) => r.resolved).length, flipped_tests: c.flipped, durations_ms: durations };
}

