/**
 * Record builders for the sink and analytics tests: valid StageOutcome / TaskVerified / TaskStated /
 * Trajectory records (schemas/*.avsc) with overridable fields.
 */
import type { StageOutcome, TaskStated, TaskVerified, Trajectory, Statement } from '../../../schemas/types.gen.js';

/** A StageOutcome; `outcome_id` defaults to `${stage}:${key}`. */
export function outcome(p: Partial<StageOutcome> & { stage: string; key: string; kind: string }): StageOutcome {
  return {
    outcome_id: `${p.stage}:${p.key}`, reason: null, detail: null, error_class: null, retriable: null, attempts: 1,
    input_topic: 'pr.events', input_partition: 0, input_offset: '0', output_topic: null, ts_ms: Date.UTC(2026, 0, 5, 12), duration_ms: 10,
    repo: p.key.split('#')[0] ?? null, language: 'python', method: 'rules', model: null, cache_hit: null, tokens_in: 0, tokens_out: 0, cost_usd: 0,
    ...p,
  };
}

/** A TaskVerified for `owner/repo#n`, release check passed unless overridden. */
export function verified(repo: string, n: number, over: { gold_resolved?: boolean; empty_resolved?: boolean; created_at?: string; language?: string } = {}): TaskVerified {
  const pr_id = `${repo}#${n}`;
  const instance_id = `${repo.replace('/', '__')}-${n}`;
  return {
    instance_id,
    candidate: {
      pr_id, repo, number: n, clone_url: `https://github.com/${repo}.git`, language: over.language ?? 'python',
      pr_commit: `c${n}`.padEnd(40, 'a'), parent_commit: `p${n}`.padEnd(40, 'b'), head_sha: null,
      title: `Fix bug ${n}`, body: `Body with "quotes" and \\ backslash and ünïcødé ${n}`, user_login: 'alice',
      created_at: over.created_at ?? '2026-01-04T10:00:00Z', merged_at: '2026-01-05T10:00:00Z', linked_issues: [],
      files: [{ path: 'src/a.py', old_path: null, kind: 'code', status: 'modified', additions: 3, deletions: 1, hunks: 1, binary: false, vendored: false }],
      size: { files: 2, hunks: 2, lines_added: 5, lines_removed: 1 },
      diff: 'diff --git a/src/a.py b/src/a.py\n', patch_hash: `h${n}`, license: 'MIT', merge_style: null,
    },
    environment: {
      language: 'python', base_image: 'swe-stream/base:py', image_ref: `swe-stream/env:${n}`, image_id: `sha256:${'e'.repeat(64)}`,
      recipe_hash: 'r1', workdir: '/testbed', install_commands: ['pip install -e .'], pre_commands: [], test_command: 'pytest -rA',
      runner: 'pytest', report_format: 'junit', package_manager: 'pip', node_version: null, python_version: '3.11', method: 'rules',
      cache_hit: n % 2 === 0, build_ms: 1200, tests_parsed: 10, build_log_tail: '', test_invocations: null, toolchain_source: null, install_notes: null, package_dirs: null,
    },
    tests: {
      gold_patch: `--- a/src/a.py\n+++ b/src/a.py\n@@ -1 +1 @@\n-x = ${n}\n+x = ${n + 1}\n`, test_patch: `--- a/tests/test_a.py\n+++ b/tests/test_a.py\n`,
      test_files: ['tests/test_a.py'], test_command: 'pytest -rA tests/test_a.py', f2p_script: null, f2p_script_path: null, method: 'pr-tests',
    },
    verification: {
      FAIL_TO_PASS: [`tests/test_a.py::test_fix_${n}`], PASS_TO_PASS: ['tests/test_a.py::test_ok', 'tests/test_a.py::test "quoted"'],
      flaky: [{ name: 'tests/test_a.py::test_slow', state: 'after', flake_rate: 0.25 }], runs_before: 2, runs_after: 3,
      gold_resolved: over.gold_resolved ?? true, empty_resolved: over.empty_resolved ?? false,
      image_url: `swe-stream/task:${n}@sha256:${'f'.repeat(64)}`, task_image_ref: `swe-stream/task:${n}`, workdir: '/testbed',
      pre_commands: ['cd /testbed'], eval_command: 'pytest -rA tests/test_a.py', tests_ms: 900, verify_ms: 5000,
    },
    provenance: [
      { stage: 'env-build', method: 'rules', model: null, prompt_version: null, image_digest: null, duration_ms: 1200, tokens_in: 0, tokens_out: 0, cost_usd: 0 },
      { stage: 'verify', method: 'harness', model: null, prompt_version: null, image_digest: null, duration_ms: 5000, tokens_in: 0, tokens_out: 0, cost_usd: 0 },
    ],
  };
}

/** The TaskStated that follows `v`, with a category. */
export function stated(v: TaskVerified, category = 'Logic Error', over: Partial<Statement> = {}): TaskStated {
  return {
    ...v,
    statement: {
      problem_statement: `Problem for ${v.instance_id}: calling f() returns the wrong value.`, hints_text: '', source: 'issue', method: 'agent',
      model: 'gpt-test', prompt_version: 'v1', leakage_score: 0.1, leakage_evidence: [], judge: null, category, category_method: 'rules',
      difficulty: { files: 2, hunks: 2, lines: 6, level: 'easy' },
      ...over,
    },
    provenance: [...v.provenance, { stage: 'statement', method: 'agent', model: 'gpt-test', prompt_version: 'v1', image_digest: null, duration_ms: 800, tokens_in: 1000, tokens_out: 200, cost_usd: 0.0125 }],
  };
}

/** A Trajectory for an instance. */
export function trajectory(instance_id: string, attempt: number): Trajectory {
  return {
    trajectory_id: `${instance_id}:m:${attempt}`, instance_id, pr_id: instance_id, attempt, model: 'm', prompt_version: 'v1',
    messages_json: JSON.stringify([{ role: 'user', content: 'fix it' }]), final_patch: '', exit_status: 'submitted', resolved: attempt % 2 === 0,
    steps: 3, tokens_in: 100, tokens_out: 20, cost_usd: 0.001, duration_ms: 3000,
  };
}
