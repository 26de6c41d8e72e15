/**
 * Monorepos (issue 11 item 2): npm / yarn / pnpm workspaces, lerna packages and Python sub-packages, and
 * which package(s) a PR touched — pure logic over a {@link RepoSnapshot}, unit-tested without git or Docker.
 *
 * Workspace declarations read:
 *  - package.json `workspaces`: an array of globs (npm ≥ 7, yarn) or `{ packages: [...] }` (yarn 1 with nohoist);
 *  - pnpm-workspace.yaml `packages:` (parsed with `yaml`);
 *  - lerna.json `packages` (default `packages/*` when lerna.json has none and package.json declares no workspaces);
 *  - Python: directories below the root with their own pyproject.toml / setup.py (no declaration file: uv
 *    and poetry workspaces, namespace-package monorepos and plain "one folder per distribution" repos alike).
 * Globs as the tools read them: `*`, `**`, `!negations`; a package is a matched directory holding a
 * package.json (JS) — node_modules never counts.
 *
 * Which packages a PR touched: each changed code or test file maps to its nearest package directory (the
 * longest matching one: nested packages win); documentation and configuration outside any package do not
 * count. {@link choosePackages} then decides between the packages and the repository root:
 *  - nothing inside a package changed → the root (as before);
 *  - JS: code or tests at the root changed as well → the root (its test command is the one that covers it);
 *  - Python with a root manifest: only when exactly one sub-package and nothing at the root changed;
 *  - otherwise the touched packages, each run with its own test command from its own directory.
 */
import { posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { RepoSnapshot } from './detect.js';
import { globRe } from '../runners/plan.js';

/** The tool whose declaration defines the packages. */
export type WorkspaceTool = 'npm' | 'yarn' | 'pnpm' | 'lerna' | 'python';

/** A monorepo's packages. */
export interface Workspace {
  tool: WorkspaceTool;
  /** the language family the packages belong to */
  language: 'javascript' | 'python';
  /** package directories, repository-relative, sorted, no trailing slash */
  packages: string[];
  /** where the declaration came from, for notes and rejection details (`pnpm-workspace.yaml packages: packages/*`) */
  source: string;
}

/** A workspace declaration that cannot be interpreted; the reason is an env-build rejection code. */
export interface WorkspaceFailure {
  reason: 'workspace-unreadable';
  detail: string;
}

/** Root files that declare workspaces (read besides package.json). */
export const WORKSPACE_FILES = ['pnpm-workspace.yaml', 'lerna.json'];

/** Directory names that hold fixtures, examples or vendored code, never a package of the repository. */
const NOT_A_PACKAGE = /(^|\/)(node_modules|bower_components|\.venv|venv|site-packages|\.tox|\.git|fixtures?|__fixtures__|testdata|test-data|examples?|docs?|vendor|third_party|templates?|dist|build)(\/|$)/;
/** Under a JS workspace glob (`packages/**`), what is still not a package: installs and test fixtures. */
const JS_NOT_A_PACKAGE = /(^|\/)(node_modules|fixtures?|__fixtures__|testdata|test-data|tests?|__tests__)\//;
/** How deep below the root a Python sub-package is looked for (`packages/foo`, `libs/python/foo`). */
const PY_PACKAGE_DEPTH = 3;

const isString = (x: unknown): x is string => typeof x === 'string';

/** Workspace globs of package.json (`workspaces`: array or `{ packages }`), null when absent, or a failure. */
function packageJsonGlobs(text: string | undefined): string[] | null | WorkspaceFailure {
  if (text === undefined) return null;
  let pkg: { workspaces?: unknown };
  try {
    pkg = JSON.parse(text) as { workspaces?: unknown };
  } catch {
    return null; // detection rejects an unreadable root package.json with its own message
  }
  const w = pkg.workspaces;
  if (w === undefined || w === null) return null;
  const list = Array.isArray(w) ? w : typeof w === 'object' && Array.isArray((w as { packages?: unknown }).packages) ? (w as { packages: unknown[] }).packages : null;
  if (!list || !list.every(isString)) return { reason: 'workspace-unreadable', detail: `package.json "workspaces" is neither an array of globs nor { "packages": [...] }: ${JSON.stringify(w).slice(0, 200)}` };
  return list;
}

/** Globs of pnpm-workspace.yaml, or a failure (not YAML, `packages` not a list of strings). */
function pnpmGlobs(text: string): string[] | WorkspaceFailure {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    return { reason: 'workspace-unreadable', detail: `pnpm-workspace.yaml is not YAML: ${(e as Error).message.split('\n')[0]}` };
  }
  const list = doc && typeof doc === 'object' ? (doc as { packages?: unknown }).packages : undefined;
  // pnpm itself treats a workspace file without `packages` as the root package only.
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list) || !list.every(isString)) return { reason: 'workspace-unreadable', detail: `pnpm-workspace.yaml "packages" is not a list of globs: ${JSON.stringify(list).slice(0, 200)}` };
  return list;
}

/** Globs of lerna.json (`packages`, default `packages/*`), or a failure when it is not JSON. */
function lernaGlobs(text: string): string[] | WorkspaceFailure {
  try {
    const l = JSON.parse(text) as { packages?: unknown };
    if (l.packages === undefined) return ['packages/*'];
    if (!Array.isArray(l.packages) || !l.packages.every(isString)) return { reason: 'workspace-unreadable', detail: `lerna.json "packages" is not a list of globs: ${JSON.stringify(l.packages).slice(0, 200)}` };
    return l.packages;
  } catch (e) {
    return { reason: 'workspace-unreadable', detail: `lerna.json is not JSON: ${(e as Error).message}` };
  }
}

/** Directories matching `globs` (with `!` negations) among those that hold `manifest`. */
function matchDirs(files: string[], globs: string[], manifest: string): string[] {
  const candidates = files
    .filter((f) => f.endsWith('/' + manifest) && !JS_NOT_A_PACKAGE.test(f))
    .map((f) => f.slice(0, -manifest.length - 1));
  const norm = (g: string) => g.trim().replace(/^\.\//, '').replace(/\/+$/, '').replace(/\/package\.json$/, '');
  const include = globs.filter((g) => !g.startsWith('!')).map((g) => globRe(norm(g)));
  const exclude = globs.filter((g) => g.startsWith('!')).map((g) => globRe(norm(g.slice(1))));
  return [...new Set(candidates.filter((d) => include.some((re) => re.test(d)) && !exclude.some((re) => re.test(d))))].sort();
}

/** Whether the root has a Python manifest of its own. */
export function rootHasPythonManifest(files: string[]): boolean {
  return files.some((f) => /^(pyproject\.toml|setup\.py|setup\.cfg)$/.test(f));
}

/**
 * The repository's workspace, null when it is not a monorepo (or only the root is a package), or a
 * failure naming the declaration that cannot be interpreted. `snap.contents` must hold the root's
 * package.json, pnpm-workspace.yaml and lerna.json when they exist (manifestPaths reads them).
 */
export function findWorkspace(snap: RepoSnapshot, hint?: string | null): Workspace | WorkspaceFailure | null {
  const has = (p: string) => snap.files.includes(p);
  const js = has('package.json') || has('pnpm-workspace.yaml') || has('lerna.json');
  if (js && hint !== 'python') {
    let tool: WorkspaceTool | null = null;
    let globs: string[] | null = null;
    let source = '';
    if (has('pnpm-workspace.yaml')) {
      const g = pnpmGlobs(snap.contents['pnpm-workspace.yaml'] ?? '');
      if (!Array.isArray(g)) return g;
      [tool, globs, source] = ['pnpm', g, 'pnpm-workspace.yaml packages'];
    }
    if (!globs?.length) {
      const g = packageJsonGlobs(snap.contents['package.json']);
      if (g && !Array.isArray(g)) return g;
      if (g) [tool, globs, source] = [has('yarn.lock') ? 'yarn' : has('pnpm-lock.yaml') ? 'pnpm' : 'npm', g, 'package.json workspaces'];
    }
    if (!globs?.length && has('lerna.json')) {
      const g = lernaGlobs(snap.contents['lerna.json'] ?? '');
      if (!Array.isArray(g)) return g;
      [tool, globs, source] = ['lerna', g, 'lerna.json packages'];
    }
    if (tool && globs?.length) {
      const packages = matchDirs(snap.files, globs, 'package.json').filter((d) => d !== '');
      if (!packages.length) return { reason: 'workspace-unreadable', detail: `${source} (${globs.join(', ')}) match no directory with a package.json` };
      return { tool, language: 'javascript', packages, source: `${source}: ${globs.join(', ')}` };
    }
    if (has('package.json') && hint !== 'python') return null;
  }
  const py = new Set<string>();
  for (const f of snap.files) {
    const m = /^(.+)\/(pyproject\.toml|setup\.py)$/.exec(f);
    if (!m || m[1]!.split('/').length > PY_PACKAGE_DEPTH || NOT_A_PACKAGE.test(m[1]!) || /(^|\/)tests?(\/|$)/.test(m[1]!)) continue;
    py.add(m[1]!);
  }
  if (!py.size) return null;
  return { tool: 'python', language: 'python', packages: [...py].sort(), source: 'sub-directories with their own pyproject.toml / setup.py' };
}

/** The manifest files of the workspace's packages to read for detection (each package's own, like the root's). */
export function packageManifestPaths(files: string[], ws: Workspace, isManifest: (rel: string) => boolean): string[] {
  const out: string[] = [];
  for (const f of files) {
    const dir = packageOf(ws, f);
    if (dir && isManifest(f.slice(dir.length + 1))) out.push(f);
  }
  return out;
}

/** The nearest (deepest) package directory holding `path`, or null when it lies outside every package. */
export function packageOf(ws: Workspace, path: string): string | null {
  let best: string | null = null;
  for (const d of ws.packages) if (path.startsWith(d + '/') && (best === null || d.length > best.length)) best = d;
  return best;
}

/** A changed file as far as package selection cares (Candidate.files: ChangedFile). */
export interface Changed {
  path: string;
  /** code | test | docs | config | other */
  kind: string;
}

/** The packages a PR's changed code and test files lie in, and whether code or tests outside every package changed. */
export function touchedPackages(ws: Workspace, changed: Changed[]): { packages: string[]; rootTouched: boolean; outside: string[] } {
  const packages = new Set<string>();
  const outside: string[] = [];
  for (const f of changed) {
    if (f.kind !== 'code' && f.kind !== 'test') continue;
    const d = packageOf(ws, f.path);
    if (d) packages.add(d);
    else outside.push(f.path);
  }
  return { packages: [...packages].sort(), rootTouched: outside.length > 0, outside };
}

/** Where the tests of a PR run: the repository root, or one or more workspace packages. */
export type PackageChoice = { kind: 'root'; why: string } | { kind: 'packages'; dirs: string[]; why: string };

/** See the module comment for the rules. */
export function choosePackages(ws: Workspace, changed: Changed[], files: string[]): PackageChoice {
  const t = touchedPackages(ws, changed);
  if (!t.packages.length) return { kind: 'root', why: 'the PR changes no file inside a workspace package' };
  if (ws.language === 'javascript') {
    if (t.rootTouched) return { kind: 'root', why: `the PR also changes code or tests outside the packages (${t.outside.slice(0, 3).join(', ')})` };
    return { kind: 'packages', dirs: t.packages, why: `${ws.source}; the PR changes ${t.packages.join(', ')}` };
  }
  if (rootHasPythonManifest(files) && (t.rootTouched || t.packages.length > 1)) return { kind: 'root', why: `the root is a Python project and the PR changes ${t.rootTouched ? 'code at the root' : 'several sub-packages'}` };
  return { kind: 'packages', dirs: t.packages, why: `${ws.source}; the PR changes ${t.packages.join(', ')}` };
}

/** Root files a package shares with the repository root when it has none of its own: lockfiles, version pins, CI. */
const SHARED_ROOT_RE = /^(package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|pnpm-workspace\.yaml|\.yarnrc\.yml|\.nvmrc|\.node-version|\.python-version|uv\.lock|poetry\.lock|\.github\/workflows\/[^/]+\.ya?ml)$/;

/**
 * The snapshot as seen from package directory `dir`: its files and manifests with paths relative to it,
 * plus the root's lockfiles, version pins and CI workflows where the package has none of its own (a
 * workspace has one lockfile, at the root).
 */
export function reroot(snap: RepoSnapshot, dir: string): RepoSnapshot {
  const prefix = dir + '/';
  const files: string[] = [];
  const contents: Record<string, string> = {};
  for (const f of snap.files) if (f.startsWith(prefix)) files.push(f.slice(prefix.length));
  for (const [k, v] of Object.entries(snap.contents)) if (k.startsWith(prefix)) contents[k.slice(prefix.length)] = v;
  const own = new Set(files);
  for (const f of snap.files) {
    if (!SHARED_ROOT_RE.test(f) || own.has(f)) continue;
    files.push(f);
    if (f in snap.contents) contents[f] = snap.contents[f]!;
  }
  return { files, contents, commitDate: snap.commitDate };
}

/** A path of the package-relative view back at the repository root (`dir/path`, or the root file the view shares). */
export function fromPackage(snap: RepoSnapshot, dir: string, path: string): string {
  const full = posix.join(dir, path);
  return snap.files.includes(full) || !snap.files.includes(path) ? full : path;
}
