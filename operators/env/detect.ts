/**
 * Detect a repository's language, package manager, test runner and runtime version from its files at one
 * commit — pure logic over a {@link RepoSnapshot} (the file list plus the contents of the manifests
 * {@link manifestPaths} asks for), so it is unit-tested without git or Docker.
 *
 * Rules (what SWE-bench's per-repository specs and the Scale-SWE Environment Builder found to matter):
 *  - Python: pyproject.toml / setup.py / setup.cfg / requirements*.txt / tox.ini / pytest.ini; run through
 *    pytest (it also collects unittest suites), unittest where pytest would not find the tests
 *    (operators/env/python-tests.ts, which also strips coverage and lint gates from pytest's addopts), test extras / dependency groups / test requirement
 *    files installed (the interpreter version is chosen by operators/env/toolchain.ts).
 *  - JavaScript/TypeScript: package.json; package manager from `packageManager`, then lockfiles
 *    (pnpm-lock.yaml, yarn.lock, package-lock.json / npm-shrinkwrap.json); runner from `scripts.test`
 *    (following `npm run x`), then config files, then devDependencies; Node major from .nvmrc /
 *    .node-version / engines.node (Debian bookworm ships 18; node:test's junit reporter needs ≥ 20).
 */

import type { Invocation, RunnerName } from '../runners/types.js';
import { cleanRunnerArgs, findRunnerCalls, invocationsOf, shellSegments, type RunnerCall } from './scripts.js';

import { pythonRunner } from './python-tests.js';
import { choosePackages, findWorkspace, fromPackage, reroot, WORKSPACE_FILES, type Changed } from './workspaces.js';
import { DEFAULT_INVOCATION } from '../runners/plan.js';

export { cleanRunnerArgs, shellSegments } from './scripts.js';

/** The files of a repository at one commit: every path, and the text of the manifests. */
export interface RepoSnapshot {
  /** every file path (POSIX, relative to the repository root) */
  files: string[];
  /** contents of the files {@link manifestPaths} selected (missing key = not read / absent) */
  contents: Record<string, string>;
  /** committer date of the commit (ISO 8601), for tools pinned to what existed then */
  commitDate?: string | null;
}

export type Language = 'python' | 'javascript' | 'typescript';
/** The test runner names of operators/runners (Environment.runner). */
export type Runner = RunnerName;
export type PackageManager = 'pip' | 'npm' | 'yarn' | 'yarn-berry' | 'pnpm';

/** What was found. `runnerArgs` are the arguments the repository itself passes to its runner (reporters and coverage removed). */
export interface Detection {
  language: Language;
  packageManager: PackageManager;
  runner: Runner;
  runnerArgs: string[];
  /** VAR=value pairs the repository's test script sets (e.g. cross-env TZ=UTC) */
  runnerEnv: Record<string, string>;
  /**
   * How the repository's test script runs the runner, every variant of it (`TZ=A jest && TZ=B jest`),
   * for operators/runners `testCommand({ invocations })`; [] = the runner's defaults.
   */
  invocations: Invocation[];
  /** build steps the test script runs first (from `pretest`, e.g. `npm run build`), lint/format steps dropped */
  preTest: string[];
  /** Node major to install from the npm registry, or null for the base image's Node 18 */
  nodeMajor: number | null;
  /** Python (pip) only: requirement files to install, in order */
  requirementFiles: string[];
  /** Python only: extras of the project to install with it (test, tests, testing, dev) */
  extras: string[];
  /** Python only: PEP 735 dependency groups to install (test, tests, testing, dev) */
  groups: string[];
  /** Python only: tox.ini [testenv] deps that are plain requirements */
  toxDeps: string[];
  /** Python only: whether `pip install -e .` applies (pyproject with a build system or [project], setup.py, setup.cfg [metadata]) */
  installable: boolean;
  /** Python only: install `pytest<N` — the pytest major current at the commit date (null: latest) */
  pytestBelow: number | null;
  /** Python only: the exact pytest version the repository's uv.lock / poetry.lock pins (wins over pytestBelow) */
  pytestPin: string | null;
  /** files whose contents decide the environment (hashed into the recipe hash) */
  manifests: string[];
  /** workspace packages whose tests run (repository-relative directories); absent or [] = the repository root */
  packageDirs?: string[];
  /** per package: its own detection and the snapshot as seen from its directory (operators/env/workspaces.ts reroot) */
  packages?: PackageDetection[];
  /** why these packages (or the root of a monorepo) were chosen */
  workspaceNote?: string;
}

/** One workspace package's detection, made on the snapshot seen from its directory. */
export interface PackageDetection {
  dir: string;
  detection: Detection;
  snap: RepoSnapshot;
}

/** Why detection gave up; codes are env-build rejection reasons. */
export interface DetectFailure {
  reason: 'no-test-suite' | 'unsupported-language' | 'workspace-unreadable' | 'workspace-mixed-runners';
  detail: string;
}

/**
 * First-release dates of pytest majors (PyPI upload times of 6.0.0 … 9.0.0). A commit older than a major
 * gets the previous one: new majors turn deprecations into errors (9.0: non-Collection iterables in
 * parametrize), and suites with `filterwarnings = error` (click's) then fail to collect at old commits.
 */
export const PYTEST_MAJORS: Array<[string, number]> = [['2020-07-28', 6], ['2022-02-04', 7], ['2024-01-27', 8], ['2025-11-08', 9]];

/** `N` such that `pytest<N` was the newest pytest at `date` (ISO 8601), or null when the newest major already existed. */
export function pytestBelowFor(date: string | null | undefined): number | null {
  if (!date) return null;
  const d = date.slice(0, 10);
  for (const [released, major] of PYTEST_MAJORS) if (d < released) return major;
  return null;
}

/** The Python version of the base image (Debian bookworm). */
export const BASE_PYTHON = { major: 3, minor: 11 };
/** The Node major of the base image (Debian bookworm's nodejs). */
export const BASE_NODE_MAJOR = 18;

/** Lockfiles read for the pytest version they pin (not hashed whole: they change with every dependency bump). */
const PY_LOCK_RE = /^(uv\.lock|poetry\.lock)$/;
const PY_MANIFEST_RE = /^(pyproject\.toml|setup\.py|setup\.cfg|tox\.ini|pytest\.ini|Pipfile|(requirements|reqs)[^/]*\.(txt|in)|[^/]*requirements[^/]*\.txt|requirements\/[^/]+\.(txt|in))$/;
const JS_MANIFEST_RE = /^(package\.json|package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|pnpm-workspace\.yaml|\.nvmrc|\.node-version|\.yarnrc\.yml|\.mocharc\.[a-z]+|jest\.config\.[a-z]+|vitest\.config\.[a-z]+|tsconfig\.json)$/;

/** Which of `files` detection needs to read at the root (workspace declarations included; a package's own manifests: {@link isManifestName}). */
export function manifestPaths(files: string[]): string[] {
  return files.filter((f) => isManifestName(f) || WORKSPACE_FILES.includes(f));
}

/** Whether a path (relative to the root or to a workspace package) is a manifest detection reads. */
export function isManifestName(rel: string): boolean {
  return PY_MANIFEST_RE.test(rel) || JS_MANIFEST_RE.test(rel) || PY_LOCK_RE.test(rel);
}

/** Test files by the runners' default discovery conventions (pytest `test_*.py`/`*_test.py`; jest/vitest/mocha `*.test.*`, `*.spec.*`, `test/`, `__tests__/`). */
const PY_TEST_RE = /(^|\/)(test_[^/]*\.py|[^/]*_test\.py|tests?\/.*\.py)$/;
const JS_TEST_RE = /(^|\/)([^/]*\.(test|spec)\.[cm]?[jt]sx?|(test|tests|__tests__|spec)\/.*\.[cm]?[jt]sx?|tests?\.[cm]?[jt]sx?|test-[^/]*\.[cm]?[jt]sx?|[^/]*[sS]pec\.[cm]?[jt]sx?)$/;

/**
 * Detect language, package manager, runner and versions. `hint` is the candidate's language from the
 * filter stage; it breaks ties when a repository has both Python and JavaScript manifests.
 * Returns a {@link DetectFailure} instead of throwing.
 */
export function detect(snap: RepoSnapshot, hint?: string | null): Detection | DetectFailure {
  const has = (p: string) => snap.files.includes(p);
  const py = has('pyproject.toml') || has('setup.py') || has('setup.cfg') || has('tox.ini') || has('pytest.ini') || snap.files.some((f) => /^requirements[^/]*\.txt$/.test(f));
  const js = has('package.json');
  if (js && (!py || hint === 'javascript' || hint === 'typescript')) return detectJs(snap, hint);
  if (py) return detectPython(snap);
  const langs = new Set(snap.files.map((f) => f.split('.').pop()));
  if (langs.has('py')) return { reason: 'no-test-suite', detail: 'Python sources but no manifest (pyproject.toml, setup.py, setup.cfg, requirements*.txt, tox.ini)' };
  return { reason: 'unsupported-language', detail: `no Python or JavaScript manifest among ${snap.files.length} files` };
}

// ---------------------------------------------------------------- Python

/** Lines of one TOML table (`[name]`) — enough TOML for the keys read here, without a TOML parser. */
export function tomlTable(text: string, name: string): string | null {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `[${name}]`);
  if (start < 0) return null;
  const out: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    if (/^\s*\[[^\]]/.test(lines[i]) && !/^\s*\[\s*["']/.test(lines[i])) break;
    out.push(lines[i]);
  }
  return out.join('\n');
}

/** Keys of a TOML table whose values are arrays (`name = [ … ]`, possibly multi-line). */
function tomlArrayKeys(table: string): string[] {
  return [...table.matchAll(/^\s*("?)([A-Za-z0-9_.-]+)\1\s*=\s*\[/gm)].map((m) => m[2]);
}

/** Lower bound of a `requires-python` specifier, e.g. ">=3.10" → [3, 10]; null when absent. */
export function requiresPythonMin(spec: string): [number, number] | null {
  const m = /(>=|~=|==|>)\s*(\d+)\.(\d+)/.exec(spec);
  if (!m) return null;
  const v: [number, number] = [Number(m[2]), Number(m[3])];
  if (m[1] === '>') v[1] += 1;
  return v;
}

const TEST_NAMES = ['test', 'tests', 'testing'];

function pickNames(available: string[]): string[] {
  const tests = available.filter((n) => TEST_NAMES.includes(n.toLowerCase()));
  if (tests.length) return tests;
  return available.filter((n) => n.toLowerCase() === 'dev');
}

function detectPython(snap: RepoSnapshot): Detection | DetectFailure {
  const c = snap.contents;
  if (!snap.files.some((f) => PY_TEST_RE.test(f) && !f.startsWith('docs/'))) return { reason: 'no-test-suite', detail: 'no test_*.py / *_test.py / tests/*.py files' };
  const pyproject = c['pyproject.toml'] ?? '';
  const project = tomlTable(pyproject, 'project') ?? '';
  // The interpreter a requires-python asks for is chosen by operators/env/toolchain.ts (3.9, 3.11 or 3.13).
  const extrasAvail = [
    ...tomlArrayKeys(tomlTable(pyproject, 'project.optional-dependencies') ?? ''),
    ...[...(/^\[options\.extras_require\]\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(c['setup.cfg'] ?? '')?.[1] ?? '').matchAll(/^([A-Za-z0-9_.-]+)\s*=/gm)].map((m) => m[1]),
    ...[...(/extras_require\s*=\s*(?:dict\(|\{)([\s\S]*?)(?:\)|\})\s*[,)]/.exec(c['setup.py'] ?? '')?.[1] ?? '').matchAll(/["']?([A-Za-z0-9_.-]+)["']?\s*[:=]\s*[[("']/g)].map((m) => m[1]),
  ];
  const groupsAvail = tomlArrayKeys(tomlTable(pyproject, 'dependency-groups') ?? '');
  const reqFiles = snap.files.filter((f) => /^(requirements[^/]*\.txt|[^/]*requirements[^/]*\.txt|requirements\/[^/]+\.txt)$/.test(f));
  const testReq = reqFiles.filter((f) => /test/i.test(f));
  const devReq = reqFiles.filter((f) => /dev/i.test(f) && !/test/i.test(f));
  const chosen = [
    ...reqFiles.filter((f) => f === 'requirements.txt'),
    ...(testReq.length ? testReq : devReq.slice(0, 1)),
  ];
  const installable = /^\s*\[(build-system|project)\]/m.test(pyproject) || snap.files.includes('setup.py') || /^\[metadata\]/m.test(c['setup.cfg'] ?? '');
  const toxDeps = toxTestDeps(c['tox.ini'] ?? '');
  const tests = pythonRunner(snap.files, c, snap.files.filter((f) => PY_TEST_RE.test(f)));
  return {
    language: 'python',
    packageManager: 'pip',
    runner: tests.runner,
    runnerArgs: [],
    runnerEnv: {},
    invocations: tests.invocations,
    preTest: [],
    nodeMajor: null,
    requirementFiles: [...new Set(chosen)],
    extras: [...new Set(pickNames(extrasAvail))],
    groups: [...new Set(pickNames(groupsAvail))],
    toxDeps,
    installable,
    pytestBelow: pytestBelowFor(snap.commitDate),
    pytestPin: lockedVersion(c['uv.lock'] ?? c['poetry.lock'] ?? '', 'pytest'),
    manifests: manifestPaths(snap.files).filter((f) => PY_MANIFEST_RE.test(f)).sort(),
  };
}

/** Version of package `name` in a uv.lock or poetry.lock (`[[package]]` tables: `name = "x"` then `version = "v"`), or null. */
export function lockedVersion(lock: string, name: string): string | null {
  const m = new RegExp(`\\[\\[package\\]\\]\\s*\\nname\\s*=\\s*"${name}"\\s*\\nversion\\s*=\\s*"([^"]+)"`).exec(lock);
  return m ? m[1] : null;
}

/** `deps =` of tox.ini's [testenv]: plain requirement lines only (no -r files, no {substitutions}, no conditional factors). */
export function toxTestDeps(tox: string): string[] {
  const sec = /^\[testenv\]\s*\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(tox)?.[1];
  if (!sec) return [];
  const m = /^deps\s*=([^\n]*(?:\n[ \t]+[^\n]*)*)/m.exec(sec);
  if (!m) return [];
  return m[1]
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('-') && !l.includes('{') && !l.includes(':'));
}

// ---------------------------------------------------------------- JavaScript / TypeScript

interface PackageJson {
  scripts?: Record<string, string>;
  devDependencies?: Record<string, string>;
  dependencies?: Record<string, string>;
  engines?: { node?: string };
  packageManager?: string;
  jest?: unknown;
  mocha?: unknown;
}

/** Node major asked for by an .nvmrc / .node-version text ("v20.1.0", "22", "lts/*", "lts/hydrogen"). */
export function nvmrcMajor(text: string): number | null {
  const t = text.trim().toLowerCase();
  const codenames: Record<string, number> = { hydrogen: 18, iron: 20, jod: 22, krypton: 24 };
  if (t === 'node' || t === 'lts/*' || t === 'stable' || t === 'latest') return 22;
  const cn = /^lts\/([a-z]+)/.exec(t);
  if (cn) return codenames[cn[1]] ?? 22;
  const m = /^v?(\d+)/.exec(t);
  return m ? Number(m[1]) : null;
}

/** Lowest Node major an engines.node range admits (">=22.12.0" → 22, "^14 || >=16" → 14, ">= 0.10" → 0). */
export function enginesMinMajor(range: string): number | null {
  const nums = range
    .split('||')
    .map((alt) => /(\d+)(?:\.\d+)*/.exec(alt.replace(/<=?\s*\d+(\.\d+)*/g, ''))?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number);
  return nums.length ? Math.min(...nums) : null;
}

/** Build steps of `pretest`: `npm run build`-like and compiler segments kept; lint, format and type-check-only segments dropped. */
function preTestSteps(scripts: Record<string, string>): string[] {
  const pre = scripts.pretest;
  if (!pre) return [];
  return shellSegments(pre)
    .filter((w) => {
      const line = w.join(' ');
      if (/\b(lint|eslint|prettier|format|tslint|standard|xo|check)\b/.test(line)) return false;
      if (/\btsc\b/.test(line) && /--noEmit/.test(line)) return false;
      return /\b(build|compile|tsc|babel|rollup|webpack|esbuild|prepare)\b/.test(line);
    })
    .map((w) => w.map((x) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(x) ? x : `'${x.replace(/'/g, "'\\''")}'`)).join(' '));
}

/** The package manager from `packageManager`, then lockfiles (pnpm-lock.yaml, yarn.lock with or without .yarnrc.yml), else npm. */
function packageManagerOf(pkg: PackageJson, has: (p: string) => boolean): PackageManager {
  const pmField = /^(npm|yarn|pnpm)@(\d+)/.exec(pkg.packageManager ?? '');
  if (pmField) return pmField[1] === 'yarn' ? (Number(pmField[2]) >= 2 ? 'yarn-berry' : 'yarn') : (pmField[1] as PackageManager);
  if (has('pnpm-lock.yaml') || has('pnpm-workspace.yaml')) return 'pnpm';
  if (has('yarn.lock')) return has('.yarnrc.yml') ? 'yarn-berry' : 'yarn';
  return 'npm';
}

function detectJs(snap: RepoSnapshot, hint?: string | null): Detection | DetectFailure {
  const has = (p: string) => snap.files.includes(p);
  let pkg: PackageJson;
  try {
    pkg = JSON.parse(snap.contents['package.json'] ?? '{}') as PackageJson;
  } catch (e) {
    return { reason: 'no-test-suite', detail: `package.json is not JSON: ${(e as Error).message}` };
  }
  const scripts = pkg.scripts ?? {};
  const deps = { ...(pkg.dependencies ?? {}), ...(pkg.devDependencies ?? {}) };
  const language: Language = hint === 'typescript' || has('tsconfig.json') || 'typescript' in deps ? 'typescript' : 'javascript';

  const packageManager = packageManagerOf(pkg, has);

  let calls: RunnerCall[] = [];
  const tapLibrary = 'tape' in deps || 'tap' in deps;
  if (!/no test specified/.test(scripts.test ?? '')) {
    for (const name of ['test', 'test:unit', 'unit', 'test:node', 'tests']) {
      calls = findRunnerCalls(scripts, name, { tapLibrary });
      if (calls.length) break;
    }
  }
  // Prefer the whole suite: the call without positional test paths (dayjs runs a few single-file jest calls first).
  const positional = (c: RunnerCall) => cleanRunnerArgs(c.runner, c.args).some((a) => !a.startsWith('-') && /[/.]/.test(a));
  let call: RunnerCall | null = calls.find((c) => !positional(c)) ?? calls[0] ?? null;
  if (!call) {
    const byConfig: Array<[RegExp, Runner]> = [[/^vitest\.config\./, 'vitest'], [/^jest\.config\./, 'jest'], [/^\.mocharc\./, 'mocha'], [/^ava\.config\./, 'ava'], [/^(spec\/support\/)?jasmine\.json$/, 'jasmine']];
    for (const [re, r] of byConfig) if (snap.files.some((f) => re.test(f))) call = { runner: r, args: [], env: {}, nodeOptions: [] };
    if (!call && pkg.jest) call = { runner: 'jest', args: [], env: {}, nodeOptions: [] };
    if (!call) for (const r of ['vitest', 'jest', 'mocha', 'jasmine', 'ava', 'tap', 'tape'] as const) if (r in deps) {
      call = { runner: r === 'tape' ? 'tap' : r, args: [], env: {}, nodeOptions: [] };
      break;
    }
  }
  if (!call) return { reason: 'no-test-suite', detail: `no jest/vitest/mocha/jasmine/ava/tap/tape/node --test in scripts.test (${JSON.stringify(scripts.test ?? null)}), config files or devDependencies` };
  if (!snap.files.some((f) => JS_TEST_RE.test(f) && !f.startsWith('node_modules/'))) return { reason: 'no-test-suite', detail: 'no *.test.*, *.spec.*, test.js, test-*.js or test/ files' };

  let nodeMajor: number | null = null;
  const rc = snap.contents['.nvmrc'] ?? snap.contents['.node-version'];
  const asked = rc !== undefined ? nvmrcMajor(rc) : pkg.engines?.node ? enginesMinMajor(pkg.engines.node) : null;
  if (asked !== null && asked > BASE_NODE_MAJOR) nodeMajor = asked % 2 === 1 ? asked + 1 : asked;

  return {
    language,
    packageManager,
    runner: call.runner,
    runnerArgs: cleanRunnerArgs(call.runner, call.args),
    runnerEnv: call.env,
    invocations: invocationsOf(call.runner, calls.length ? calls : [call]),
    preTest: preTestSteps(scripts),
    nodeMajor,
    requirementFiles: [],
    extras: [],
    groups: [],
    toxDeps: [],
    installable: false,
    pytestBelow: null,
    pytestPin: null,
    manifests: manifestPaths(snap.files).filter((f) => JS_MANIFEST_RE.test(f) && !/^(jest|vitest)\.config\.|^\.mocharc\.|^tsconfig\.json$/.test(f)).sort(),
  };
}

// ---------------------------------------------------------------- workspaces (operators/env/workspaces.ts)

/**
 * {@link detect} for monorepos: the workspace's packages the PR touched (`changed`, Candidate.files),
 * each detected from its own directory (its own `scripts.test`, config files, test files), merged into
 * one detection whose invocations carry the package directory (tests run from there, ids stay
 * repository-relative: operators/runners/plan.ts). Installs stay at the root (one workspace install).
 * The root's detection is used when the PR touches no package, touches root code too (JS), when a
 * touched package has no test suite of its own or the packages use different runners — and then only
 * when the root has a suite; otherwise the package's failure (`no-test-suite`, `workspace-mixed-runners`)
 * names it. A workspace declaration that cannot be read rejects with `workspace-unreadable`.
 */
export function detectPackages(snap: RepoSnapshot, hint: string | null | undefined, changed: Changed[]): Detection | DetectFailure {
  const ws = findWorkspace(snap, hint);
  if (!ws) return detect(snap, hint);
  if ('reason' in ws) return ws;
  const choice = choosePackages(ws, changed, snap.files);
  const atRoot = (why: string): Detection | DetectFailure => {
    const d = detect(snap, hint);
    return 'reason' in d ? d : { ...d, workspaceNote: why };
  };
  if (choice.kind === 'root') return atRoot(`monorepo (${ws.source}): root tests, ${choice.why}`);
  const pkgs: PackageDetection[] = [];
  for (const dir of choice.dirs) {
    const sub = reroot(snap, dir);
    const d = ws.language === 'python' ? detectPython(sub) : detectJs(sub, hint);
    if ('reason' in d) {
      const root = atRoot(`monorepo (${ws.source}): package ${dir} has no test suite of its own (${d.detail}); root tests`);
      return 'reason' in root ? { reason: d.reason, detail: `workspace package ${dir}: ${d.detail}` } : root;
    }
    pkgs.push({ dir, detection: d, snap: sub });
  }
  const runners = [...new Set(pkgs.map((p) => p.detection.runner))];
  if (runners.length > 1) {
    const root = atRoot(`monorepo (${ws.source}): the touched packages use ${runners.join(' and ')}; root tests`);
    return 'reason' in root ? { reason: 'workspace-mixed-runners', detail: `the PR touches packages with different test runners (${pkgs.map((p) => `${p.dir}: ${p.detection.runner}`).join(', ')}) and the root has no test suite` } : root;
  }
  return mergePackages(snap, pkgs, `monorepo (${ws.source}): tests of ${choice.dirs.join(', ')} from their directories`);
}

/** One detection for the packages' tests (see {@link detectPackages}). */
function mergePackages(snap: RepoSnapshot, pkgs: PackageDetection[], note: string): Detection {
  const first = pkgs[0]!.detection;
  const single = pkgs.length === 1;
  const python = first.language === 'python';
  const invocations = pkgs.flatMap((p) => (p.detection.invocations.length ? p.detection.invocations : [DEFAULT_INVOCATION]).map((i) => ({ ...i, dir: p.dir })));
  const inDir = (dir: string, step: string) => `(cd ${/^[A-Za-z0-9_@%+=:,./-]+$/.test(dir) ? dir : `'${dir.replace(/'/g, "'\\''")}'`} && ${step})`;
  const manifests = new Set<string>();
  for (const p of pkgs) for (const m of p.detection.manifests) manifests.add(fromPackage(snap, p.dir, m));
  let packageManager = first.packageManager;
  if (!python) {
    // One install at the root: the root's package manager and manifests (workspace list, lockfile, root devDependencies).
    let rootPkg: PackageJson = {};
    try {
      rootPkg = JSON.parse(snap.contents['package.json'] ?? '{}') as PackageJson;
    } catch {
      rootPkg = {};
    }
    packageManager = packageManagerOf(rootPkg, (p) => snap.files.includes(p));
    for (const m of manifestPaths(snap.files)) if (JS_MANIFEST_RE.test(m) && !/^(jest|vitest)\.config\.|^\.mocharc\.|^tsconfig\.json$/.test(m)) manifests.add(m);
  }
  const majors = pkgs.map((p) => p.detection.nodeMajor).filter((m): m is number => m !== null);
  return {
    ...first,
    language: python ? 'python' : pkgs.some((p) => p.detection.language === 'typescript') ? 'typescript' : 'javascript',
    packageManager,
    // With several packages each invocation carries its own variables and arguments.
    runnerArgs: single ? first.runnerArgs : [],
    runnerEnv: single ? first.runnerEnv : {},
    invocations,
    preTest: pkgs.flatMap((p) => p.detection.preTest.map((step) => inDir(p.dir, step))),
    nodeMajor: majors.length ? Math.max(...majors) : null,
    manifests: [...manifests].sort(),
    packageDirs: pkgs.map((p) => p.dir),
    packages: pkgs,
    workspaceNote: note,
  };
}
