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
import type { Detection, PackageManager, Runner } from './detect.js';
import { tomlTable } from './detect.js';
import { getRunner, type Invocation, type ReportFormat as RunnerReportFormat } from '../runners/index.js';

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
  /** files whose normalised contents went into {@link hash} */
  manifests: string[];
  /** sha256 hex of recipe + base image + normalised manifests */
  hash: string;
}

const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

function pythonInstall(d: Detection): string[] {
  const cmds = ['python3 -m venv /opt/venv', 'python -m pip install -q -U pip setuptools wheel'];
  for (const f of d.requirementFiles) cmds.push(`python -m pip install -r ${q(f)}`);
  if (d.installable) cmds.push(`python -m pip install -e ${q(d.extras.length ? `.[${d.extras.join(',')}]` : '.')}`);
  // PEP 735 groups need pip ≥ 25.1 (`--group`), which the upgrade above provides.
  for (const g of d.groups) cmds.push(`python -m pip install --group ${q(g)}`);
  if (d.toxDeps.length) cmds.push(`python -m pip install ${d.toxDeps.map(q).join(' ')}`);
  // The harness always drives Python suites through pytest (it collects unittest cases too), in the major
  // that was current at the commit (detect.ts PYTEST_MAJORS).
  cmds.push(d.pytestPin ? `python -m pip install 'pytest==${d.pytestPin}'` : d.pytestBelow === null ? 'python -m pip install pytest' : `python -m pip install 'pytest<${d.pytestBelow}'`);
  return cmds;
}

function jsInstall(d: Detection, files: string[]): string[] {
  const cmds: string[] = [];
  // The npm registry's `node` package ships the official binaries; -g puts them first on PATH (/usr/local/bin).
  if (d.nodeMajor !== null) cmds.push(`npm install -g node@${d.nodeMajor} && hash -r && node --version`);
  const lock = files.includes('package-lock.json') || files.includes('npm-shrinkwrap.json');
  switch (d.packageManager) {
    case 'pnpm':
      cmds.push('npm install -g pnpm@9', 'pnpm install --frozen-lockfile || pnpm install');
      break;
    case 'yarn':
      cmds.push('npm install -g yarn@1', 'yarn install --frozen-lockfile --non-interactive || yarn install --non-interactive');
      break;
    case 'yarn-berry':
      // corepack would fetch Yarn from repo.yarnpkg.com; COREPACK_NPM_REGISTRY keeps it on the npm registry.
      cmds.push('npm install -g corepack@latest && corepack enable', 'export COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_NPM_REGISTRY=https://registry.npmjs.org && (yarn install --immutable || yarn install)');
      break;
    default:
      // npm ≥ 7 refuses peer-dependency conflicts that npm 6 (which many repositories were written for) let
      // through (ERESOLVE); --legacy-peer-deps is npm's own way back to the npm 6 behaviour.
      cmds.push(
        lock
          ? 'npm ci --no-audit --no-fund || npm install --no-audit --no-fund || npm install --no-audit --no-fund --legacy-peer-deps'
          : 'npm install --no-audit --no-fund || npm install --no-audit --no-fund --legacy-peer-deps',
      );
  }
  return cmds;
}

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
export function jsPreCommands(d: Detection): string[] {
  const out = ['export PATH="$PWD/node_modules/.bin:$PATH"'];
  for (const [k, v] of Object.entries(d.runnerEnv)) out.push(`export ${k}=${q(v)}`);
  if (d.runner === 'mocha') {
    // node resolves a bare --require name as a package; a path needs ./ (mocha itself accepts both).
    const reqs = mochaRequires(d.runnerArgs).requires.map((r) => (!r.startsWith('@') && !r.startsWith('.') && /[/\\]|\.[cm]?[jt]s$/.test(r) ? `./${r}` : r));
    if (reqs.length) out.push(`export NODE_OPTIONS=${q(reqs.map((r) => `--require ${r}`).join(' '))}`);
  }
  // Runner commands start runners with npx; under Yarn Plug'n'Play there is no node_modules/.bin, and
  // `yarn <bin>` is how a binary runs.
  if (d.packageManager === 'yarn-berry') out.push('npx() { yarn "$@"; }');
  out.push(...d.preTest);
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

/**
 * Build the recipe for a detection. `contents` are the manifest texts (keyed by path) and `files` the
 * repository's file list; `baseImage` is the base image ref the environment starts from.
 */
export function buildRecipe(d: Detection, files: string[], contents: Record<string, string>, baseImage: string): Recipe {
  const python = d.language === 'python';
  const reportFormat: ReportFormat = getRunner(d.runner).reportFormat;
  const reportPath = `${REPORT_DIR}/report.${reportFormat === 'junit' ? 'xml' : reportFormat === 'tap' ? 'tap' : reportFormat === 'jsonl' ? 'jsonl' : 'json'}`;
  const pre = python ? [] : jsPreCommands(d);
  const base = {
    language: d.language,
    baseImage,
    packageManager: d.packageManager,
    runner: d.runner,
    reportFormat,
    reportPath,
    workdir: WORKDIR,
    installCommands: python ? pythonInstall(d) : jsInstall(d, files),
    preCommands: pre,
    testCommand: python ? pythonTestCommand(d, reportPath) : jsTestCommand(d, reportPath, pre),
    invocations: d.invocations,
    nodeVersion: python ? null : String(d.nodeMajor ?? 18),
    pythonVersion: python ? '3.11' : null,
    manifests: d.manifests,
  };
  return { ...base, hash: recipeHash(base, contents) };
}

/** sha256 hex over the recipe fields and the normalised manifests (sorted by path). */
export function recipeHash(recipe: Omit<Recipe, 'hash'>, contents: Record<string, string>): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ v: 1, ...recipe }));
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
  };
}
