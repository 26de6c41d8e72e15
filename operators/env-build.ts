/**
 * The env-build stage (pr.candidates → env.ready): an image in which the repository's test suite runs at
 * the PR's parent commit — the Scale-SWE Environment Builder (arXiv 2602.09892) made of rules first:
 *
 *  1. detect language / package manager / runner from the manifests at the parent commit
 *     (operators/env/detect.ts) and build a recipe with its hash (operators/env/recipes.ts);
 *  2. cache: an image `swe-stream/env-<owner>-<repo>:<hash12>` already built for this recipe hash is
 *     reused — the parent commit is checked out in a container of it (network off) and committed as
 *     `<hash12>-<parent12>`, one thin layer on the cached image (never chained, so layers do not pile
 *     up); the facts of the original build (tests parsed) come from its image labels;
 *  3. cold: container of the offline base image (network on), checkout of the parent commit at /testbed,
 *     install commands one by one, network cut, whole suite with the reporter set explicitly, report parsed
 *     by operators/runners; accepted when at least one test passed or failed (the suite ran — not that it
 *     passed), then committed with its build facts as labels.
 *
 * Rejections (reason codes): `no-test-suite`, `unsupported-language`, `install-failed`,
 * `suite-does-not-run`, `timeout`. A recipe hash rejected once is rejected again from memory by this worker
 * (a broken install costs minutes; the last 4,096 hashes are kept). Engine failures throw SandboxError (retriable as
 * it says); a commit missing from the mirror throws MissingCommitError (not retriable).
 *
 * With an Environment Builder agent configured (deps.agent), a rule-path rejection of install-failed /
 * suite-does-not-run / no-test-suite is handed to the agent; its submitted recipe is replayed from a clean
 * base image by the same harness before it is accepted (method `agent`).
 */
import type { Candidate, EnvironmentReady, Environment, PrCandidate, Provenance } from '../schemas/types.gen.js';
import type { Stage } from '../streams/stage.js';
import { accept, reject, type Envelope, type Outcome, type OutcomeMeta } from '../streams/types.js';
import { logger, redact } from '../streams/log.js';
import { SANDBOX_DEFAULTS, type Sandbox, type SandboxFactory } from './sandbox/types.js';
import { checkoutInto } from './sandbox/repo.js';
import { detect, manifestPaths, type RepoSnapshot } from './env/detect.js';
import { buildRecipe, type Recipe } from './env/recipes.js';
import { chooseToolchain, DECLARATION_RE, droppableRequirement, dropCommand, readDeclarations } from './env/installs.js';
import { getRunner, type TestResult } from './runners/index.js';
import { git } from './pr/git-exec.js';

const log = logger({ component: 'env-build', stage: 'env-build' });

/** Rejection reason codes of this stage. */
export type EnvBuildReason = 'no-test-suite' | 'install-failed' | 'suite-does-not-run' | 'timeout' | 'unsupported-language' | 'toolchain-unavailable';

/** Label keys written on environment images (build facts read back on a cache hit). */
export const ENV_LABELS = {
  recipeHash: 'swe-stream.recipe-hash',
  testsParsed: 'swe-stream.tests-parsed',
  buildMs: 'swe-stream.build-ms',
  commit: 'swe-stream.commit',
  method: 'swe-stream.method',
  repo: 'swe-stream.repo',
  /** JSON of the replayable recipe (install/test commands, runner, report) — an agent's recipe is found again by it */
  recipe: 'swe-stream.recipe',
} as const;

/** A way to turn a report + text log into results; default: operators/runners `getRunner(runner).parse`. */
export type ParseReport = (runner: string, report: string | null, logText: string) => TestResult[];


/** Dependencies and limits of the stage. Durations in ms, sizes in bytes. */
export type { EnvAgent } from './env/agent.js';
import type { EnvAgent } from './env/agent.js';

export interface EnvBuildDeps {
  sandboxes: SandboxFactory;
  /**
   * A local git directory (bare mirror or clone) holding `candidate.parent_commit`. The composition root
   * passes `(c, s) => mirrors.ensure(c.repo, c.clone_url, { want: [c.parent_commit], signal: s }).then((m) => m.path)`.
   */
  repoPath(candidate: Candidate, signal: AbortSignal): Promise<string>;
  parse?: ParseReport;
  /** per install command, ms; default {@link SANDBOX_DEFAULTS}.installTimeoutMs */
  installTimeoutMs?: number;
  /** whole-suite run, ms; default {@link SANDBOX_DEFAULTS}.testTimeoutMs */
  suiteTimeoutMs?: number;
  /** image repository prefix; default swe-stream/env */
  imagePrefix?: string;
  memoryBytes?: number;
  nanoCpus?: number;
  pidsLimit?: number;
  /** re-run the whole suite on a cache hit (slower, proves the suite still runs at this commit); default false */
  verifyOnCacheHit?: boolean;
  agent?: EnvAgent | null;
  now?: () => number;
}

/** `swe-stream/env-<owner>-<repo>` in Docker's reference grammar (lowercase, [a-z0-9._-]). */
export function envImageRepo(prefix: string, repo: string): string {
  return `${prefix}-${repo.toLowerCase().replace('/', '-').replace(/[^a-z0-9._-]+/g, '-')}`;
}

const LOG_TAIL_BYTES = 8192;

/** The last `n` characters of one step's output, redacted: where an install's error is. */
function tailOf(text: string, n = 1500): string {
  return redact(text.trimEnd().slice(-n));
}

/** Keeps a bounded, redacted tail of everything the build printed. */
class BuildLog {
  private text = '';
  add(title: string, body: string): void {
    this.text = (this.text + `\n$ ${title}\n${body}`).slice(-LOG_TAIL_BYTES * 4);
  }
  tail(): string {
    return redact(this.text.slice(-LOG_TAIL_BYTES));
  }
}

/** The part of a recipe that replays it (stored as an image label). */
function replayable(r: Recipe) {
  return { installCommands: r.installCommands, testCommand: r.testCommand, runner: r.runner, reportFormat: r.reportFormat, reportPath: r.reportPath, preCommands: r.preCommands, invocations: r.invocations, installNotes: r.installNotes };
}

/** `recipe` with the replayable fields an image label recorded (an agent's recipe); unchanged when absent or unreadable. */
function withLabelRecipe(recipe: Recipe, labels: Record<string, string>): Recipe {
  const text = labels[ENV_LABELS.recipe];
  if (!text) return recipe;
  try {
    const r = JSON.parse(text) as Partial<ReturnType<typeof replayable>>;
    return { ...recipe, ...Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) } as Recipe;
  } catch {
    return recipe; // a foreign or truncated label: the rules recipe still describes the image closely enough to be rebuilt
  }
}

/** The files and manifest contents of `commit` in a local git dir, for detection. */
export async function snapshotAt(gitDir: string, commit: string, signal?: AbortSignal): Promise<RepoSnapshot> {
  const files = (await git(['ls-tree', '-r', '-z', '--name-only', '--full-tree', commit], { cwd: gitDir, signal })).split('\0').filter(Boolean);
  const contents: Record<string, string> = {};
  // Manifests for detection, plus what the install rules read (CI workflows, tox, nox, Makefile, version files).
  for (const p of new Set([...manifestPaths(files), ...files.filter((f) => DECLARATION_RE.test(f))])) contents[p] = await git(['show', `${commit}:${p}`], { cwd: gitDir, signal, maxBuffer: 64 << 20 });
  const commitDate = (await git(['show', '-s', '--format=%cI', commit], { cwd: gitDir, signal })).trim();
  return { files, contents, commitDate };
}

interface SuiteRun {
  results: TestResult[];
  timedOut: boolean;
  exitCode: number;
  ms: number;
}

type Built =
  | { ok: true; env: Environment; agent?: Provenance }
  | { ok: false; reason: EnvBuildReason; detail: string; recipe: Recipe | null };

/** Rejected recipe hashes kept per process (each entry ≤ ~2 KiB of detail, so ≤ ~8 MiB). */
const REJECTED_RECIPES_MAX = 4096;

/**
 * The stage. Deterministic outputs: the environment image is keyed by repository and recipe hash, so a
 * replayed input finds its image and records a cache hit.
 */
export function envBuildStage(deps: EnvBuildDeps): Stage<PrCandidate, EnvironmentReady> {
  const now = deps.now ?? Date.now;
  const prefix = deps.imagePrefix ?? 'swe-stream/env';
  const installTimeoutMs = deps.installTimeoutMs ?? SANDBOX_DEFAULTS.installTimeoutMs;
  const suiteTimeoutMs = deps.suiteTimeoutMs ?? SANDBOX_DEFAULTS.testTimeoutMs;
  const parse: ParseReport = deps.parse ?? ((runner, report, text) => getRunner(runner).parse(report, text, { workdir: '/testbed' }));
  // Rejected recipe hashes, remembered for this process only and bounded (oldest forgotten first): a forgotten
  // or never-seen hash costs one more build attempt on this worker, never a wrong answer. `inflight` holds only
  // builds running now, so it is bounded by the stage's concurrency.
  const rejected = new Map<string, { reason: EnvBuildReason; detail: string }>();
  const inflight = new Map<string, Promise<unknown>>();
  const remember = (hash: string, r: { reason: EnvBuildReason; detail: string }) => {
    if (rejected.size >= REJECTED_RECIPES_MAX) rejected.delete(rejected.keys().next().value!);
    rejected.set(hash, r);
  };
  const limits = { memoryBytes: deps.memoryBytes, nanoCpus: deps.nanoCpus, pidsLimit: deps.pidsLimit };

  async function runSuite(sb: Sandbox, recipe: Recipe, blog: BuildLog, signal: AbortSignal): Promise<SuiteRun> {
    const t0 = now();
    const r = await sb.exec(recipe.testCommand, { timeoutMs: suiteTimeoutMs, cwd: recipe.workdir, signal, maxOutputBytes: 4 << 20 });
    blog.add(`${recipe.testCommand}   [exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}, ${r.durationMs} ms]`, `${r.stdout}\n${r.stderr}`);
    let report: string | null = null;
    try {
      report = (await sb.readFile(recipe.reportPath)).toString('utf8');
    } catch (e) {
      if ((e as { retriable?: boolean }).retriable) throw e;
    }
    const results = parse(recipe.runner, report, `${r.stdout}\n${r.stderr}`);
    return { results, timedOut: r.timedOut, exitCode: r.exitCode, ms: now() - t0 };
  }

  /** The suite "ran" when at least one test passed or failed; only errors (collection/import failures) or nothing means it did not. */
  const ran = (s: SuiteRun) => s.results.some((t) => t.status === 'PASSED' || t.status === 'FAILED');

  async function cold(c: Candidate, gitDir: string, recipe0: Recipe, ref: string, signal: AbortSignal, method = 'rules'): Promise<Built> {
    const t0 = now();
    const blog = new BuildLog();
    const sb = await deps.sandboxes.create({ image: recipe0.baseImage, network: true, workdir: recipe0.workdir, labels: { 'swe-stream.stage': 'env-build', 'swe-stream.pr': c.pr_id }, signal, ...limits });
    try {
      await checkoutInto(sb, gitDir, c.parent_commit, recipe0.workdir, signal);
      const res = await installAndRun(sb, recipe0, blog, signal);
      if (!res.ok) return { ...res, recipe: recipe0 };
      const recipe = res.recipe;
      await sb.exec('rm -rf /tmp/swe-stream /root/.cache/pip /root/.cache/uv /root/.npm/_cacache /root/.cache/yarn /root/.local/share/pnpm/store', { timeoutMs: 120_000, signal });
      const buildMs = now() - t0;
      const labels = { [ENV_LABELS.recipeHash]: recipe.hash, [ENV_LABELS.testsParsed]: String(res.suite.results.length), [ENV_LABELS.buildMs]: String(buildMs), [ENV_LABELS.commit]: c.parent_commit, [ENV_LABELS.method]: method, [ENV_LABELS.repo]: c.repo, [ENV_LABELS.recipe]: JSON.stringify(replayable(recipe)) };
      const img = await sb.commit(ref, labels);
      log.info({ pr: c.pr_id, ref, buildMs, tests: res.suite.results.length }, 'environment built');
      return { ok: true, env: environment(recipe, img.ref, img.imageId, false, buildMs, res.suite.results.length, blog.tail(), method) };
    } finally {
      await sb.destroy();
    }
  }

  /**
   * Run the install commands in order, then the whole suite with the network cut. A failed install whose
   * error names an unresolvable lint / type-stub requirement gets that requirement dropped (an override
   * line, see operators/env/installs.ts) and the step retried, up to 3 drops per step; the drop is recorded
   * in the recipe's commands and notes. A failure's detail names the step and ends with that step's own
   * output tail, where the error is.
   */
  async function installAndRun(sb: Sandbox, recipe: Recipe, blog: BuildLog, signal: AbortSignal): Promise<{ ok: true; suite: SuiteRun; recipe: Recipe } | { ok: false; reason: EnvBuildReason; detail: string }> {
    const cmds = [...recipe.installCommands];
    const notes = [...recipe.installNotes];
    for (let i = 0, drops = 0; i < cmds.length; i++) {
      const cmd = cmds[i];
      const r = await sb.exec(cmd, { timeoutMs: installTimeoutMs, cwd: recipe.workdir, signal, maxOutputBytes: 1 << 20 });
      const out = `${r.stdout}\n${r.stderr}`;
      blog.add(`${cmd}   [exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}, ${r.durationMs} ms]`, out);
      const step = `install step ${i + 1}/${cmds.length}`;
      if (r.timedOut) return { ok: false, reason: 'timeout', detail: `${step} timed out after ${installTimeoutMs} ms: ${cmd}\n…${tailOf(out)}` };
      if (r.exitCode === 0) {
        drops = 0;
        continue;
      }
      const drop = drops < 3 ? droppableRequirement(out) : null;
      if (drop && /\buv pip install\b/.test(cmd)) {
        // The drop goes into the recipe before the failed step, which runs again.
        cmds.splice(i, 0, dropCommand(drop));
        notes.push(`dropped ${drop}: no longer resolves (${step})`);
        log.info({ drop, step: i + 1 }, 'unresolvable lint/type-stub requirement dropped, install retried');
        drops++;
        i--; // the next iteration runs the drop command at i, then the failed step again
        continue;
      }
      return { ok: false, reason: 'install-failed', detail: `${step} failed (exit ${r.exitCode}): ${cmd}\n…${tailOf(out)}` };
    }
    const final: Recipe = { ...recipe, installCommands: cmds, installNotes: notes };
    await sb.disconnectNetwork();
    const suite = await runSuite(sb, final, blog, signal);
    if (suite.timedOut) return { ok: false, reason: 'timeout', detail: `test suite timed out after ${suiteTimeoutMs} ms (${suite.results.length} results parsed)\n…${blog.tail().slice(-1200)}` };
    if (!ran(suite)) {
      return { ok: false, reason: 'suite-does-not-run', detail: `test suite: exit ${suite.exitCode}, ${suite.results.length} results (none passed or failed)\n…${blog.tail().slice(-1500)}` };
    }
    return { ok: true, suite, recipe: final };
  }

  async function warm(c: Candidate, gitDir: string, rulesRecipe: Recipe, ref: string, labels: Record<string, string>, signal: AbortSignal): Promise<Built> {
    const t0 = now();
    const recipe = withLabelRecipe(rulesRecipe, labels);
    const blog = new BuildLog();
    let testsParsed = Number(labels[ENV_LABELS.testsParsed] ?? 0);
    if (labels[ENV_LABELS.commit] === c.parent_commit && !deps.verifyOnCacheHit) {
      const id = await deps.sandboxes.imageId(ref);
      if (id) return { ok: true, env: environment(recipe, ref, id, true, now() - t0, testsParsed, 'cache hit: image built at this commit', labels[ENV_LABELS.method] ?? 'rules') };
    }
    const perCommit = `${ref}-${c.parent_commit.slice(0, 12)}`;
    const existing = await deps.sandboxes.imageId(perCommit);
    if (existing && !deps.verifyOnCacheHit) return { ok: true, env: environment(recipe, perCommit, existing, true, now() - t0, testsParsed, 'cache hit: per-commit image present', labels[ENV_LABELS.method] ?? 'rules') };
    const sb = await deps.sandboxes.create({ image: ref, network: false, workdir: recipe.workdir, labels: { 'swe-stream.stage': 'env-build', 'swe-stream.pr': c.pr_id }, signal, ...limits });
    try {
      await checkoutInto(sb, gitDir, c.parent_commit, recipe.workdir, signal);
      blog.add(`cache hit on ${ref}`, `checked out ${c.parent_commit}`);
      if (deps.verifyOnCacheHit) {
        const suite = await runSuite(sb, recipe, blog, signal);
        if (suite.timedOut) return { ok: false, reason: 'timeout', detail: `test suite timed out on cached environment ${ref}`, recipe };
        if (!ran(suite)) return { ok: false, reason: 'suite-does-not-run', detail: `cached environment ${ref}: ${suite.results.length} results, none passed or failed\n${blog.tail().slice(-1500)}`, recipe };
        testsParsed = suite.results.length;
        await sb.exec('rm -rf /tmp/swe-stream', { timeoutMs: 60_000, signal });
      }
      const img = await sb.commit(perCommit, { ...labels, [ENV_LABELS.commit]: c.parent_commit, [ENV_LABELS.testsParsed]: String(testsParsed) });
      return { ok: true, env: environment(recipe, img.ref, img.imageId, true, now() - t0, testsParsed, blog.tail(), labels[ENV_LABELS.method] ?? 'rules') };
    } finally {
      await sb.destroy();
    }
  }

  function environment(recipe: Recipe, ref: string, imageId: string, cacheHit: boolean, buildMs: number, testsParsed: number, tail: string, method: string): Environment {
    return {
      language: recipe.language,
      base_image: recipe.baseImage,
      image_ref: ref,
      image_id: imageId,
      recipe_hash: recipe.hash,
      workdir: recipe.workdir,
      install_commands: recipe.installCommands,
      pre_commands: recipe.preCommands,
      test_command: recipe.testCommand,
      test_invocations: recipe.invocations.length ? recipe.invocations.map((i) => ({ label: i.label, env: i.env, node_options: i.nodeOptions, args: i.args, paths: i.paths })) : null,
      runner: recipe.runner,
      report_format: recipe.reportFormat,
      package_manager: recipe.packageManager,
      node_version: recipe.nodeVersion,
      python_version: recipe.pythonVersion,
      method,
      cache_hit: cacheHit,
      build_ms: buildMs,
      tests_parsed: testsParsed,
      build_log_tail: tail,
      toolchain_source: recipe.toolchainSource,
      install_notes: recipe.installNotes.length ? recipe.installNotes : null,
    };
  }

  /** The agent path: propose in a networked sandbox, then replay the proposal from a clean base image. */
  async function viaAgent(c: Candidate, gitDir: string, rules: Recipe | null, failure: { reason: EnvBuildReason; detail: string }, ref: string, language: 'python' | 'javascript' | 'typescript', files: string[], signal: AbortSignal): Promise<Built> {
    const agent = deps.agent!;
    const t0 = now();
    const baseImage = rules?.baseImage ?? (await deps.sandboxes.baseImage(language));
    const workdir = rules?.workdir ?? '/testbed';
    const sb = await deps.sandboxes.create({ image: baseImage, network: true, workdir, labels: { 'swe-stream.stage': 'env-build', 'swe-stream.pr': c.pr_id, 'swe-stream.agent': '1' }, signal, ...limits });
    let proposal: Awaited<ReturnType<EnvAgent['propose']>>;
    try {
      await checkoutInto(sb, gitDir, c.parent_commit, workdir, signal);
      const testFiles = files.filter((f) => /(^|\/)(tests?|__tests__|spec)\/|(^|\/)test_[^/]*\.py$|_test\.py$|\.(test|spec)\.[cm]?[jt]sx?$/.test(f));
      proposal = await agent.propose({ sandbox: sb, candidate: c, rulesRecipe: rules, failure, signal, testFiles });
      log.info({ pr: c.pr_id, exit: proposal.exitStatus, steps: proposal.steps, submitted: proposal.recipe !== null }, 'environment builder agent finished');
    } finally {
      await sb.destroy();
    }
    const prov: Provenance = { stage: 'env-build', method: 'agent', model: proposal.model, prompt_version: proposal.promptVersion, image_digest: null, duration_ms: now() - t0, tokens_in: proposal.tokensIn, tokens_out: proposal.tokensOut, cost_usd: proposal.costUsd };
    if (!proposal.recipe) return { ok: false, reason: failure.reason, detail: `agent gave up; rules: ${failure.detail.slice(-800)}`, recipe: rules };
    const p = proposal.recipe;
    const reportFormat = p.runner === 'jest' ? 'jest-json' : p.runner === 'mocha' ? 'mocha-json' : 'junit';
    const recipe: Recipe = {
      language: rules?.language ?? language,
      baseImage,
      packageManager: rules?.packageManager ?? (language === 'python' ? 'pip' : 'npm'),
      runner: p.runner,
      reportFormat,
      reportPath: p.reportPath,
      workdir,
      installCommands: p.installCommands,
      preCommands: [],
      testCommand: p.testCommand,
      invocations: [],
      nodeVersion: rules?.nodeVersion ?? null,
      pythonVersion: rules?.pythonVersion ?? null,
      toolchainSource: rules?.toolchainSource ?? null,
      installNotes: [],
      manifests: rules?.manifests ?? [],
      hash: rules?.hash ?? c.parent_commit,
    };
    // The harness, not the agent's word: replay from a clean base image.
    const replay = await cold(c, gitDir, recipe, `${ref}-agent`, signal, 'agent');
    if (!replay.ok) return { ...replay, detail: `agent recipe failed on replay: ${replay.detail}` };
    return { ...replay, agent: prov };
  }

  async function build(c: Candidate, signal: AbortSignal): Promise<{ built: Built; language: string; cacheHit: boolean }> {
    const gitDir = await deps.repoPath(c, signal);
    const snap = await snapshotAt(gitDir, c.parent_commit, signal);
    const det = detect(snap, c.language);
    const ref0 = envImageRepo(prefix, c.repo);
    if ('reason' in det) {
      const failure = { reason: det.reason as EnvBuildReason, detail: det.detail };
      if (deps.agent && det.reason === 'no-test-suite' && (c.language === 'python' || c.language === 'javascript' || c.language === 'typescript')) {
        return { built: await viaAgent(c, gitDir, null, failure, `${ref0}:${c.parent_commit.slice(0, 12)}`, c.language, snap.files, signal), language: c.language, cacheHit: false };
      }
      return { built: { ok: false, ...failure, recipe: null }, language: c.language, cacheHit: false };
    }
    const declarations = readDeclarations(snap);
    const toolchain = chooseToolchain(det, snap, declarations);
    if (!toolchain.ok) return { built: { ok: false, reason: 'toolchain-unavailable', detail: toolchain.detail, recipe: null }, language: det.language, cacheHit: false };
    const baseImage = await deps.sandboxes.baseImage(det.language, { python: det.language === 'python' ? toolchain.version : null });
    const recipe = buildRecipe(det, snap.files, snap.contents, { baseImage, commitDate: snap.commitDate, toolchain, declarations });
    const ref = `${ref0}:${recipe.hash.slice(0, 12)}`;
    const known = rejected.get(recipe.hash);
    if (known) return { built: { ok: false, reason: known.reason, detail: `(recipe ${recipe.hash.slice(0, 12)} rejected earlier) ${known.detail}`, recipe }, language: det.language, cacheHit: true };
    // Single flight per recipe: a second PR with the same recipe waits for the first build and then hits the cache.
    while (inflight.has(recipe.hash)) await inflight.get(recipe.hash)!.catch(() => undefined);
    const labelsOf = async (r: string) => (deps.sandboxes.imageLabels ? await deps.sandboxes.imageLabels(r) : (await deps.sandboxes.imageId(r)) ? {} : null);
    const labels = await labelsOf(ref);
    if (labels) return { built: await warm(c, gitDir, recipe, ref, labels, signal), language: det.language, cacheHit: true };
    // Where the rules failed before and the agent's recipe was accepted, its image carries that recipe.
    const agentLabels = deps.agent ? await labelsOf(`${ref}-agent`) : null;
    if (agentLabels) return { built: await warm(c, gitDir, recipe, `${ref}-agent`, agentLabels, signal), language: det.language, cacheHit: true };
    const p = cold(c, gitDir, recipe, ref, signal);
    inflight.set(recipe.hash, p);
    let built: Built;
    try {
      built = await p;
    } finally {
      inflight.delete(recipe.hash);
    }
    if (!built.ok) {
      if (deps.agent && built.reason !== 'timeout') {
        const viaA = await viaAgent(c, gitDir, recipe, { reason: built.reason, detail: built.detail }, ref, det.language, snap.files, signal);
        if (viaA.ok) return { built: viaA, language: det.language, cacheHit: false };
      }
      remember(recipe.hash, { reason: built.reason, detail: built.detail.slice(0, 2000) });
    }
    return { built, language: det.language, cacheHit: false };
  }

  // Leftover sandboxes of crashed runs are removed once, before this process builds its first environment.
  let swept: Promise<number> | null = null;

  return {
    name: 'env-build',
    async handle(env: Envelope<PrCandidate>): Promise<Outcome<EnvironmentReady>> {
      swept ??= deps.sandboxes.sweep();
      await swept;
      const t0 = now();
      const c = env.value.candidate;
      const { built, language, cacheHit } = await build(c, env.signal);
      const meta: OutcomeMeta = { repo: c.repo, language, method: built.ok ? built.env.method : 'rules', cacheHit };
      if (!built.ok) {
        log.info({ pr: c.pr_id, reason: built.reason }, 'environment rejected');
        return reject(built.reason, built.detail, meta);
      }
      const prov: Provenance = { stage: 'env-build', method: built.env.method, model: built.agent?.model ?? null, prompt_version: built.agent?.prompt_version ?? null, image_digest: built.env.image_id, duration_ms: now() - t0, tokens_in: built.agent?.tokens_in ?? 0, tokens_out: built.agent?.tokens_out ?? 0, cost_usd: built.agent?.cost_usd ?? 0 };
      if (built.agent) {
        meta.model = built.agent.model ?? undefined;
        meta.tokensIn = built.agent.tokens_in;
        meta.tokensOut = built.agent.tokens_out;
        meta.costUsd = built.agent.cost_usd;
      }
      return accept({ candidate: c, environment: built.env, provenance: [...env.value.provenance, prov] }, meta);
    },
  };
}
