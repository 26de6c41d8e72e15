/**
 * A TaskVerified built from a real PR excerpt (more-itertools/more-itertools #1200, "Raise for negative slice
 * sizes in sliced()"; diffs in test/unit/quality/fixtures), for statement and distill tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskVerified, TaskStated } from '../../../schemas/types.gen.js';
import type { Envelope } from '../../../streams/types.js';

const fx = (name: string) => readFileSync(join(import.meta.dirname, '..', '..', 'unit', 'quality', 'fixtures', name), 'utf8');

export const SLICED_PATCH = fx('mit-1200-sliced.patch.diff');
export const SLICED_TEST_PATCH = fx('mit-1200-sliced.test.diff');

export function slicedTask(over: { title?: string; body?: string; issues?: TaskVerified['candidate']['linked_issues']; taskImage?: string } = {}): TaskVerified {
  return {
    instance_id: 'more-itertools__more-itertools-1200',
    candidate: {
      pr_id: 'more-itertools/more-itertools#1200',
      repo: 'more-itertools/more-itertools',
      number: 1200,
      clone_url: 'https://github.com/more-itertools/more-itertools.git',
      language: 'python',
      pr_commit: 'c2859de0000000000000000000000000000000000',
      parent_commit: 'abcdef0000000000000000000000000000000000',
      head_sha: null,
      title: over.title ?? 'Raise for negative slice sizes in sliced()',
      body: over.body ?? '',
      user_login: 'someone',
      created_at: null,
      merged_at: null,
      linked_issues: over.issues ?? [],
      files: [],
      size: { files: 2, hunks: 2, lines_added: 12, lines_removed: 0 },
      diff: SLICED_PATCH + SLICED_TEST_PATCH,
      patch_hash: 'x',
      license: 'MIT',
      merge_style: null,
    },
    environment: {
      language: 'python',
      base_image: 'swe-stream/base-python',
      image_ref: 'swe-stream/env:mit',
      image_id: 'sha256:env',
      recipe_hash: 'r',
      workdir: '/testbed',
      install_commands: [],
      pre_commands: [],
      test_command: 'pytest -rA',
      runner: 'pytest',
      report_format: 'junit',
      package_manager: 'pip',
      node_version: null,
      python_version: '3.12',
      method: 'rules',
      cache_hit: false,
      build_ms: 1,
      tests_parsed: 10,
      build_log_tail: '', test_invocations: null, toolchain_source: null, install_notes: null, package_dirs: null,
    },
    tests: { gold_patch: SLICED_PATCH, test_patch: SLICED_TEST_PATCH, test_files: ['tests/test_more.py'], test_command: 'pytest -rA tests/test_more.py', f2p_script: null, f2p_script_path: null, method: 'pr-tests' },
    verification: {
      FAIL_TO_PASS: ['tests/test_more.py::SlicedTests::test_negative'],
      PASS_TO_PASS: ['tests/test_more.py::SlicedTests::test_even'],
      flaky: [],
      runs_before: 2,
      runs_after: 3,
      gold_resolved: true,
      empty_resolved: false,
      image_url: 'swe-stream/task:mit-1200@sha256:abc',
      task_image_ref: over.taskImage ?? 'swe-stream/task:mit-1200',
      workdir: '/testbed',
      pre_commands: [],
      eval_command: 'pytest -rA tests/test_more.py',
      tests_ms: 100,
      verify_ms: 1000,
    },
    provenance: [{ stage: 'verify', method: 'harness', model: null, prompt_version: null, image_digest: 'sha256:abc', duration_ms: 1000, tokens_in: 0, tokens_out: 0, cost_usd: 0 }],
  };
}

export function envelope<T>(value: T, signal: AbortSignal = new AbortController().signal): Envelope<T> {
  return { key: 'more-itertools/more-itertools#1200', value, origin: { topic: 't', partition: 0, offset: '0' }, attempt: 1, signal };
}

export function stated(task: TaskVerified, problem: string): TaskStated {
  return {
    ...task,
    statement: {
      problem_statement: problem,
      hints_text: '',
      source: 'issue',
      method: 'rules',
      model: null,
      prompt_version: null,
      leakage_score: 0,
      leakage_evidence: [],
      judge: null,
      category: 'Input/Boundary',
      category_method: 'rules',
      difficulty: { files: 1, hunks: 1, lines: 3, level: 'easy' },
    },
  };
}

export const CLEAN_ISSUE = {
  number: 1199,
  title: 'sliced() accepts a negative n',
  body: "`list(sliced('ABCDEFG', -1))` returns `[]` instead of complaining. A negative size makes no sense; I expect a `ValueError`, also with `strict=True`.",
  source: 'body',
};
