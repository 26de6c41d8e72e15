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
import { SANDBOX_DEFAULTS, type CreateOptions, type Sandbox, type SandboxFactory } from './sandbox/types.js';
import { checkoutInto } from './sandbox/repo.js';
import { detectPackages, isManifestName, manifestPaths, type Detection, type RepoSnapshot } from './env/detect.js';
import { findWorkspace, packageManifestPaths, packageOf } from './env/workspaces.js';
import { buildRecipe, type Recipe } from './env/recipes.js';
import { chooseToolchain, DECLARATION_RE, droppableRequirement, dropCommand, dropDevDependencyCommand, errorLines, gitDependentsProbe, readDeclarations, unreachableGitDependency } from './env/installs.js';
import { getRunner, type TestResult } from './runners/index.js';
import { git } from './pr/git-exec.js';

const log = logger({ component: 'env-build', stage: 'env-build' });

/** Rejection reason codes of this stage. */
export type EnvBuildReason = 'no-test-suite' | 'install-failed' | 'suite-does-not-run' | 'timeout' | 'unsupported-language' | 'toolchain-unavailable' | 'workspace-unreadable' | 'workspace-mixed-runners';

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

/**
 * The files and manifest contents of `commit` in a local git dir, for detection. With `changed` (the PR's
 * paths), the manifests of the workspace packages holding them are read too (operators/env/workspaces.ts),
 * so a monorepo's touched package is detected from its own package.json / pyproject.toml.
 */
export async function snapshotAt(gitDir: string, commit: string, signal?: AbortSignal, changed: string[] = []): Promise<RepoSnapshot> {
  const files = (await git(['ls-tree', '-r', '-z', '--name-only', '--full-tree', commit], { cwd: gitDir, signal })).split('\0').filter(Boolean);
  const contents: Record<string, string> = {};
  const read = async (paths: Iterable<string>) => {
    for (const p of paths) if (!(p in contents)) contents[p] = await git(['show', `${commit}:${p}`], { cwd: gitDir, signal, maxBuffer: 64 << 20 });
  };
  // Manifests for detection, plus what the install rules read (CI workflows, tox, nox, Makefile, version files).
  await read(new Set([...manifestPaths(files), ...files.filter((f) => DECLARATION_RE.test(f))]));
  const commitDate = (await git(['show', '-s', '--format=%cI', commit], { cwd: gitDir, signal })).trim();
  // Both readings of a repository with JS and Python manifests: the language hint decides later.
  for (const hint of [null, 'python']) {
    const ws = changed.length ? findWorkspace({ files, contents }, hint) : null;
    if (!ws || 'reason' in ws) continue;
    const touched = new Set(changed.map((p) => packageOf(ws, p)).filter((d): d is string => d !== null));
    const inTouched = files.filter((f) => touched.has(packageOf(ws, f) ?? ''));
    await read(packageManifestPaths(inTouched, ws, (rel) => isManifestName(rel) || DECLARATION_RE.test(rel)));
  }
  return { files, contents, commitDate };
}

interface SuiteRun {
  results: TestResult[];
  timedOut: boolean;
  exitCode: number;
  ms: number;
}

/** Why a build was refused: a reason code of {@link EnvBuildReason} and a human-readable detail. */
interface Rejection {
  reason: EnvBuildReason;
  detail: string;
}

type Built =
  | { ok: true; env: Environment; agent?: Provenance }
  | ({ ok: false; recipe: Recipe | null } & Rejection);

/** What {@link build} hands to the outcome: the build, the language for the outcome's meta, and whether a cache answered. */
interface BuildResult {
  built: Built;
  language: string;
  cacheHit: boolean;
}

/** Rejected recipe hashes kept per process (each entry ≤ ~2 KiB of detail, so ≤ ~8 MiB). */
const REJECTED_RECIPES_MAX = 4096;

/**
 * Rejected recipe hashes, remembered for this process only and bounded (oldest forgotten first): a forgotten
 * or never-seen hash costs one more build attempt on this worker, never a wrong answer.
 */
class RejectedRecipes {
  private readonly byHash = new Map<string, Rejection>();
  get(hash: string): Rejection | undefined {
    return this.byHash.get(hash);
  }
  remember(hash: string, r: Rejection): void {
    if (this.byHash.size >= REJECTED_RECIPES_MAX) this.byHash.delete(this.byHash.keys().next().value!);
    this.byHash.set(hash, r);
  }
}

/** One stage instance: its deps with every default resolved, and what it remembers between records. */
interface EnvBuildCtx {
  deps: EnvBuildDeps;
  now: () => number;
  prefix: string;
  /** ms */
  installTimeoutMs: number;
  /** ms */
  suiteTimeoutMs: number;
  parse: ParseReport;
  limits: Pick<CreateOptions, 'memoryBytes' | 'nanoCpus' | 'pidsLimit'>;
  rejected: RejectedRecipes;
  /** builds running now, by recipe hash: bounded by the stage's concurrency */
  inflight: Map<string, Promise<unknown>>;
}

/** One candidate's build: the PR, the local git dir holding its parent commit, the record's signal. */
interface BuildJob {
  candidate: Candidate;
  gitDir: string;
  signal: AbortSignal;
}

/** A sandbox being built in, with the log of what it printed. */
interface InSandbox {
  sb: Sandbox;
  blog: BuildLog;
  signal: AbortSignal;
}

/** The stage's context: deps with their defaults (timeouts from {@link SANDBOX_DEFAULTS}), empty memories. */
function contextOf(deps: EnvBuildDeps): EnvBuildCtx {
  return {
    deps,
    now: deps.now ?? Date.now,
    prefix: deps.imagePrefix ?? 'swe-stream/env',
    installTimeoutMs: deps.installTimeoutMs ?? SANDBOX_DEFAULTS.installTimeoutMs,
    suiteTimeoutMs: deps.suiteTimeoutMs ?? SANDBOX_DEFAULTS.testTimeoutMs,
    parse: deps.parse ?? ((runner, report, text) => getRunner(runner).parse(report, text, { workdir: '/testbed' })),
    limits: { memoryBytes: deps.memoryBytes, nanoCpus: deps.nanoCpus, pidsLimit: deps.pidsLimit },
    rejected: new RejectedRecipes(),
    inflight: new Map(),
  };
}

/** A sandbox of this stage for `job`, with the configured limits. @throws SandboxError from the engine */
function envSandbox(ctx: EnvBuildCtx, job: BuildJob, o: { image: string; network: boolean; workdir: string; agent?: boolean }): Promise<Sandbox> {
  const labels: Record<string, string> = { 'swe-stream.stage': 'env-build', 'swe-stream.pr': job.candidate.pr_id };
  if (o.agent) labels['swe-stream.agent'] = '1';
  return ctx.deps.sandboxes.create({ image: o.image, network: o.network, workdir: o.workdir, labels, signal: job.signal, ...ctx.limits });
}

/** The whole suite once, report read back and parsed. @throws SandboxError from the engine (a missing report is not one) */
async function runSuite(ctx: EnvBuildCtx, run: InSandbox, recipe: Recipe): Promise<SuiteRun> {
  const t0 = ctx.now();
  const r = await run.sb.exec(recipe.testCommand, { timeoutMs: ctx.suiteTimeoutMs, cwd: recipe.workdir, signal: run.signal, maxOutputBytes: 4 << 20 });
  run.blog.add(`${recipe.testCommand}   [exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}, ${r.durationMs} ms]`, `${r.stdout}\n${r.stderr}`);
  let report: string | null = null;
  try {
    report = (await run.sb.readFile(recipe.reportPath)).toString('utf8');
  } catch (e) {
    if ((e as { retriable?: boolean }).retriable) throw e;
  }
  const results = ctx.parse(recipe.runner, report, `${r.stdout}\n${r.stderr}`);
  return { results, timedOut: r.timedOut, exitCode: r.exitCode, ms: ctx.now() - t0 };
}

/** The suite "ran" when at least one test passed or failed; only errors (collection/import failures) or nothing means it did not. */
const ran = (s: SuiteRun) => s.results.some((t) => t.status === 'PASSED' || t.status === 'FAILED');

/**
 * What to drop from a failed install step before running it again, or null:
 *   - uv / pip: a lint or type-stub requirement that no longer resolves (an override line);
 *   - npm / yarn / pnpm: a devDependency whose published manifest depends on a git-hosted package this
 *     network cannot fetch, when the test command does not name it (removed from package.json; found with
 *     the registry's metadata, network still on).
 */
async function dropFor(ctx: EnvBuildCtx, run: InSandbox, o: { cmd: string; out: string; recipe: Recipe }): Promise<{ command: string; note: string } | null> {
  const req = droppableRequirement(o.out);
  if (req && /\buv pip install\b/.test(o.cmd)) return { command: dropCommand(req), note: `dropped ${req}: no longer resolves` };
  const repo = /\b(npm|yarn|pnpm) (ci|install)\b/.test(o.cmd) ? unreachableGitDependency(o.out) : null;
  if (!repo) return null;
  const probe = await run.sb.exec(gitDependentsProbe(repo), { timeoutMs: ctx.installTimeoutMs, cwd: o.recipe.workdir, signal: run.signal });
  run.blog.add(`# devDependencies that depend on ${repo} by git   [exit ${probe.exitCode}]`, probe.stdout);
  const name = probe.stdout.split('\n').map((l) => l.trim()).find((n) => n && !o.recipe.testCommand.includes(n));
  return name ? { command: dropDevDependencyCommand(name), note: `dropped devDependency ${name}: it depends on ${repo} by git, which cannot be fetched here` } : null;
}

/**
 * Run the install commands in order. A failed install step with something droppable ({@link dropFor}) gets
 * it dropped and the step retried, up to 3 drops per step; the drop is recorded in the returned recipe's commands and notes. A
 * failure's detail names the step and ends with that step's own output tail, where the error is.
 */
async function runInstalls(ctx: EnvBuildCtx, run: InSandbox, recipe: Recipe): Promise<({ ok: true; recipe: Recipe }) | ({ ok: false } & Rejection)> {
  const cmds = [...recipe.installCommands];
  const notes = [...recipe.installNotes];
  for (let i = 0, drops = 0; i < cmds.length; i++) {
    const cmd = cmds[i];
    const r = await run.sb.exec(cmd, { timeoutMs: ctx.installTimeoutMs, cwd: recipe.workdir, signal: run.signal, maxOutputBytes: 1 << 20 });
    const out = `${r.stdout}\n${r.stderr}`;
    run.blog.add(`${cmd}   [exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}, ${r.durationMs} ms]`, out);
    const step = `install step ${i + 1}/${cmds.length}`;
    if (r.timedOut) return { ok: false, reason: 'timeout', detail: `${step} timed out after ${ctx.installTimeoutMs} ms: ${cmd}\n…${tailOf(out)}` };
    if (r.exitCode === 0) {
      drops = 0;
      continue;
    }
    const drop = drops < 3 ? await dropFor(ctx, run, { cmd, out, recipe }) : null;
    if (drop) {
      // The drop goes into the recipe before the failed step, which runs again.
      cmds.splice(i, 0, drop.command);
      notes.push(`${drop.note} (${step})`);
      log.info({ drop: drop.note, step: i + 1 }, 'requirement dropped, install retried');
      drops++;
      i--; // the next iteration runs the drop command at i, then the failed step again
      continue;
    }
    const errors = errorLines(out);
    const named = errors.length ? `\nerrors: ${redact(errors.join('\n'))}` : '';
    return { ok: false, reason: 'install-failed', detail: `${step} failed (exit ${r.exitCode}): ${cmd}${named}\n…${tailOf(out)}` };
  }
  return { ok: true, recipe: { ...recipe, installCommands: cmds, installNotes: notes } };
}

/** {@link runInstalls}, then the whole suite with the network cut; accepted when the suite ran (see {@link ran}). */
async function installAndRun(ctx: EnvBuildCtx, run: InSandbox, recipe: Recipe): Promise<{ ok: true; suite: SuiteRun; recipe: Recipe } | ({ ok: false } & Rejection)> {
  const installed = await runInstalls(ctx, run, recipe);
  if (!installed.ok) return installed;
  await run.sb.disconnectNetwork();
  const suite = await runSuite(ctx, run, installed.recipe);
  if (suite.timedOut) return { ok: false, reason: 'timeout', detail: `test suite timed out after ${ctx.suiteTimeoutMs} ms (${suite.results.length} results parsed)\n…${run.blog.tail().slice(-1200)}` };
  if (!ran(suite)) {
    return { ok: false, reason: 'suite-does-not-run', detail: `test suite: exit ${suite.exitCode}, ${suite.results.length} results (none passed or failed)\n…${run.blog.tail().slice(-1500)}` };
  }
  return { ok: true, suite, recipe: installed.recipe };
}

/**
 * The cold path: a networked container of the recipe's base image, checkout, installs, suite; committed
 * as `ref` with the build facts as labels when the suite ran. `method` is `rules`, or `agent` for the
 * replay of an agent's recipe. @throws SandboxError from the engine; MissingCommitError from the checkout
 */
async function cold(ctx: EnvBuildCtx, job: BuildJob, o: { recipe: Recipe; ref: string; method?: string }): Promise<Built> {
  const t0 = ctx.now();
  const recipe0 = o.recipe;
  const run: InSandbox = { sb: await envSandbox(ctx, job, { image: recipe0.baseImage, network: true, workdir: recipe0.workdir }), blog: new BuildLog(), signal: job.signal };
  try {
    await checkoutInto(run.sb, job.gitDir, job.candidate.parent_commit, recipe0.workdir, job.signal);
    const res = await installAndRun(ctx, run, recipe0);
    if (!res.ok) return { ...res, recipe: recipe0 };
    return await commitBuilt(ctx, job, run, { recipe: res.recipe, testsParsed: res.suite.results.length, ref: o.ref, method: o.method ?? 'rules', t0 });
  } finally {
    await run.sb.destroy();
  }
}

/** Clean the caches out of a built container and commit it as `o.ref`, the build facts as its labels. */
async function commitBuilt(ctx: EnvBuildCtx, job: BuildJob, run: InSandbox, o: { recipe: Recipe; testsParsed: number; ref: string; method: string; t0: number }): Promise<Built> {
  const { recipe, ref, testsParsed, method } = o;
  const c = job.candidate;
  // Package caches would be baked into every per-commit layer built on this image.
  await run.sb.exec('rm -rf /tmp/swe-stream /root/.cache/pip /root/.cache/uv /root/.npm/_cacache /root/.cache/yarn /root/.local/share/pnpm/store', { timeoutMs: 120_000, signal: job.signal });
  const buildMs = ctx.now() - o.t0;
  const labels = { [ENV_LABELS.recipeHash]: recipe.hash, [ENV_LABELS.testsParsed]: String(testsParsed), [ENV_LABELS.buildMs]: String(buildMs), [ENV_LABELS.commit]: c.parent_commit, [ENV_LABELS.method]: method, [ENV_LABELS.repo]: c.repo, [ENV_LABELS.recipe]: JSON.stringify(replayable(recipe)) };
  const img = await run.sb.commit(ref, labels);
  log.info({ pr: c.pr_id, ref, buildMs, tests: testsParsed }, 'environment built');
  return { ok: true, env: environment(recipe, { ref: img.ref, imageId: img.imageId, cacheHit: false, buildMs, testsParsed, tail: run.blog.tail(), method }) };
}

/** An image found for a recipe: its ref (the rules image, or the `-agent` image) and its labels. */
interface CacheHit {
  ref: string;
  labels: Record<string, string>;
}

/**
 * The warm path: reuse the image of a cache hit. An image already committed at this parent commit is
 * returned as it is; otherwise see {@link commitAtParent}.
 */
async function warm(ctx: EnvBuildCtx, job: BuildJob, hit: CacheHit & { rulesRecipe: Recipe }): Promise<Built> {
  const t0 = ctx.now();
  const { deps } = ctx;
  const { ref, labels } = hit;
  const c = job.candidate;
  const recipe = withLabelRecipe(hit.rulesRecipe, labels);
  const method = labels[ENV_LABELS.method] ?? 'rules';
  const testsParsed = Number(labels[ENV_LABELS.testsParsed] ?? 0);
  const found = (imageRef: string, imageId: string, tail: string): Built => ({ ok: true, env: environment(recipe, { ref: imageRef, imageId, cacheHit: true, buildMs: ctx.now() - t0, testsParsed, tail, method }) });
  if (labels[ENV_LABELS.commit] === c.parent_commit && !deps.verifyOnCacheHit) {
    const id = await deps.sandboxes.imageId(ref);
    if (id) return found(ref, id, 'cache hit: image built at this commit');
  }
  const perCommit = `${ref}-${c.parent_commit.slice(0, 12)}`;
  const existing = await deps.sandboxes.imageId(perCommit);
  if (existing && !deps.verifyOnCacheHit) return found(perCommit, existing, 'cache hit: per-commit image present');
  return commitAtParent(ctx, job, { recipe, ref, perCommit, labels, testsParsed, method, t0 });
}

/**
 * Check the parent commit out in a network-less container of the cached image and commit it as
 * `perCommit`: one thin layer on the cached image, never chained. With `verifyOnCacheHit` the suite runs
 * first and must still run.
 */
async function commitAtParent(ctx: EnvBuildCtx, job: BuildJob, o: { recipe: Recipe; ref: string; perCommit: string; labels: Record<string, string>; testsParsed: number; method: string; t0: number }): Promise<Built> {
  const { recipe, ref } = o;
  const c = job.candidate;
  const run: InSandbox = { sb: await envSandbox(ctx, job, { image: ref, network: false, workdir: recipe.workdir }), blog: new BuildLog(), signal: job.signal };
  let testsParsed = o.testsParsed;
  try {
    await checkoutInto(run.sb, job.gitDir, c.parent_commit, recipe.workdir, job.signal);
    run.blog.add(`cache hit on ${ref}`, `checked out ${c.parent_commit}`);
    if (ctx.deps.verifyOnCacheHit) {
      const suite = await runSuite(ctx, run, recipe);
      if (suite.timedOut) return { ok: false, reason: 'timeout', detail: `test suite timed out on cached environment ${ref}`, recipe };
      if (!ran(suite)) return { ok: false, reason: 'suite-does-not-run', detail: `cached environment ${ref}: ${suite.results.length} results, none passed or failed\n${run.blog.tail().slice(-1500)}`, recipe };
      testsParsed = suite.results.length;
      await run.sb.exec('rm -rf /tmp/swe-stream', { timeoutMs: 60_000, signal: job.signal });
    }
    const img = await run.sb.commit(o.perCommit, { ...o.labels, [ENV_LABELS.commit]: c.parent_commit, [ENV_LABELS.testsParsed]: String(testsParsed) });
    return { ok: true, env: environment(recipe, { ref: img.ref, imageId: img.imageId, cacheHit: true, buildMs: ctx.now() - o.t0, testsParsed, tail: run.blog.tail(), method: o.method }) };
  } finally {
    await run.sb.destroy();
  }
}

/** The Environment record of a built or reused image. `buildMs` in ms; `tail` is the redacted build log tail. */
function environment(recipe: Recipe, o: { ref: string; imageId: string; cacheHit: boolean; buildMs: number; testsParsed: number; tail: string; method: string }): Environment {
  return {
    language: recipe.language,
    base_image: recipe.baseImage,
    image_ref: o.ref,
    image_id: o.imageId,
    recipe_hash: recipe.hash,
    workdir: recipe.workdir,
    install_commands: recipe.installCommands,
    pre_commands: recipe.preCommands,
    test_command: recipe.testCommand,
    test_invocations: recipe.invocations.length ? recipe.invocations.map((i) => ({ label: i.label, env: i.env, node_options: i.nodeOptions, args: i.args, paths: i.paths, dir: i.dir || null })) : null,
    package_dirs: packageDirsOf(recipe.invocations),
    runner: recipe.runner,
    report_format: recipe.reportFormat,
    package_manager: recipe.packageManager,
    node_version: recipe.nodeVersion,
    python_version: recipe.pythonVersion,
    method: o.method,
    cache_hit: o.cacheHit,
    build_ms: o.buildMs,
    tests_parsed: o.testsParsed,
    build_log_tail: o.tail,
    toolchain_source: recipe.toolchainSource,
    install_notes: recipe.installNotes.length ? recipe.installNotes : null,
  };
}

/** The workspace package directories a recipe's tests run in (Environment.package_dirs), null for the repository root. */
function packageDirsOf(invocations: Recipe['invocations']): string[] | null {
  const dirs = [...new Set(invocations.map((i) => i.dir ?? '').filter(Boolean))];
  return dirs.length ? dirs : null;
}

type AgentLanguage = 'python' | 'javascript' | 'typescript';
type Proposal = Awaited<ReturnType<EnvAgent['propose']>>;

/** What the agent path starts from: the rules' recipe (null when detection failed) and why the rules failed. */
interface AgentAttempt {
  rules: Recipe | null;
  failure: Rejection;
  /** the rules image ref; the agent's image is committed as `<ref>-agent` */
  ref: string;
  language: AgentLanguage;
  files: string[];
}

/** The agent path: propose in a networked sandbox, then replay the proposal from a clean base image. */
async function viaAgent(ctx: EnvBuildCtx, job: BuildJob, o: AgentAttempt): Promise<Built> {
  const t0 = ctx.now();
  const baseImage = o.rules?.baseImage ?? (await ctx.deps.sandboxes.baseImage(o.language));
  const workdir = o.rules?.workdir ?? '/testbed';
  const proposal = await propose(ctx, job, { ...o, baseImage, workdir });
  const prov: Provenance = { stage: 'env-build', method: 'agent', model: proposal.model, prompt_version: proposal.promptVersion, image_digest: null, duration_ms: ctx.now() - t0, tokens_in: proposal.tokensIn, tokens_out: proposal.tokensOut, cost_usd: proposal.costUsd };
  if (!proposal.recipe) return { ok: false, reason: o.failure.reason, detail: `agent gave up; rules: ${o.failure.detail.slice(-800)}`, recipe: o.rules };
  const recipe = agentRecipe(job.candidate, { proposed: proposal.recipe, rules: o.rules, language: o.language, baseImage, workdir });
  // The harness, not the agent's word: replay from a clean base image.
  const replay = await cold(ctx, job, { recipe, ref: `${o.ref}-agent`, method: 'agent' });
  if (!replay.ok) return { ...replay, detail: `agent recipe failed on replay: ${replay.detail}` };
  return { ...replay, agent: prov };
}

/** Let the agent explore a networked checkout and propose a recipe; the sandbox is removed afterwards. */
async function propose(ctx: EnvBuildCtx, job: BuildJob, o: AgentAttempt & { baseImage: string; workdir: string }): Promise<Proposal> {
  const c = job.candidate;
  const sb = await envSandbox(ctx, job, { image: o.baseImage, network: true, workdir: o.workdir, agent: true });
  try {
    await checkoutInto(sb, job.gitDir, c.parent_commit, o.workdir, job.signal);
    const testFiles = o.files.filter((f) => /(^|\/)(tests?|__tests__|spec)\/|(^|\/)test_[^/]*\.py$|_test\.py$|\.(test|spec)\.[cm]?[jt]sx?$/.test(f));
    const proposal = await ctx.deps.agent!.propose({ sandbox: sb, candidate: c, rulesRecipe: o.rules, failure: o.failure, signal: job.signal, testFiles });
    log.info({ pr: c.pr_id, exit: proposal.exitStatus, steps: proposal.steps, submitted: proposal.recipe !== null }, 'environment builder agent finished');
    return proposal;
  } finally {
    await sb.destroy();
  }
}

/** A full recipe from the agent's four fields; the rest comes from the rules' recipe when there was one. */
function agentRecipe(c: Candidate, o: { proposed: NonNullable<Proposal['recipe']>; rules: Recipe | null; language: AgentLanguage; baseImage: string; workdir: string }): Recipe {
  const { proposed: p, rules, language } = o;
  return {
    language: rules?.language ?? language,
    baseImage: o.baseImage,
    packageManager: rules?.packageManager ?? (language === 'python' ? 'pip' : 'npm'),
    runner: p.runner,
    reportFormat: p.runner === 'jest' ? 'jest-json' : p.runner === 'mocha' ? 'mocha-json' : 'junit',
    reportPath: p.reportPath,
    workdir: o.workdir,
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
}

const isAgentLanguage = (l: string): l is AgentLanguage => l === 'python' || l === 'javascript' || l === 'typescript';

/**
 * Detect, recipe, cache, then cold / warm / agent. Never throws for a repository that cannot be built
 * (that is a rejection); throws SandboxError / MissingCommitError / GitError as the steps do.
 */
async function build(ctx: EnvBuildCtx, c: Candidate, signal: AbortSignal): Promise<BuildResult> {
  const job: BuildJob = { candidate: c, gitDir: await ctx.deps.repoPath(c, signal), signal };
  const snap = await snapshotAt(job.gitDir, c.parent_commit, signal, c.files.map((f) => f.path));
  const det = detectPackages(snap, c.language, c.files);
  if ('reason' in det) return undetected(ctx, job, { reason: det.reason, detail: det.detail }, snap.files);
  const r = await recipeFor(ctx, det, snap);
  if (!r.ok) return { built: { ok: false, reason: 'toolchain-unavailable', detail: r.detail, recipe: null }, language: det.language, cacheHit: false };
  return fromRecipe(ctx, job, { recipe: r.recipe, language: det.language, files: snap.files });
}

/** Detection failed: the agent may try a repository without a recognisable test suite; otherwise a rejection. */
async function undetected(ctx: EnvBuildCtx, job: BuildJob, failure: Rejection, files: string[]): Promise<BuildResult> {
  const c = job.candidate;
  if (ctx.deps.agent && failure.reason === 'no-test-suite' && isAgentLanguage(c.language)) {
    const ref = `${envImageRepo(ctx.prefix, c.repo)}:${c.parent_commit.slice(0, 12)}`;
    return { built: await viaAgent(ctx, job, { rules: null, failure, ref, language: c.language, files }), language: c.language, cacheHit: false };
  }
  return { built: { ok: false, ...failure, recipe: null }, language: c.language, cacheHit: false };
}

/** The interpreter from the repository's declarations, its base image, and the rules' recipe. */
async function recipeFor(ctx: EnvBuildCtx, det: Detection, snap: RepoSnapshot): Promise<{ ok: true; recipe: Recipe } | { ok: false; detail: string }> {
  const declarations = readDeclarations(snap);
  // Python workspace packages: the interpreter the (first) touched package declares.
  const pkgSnap = det.language === 'python' && det.packages?.length ? det.packages[0]!.snap : null;
  const toolchain = pkgSnap ? chooseToolchain(det.packages![0]!.detection, pkgSnap, readDeclarations(pkgSnap)) : chooseToolchain(det, snap, declarations);
  if (!toolchain.ok) return { ok: false, detail: toolchain.detail };
  const baseImage = await ctx.deps.sandboxes.baseImage(det.language, { python: det.language === 'python' ? toolchain.version : null });
  return { ok: true, recipe: buildRecipe(det, snap.files, snap.contents, { baseImage, commitDate: snap.commitDate, toolchain, declarations }) };
}

/** Labels of a local image ({} when the factory cannot read labels), or null when the image is absent. */
async function labelsOf(ctx: EnvBuildCtx, ref: string): Promise<Record<string, string> | null> {
  const s = ctx.deps.sandboxes;
  return s.imageLabels ? await s.imageLabels(ref) : (await s.imageId(ref)) ? {} : null;
}

/** The cache: the rules image of this recipe hash, else (with an agent) the image of an agent recipe accepted for it. */
async function cachedImage(ctx: EnvBuildCtx, ref: string): Promise<CacheHit | null> {
  const labels = await labelsOf(ctx, ref);
  if (labels) return { ref, labels };
  // Where the rules failed before and the agent's recipe was accepted, its image carries that recipe.
  const agentLabels = ctx.deps.agent ? await labelsOf(ctx, `${ref}-agent`) : null;
  return agentLabels ? { ref: `${ref}-agent`, labels: agentLabels } : null;
}

/** With a recipe: a rejection remembered for its hash, a cache hit (warm), or a cold build (then perhaps the agent). */
async function fromRecipe(ctx: EnvBuildCtx, job: BuildJob, o: { recipe: Recipe; language: AgentLanguage; files: string[] }): Promise<BuildResult> {
  const { recipe, language } = o;
  const ref = `${envImageRepo(ctx.prefix, job.candidate.repo)}:${recipe.hash.slice(0, 12)}`;
  const known = ctx.rejected.get(recipe.hash);
  if (known) return { built: { ok: false, reason: known.reason, detail: `(recipe ${recipe.hash.slice(0, 12)} rejected earlier) ${known.detail}`, recipe }, language, cacheHit: true };
  // Single flight per recipe: a second PR with the same recipe waits for the first build and then hits the cache.
  while (ctx.inflight.has(recipe.hash)) await ctx.inflight.get(recipe.hash)!.catch(() => undefined);
  const hit = await cachedImage(ctx, ref);
  if (hit) return { built: await warm(ctx, job, { ...hit, rulesRecipe: recipe }), language, cacheHit: true };
  const p = cold(ctx, job, { recipe, ref });
  ctx.inflight.set(recipe.hash, p);
  let built: Built;
  try {
    built = await p;
  } finally {
    ctx.inflight.delete(recipe.hash);
  }
  if (!built.ok) {
    // A timeout would cost the agent's replay the same minutes again.
    if (ctx.deps.agent && built.reason !== 'timeout') {
      const viaA = await viaAgent(ctx, job, { rules: recipe, failure: { reason: built.reason, detail: built.detail }, ref, language, files: o.files });
      if (viaA.ok) return { built: viaA, language, cacheHit: false };
    }
    ctx.rejected.remember(recipe.hash, { reason: built.reason, detail: built.detail.slice(0, 2000) });
  }
  return { built, language, cacheHit: false };
}

/** The stage's outcome for one build: a rejection with its reason code, or the accepted record with provenance. */
function outcomeOf(ctx: EnvBuildCtx, env: Envelope<PrCandidate>, r: BuildResult & { t0: number }): Outcome<EnvironmentReady> {
  const { built } = r;
  const c = env.value.candidate;
  const meta: OutcomeMeta = { repo: c.repo, language: r.language, method: built.ok ? built.env.method : 'rules', cacheHit: r.cacheHit };
  if (!built.ok) {
    log.info({ pr: c.pr_id, reason: built.reason }, 'environment rejected');
    return reject(built.reason, built.detail, meta);
  }
  const a = built.agent;
  const prov: Provenance = { stage: 'env-build', method: built.env.method, model: a?.model ?? null, prompt_version: a?.prompt_version ?? null, image_digest: built.env.image_id, duration_ms: ctx.now() - r.t0, tokens_in: a?.tokens_in ?? 0, tokens_out: a?.tokens_out ?? 0, cost_usd: a?.cost_usd ?? 0 };
  if (a) {
    meta.model = a.model ?? undefined;
    meta.tokensIn = a.tokens_in;
    meta.tokensOut = a.tokens_out;
    meta.costUsd = a.cost_usd;
  }
  return accept({ candidate: c, environment: built.env, provenance: [...env.value.provenance, prov] }, meta);
}

/**
 * The stage. Deterministic outputs: the environment image is keyed by repository and recipe hash, so a
 * replayed input finds its image and records a cache hit.
 * @returns accepted EnvironmentReady; rejected with an {@link EnvBuildReason}; throws SandboxError
 *          (retriable as it says) or MissingCommitError (not retriable)
 */
export function envBuildStage(deps: EnvBuildDeps): Stage<PrCandidate, EnvironmentReady> {
  const ctx = contextOf(deps);
  // Leftover sandboxes of crashed runs are removed once, before this process builds its first environment.
  let swept: Promise<number> | null = null;
  return {
    name: 'env-build',
    async handle(env: Envelope<PrCandidate>): Promise<Outcome<EnvironmentReady>> {
      swept ??= deps.sandboxes.sweep();
      await swept;
      const t0 = ctx.now();
      const r = await build(ctx, env.value.candidate, env.signal);
      return outcomeOf(ctx, env, { ...r, t0 });
    },
  };
}
