/**
 * The living dataset's orchestration (composition of the tables in connectors/dataset/store.ts with the
 * harness in operators/harness/): which released tasks are due for re-validation, and the pass that
 * re-validates them (`swe-stream revalidate`, `run --revalidate-every`). Each task's row is written as soon
 * as it is known, so an interrupted pass keeps what it did. See operators/harness/revalidate.ts for the
 * outcomes; `retire` outcomes exclude the task from later releases, and nothing is ever deleted.
 */
import type Docker from 'dockerode';
import type { ClickHouse } from '../connectors/sinks/connection.js';
import type { SandboxFactory } from '../operators/sandbox/types.js';
import type { EvalRow } from '../operators/harness/evaluate.js';
import { revalidateTask } from '../operators/harness/revalidate.js';
import { insertRows, listReleases, pushedImages, retiredTasks, sqlString, type RevalidationRow } from '../connectors/dataset/store.js';
import { logger } from '../streams/log.js';

const log = logger({ component: 'revalidate' });

/** Options of {@link revalidate}. Times epoch ms. */
export interface RevalidateOptions {
  sandboxes: SandboxFactory;
  /** the engine, to pull registry images that are not local */
  docker: Docker;
  /** rounds of gold + empty per task; default 3 */
  runs?: number;
  /** skip tasks re-validated (not as an infrastructure failure) at or after this time */
  since?: number;
  /** only these instance ids (`owner__name-N`); absent or empty: every due task */
  instances?: string[];
  /** only tasks of these repositories (`owner/name`); absent or empty: every due task */
  repos?: string[];
  /** limit of one test run, ms; default SANDBOX_DEFAULTS.testTimeoutMs (operators/sandbox/types.ts); commands pass `sandbox.testTimeoutMs` */
  timeoutMs?: number;
  signal?: AbortSignal;
  now?: () => number;
}

/** What one re-validation pass did. */
export interface RevalidateResult {
  tasks: number;
  byOutcome: Record<string, number>;
  rows: RevalidationRow[];
}

/**
 * The newest version's `columns` of each of `ids` in `tasks`. Aliases are prefixed: an alias named like a
 * column would be substituted into the other aggregates.
 */
async function latestColumns(ch: ClickHouse, ids: string[], columns: string[]): Promise<Array<Record<string, unknown>>> {
  const rows = await ch.rows<Record<string, unknown>>(`SELECT instance_id, ${columns.map((c) => `argMax(${c}, _version) AS r_${c}`).join(', ')}
    FROM ${ch.database}.tasks WHERE instance_id IN (${ids.map(sqlString).join(', ')}) GROUP BY instance_id ORDER BY instance_id`);
  return rows.map((r) => Object.fromEntries([['instance_id', r.instance_id], ...columns.map((c) => [c, r[`r_${c}`]])]));
}

/** The rows to re-validate: in a release, not retired, not re-validated since `since`, among `instances` and `repos` when given. */
async function dueTasks(ch: ClickHouse, o: { since?: number; asOf: number; instances?: string[]; repos?: string[] }): Promise<Array<EvalRow & { repo?: string }>> {
  const wanted = o.instances?.length ? new Set(o.instances) : null;
  const released = [...new Set((await listReleases(ch)).flatMap((r) => r.instance_ids))].filter((id) => !wanted || wanted.has(id));
  if (!released.length) return [];
  const retired = await retiredTasks(ch, o.asOf);
  const fresh = new Set(o.since === undefined ? [] : (await ch.rows<{ instance_id: string }>(`SELECT DISTINCT instance_id FROM ${ch.database}.revalidations FINAL
      WHERE outcome != 'infra-failure' AND started_ms >= ${Math.floor(o.since)}`)).map((r) => r.instance_id));
  const ids = released.filter((id) => !retired.has(id) && !fresh.has(id));
  if (!ids.length) return [];
  const images = await pushedImages(ch);
  const rows = (await latestColumns(ch, ids, ['repo', 'runner', 'test_patch', 'f2p_script', 'f2p_script_path', 'FAIL_TO_PASS', 'PASS_TO_PASS', 'image_url', 'task_image_ref', 'workdir', 'pre_commands', 'eval_command'])) as Array<{
    instance_id: string; repo: string; runner: string; test_patch: string; f2p_script: string | null; f2p_script_path: string | null; FAIL_TO_PASS: string[];
    PASS_TO_PASS: string[]; image_url: string; task_image_ref: string; workdir: string; pre_commands: string[]; eval_command: string }>;
  const repos = o.repos?.length ? new Set(o.repos) : null;
  return rows.filter((r) => !repos || repos.has(r.repo)).map((r) => ({
    instance_id: r.instance_id, repo: r.repo,
    environment: { runner: r.runner },
    tests: { test_patch: r.test_patch, f2p_script: r.f2p_script, f2p_script_path: r.f2p_script_path },
    verification: { FAIL_TO_PASS: r.FAIL_TO_PASS, PASS_TO_PASS: r.PASS_TO_PASS, image_url: images.get(r.instance_id)?.image_url ?? r.image_url, task_image_ref: r.task_image_ref, workdir: r.workdir, pre_commands: r.pre_commands, eval_command: r.eval_command },
  }));
}

/**
 * Re-validate the released tasks that are due (see the module comment). Each task's row is written as
 * soon as it is known, so an interrupted pass keeps what it did.
 * @throws ClickHouseStoreError; programming errors
 */
export async function revalidate(ch: ClickHouse, o: RevalidateOptions): Promise<RevalidateResult> {
  const now = o.now ?? Date.now;
  const due = await dueTasks(ch, { since: o.since, asOf: now(), instances: o.instances, repos: o.repos });
  const golds = new Map((due.length ? await latestColumns(ch, due.map((r) => r.instance_id), ['patch']) : []).map((r) => [String(r.instance_id), String(r.patch)]));
  const out: RevalidateResult = { tasks: 0, byOutcome: {}, rows: [] };
  for (const row of due) {
    if (o.signal?.aborted) break;
    const t = await revalidateTask({ row, goldPatch: golds.get(row.instance_id) ?? '', sandboxes: o.sandboxes, docker: o.docker, runs: o.runs, timeoutMs: o.timeoutMs, signal: o.signal, now: o.now });
    const r: RevalidationRow = { ...t, revalidation_id: `${t.instance_id}:${t.started_ms}`, repo: row.repo ?? '', retire: t.retire ? 1 : 0, ingested_ms: now() };
    await insertRows(ch, 'revalidations', [r]);
    log.info({ instance: r.instance_id, outcome: r.outcome, retire: r.retire, runs: r.runs }, 're-validated');
    out.tasks++;
    out.byOutcome[r.outcome] = (out.byOutcome[r.outcome] ?? 0) + 1;
    out.rows.push(r);
  }
  return out;
}
