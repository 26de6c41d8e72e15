/**
 * Stage test-create (env.ready → tests.ready): the tests that pin the change.
 *
 * Rules path (ARCHITECTURE.md §1): split the PR's diff into the test patch (files the filter classified as
 * tests → SWE-bench `test_patch` / Scale-SWE `f2p_patch`) and the gold code patch (everything else →
 * `patch`), and build the command that runs only the changed test files with the environment's runner
 * and an explicit reporter (the whole suite when the PR changes only test helpers or fixtures).
 *
 * Agent path (Scale-SWE's Unit-test Creator, operators/test-creator-agent.ts): when the PR changes no
 * test and an LLM is configured, an agent writes `f2p_script`; see {@link TestCreateDeps.createTest}.
 *
 * Rejections: `no-tests` (no test change and no agent), `no-code-change` (the PR changes only tests, so
 * nothing can go from failing to passing), `generated-test-rejected` (the agent's test failed the harness).
 */
import type { Candidate, EnvironmentReady, Provenance, TestSpec, TestsReady } from '../schemas/types.gen.js';
import type { Stage } from '../streams/stage.js';
import { accept, reject } from '../streams/types.js';
import type { Envelope, Outcome } from '../streams/types.js';
import { joinDiff, parseDiff, type FileDiff } from './patch.js';
import { getRunner, type Runner } from './runners/index.js';
import { REPORT_PATH } from './runners/harness.js';
import { logger } from '../streams/log.js';

const log = logger({ component: 'test-create' });

/** Result of splitting a PR's diff. */
export interface SplitPatch {
  /** the test part (git-apply-able; '' when the PR changes no test) */
  testPatch: string;
  /** the code part (git-apply-able; '' when the PR changes only tests) */
  goldPatch: string;
  /** repository paths of the test patch */
  testPaths: string[];
  /** test files the runner would run (added or modified, not deleted) */
  testFiles: string[];
  /** binary files left out of both patches: a unified diff cannot carry their content */
  binaryDropped: string[];
}

/** Directory and name conventions for tests, used when the candidate's file list does not classify a path. */
const TEST_PATH_RE = /(^|\/)(tests?|__tests__|spec|specs|testing)\/|(^|\/)(test_[^/]*\.py|[^/]*_test\.py|conftest\.py|[^/]*\.(test|spec)\.[cm]?[jt]sx?)$/;

/**
 * Whether a changed path belongs to the test patch: the filter's classification (`ChangedFile.kind ===
 * 'test'`) when the candidate lists the file, else the runner's discovery rule or the usual test
 * directories (SWE-bench's test_patch is "files in test directories").
 */
export function isTestPath(path: string, candidate: Pick<Candidate, 'files'>, runner: Runner): boolean {
  const f = candidate.files.find((c) => c.path === path);
  if (f) return f.kind === 'test';
  return runner.isTestFile(path) || TEST_PATH_RE.test(path);
}

/**
 * Split `candidate.diff` into test patch and gold patch.
 * Binary sections are dropped from both (recorded in `binaryDropped`): `git apply` refuses a binary
 * section without the full-index data `git diff` omits by default.
 */
export function splitPatch(candidate: Pick<Candidate, 'diff' | 'files'>, runner: Runner): SplitPatch {
  const files = parseDiff(candidate.diff);
  const tests: FileDiff[] = [];
  const code: FileDiff[] = [];
  const binaryDropped: string[] = [];
  for (const f of files) {
    if (f.binary) { binaryDropped.push(f.path); continue; }
    (isTestPath(f.path, candidate, runner) ? tests : code).push(f);
  }
  const testFiles = tests.filter((f) => f.status !== 'deleted' && runner.isTestFile(f.path)).map((f) => f.path);
  return { testPatch: joinDiff(tests), goldPatch: joinDiff(code), testPaths: tests.map((f) => f.path), testFiles, binaryDropped };
}

/**
 * The command that runs `files` ('all' = the whole suite) with the runner's explicit reporter writing to
 * {@link REPORT_PATH}, the report path the harness reads back.
 */
export function selectedTestCommand(runner: Runner, files: string[] | 'all'): string {
  return runner.testCommand({ files, reportPath: REPORT_PATH });
}

/** What the agent path returns when it produced an accepted test. */
export interface CreatedTest {
  f2p_script: string;
  /** repository-relative path of the script, e.g. tests/test_fail_to_pass.py */
  f2p_script_path: string;
  /** the Provenance of the agent run (method 'agent', model, prompt version, tokens, cost) */
  provenance: Provenance;
}

export interface TestCreateDeps {
  /**
   * The Unit-test Creator (operators/test-creator-agent.ts `createTestWithAgent`), present only when an
   * LLM endpoint is configured. Returns the accepted script, or a rejection when the harness turned every
   * attempt down. Throws StageError for infrastructure failures.
   */
  createTest?: (input: { ready: EnvironmentReady; goldPatch: string; runner: Runner; signal: AbortSignal }) => Promise<CreatedTest | { rejected: string; provenance: Provenance }>;
  now?: () => number;
}

/**
 * The test-create stage.
 * @returns accepted TestsReady (method `pr-tests` or `agent`), or rejected with `no-code-change`,
 *          `no-tests`, `generated-test-rejected`; an unknown runner fails non-retriably.
 */
export function testCreateStage(deps: TestCreateDeps = {}): Stage<EnvironmentReady, TestsReady> {
  const now = deps.now ?? Date.now;
  return {
    name: 'test-create',
    async handle(env: Envelope<EnvironmentReady>): Promise<Outcome<TestsReady>> {
      const t0 = now();
      const { candidate, environment } = env.value;
      const meta = { repo: candidate.repo, language: candidate.language };
      const runner = getRunner(environment.runner);
      const split = splitPatch(candidate, runner);
      if (!split.goldPatch.trim()) return reject('no-code-change', `the PR changes only tests (${split.testPaths.length} files)`, { ...meta, method: 'rules' });

      if (split.testPaths.length > 0) {
        const files: string[] | 'all' = split.testFiles.length ? split.testFiles : 'all';
        const tests: TestSpec = {
          gold_patch: split.goldPatch,
          test_patch: split.testPatch,
          test_files: split.testFiles,
          test_command: selectedTestCommand(runner, files),
          f2p_script: null,
          f2p_script_path: null,
          method: 'pr-tests',
        };
        const provenance: Provenance = { stage: 'test-create', method: 'rules', model: null, prompt_version: null, image_digest: environment.image_id, duration_ms: now() - t0, tokens_in: 0, tokens_out: 0, cost_usd: 0 };
        log.debug({ pr: candidate.pr_id, testFiles: split.testFiles.length, binaryDropped: split.binaryDropped }, 'tests from the PR');
        return accept({ candidate, environment, tests, provenance: [...env.value.provenance, provenance] }, { ...meta, method: 'rules' });
      }

      if (!deps.createTest) return reject('no-tests', 'the PR changes no test file and no test-creator LLM is configured', { ...meta, method: 'rules' });
      const made = await deps.createTest({ ready: env.value, goldPatch: split.goldPatch, runner, signal: env.signal });
      const agentMeta = { ...meta, method: 'agent', model: made.provenance.model ?? undefined, tokensIn: made.provenance.tokens_in, tokensOut: made.provenance.tokens_out, costUsd: made.provenance.cost_usd };
      if ('rejected' in made) return reject('generated-test-rejected', made.rejected, agentMeta);
      const tests: TestSpec = {
        gold_patch: split.goldPatch,
        test_patch: '',
        test_files: [made.f2p_script_path],
        test_command: selectedTestCommand(runner, [made.f2p_script_path]),
        f2p_script: made.f2p_script,
        f2p_script_path: made.f2p_script_path,
        method: 'agent',
      };
      return accept({ candidate, environment, tests, provenance: [...env.value.provenance, { ...made.provenance, duration_ms: now() - t0 }] }, agentMeta);
    },
  };
}
