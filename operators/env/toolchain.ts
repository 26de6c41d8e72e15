/**
 * The interpreter a commit needs, chosen from the repository's own declarations at that commit and from
 * what can be built offline here: Python 3.9 / 3.11 / 3.13 (Debian bullseye / bookworm / trixie base
 * images, operators/sandbox/images.ts PYTHON_SUITES) and Node 14–24 (the npm registry's `node` package,
 * which installs the official binaries).
 *
 * Python: `requires-python` (PEP 440 specifiers) is a hard constraint; `.python-version` is a pin; trove
 * classifiers (`Programming Language :: Python :: 3.x`), tox envlist, nox sessions and CI matrices are the
 * versions the project says it supports — the highest available one of those is taken, else the available
 * one nearest to them. Without declarations, the interpreter current at the commit date.
 * Node: `engines.node` (semver range) is a hard constraint; `.nvmrc` / `.node-version` a pin; CI matrices
 * the supported versions; else the LTS line current at the commit date.
 */
import semver from 'semver';

/** Python minor versions the base images provide, oldest first, with Debian's patch release (bullseye, bookworm, trixie). */
export const PYTHON_AVAILABLE: ReadonlyArray<{ version: string; patch: number; released: string }> = [
  { version: '3.9', patch: 2, released: '2020-10-05' },
  { version: '3.11', patch: 2, released: '2022-10-24' },
  { version: '3.13', patch: 5, released: '2024-10-07' },
];

/** Node majors installable from the npm registry's `node` package, with their first release dates. Debian bookworm's own is 18. */
export const NODE_AVAILABLE: ReadonlyArray<{ major: number; released: string }> = [
  { major: 14, released: '2020-04-21' },
  { major: 16, released: '2021-04-20' },
  { major: 18, released: '2022-04-19' },
  { major: 20, released: '2023-04-18' },
  { major: 22, released: '2024-04-24' },
  { major: 24, released: '2025-05-06' },
];

/** The chosen interpreter and why. */
export interface ToolchainChoice {
  ok: true;
  version: string;
  /** the declaration the choice came from, e.g. `requires-python >=3.8; tox envlist 3.8, 3.9` */
  source: string;
  /** release date of the interpreter (ISO day): dependency resolution as of an older commit date is floored to it */
  released: string;
}

/** No available interpreter satisfies the repository's hard constraint. */
export interface ToolchainFailure {
  ok: false;
  /** names what was needed, e.g. `needs Python <3.8 (requires-python ">=2.7,<3.8"); base images provide 3.9, 3.11, 3.13` */
  detail: string;
}

const vt = (v: string): number[] => v.split('.').map((x) => Number(x));
function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/**
 * Whether Python `version` (`3.11.2`) satisfies a PEP 440 specifier set (`>=3.7,!=3.8.*,<4`). Clauses it
 * cannot read are ignored (a malformed specifier must not reject a commit). Read as projects mean them:
 * `<=3.11` admits 3.11.x and `>3.9` excludes 3.9.x.
 */
export function pythonSatisfies(version: string, spec: string): boolean {
  const v = vt(version);
  for (const clause of spec.split(',').map((c) => c.trim()).filter(Boolean)) {
    const m = /^(===|==|!=|~=|>=|<=|>|<)\s*v?(\d+(?:\.\d+)*)(\.\*)?/.exec(clause);
    if (!m) continue;
    const [, op, num, star] = m;
    const s = vt(num);
    const prefixEq = cmp(v.slice(0, s.length), s) === 0;
    const c = cmp(v, s);
    const ok =
      op === '==' || op === '===' ? (star ? prefixEq : c === 0)
      : op === '!=' ? (star ? !prefixEq : c !== 0)
      : op === '>=' ? c >= 0
      : op === '<=' ? c <= 0 || prefixEq
      : op === '>' ? c > 0 && !prefixEq
      : op === '<' ? c < 0 && !prefixEq
      : /* ~= */ c >= 0 && cmp(v.slice(0, s.length - 1), s.slice(0, s.length - 1)) === 0;
    if (!ok) return false;
  }
  return true;
}

/** `3.10` from declarations like `3.10`, `3.10.4`, `py310`, `cp310`, `3.10-dev`; null for `pypy-3.9`, `3.x`, `2.7`. */
export function pythonMinor(text: string): string | null {
  const t = text.trim().toLowerCase();
  if (/pypy|graalpy|\bx\b|\.x$/.test(t)) return null;
  const m = /^(?:py|cp)?(3)\.?(\d{1,2})(?:[.\-_a-z0-9]*)?$/.exec(t);
  return m ? `${m[1]}.${Number(m[2])}` : null;
}

/** Python minors named by trove classifiers in setup.py / setup.cfg / pyproject.toml texts. */
export function classifierPythons(text: string): string[] {
  return [...new Set([...text.matchAll(/Programming Language :: Python :: (3\.\d+)\b/g)].map((m) => m[1]))];
}

/** What a repository declares about Python. Every field optional. */
export interface PythonDeclarations {
  requiresPython?: string | null;
  /** first line of .python-version */
  pinned?: string | null;
  /** supported versions with where each list came from, e.g. `{ 'tox envlist': ['3.8', '3.9'] }` */
  supported?: Record<string, string[]>;
  commitDate?: string | null;
}

function nearest<T>(items: readonly T[], key: (t: T) => number, target: number): T {
  return [...items].sort((a, b) => Math.abs(key(a) - target) - Math.abs(key(b) - target) || key(b) - key(a))[0];
}

const minorNum = (v: string) => Number(v.split('.')[1] ?? 0);

/** Choose the Python version for a commit (see the module comment). */
export function choosePython(d: PythonDeclarations): ToolchainChoice | ToolchainFailure {
  const spec = d.requiresPython?.trim() || null;
  const avail = PYTHON_AVAILABLE.filter((p) => !spec || pythonSatisfies(`${p.version}.${p.patch}`, spec));
  if (!avail.length) return { ok: false, detail: `needs Python ${spec} (requires-python); base images provide ${PYTHON_AVAILABLE.map((p) => p.version).join(', ')}` };
  const why: string[] = spec ? [`requires-python ${spec}`] : [];
  const pick = (version: string, reason: string): ToolchainChoice => {
    const p = avail.find((a) => a.version === version)!;
    return { ok: true, version: p.version, source: [...why, reason].join('; '), released: p.released };
  };
  const pinned = d.pinned ? pythonMinor(d.pinned.split(/\s/)[0]) : null;
  if (pinned && avail.some((a) => a.version === pinned)) return pick(pinned, `.python-version ${pinned}`);
  const declared = new Set<string>();
  const from: string[] = [];
  for (const [src, list] of Object.entries(d.supported ?? {})) {
    const minors = list.map(pythonMinor).filter((v): v is string => v !== null);
    if (minors.length) from.push(`${src} ${[...new Set(minors)].join(', ')}`);
    for (const v of minors) declared.add(v);
  }
  if (pinned) {
    declared.add(pinned);
    from.push(`.python-version ${pinned}`);
  }
  if (declared.size) {
    const nums = [...declared].map(minorNum);
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    const exact = avail.filter((a) => declared.has(a.version));
    const inRange = avail.filter((a) => minorNum(a.version) >= lo && minorNum(a.version) <= hi);
    const chosen = exact.at(-1) ?? inRange.at(-1) ?? nearest(avail, (a) => minorNum(a.version), hi);
    return pick(chosen.version, from.join('; '));
  }
  // No declaration: the interpreter that was current when the commit was made.
  const day = d.commitDate?.slice(0, 10) ?? null;
  const target = day && day < '2021-10-04' ? 9 : 11;
  return pick(nearest(avail, (a) => minorNum(a.version), target).version, day ? `default for a commit of ${day}` : 'default');
}

/** What a repository declares about Node. */
export interface NodeDeclarations {
  /** package.json engines.node */
  engines?: string | null;
  /** .nvmrc / .node-version major */
  pinned?: number | null;
  /** supported majors with where each came from (CI matrices) */
  supported?: Record<string, string[]>;
  commitDate?: string | null;
}

/** Node major of a CI matrix entry (`18`, `18.x`, `v20.1`, `lts/*` → 22, `latest`/`node`/`*` → newest), or null. */
export function nodeMajorOf(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (['lts/*', 'lts', 'node', 'latest', 'current', '*'].includes(t)) return 22;
  const m = /^v?(\d+)(\.|$|\.x)/.exec(t);
  return m ? Number(m[1]) : null;
}

/** Choose the Node major for a commit (see the module comment). */
export function chooseNode(d: NodeDeclarations): ToolchainChoice | ToolchainFailure {
  const range = d.engines?.trim() || null;
  const valid = range ? semver.validRange(range) : null;
  const avail = NODE_AVAILABLE.filter((n) => !valid || semver.intersects(valid, `^${n.major}.0.0`));
  if (!avail.length) return { ok: false, detail: `needs Node ${range} (engines.node); installable: ${NODE_AVAILABLE.map((n) => n.major).join(', ')}` };
  const why: string[] = valid ? [`engines.node ${range}`] : [];
  const pick = (major: number, reason: string): ToolchainChoice => {
    const n = avail.find((a) => a.major === major)!;
    return { ok: true, version: String(n.major), source: [...why, reason].join('; '), released: n.released };
  };
  if (d.pinned !== null && d.pinned !== undefined) return pick(nearest(avail, (a) => a.major, d.pinned).major, `.nvmrc ${d.pinned}`);
  const declared = new Set<number>();
  const from: string[] = [];
  for (const [src, list] of Object.entries(d.supported ?? {})) {
    const majors = list.map(nodeMajorOf).filter((v): v is number => v !== null);
    if (majors.length) from.push(`${src} ${[...new Set(majors)].join(', ')}`);
    for (const m of majors) declared.add(m);
  }
  if (declared.size) {
    const hi = Math.max(...declared);
    const exact = avail.filter((a) => declared.has(a.major));
    return pick((exact.at(-1) ?? nearest(avail, (a) => a.major, hi)).major, from.join('; '));
  }
  const day = d.commitDate?.slice(0, 10) ?? null;
  // The active LTS line at the commit date (each even major becomes LTS in October of its year).
  const lts = day ? ([[ '2021-10-26', 14], ['2022-10-25', 16], ['2023-10-24', 18], ['2024-10-29', 20]] as Array<[string, number]>).find(([d0]) => day < d0)?.[1] ?? 22 : 18;
  return pick(nearest(avail, (a) => a.major, lts).major, day ? `LTS current on ${day}` : 'default');
}
