/**
 * Rule-based environment recipes: from a {@link Detection} to the install commands, the whole-suite test
 * command with the reporter set explicitly (ARCHITECTURE.md §6: pytest `--junitxml` + `-rA`; jest
 * `--json --outputFile`; vitest `--reporter=junit --outputFile`; mocha `--reporter json`; node:test
 * `--test-reporter=junit --test-reporter-destination`), and the recipe hash that keys environment images.
 *
 * The recipe hash covers the recipe itself, the base image and the *dependency-relevant* part of every
 * manifest (version bumps of the package itself are ignored), so consecutive PRs that do not touch
 * dependencies share one environment image.
 */
import { createHash } from 'node:crypto';
import type { Detection, PackageDetection, PackageManager, RepoSnapshot, Runner } from './detect.js';
import { tomlTable } from './detect.js';
import { getRunner, type Invocation, type ReportFormat as RunnerReportFormat } from '../runners/index.js';
import { TAP_WARMUP } from '../runners/tap.js';
import { chooseToolchain, jsInstallPlan, pythonInstallPlan, readDeclarations, type Declarations, type JsInstallPlan } from './installs.js';
import type { ToolchainChoice } from './toolchain.js';

/** Where the repository lives in every sandbox, as in SWE-bench. */
export const WORKDIR = '/testbed';
/** Directory for harness reports inside a sandbox (outside the repository, so reports never show up in `git status`). */
export const REPORT_DIR = '/tmp/swe-stream';

/** Report format names as in schemas/parts/Environment.avsc (`report_format`): each runner's own (operators/runners). */
export type ReportFormat = RunnerReportFormat;

/** A replayable environment recipe. All commands run with `bash -lc` in {@link WORKDIR}. */
export interface Recipe {
  language: Detection['language'];
  baseImage: string;
  packageManager: PackageManager;
  runner: Runner;
  reportFormat: ReportFormat;
  /** absolute path of the machine-readable report inside the sandbox */
  reportPath: string;
  workdir: string;
  /** run in order with the network on; the first non-zero exit fails the install */
  installCommands: string[];
  /** shell lines run before any test command in the environment image (see {@link jsPreCommands}); Python needs none (the venv is on PATH through /etc/profile.d) */
  preCommands: string[];
  /** whole suite, network off; writes {@link reportPath} and prints a text log (the parse fallback) */
  testCommand: string;
  /** how the repository's test script runs the runner (operators/runners Invocation), for every later test command */
  invocations: Invocation[];
  nodeVersion: string | null;
  pythonVersion: string | null;
  /** where the interpreter version came from (e.g. `requires-python >=3.8; tox envlist 3.8, 3.9`), null when not chosen by rules */
  toolchainSource: string | null;
  /** what the install rules decided (sources read, dates, skipped downloads) and, after a build, what was dropped and retried */
  installNotes: string[];
  /** files whose normalised contents went into {@link hash} */
  manifests: string[];
  /** sha256 hex of recipe + base image + normalised manifests */
  hash: string;
}

const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

/** pnpm major for a lockfile: `packageManager` wins, else lockfileVersion 5.3 → 6, 5.4 → 7, 6.x → 8, 9.x → 9 (pnpm's lockfile history); capped by what the Node major runs. */
export function pnpmMajor(d: Detection, contents: Record<string, string>, nodeMajor: number): number {
  const pm = /"packageManager"\s*:\s*"pnpm@(\d+)/.exec(contents['package.json'] ?? '')?.[1];
  const lv = /^lockfileVersion:\s*'?([\d.]+)/m.exec(contents['pnpm-lock.yaml'] ?? '')?.[1];
  let major = pm ? Number(pm) : !lv ? 9 : lv.startsWith('5.3') || Number(lv) < 5.3 ? 6 : lv.startsWith('5') ? 7 : lv.startsWith('6') ? 8 : 9;
  // pnpm 8 needs Node ≥ 16.14, pnpm 9 Node ≥ 18.12.
  if (nodeMajor < 16) major = Math.min(major, 7);
  else if (nodeMajor < 18) major = Math.min(major, 8);
  return major;
}

/**
 * The pnpm to install: the exact version `packageManager` names (`pnpm@10.28.0+sha512…` → `10.28.0`) when
 * the Node major runs it, else {@link pnpmMajor}. Installing the named version means pnpm never has to switch
 * versions itself — a switch that pnpm ≥ 10.34 refuses unless the registry serves npm signatures.
 */
export function pnpmVersion(d: Detection, contents: Record<string, string>, nodeMajor: number): string {
  const major = pnpmMajor(d, contents, nodeMajor);
  const exact = /"packageManager"\s*:\s*"pnpm@(\d+)\.(\d+)\.(\d+)/.exec(contents['package.json'] ?? '');
  return exact && Number(exact[1]) === major ? `${exact[1]}.${exact[2]}.${exact[3]}` : String(major);
}

/**
 * pnpm's own package-manager switch off for every later shell of the environment (a login shell reads
 * /etc/profile.d): `pm-on-fail=ignore` (pnpm ≥ 10.34, 11) and `manage-package-manager-versions=false`
 * (pnpm 9.7–10). The version was installed already ({@link pnpmVersion}); a registry or mirror without npm
 * signatures otherwise fails every pnpm command with "Refusing to run pnpm@X: its npm registry signature could
 * not be verified" (pnpm/pnpm#13147).
 */
const PNPM_NO_SWITCH = "printf 'export npm_config_pm_on_fail=ignore pnpm_config_pm_on_fail=ignore npm_config_manage_package_manager_versions=false\\n' > /etc/profile.d/pnpm-no-switch.sh && . /etc/profile.d/pnpm-no-switch.sh";

function jsInstall(d: Detection, snap: RepoSnapshot, nodeMajor: number, plan: JsInstallPlan): string[] {
  const files = snap.files;
  const cmds: string[] = [...plan.before];
  // The npm registry's `node` package ships the official binaries; -g puts them first on PATH (/usr/local/bin).
  if (nodeMajor !== BASE_NODE) cmds.push(`npm install -g node@${nodeMajor} && hash -r && node --version`);
  const lock = files.includes('package-lock.json') || files.includes('npm-shrinkwrap.json');
  switch (d.packageManager) {
    case 'pnpm':
      cmds.push(PNPM_NO_SWITCH, `npm install -g pnpm@${pnpmVersion(d, snap.contents, nodeMajor)}`, 'pnpm install --frozen-lockfile || pnpm install');
      break;
    case 'yarn':
      cmds.push('npm install -g yarn@1', 'yarn install --frozen-lockfile --non-interactive || yarn install --non-interactive');
      break;
    case 'yarn-berry':
      // corepack would fetch Yarn from repo.yarnpkg.com; COREPACK_NPM_REGISTRY keeps it on the npm registry.
      cmds.push('npm install -g corepack@latest && corepack enable', 'export COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_NPM_REGISTRY=https://registry.npmjs.org && (yarn install --immutable || yarn install)');
      break;
    default: {
      // npm ≥ 7 refuses peer-dependency conflicts that npm 6 (which many repositories were written for) let
      // through (ERESOLVE); --legacy-peer-deps is npm's own way back to the npm 6 behaviour.
      const before = plan.npmBefore ? ` --before=${plan.npmBefore}` : '';
      cmds.push(
        lock
          ? 'npm ci --no-audit --no-fund || npm install --no-audit --no-fund || npm install --no-audit --no-fund --legacy-peer-deps'
          : npmInstallAsOf(before),
      );
    }
  }
  // node-tap ≥ 18 installs its configured plugins on first use: do it now, while the network is on.
  if (d.runner === 'tap') cmds.push(TAP_WARMUP);
  return cmds;
}

/** Debian bookworm's nodejs major, the one the node base image has without an install. */
const BASE_NODE = 18;

/** Mocha `--require X` / `-r X` / `--require=X` values of a runner's arguments. */
function mochaRequires(args: string[]): { requires: string[]; rest: string[] } {
  const requires: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if ((a === '--require' || a === '-r') && i + 1 < args.length) requires.push(args[++i]);
    else if (a.startsWith('--require=')) requires.push(a.slice('--require='.length));
    else rest.push(a);
  }
  return { requires, rest };
}

/**
 * Shell lines every test run in the environment needs before the runner's own command (Environment.
 * pre_commands; the verify harness runs them before the selected-tests command, in the same shell): the
 * local bin directory on PATH, the variables the repository's test script sets, mocha's `--require`
 * hooks as NODE_OPTIONS (so any mocha command line gets them, e.g. validator.js's @babel/register), and the
 * build steps of `pretest` (tests that import built files must see the patched sources built).
 */
export function jsPreCommands(d: Detection, buildSteps: string[] = []): string[] {
  // Workspace packages' own bin directories first (pnpm links a package's runners there only), then the root's.
  const bins = [...(d.packageDirs ?? []).map((dir) => `$PWD/${dir}/node_modules/.bin`), '$PWD/node_modules/.bin'];
  const out = [`export PATH="${bins.join(':')}:$PATH"`];
  for (const [k, v] of Object.entries(d.runnerEnv)) out.push(`export ${k}=${q(v)}`);
  if (d.runner === 'mocha') {
    // node resolves a bare --require name as a package; a path needs ./ (mocha itself accepts both).
    const reqs = mochaRequires(d.runnerArgs).requires.map((r) => (!r.startsWith('@') && !r.startsWith('.') && /[/\\]|\.[cm]?[jt]s$/.test(r) ? `./${r}` : r));
    if (reqs.length) out.push(`export NODE_OPTIONS=${q(reqs.map((r) => `--require ${r}`).join(' '))}`);
  }
  // Runner commands start runners with npx; under Yarn Plug'n'Play there is no node_modules/.bin, and
  // `yarn <bin>` is how a binary runs.
  if (d.packageManager === 'yarn-berry') out.push('npx() { yarn "$@"; }');
  out.push(...d.preTest, ...buildSteps);
  return out;
}

function jsTestCommand(d: Detection, reportPath: string, pre: string[]): string {
  // The shared runner builds the command, with the repository's invocations (variables, node flags,
  // arguments, every variant of its test script): the same code builds every later selected-tests command.
  const run = getRunner(d.runner).testCommand({ files: 'all', reportPath, invocations: d.invocations });
  // The whole-suite check runs exactly what later test runs get: pre-commands, then the runner.
  const steps = [`cd ${WORKDIR}`, `mkdir -p ${REPORT_DIR}`, `rm -f ${reportPath}`, ...pre, `{ ${run}; }`];
  return steps.join(' && ');
}

function pythonTestCommand(d: Detection, reportPath: string): string {
  // pytest runs with --continue-on-collection-errors: one module that fails to import must not hide every other test.
  const run = getRunner(d.runner).testCommand({ files: 'all', reportPath, invocations: d.invocations });
  return [`cd ${WORKDIR}`, `mkdir -p ${REPORT_DIR}`, `rm -f ${reportPath}`, `{ ${run}; }`].join(' && ');
}

/** The dependency-relevant part of a manifest, so the package's own version bump does not change the hash. */
export function normaliseManifest(path: string, text: string): string {
  try {
    if (path === 'package.json') {
      const p = JSON.parse(text) as Record<string, unknown>;
      const scripts = (p.scripts ?? {}) as Record<string, string>;
      const keep: Record<string, unknown> = {};
      for (const k of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies', 'engines', 'packageManager', 'workspaces', 'overrides', 'resolutions', 'pnpm']) if (k in p) keep[k] = p[k];
      keep.installScripts = Object.fromEntries(Object.entries(scripts).filter(([k]) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(k)));
      return JSON.stringify(keep);
    }
    if (path === 'package-lock.json' || path === 'npm-shrinkwrap.json') {
      const p = JSON.parse(text) as { version?: string; packages?: Record<string, { version?: string }> };
      delete p.version;
      if (p.packages?.['']) delete p.packages[''].version;
      return JSON.stringify(p);
    }
  } catch {
    return text; // not JSON: hash as is, install will tell
  }
  if (path === 'pyproject.toml') {
    const tables = ['build-system', 'project', 'project.optional-dependencies', 'dependency-groups', 'tool.poetry.dependencies', 'tool.poetry.dev-dependencies'];
    return tables.map((t) => `[${t}]\n${(tomlTable(text, t) ?? '').replace(/^\s*version\s*=.*$/gm, '')}`).join('\n');
  }
  if (path === 'setup.cfg') {
    return [...text.matchAll(/^\[(options[^\]]*)\]\n([\s\S]*?)(?=^\[|(?![\s\S]))/gm)].map((m) => m[0]).join('\n');
  }
  if (path === 'setup.py') return text.replace(/^\s*version\s*=.*$/gm, '');
  return text;
}

/** Options of {@link buildRecipe}. */
export interface RecipeOptions {
  /** base image ref the environment starts from (the one for {@link RecipeOptions.toolchain}'s interpreter) */
  baseImage: string;
  /** committer date of the commit (ISO 8601): dependency resolution cut-off, default interpreter */
  commitDate?: string | null;
  /** the interpreter chosen by operators/env/installs.ts chooseToolchain; default: chosen here, falling back to the base image's */
  toolchain?: ToolchainChoice | null;
  /** the repository's declarations; default: read from `contents` */
  declarations?: Declarations | null;
}

/**
 * Build the recipe for a detection. `contents` are the manifest and declaration texts (keyed by path) and
 * `files` the repository's file list; `options` is the base image ref or {@link RecipeOptions}.
 */
export function buildRecipe(d: Detection, files: string[], contents: Record<string, string>, options: string | RecipeOptions): Recipe {
  const o: RecipeOptions = typeof options === 'string' ? { baseImage: options } : options;
  const snap: RepoSnapshot = { files, contents, commitDate: o.commitDate ?? null };
  const python = d.language === 'python';
  const decl = o.declarations ?? readDeclarations(snap);
  let toolchain = o.toolchain ?? null;
  if (!toolchain) {
    const c = chooseToolchain(d, snap, decl);
    toolchain = c.ok ? c : python ? { ok: true, version: '3.11', source: 'default', released: '2022-10-24' } : { ok: true, version: String(BASE_NODE), source: 'default', released: '2022-04-19' };
  }
  const reportFormat: ReportFormat = getRunner(d.runner).reportFormat;
  const notes = d.workspaceNote ? [d.workspaceNote] : [];
  const reportPath = `${REPORT_DIR}/report.${reportFormat === 'junit' ? 'xml' : reportFormat === 'tap' ? 'tap' : reportFormat === 'jsonl' ? 'jsonl' : 'json'}`;
  const pyPlan = python ? (d.packages?.length ? pythonPackagesInstallPlan(d.packages, toolchain) : pythonInstallPlan(d, snap, decl, toolchain)) : null;
  const jsPlan = python ? null : jsInstallPlan(d, snap, decl, toolchain);
  const pre = jsPlan ? jsPreCommands(d, jsPlan.buildSteps) : [];
  const base = {
    language: d.language,
    baseImage: o.baseImage,
    packageManager: d.packageManager,
    runner: d.runner,
    reportFormat,
    reportPath,
    workdir: WORKDIR,
    installCommands: pyPlan ? pyPlan.commands : jsInstall(d, snap, Number(toolchain.version), jsPlan!),
    preCommands: pre,
    testCommand: python ? pythonTestCommand(d, reportPath) : jsTestCommand(d, reportPath, pre),
    invocations: d.invocations,
    nodeVersion: python ? null : toolchain.version,
    pythonVersion: python ? toolchain.version : null,
    toolchainSource: toolchain.source,
    installNotes: [...notes, ...(pyPlan ?? jsPlan)!.notes],
    manifests: d.manifests,
  };
  return { ...base, hash: recipeHash(base, contents) };
}

/**
 * Python workspace packages: one venv, each package's own install plan (its requirement files, the
 * package with its test extras, its groups) run from its directory; the steps every plan shares (venv, uv,
 * setuptools, pytest) once.
 */
export function pythonPackagesInstallPlan(pkgs: PackageDetection[], toolchain: ToolchainChoice): { commands: string[]; notes: string[] } {
  const commands: string[] = [];
  const notes: string[] = [];
  const seen = new Set<string>();
  for (const p of pkgs) {
    const plan = pythonInstallPlan(p.detection, p.snap, readDeclarations(p.snap), toolchain);
    for (const c of plan.commands) {
      // Commands that name files or the project itself (-r, -c, -e, --group) read them relative to the package.
      const cmd = /\s(-r|-c|-e|--group)\s/.test(c) ? `cd ${q(p.dir)} && ${c}` : c;
      if (!seen.has(cmd)) (seen.add(cmd), commands.push(cmd));
    }
    for (const n of plan.notes) if (!notes.includes(n)) notes.push(n);
  }
  // pytest last, as in a single project's plan.
  const pytest = commands.filter((c) => /\s'?pytest([<=][^']*)?'?$/.test(c));
  return { commands: [...commands.filter((c) => !pytest.includes(c)), ...pytest.slice(-1)], notes };
}

/** sha256 hex over the recipe fields (resolution dates and notes left out) and the normalised manifests (sorted by path). */
export function recipeHash(recipe: Omit<Recipe, 'hash'>, contents: Record<string, string>): string {
  const h = createHash('sha256');
  // The resolution date (uv --exclude-newer, npm --before), the notes and the toolchain's source text are left
  // out (the chosen versions stay in): they differ per commit,
  // while the environment only needs rebuilding when the manifests or the commands change, so consecutive PRs
  // keep sharing one image.
  const { installNotes: _notes, toolchainSource: _source, ...rest } = recipe;
  h.update(JSON.stringify({ v: 2, ...rest }).replace(/(--exclude-newer |--before=|--exclude-newer-package [\w.-]+=)[0-9T:Z-]+/g, '$1<date>'));
  for (const m of [...recipe.manifests].sort()) h.update(`\0${m}\0${normaliseManifest(m, contents[m] ?? '')}`);
  return h.digest('hex');
}

/**
 * A recipe from an agent or a stored record, checked for shape only (the harness proves it by running it).
 * @throws Error when a field is missing or of the wrong type
 */
export function recipeFromJson(o: unknown): Omit<Recipe, 'hash' | 'manifests'> {
  const r = o as Record<string, unknown>;
  const str = (k: string) => {
    if (typeof r[k] !== 'string') throw new Error(`recipe.${k} must be a string`);
    return r[k] as string;
  };
  if (!Array.isArray(r.installCommands) || !r.installCommands.every((c) => typeof c === 'string')) throw new Error('recipe.installCommands must be string[]');
  return {
    language: str('language') as Recipe['language'],
    baseImage: str('baseImage'),
    packageManager: str('packageManager') as PackageManager,
    runner: str('runner') as Runner,
    reportFormat: str('reportFormat') as ReportFormat,
    reportPath: str('reportPath'),
    workdir: str('workdir'),
    installCommands: r.installCommands as string[],
    preCommands: Array.isArray(r.preCommands) ? (r.preCommands as string[]) : [],
    testCommand: str('testCommand'),
    invocations: Array.isArray(r.invocations) ? (r.invocations as Invocation[]) : [],
    nodeVersion: typeof r.nodeVersion === 'string' ? r.nodeVersion : null,
    pythonVersion: typeof r.pythonVersion === 'string' ? r.pythonVersion : null,
    toolchainSource: typeof r.toolchainSource === 'string' ? r.toolchainSource : null,
    installNotes: Array.isArray(r.installNotes) ? (r.installNotes as unknown[]).map(String) : [],
  };
}

/**
 * `npm install` as of the commit's date (`before` is ` --before=<date>` or empty), then with --legacy-peer-deps,
 * then — only when a date was given — the same two without it: a registry or mirror that serves abbreviated
 * metadata without publish times (`time`) makes every `--before` resolution fail with ETARGET ("No matching
 * version found … with a date before …"), and a current install is better than none.
 */
export function npmInstallAsOf(before: string): string {
  const tries = [`npm install --no-audit --no-fund${before}`, `npm install --no-audit --no-fund${before} --legacy-peer-deps`];
  if (before) tries.push('npm install --no-audit --no-fund', 'npm install --no-audit --no-fund --legacy-peer-deps');
  return tries.join(' || ');
}
