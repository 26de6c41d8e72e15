/**
 * What a repository itself says about installing and testing it, read before any agent is asked: the test
 * job of its GitHub Actions workflows (`run:` steps before the tests, `actions/setup-python` /
 * `actions/setup-node` versions with the job's matrix resolved), tox.ini's `[testenv]`, noxfile.py's test
 * sessions and the Makefile's test target. Pure functions over file texts (unit-tested on recorded files).
 *
 * Sources of the formats: GitHub Actions workflow syntax (jobs.<id>.steps[*].run / uses / with,
 * jobs.<id>.strategy.matrix with include, `${{ matrix.x }}` expressions); tox's configuration (INI with
 * configparser continuation lines; `envlist`, `deps` with `factor:` conditions, `extras`, `-r` files,
 * `{toxinidir}`); nox (`@nox.session(python=…)`, `session.install(…)`); GNU make rules (`target: prereqs`
 * and tab-indented recipe lines).
 */
import YAML from 'yaml';

/** What one kind of shell line does, as far as environment building is concerned. */
export type StepKind = 'install' | 'build' | 'test' | 'lint' | 'other';

/** The test job of a CI workflow, reduced to what env-build uses. */
export interface CiJob {
  /** workflow file path and job id, e.g. `.github/workflows/ci.yml#test` */
  source: string;
  /** versions from setup-python's `python-version` (matrix resolved), as written: `3.9`, `3.10`, `pypy-3.9`, `3.x` */
  pythonVersions: string[];
  /** versions from setup-node's `node-version` (matrix resolved), as written: `18`, `20.x`, `lts/*` */
  nodeVersions: string[];
  /** version files setup-python / setup-node were pointed at (`python-version-file`, `node-version-file`) */
  versionFiles: string[];
  /** shell lines of the `run:` steps before the first test line, each with its kind; `${{ }}` resolved or the line dropped */
  steps: Array<{ line: string; kind: StepKind }>;
}

const TEST_RE = /(^|[\s;&|(])(pytest|py\.test|tox|nox|nosetests|unittest|(npm|yarn|pnpm)( run)? test[\w:-]*|npx (jest|vitest|mocha)|jest|vitest|mocha|ava|tape|make (test|check)[\w-]*)(\s|$|;)/;
const LINT_RE = /\b(flake8|pylint|mypy|pyright|black|isort|ruff|pre-commit|eslint|prettier|tslint|standard|xo|codespell|pydocstyle|bandit|lint|twine|check-manifest|codecov|coveralls|sphinx-build|mkdocs)\b/;
const INSTALL_RE = /^((python3?(\.\d+)?|py) -m )?(pip3?|uv pip|uv) (install|sync)\b|^(poetry|pipenv|pdm|hatch) install\b|^python3? setup\.py (develop|install)\b|^(npm (ci|install|i)|pnpm (install|i)|bun install)(\s|$)|^yarn( install)?(\s+-[-\w=]+)*\s*$|^(apt-get|apt) (update|install)\b/;
const BUILD_RE = /^(npm run|yarn( run)?|pnpm( -r| --recursive)?( run)?|bun run) (build|compile|prepare|prepublish|bundle|dist)[\w:-]*(\s|$)|^(npx )?tsc(\s|$)|^python3? setup\.py build(_ext)?\b|^make( (build|all|compile|develop))?\s*$/;

/** Kind of one shell line (already stripped of `sudo` and make's `@`/`-` prefixes). */
export function stepKind(line: string): StepKind {
  const l = line.trim();
  if (LINT_RE.test(l) && !TEST_RE.test(l.replace(LINT_RE, ''))) return 'lint';
  if (INSTALL_RE.test(l)) return 'install';
  if (BUILD_RE.test(l)) return 'build';
  if (TEST_RE.test(` ${l} `)) return 'test';
  return 'other';
}

/** Split a `run:` script into logical lines: `\`-continuations joined, comments and blanks dropped, `sudo ` removed. */
export function scriptLines(script: string): string[] {
  return script
    .replace(/\s*\\\r?\n\s*/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim().replace(/^sudo (-E )?/, ''))
    .filter((l) => l && !l.startsWith('#'));
}

type Matrix = Record<string, unknown>;

/** Every combination's value of a matrix key: the key's list plus `include` entries' values. */
function matrixValues(matrix: Matrix | undefined, key: string): string[] {
  if (!matrix || typeof matrix !== 'object') return [];
  const out: string[] = [];
  const v = matrix[key];
  if (Array.isArray(v)) out.push(...v.map(String));
  else if (v !== undefined && v !== null && typeof v !== 'object') out.push(String(v));
  for (const inc of Array.isArray(matrix.include) ? matrix.include : []) if (inc && typeof inc === 'object' && key in inc) out.push(String((inc as Matrix)[key]));
  return out;
}

/** Resolve `${{ matrix.k }}` in `text` to each matrix value (every value for a single expression; the first value when several differ). */
function expand(text: string, matrix: Matrix | undefined): string[] {
  const exprs = [...text.matchAll(/\$\{\{\s*matrix\.([\w-]+)\s*\}\}/g)];
  if (!exprs.length) return [text];
  if (exprs.length === 1) return matrixValues(matrix, exprs[0][1]).map((v) => text.replace(exprs[0][0], v));
  let t = text;
  for (const e of exprs) {
    const v = matrixValues(matrix, e[1])[0];
    if (v === undefined) return [];
    t = t.replace(e[0], v);
  }
  return [t];
}

/** A job's score as "the test job": runs a test line, is named like one, is not a lint/docs/release job. */
function jobScore(id: string, job: Record<string, unknown>, lines: string[]): number {
  const name = `${id} ${String(job.name ?? '')}`.toLowerCase();
  if (!lines.some((l) => stepKind(l) === 'test')) return -1;
  let s = 1;
  if (/test|ci|build|check/.test(name)) s += 2;
  if (/lint|doc|release|deploy|publish|bench|coverage|e2e|integration|windows|macos/.test(name)) s -= 2;
  const runsOn = JSON.stringify(job['runs-on'] ?? '');
  if (/ubuntu|linux/.test(runsOn) || /matrix\.os/.test(runsOn)) s += 1;
  return s;
}

/**
 * The test job of the workflows in `files` (path → YAML text), or null when no job runs tests. A workflow
 * that does not parse is skipped (its path is added to `skipped`).
 */
export function ciTestJob(files: Record<string, string>, skipped: string[] = []): CiJob | null {
  let best: { score: number; job: CiJob } | null = null;
  for (const [path, text] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    let doc: { jobs?: Record<string, Record<string, unknown>> };
    try {
      doc = YAML.parse(text) as typeof doc;
    } catch {
      skipped.push(path);
      continue;
    }
    for (const [id, job] of Object.entries(doc?.jobs ?? {})) {
      if (!job || typeof job !== 'object' || !Array.isArray(job.steps)) continue;
      const matrix = ((job.strategy as Matrix | undefined)?.matrix ?? undefined) as Matrix | undefined;
      const ci: CiJob = { source: `${path}#${id}`, pythonVersions: [], nodeVersions: [], versionFiles: [], steps: [] };
      const all: string[] = [];
      let tested = false;
      for (const step of job.steps as Array<Record<string, unknown>>) {
        if (!step || typeof step !== 'object') continue;
        const uses = String(step.uses ?? '');
        const w = (step.with ?? {}) as Record<string, unknown>;
        if (/setup-python@/.test(uses) || /setup-node@/.test(uses)) {
          const py = /setup-python@/.test(uses);
          const v = w[py ? 'python-version' : 'node-version'];
          const vals = Array.isArray(v) ? v.map(String) : typeof v === 'string' || typeof v === 'number' ? String(v).split(/\r?\n/).filter(Boolean) : [];
          for (const x of vals) (py ? ci.pythonVersions : ci.nodeVersions).push(...expand(x.trim(), matrix));
          const f = w[py ? 'python-version-file' : 'node-version-file'];
          if (typeof f === 'string') ci.versionFiles.push(f);
        }
        if (typeof step.run !== 'string') continue;
        for (const raw of scriptLines(step.run)) {
          const line = expand(raw, matrix)[0];
          all.push(raw);
          if (tested || line === undefined || /\$\{\{/.test(line)) continue;
          const kind = stepKind(line);
          if (kind === 'test') tested = true;
          else ci.steps.push({ line, kind });
        }
      }
      const score = jobScore(id, job, all);
      if (score >= 0 && (!best || score > best.score)) best = { score, job: ci };
    }
  }
  return best?.job ?? null;
}

/** A configparser-style INI (tox.ini, setup.cfg): sections → keys → values, continuation lines joined with `\n`. */
export function iniSections(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let sec: Record<string, string> | null = null;
  let key: string | null = null;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*[#;]/.test(raw) || !raw.trim()) continue;
    const h = /^\[([^\]]+)\]\s*$/.exec(raw);
    if (h) {
      sec = out[h[1].trim()] ??= {};
      key = null;
    } else if (/^\s/.test(raw) && sec && key) sec[key] += `\n${raw.trim()}`;
    else if (sec) {
      const m = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(raw);
      if (m) {
        key = m[1].trim();
        sec[key] = m[2].trim();
      }
    }
  }
  return out;
}

/** What tox.ini's `[testenv]` asks for. */
export interface ToxEnv {
  /** Python versions of `envlist` (`py39` → `3.9`, `py3.10` → `3.10`, `py{38,39}` expanded) */
  pythonVersions: string[];
  /** plain requirements of `deps` (unconditional or under a py/test factor) */
  deps: string[];
  /** `-r` files of `deps`, `{toxinidir}/` removed */
  requirementFiles: string[];
  /** `extras =` of the project */
  extras: string[];
}

/** Expand tox's `{a,b}` generative names: `py{38,39}-django{3,4}` → py38-django3 … */
function expandBraces(s: string): string[] {
  const m = /\{([^{}]*)\}/.exec(s);
  if (!m) return [s];
  return m[1].split(',').flatMap((alt) => expandBraces(s.slice(0, m.index) + alt.trim() + s.slice(m.index + m[0].length)));
}

/** Python version of a tox factor (`py39`, `py3.10`, `py310`), or null. */
export function toxFactorPython(f: string): string | null {
  const m = /^py(3)\.?(\d{1,2})$/.exec(f);
  return m ? `${m[1]}.${m[2]}` : null;
}

/** Read tox.ini (see {@link ToxEnv}). Factor-conditional deps are kept when a factor names a Python or a test env. */
export function toxEnv(text: string): ToxEnv {
  const ini = iniSections(text);
  // Commas inside `{…}` belong to a generative name, not to the list.
  const envs = (ini.tox?.envlist ?? ini.tox?.env_list ?? '').split(/[\n,](?![^{]*\})/).flatMap((e) => expandBraces(e.trim())).filter(Boolean);
  const pythonVersions = [...new Set(envs.flatMap((e) => e.split('-').map(toxFactorPython).filter((v): v is string => v !== null)))];
  const te = ini.testenv ?? {};
  const deps: string[] = [];
  const requirementFiles: string[] = [];
  for (let line of (te.deps ?? '').split('\n').map((l) => l.trim()).filter(Boolean)) {
    const cond = /^([\w.,!{}-]+):\s+(.*)$/.exec(line);
    if (cond) {
      if (!/(^|[,-])(py3?\d*|test\w*|unit)([,-]|$)/.test(cond[1]) || cond[1].startsWith('!')) continue;
      line = cond[2];
    }
    line = line.replace(/\{toxinidir\}\/?/g, '');
    const r = /^-r\s*(\S+)$/.exec(line);
    if (r) requirementFiles.push(r[1]);
    else if (!line.startsWith('-') && !line.includes('{') && !line.startsWith('.')) deps.push(line);
  }
  const extras = (te.extras ?? '').split(/[\n,]/).map((e) => e.trim()).filter((e) => /^[\w.-]+$/.test(e));
  return { pythonVersions, deps, requirementFiles, extras };
}

/** What noxfile.py's test sessions install. */
export interface NoxSessions {
  pythonVersions: string[];
  /** packages and `-e .[x]`-style project installs of `session.install(…)` */
  installs: string[];
  requirementFiles: string[];
  extras: string[];
}

/** The string literals of a Python list or call argument text. */
function pyStrings(text: string): string[] {
  return [...text.matchAll(/(["'])((?:(?!\1).)*)\1/g)].map((m) => m[2]);
}

/** Read the `session.install(...)` calls and Python versions of noxfile.py sessions whose name says test. */
export function noxSessions(text: string): NoxSessions {
  const out: NoxSessions = { pythonVersions: [], installs: [], requirementFiles: [], extras: [] };
  const consts = new Map<string, string[]>();
  for (const m of text.matchAll(/^([A-Z_][A-Z0-9_]*)\s*=\s*(\[[^\]]*\]|\([^)]*\))/gm)) consts.set(m[1], pyStrings(m[2]));
  const blocks = text.split(/^(?=@(?:nox\.)?session)/m).slice(1);
  for (const b of blocks) {
    const head = /^@(?:nox\.)?session(?:\(([^)]*)\))?\s*\n\s*def\s+(\w+)/.exec(b);
    if (!head || !/test|unit|pytest/.test(head[2])) continue;
    const py = /python\s*=\s*(\[[^\]]*\]|\([^)]*\)|["'][^"']+["']|[A-Z_][A-Z0-9_]*)/.exec(head[1] ?? '')?.[1];
    if (py) out.pythonVersions.push(...(consts.get(py) ?? pyStrings(py)));
    // The body: the indented lines after the `def` line.
    const rest = b.slice(head[0].length);
    const afterDef = rest.slice(rest.indexOf('\n') + 1);
    const end = afterDef.search(/^\S/m);
    const body = end < 0 ? afterDef : afterDef.slice(0, end);
    for (const call of body.matchAll(/session\.install\(([^)]*)\)/g)) {
      const args = pyStrings(call[1]);
      for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if ((a === '-r' || a === '--requirement') && args[i + 1]) out.requirementFiles.push(args[++i]);
        else if (a.startsWith('-r')) out.requirementFiles.push(a.slice(2));
        else if (/^\.(\[[^\]]*\])?$/.test(a)) out.extras.push(...(/\[([^\]]*)\]/.exec(a)?.[1].split(',').map((x) => x.trim()) ?? []));
        else if (!a.startsWith('-')) out.installs.push(a);
      }
    }
  }
  out.pythonVersions = [...new Set(out.pythonVersions)];
  return out;
}

/**
 * The install and build lines the Makefile's test target (`test`, `tests`, `check`, `unit`) runs, itself and
 * through its prerequisites, before its first test line. `$(PYTHON)` / `$(PIP)` are read as python / pip;
 * a line with another make variable is dropped.
 */
export function makeTestSteps(text: string): Array<{ line: string; kind: StepKind }> {
  const rules = new Map<string, { prereqs: string[]; lines: string[] }>();
  let cur: { prereqs: string[]; lines: string[] } | null = null;
  for (const raw of text.replace(/\\\r?\n\s*/g, ' ').split(/\r?\n/)) {
    if (raw.startsWith('\t')) {
      cur?.lines.push(raw.trim().replace(/^[@-]+/, ''));
      continue;
    }
    const m = /^([\w.-]+(?:\s+[\w.-]+)*)\s*:(?!=)\s*([^;#]*)/.exec(raw);
    if (m) {
      cur = { prereqs: m[2].split(/\s+/).filter(Boolean), lines: [] };
      for (const t of m[1].split(/\s+/)) rules.set(t, cur);
    } else if (raw.trim() && !raw.startsWith('#')) cur = null;
  }
  const target = ['test', 'tests', 'check', 'unit', 'test-unit'].find((t) => rules.has(t));
  if (!target) return [];
  const out: Array<{ line: string; kind: StepKind }> = [];
  const seen = new Set<string>();
  const visit = (t: string): boolean => {
    const r = rules.get(t);
    if (!r || seen.has(t)) return false;
    seen.add(t);
    for (const p of r.prereqs) if (visit(p)) return true;
    for (let line of r.lines) {
      line = line.replace(/\$\(PYTHON3?\)|\$\{PYTHON3?\}/g, 'python').replace(/\$\(PIP3?\)|\$\{PIP3?\}/g, 'python -m pip').replace(/^sudo /, '');
      if (/\$[({]/.test(line)) continue;
      const kind = stepKind(line);
      if (kind === 'test') return true;
      out.push({ line, kind });
    }
    return false;
  };
  visit(target);
  return out;
}
