/**
 * Stage test-create (env.ready → tests.ready): the tests that pin the change.
 *
 * Rules path (ARCHITECTURE.md §1): split the PR's diff into the test patch (files the filter classified as
 * tests → SWE-bench `test_patch` / Scale-SWE `f2p_patch`) and the gold code patch (everything else →
 * `patch`), and build the command that runs only the changed test files with the environment's runner
 * and an explicit reporter (the whole suite when the PR changes only test helpers or fixtures).
 *
 * Agent path (Scale-SWE's Unit-test Creator, arXiv 2602.09892): when the PR changes no test and an
 * LLM is configured ({@link testCreatorAgent}), an agent writes `f2p_script` in a sandbox of the
 * environment. Only the harness decides ({@link judgeGeneratedTest}): 3 runs at the parent where the
 * script's tests fail on assertions (not import, syntax or collection errors) — the empty patch does not
 * resolve — and 3 runs with the gold patch where they all pass.
 *
 * Rejections: `no-tests` (no test change and no agent), `no-code-change` (the PR changes only tests, so
 * nothing can go from failing to passing), `generated-test-rejected` (the agent's test failed the harness).
 */
import type { Candidate, Environment, EnvironmentReady, Provenance, TestSpec, TestsReady } from '../schemas/types.gen.js';
import type { Stage } from '../streams/stage.js';
import { accept, reject } from '../streams/types.js';
import type { Envelope, Outcome } from '../streams/types.js';
import { joinDiff, parseDiff, type FileDiff } from './pr/patch.js';
import { getRunner, type Invocation, type Runner } from './runners/index.js';
import { REPORT_PATH, prepareCheckout, runRepeated, type RunEvidence } from './harness/runs.js';
import { invalidReason, isPass } from './harness/grading.js';
import type { SandboxFactory } from './sandbox/types.js';
import type { LlmClient } from './llm/client.js';
import { renderPrompt } from './llm/prompts.js';
import { runAgent, type AgentBudgets } from './agents/loop.js';
import { StageError } from '../streams/types.js';
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
 * {@link REPORT_PATH}, the report path the harness reads back, the way the repository's test script runs
 * its runner (the environment's `test_invocations`: variables, node flags, arguments, every variant).
 */
export function selectedTestCommand(runner: Runner, files: string[] | 'all', invocations?: Environment['test_invocations']): string {
  return runner.testCommand({ files, reportPath: REPORT_PATH, invocations: invocationsOf(invocations) });
}

/** The environment's record of how the repository runs its runner, in the runners' shape. */
export function invocationsOf(recorded: Environment['test_invocations'] | undefined): Invocation[] {
  return (recorded ?? []).map((i) => ({ label: i.label, env: i.env, nodeOptions: i.node_options, args: i.args, paths: i.paths, ...(i.dir ? { dir: i.dir } : {}) }));
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
   * The Unit-test Creator ({@link testCreatorAgent}), present only when an LLM endpoint is configured. Returns the accepted script, or a rejection when the harness turned every
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
          test_command: selectedTestCommand(runner, files, environment.test_invocations),
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
        test_command: selectedTestCommand(runner, [made.f2p_script_path], environment.test_invocations),
        f2p_script: made.f2p_script,
        f2p_script_path: made.f2p_script_path,
        method: 'agent',
      };
      return accept({ candidate, environment, tests, provenance: [...env.value.provenance, { ...made.provenance, duration_ms: now() - t0 }] }, agentMeta);
    },
  };
}

/** Results of one run that belong to the test file `path` (its own id, or ids under it). */
function resultsOf(run: RunEvidence, path: string) {
  return run.results.filter((r) => r.name === path || r.name.startsWith(path + '::') || r.name.startsWith(path + ' > '));
}

// Failures that mean the test could not even load, so they prove nothing about the behaviour.
const LOAD_ERROR_RE = /\b(ModuleNotFoundError|ImportError|SyntaxError|IndentationError|ERR_MODULE_NOT_FOUND)\b|Cannot find module|Cannot use import statement outside a module/;

const tailOf = (t: string, n = 1500) => (t.length > n ? '…' + t.slice(-n) : t);

export interface JudgeInput {
  sandboxes: SandboxFactory;
  ready: EnvironmentReady;
  runner: Runner;
  goldPatch: string;
  /** repository-relative path of the generated test file */
  path: string;
  content: string;
  /** runs per state; default 3 */
  repeats?: number;
  /** limit of one run, ms; default 300 000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The harness's verdict on a generated test (Scale-SWE's acceptance rule for f2p_script): in fresh
 * containers of the environment image, `repeats` runs at the parent (the empty patch) where the file's
 * tests run, at least one FAILS and none ERRORS or fails to load, and `repeats` runs with the gold patch
 * where every one passes.
 * @returns null when accepted, else the reason (sent back to the agent)
 */
export async function judgeGeneratedTest(j: JudgeInput): Promise<string | null> {
  const { environment, candidate } = j.ready;
  if (!j.runner.isTestFile(j.path) || j.path.startsWith('/') || j.path.includes('..')) {
    return `${j.path} is not a repository-relative test file that ${j.runner.name} discovers by default; name it like a test file (e.g. tests/test_fail_to_pass.py or test/fail_to_pass.test.js)`;
  }
  const base = {
    sandboxes: j.sandboxes, image: environment.image_id || environment.image_ref, commit: candidate.parent_commit, workdir: environment.workdir,
    preCommands: environment.pre_commands, testCommand: selectedTestCommand(j.runner, [j.path], environment.test_invocations), runner: j.runner,
    files: [{ path: j.path, content: j.content }], n: j.repeats ?? 3, timeoutMs: j.timeoutMs ?? 300_000, labels: { 'swe-stream.stage': 'test-create' }, signal: j.signal,
  };
  const parentVerdict = (r: RunEvidence): string | null => {
    const why = invalidReason(r);
    if (why && why !== 'exit-without-failure') return `the test did not run at the parent commit (${why}): ${tailOf(r.log)}`;
    const mine = resultsOf(r, j.path);
    if (mine.length === 0) return `no test from ${j.path} ran at the parent commit: ${tailOf(r.log)}`;
    if (mine.some((t) => t.status === 'ERROR')) return `${j.path} errors at the parent commit (collection, import or fixture error) instead of failing an assertion: ${tailOf(r.log)}`;
    if (!mine.some((t) => t.status === 'FAILED')) return `every test in ${j.path} passes at the parent commit, without the change; it must fail there`;
    if (LOAD_ERROR_RE.test((r.report ?? '') + r.log)) return `${j.path} fails at the parent commit with an import or syntax error, not an assertion about the behaviour: ${tailOf(r.log)}`;
    return null;
  };
  let verdict: string | null = null;
  const parent = await runRepeated({ ...base, patches: [], stop: (runs) => (verdict = parentVerdict(runs[runs.length - 1]!)) !== null });
  verdict ??= parent.runs.map(parentVerdict).find((v) => v !== null) ?? null;
  if (verdict) return verdict;
  const goldVerdict = (r: RunEvidence): string | null => {
    const why = invalidReason(r);
    if (why) return `with the change applied the test run is invalid (${why}): ${tailOf(r.applyError ?? r.log)}`;
    const mine = resultsOf(r, j.path);
    if (mine.length === 0) return `no test from ${j.path} ran with the change applied: ${tailOf(r.log)}`;
    const bad = mine.filter((t) => !isPass(t.status) && t.status !== 'SKIPPED');
    if (bad.length) return `with the change applied these tests still fail: ${bad.map((t) => t.name).join(', ')}: ${tailOf(r.log)}`;
    return null;
  };
  const gold = await runRepeated({ ...base, patches: [{ name: 'gold', text: j.goldPatch }], stop: (runs) => (verdict = goldVerdict(runs[runs.length - 1]!)) !== null });
  verdict ??= gold.runs.map(goldVerdict).find((v) => v !== null) ?? null;
  if (!verdict && gold.runs.length < (j.repeats ?? 3)) verdict = 'the gold runs stopped early';
  return verdict;
}

export interface TestCreatorAgentOptions {
  /** the `test-creator` agent's client (agentLlm(config, 'test-creator')) */
  llm: LlmClient;
  sandboxes: SandboxFactory;
  /** default 30 steps, 20 minutes */
  budgets?: AgentBudgets;
  /** runs per state in the harness check; default 3 */
  repeats?: number;
  /** limit of one harness test run, ms; default 300 000 */
  runTimeoutMs?: number;
  /** prompts/test-creator.v<N>.md; default the newest */
  promptVersion?: number;
}

interface Submission { test_file: string; test_command?: string }

/**
 * The Unit-test Creator agent as {@link TestCreateDeps.createTest}: the tool loop (operators/agents/loop.ts)
 * in a network-less sandbox of the environment at the parent commit; its `submit` is accepted only when
 * {@link judgeGeneratedTest} accepts the file it names, otherwise the verdict goes back to the model and
 * the loop goes on until a budget ends it (→ rejected).
 * @throws StageError when the agent run ends in an error (retriable as the error says)
 */
export function testCreatorAgent(o: TestCreatorAgentOptions): NonNullable<TestCreateDeps['createTest']> {
  return async ({ ready, goldPatch, runner, signal }) => {
    const { environment, candidate } = ready;
    const prompt = renderPrompt('test-creator', {
      repo: candidate.repo, language: candidate.language, workdir: environment.workdir, pr_title: candidate.title, pr_body: candidate.body || '(no description)',
      gold_patch: goldPatch, runner: runner.name, test_command_hint: selectedTestCommand(runner, ['<your test file>']),
    }, o.promptVersion);
    const sb = await o.sandboxes.create({ image: environment.image_id || environment.image_ref, network: false, workdir: environment.workdir, labels: { 'swe-stream.stage': 'test-create', 'swe-stream.pr': candidate.pr_id }, signal });
    let accepted: { path: string; content: string } | null = null;
    let lastVerdict = 'the agent submitted no test';
    try {
      await prepareCheckout(sb, environment.workdir, candidate.parent_commit, signal);
      const run = await runAgent<Submission>({
        llm: o.llm, system: prompt.system, user: prompt.user, sandbox: sb, workdir: environment.workdir, bashPrefix: environment.pre_commands.join('\n'),
        budgets: o.budgets ?? { maxSteps: 30, maxWallMs: 20 * 60_000 }, signal,
        submit: {
          description: 'Submit the test file you wrote (repository-relative path). The harness runs it 3 times without and 3 times with the change.',
          parameters: { type: 'object', properties: { test_file: { type: 'string' }, test_command: { type: 'string' } }, required: ['test_file'] },
          validate: async (sub) => {
            const path = sub.test_file.replace(/^\.\//, '').replace(new RegExp('^' + environment.workdir.replace(/\/$/, '') + '/'), '');
            let content: string;
            try {
              content = (await sb.readFile(`${environment.workdir.replace(/\/$/, '')}/${path}`)).toString('utf8');
            } catch {
              return (lastVerdict = `${path} does not exist in ${environment.workdir}`);
            }
            const v = await judgeGeneratedTest({ sandboxes: o.sandboxes, ready, runner, goldPatch, path, content, repeats: o.repeats, timeoutMs: o.runTimeoutMs, signal });
            if (v === null) accepted = { path, content };
            else lastVerdict = v;
            return v;
          },
        },
      });
      const provenance: Provenance = { stage: 'test-create', method: 'agent', model: run.model, prompt_version: prompt.version, image_digest: environment.image_id, duration_ms: run.durationMs, tokens_in: run.tokensIn, tokens_out: run.tokensOut, cost_usd: run.costUsd };
      if (run.exitStatus === 'error' && run.error) throw new StageError(`test-creator agent failed: ${run.error.message}`, { retriable: run.error.retriable, name: run.error.name });
      const got = accepted as { path: string; content: string } | null;
      if (run.exitStatus !== 'submitted' || !got) {
        log.info({ pr: candidate.pr_id, exit: run.exitStatus, steps: run.steps }, 'generated test rejected');
        return { rejected: `${run.exitStatus}: ${lastVerdict}`.slice(0, 2000), provenance };
      }
      return { f2p_script: got.content, f2p_script_path: got.path, provenance };
    } finally {
      await sb.destroy();
    }
  };
}
