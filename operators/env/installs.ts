/**
 * Install rules that read what the repository says (operators/env/declared.ts) and turn it into install
 * commands, plus the toolchain choice (operators/env/toolchain.ts) and the repairs env-build may apply when
 * an install fails.
 *
 * Python installs go through uv (`uv pip install`, uv from PyPI) with `--exclude-newer` set to the commit
 * date — floored to the interpreter's release date, since libraries older than the interpreter often do not
 * run on it (an old pytest on Python 3.11 crashes at collection) — so an old commit gets the libraries of its
 * time where no lockfile pins them. Every uv command also reads an overrides file (`--overrides`): a
 * requirement that no longer resolves is dropped by an override line whose marker is never true, the
 * mechanism uv documents for removing a dependency (docs.astral.sh/uv, "Dependency overrides").
 * npm installs without a lockfile use `npm install --before=<date>` (npm docs, config `before`).
 *
 * Installs that would download binaries from hosts other than the package registries are told to skip them
 * by each tool's documented variable (puppeteer PUPPETEER_SKIP_DOWNLOAD, playwright
 * PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, cypress CYPRESS_INSTALL_BINARY=0, electron ELECTRON_SKIP_BINARY_DOWNLOAD,
 * chromedriver CHROMEDRIVER_SKIP_DOWNLOAD, geckodriver GECKODRIVER_SKIP_DOWNLOAD, sentry-cli
 * SENTRYCLI_SKIP_DOWNLOAD, node-sass SKIP_SASS_BINARY_DOWNLOAD_FOR_CI, husky HUSKY=0); tests that need a
 * browser get Debian's chromium (CHROME_BIN, PUPPETEER_EXECUTABLE_PATH).
 */
import type { Detection, RepoSnapshot } from './detect.js';
import { ciTestJob, makeTestSteps, noxSessions, toxEnv, type CiJob } from './declared.js';
import { chooseNode, choosePython, classifierPythons, type ToolchainChoice, type ToolchainFailure } from './toolchain.js';
import { nvmrcMajor, shellSegments } from './detect.js';

/** The uv overrides file every uv install reads (see the module comment). */
export const OVERRIDES_FILE = '/opt/swe-stream/overrides.txt';
/** Shell profile the first install command writes: skip-download variables and browser paths, read by every later `bash -lc`. */
export const INSTALL_PROFILE = '/etc/profile.d/swe-stream-install.sh';

/** Files (besides the manifests detect.ts reads) whose texts the install rules need. */
export const DECLARATION_RE = /^(\.github\/workflows\/[^/]+\.ya?ml|tox\.ini|noxfile\.py|Makefile|\.python-version|\.nvmrc|\.node-version|setup\.py|setup\.cfg|pyproject\.toml)$/;

/** What the repository declares, read once per snapshot. */
export interface Declarations {
  ci: CiJob | null;
  /** workflow files that did not parse */
  ciSkipped: string[];
  tox: ReturnType<typeof toxEnv> | null;
  nox: ReturnType<typeof noxSessions> | null;
  make: ReturnType<typeof makeTestSteps>;
}

/** Read every declaration of a snapshot (texts from `snap.contents`; absent files are empty). */
export function readDeclarations(snap: RepoSnapshot): Declarations {
  const c = snap.contents;
  const workflows = Object.fromEntries(Object.entries(c).filter(([p]) => /^\.github\/workflows\/[^/]+\.ya?ml$/.test(p)));
  const ciSkipped: string[] = [];
  return {
    ci: ciTestJob(workflows, ciSkipped),
    ciSkipped,
    tox: c['tox.ini'] ? toxEnv(c['tox.ini']) : null,
    nox: c['noxfile.py'] ? noxSessions(c['noxfile.py']) : null,
    make: c.Makefile ? makeTestSteps(c.Makefile) : [],
  };
}

/** `requires-python` from pyproject.toml [project], setup.cfg or setup.py, or null. */
export function requiresPython(c: Record<string, string>): string | null {
  const project = /^\[project\]\s*\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(c['pyproject.toml'] ?? '')?.[1] ?? '';
  return (
    /requires-python\s*=\s*["']([^"']+)["']/.exec(project)?.[1] ??
    /python_requires\s*=\s*([^\n#]+)/.exec(c['setup.cfg'] ?? '')?.[1].trim() ??
    /python_requires\s*=\s*["']([^"']+)["']/.exec(c['setup.py'] ?? '')?.[1] ??
    /^python\s*=\s*["']([^"']+)["']/m.exec(/^\[tool\.poetry\.dependencies\]\s*\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(c['pyproject.toml'] ?? '')?.[1] ?? '')?.[1]?.replace(/^\^(\d+)\.(\d+)/, '>=$1.$2') ??
    null
  );
}

/**
 * The interpreter the commit needs (see operators/env/toolchain.ts), from the snapshot's declarations.
 * Returns a failure naming what was needed when nothing here provides it.
 */
export function chooseToolchain(d: Detection, snap: RepoSnapshot, decl: Declarations): ToolchainChoice | ToolchainFailure {
  const c = snap.contents;
  if (d.language === 'python') {
    const supported: Record<string, string[]> = {};
    const classifiers = classifierPythons(`${c['setup.py'] ?? ''}\n${c['setup.cfg'] ?? ''}\n${c['pyproject.toml'] ?? ''}`);
    if (classifiers.length) supported.classifiers = classifiers;
    if (decl.tox?.pythonVersions.length) supported['tox envlist'] = decl.tox.pythonVersions;
    if (decl.nox?.pythonVersions.length) supported['nox sessions'] = decl.nox.pythonVersions;
    if (decl.ci?.pythonVersions.length) supported[`CI ${decl.ci.source}`] = decl.ci.pythonVersions;
    return choosePython({ requiresPython: requiresPython(c), pinned: c['.python-version'] ?? null, supported, commitDate: snap.commitDate });
  }
  let engines: string | null = null;
  try {
    engines = (JSON.parse(c['package.json'] ?? '{}') as { engines?: { node?: string } }).engines?.node ?? null;
  } catch {
    engines = null; // detection already rejected an unreadable package.json
  }
  const rc = c['.nvmrc'] ?? c['.node-version'];
  const supported: Record<string, string[]> = {};
  if (decl.ci?.nodeVersions.length) supported[`CI ${decl.ci.source}`] = decl.ci.nodeVersions;
  return chooseNode({ engines, pinned: rc !== undefined ? nvmrcMajor(rc) : null, supported, commitDate: snap.commitDate });
}

/** `YYYY-MM-DDT00:00:00Z` of the day after max(commit date, floor): the resolution cut-off. Null without a commit date. */
export function resolutionDate(commitDate: string | null | undefined, floor: string): string | null {
  if (!commitDate) return null;
  const t = Date.parse(commitDate);
  if (!Number.isFinite(t)) return null;
  const day = new Date(Math.max(t, Date.parse(`${floor}T00:00:00Z`)) + 86_400_000).toISOString().slice(0, 10);
  // A cut-off in the future would only make the command look dated: leave it out.
  return Date.parse(day) > Date.now() ? null : `${day}T00:00:00Z`;
}

const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);

/** PEP 517 build backends, resolved without the date cut-off (see {@link pythonInstallPlan}). */
const BUILD_BACKENDS = ['setuptools', 'wheel', 'setuptools-scm', 'flit-core', 'poetry-core', 'hatchling', 'hatch-vcs', 'pdm-backend'];

/** Packages the harness or the CI tooling brings, never worth installing from a CI line. */
const TOOLING = /^(pip|setuptools|wheel|uv|tox|nox|tox-gh-actions|tox-uv|nox-uv|coverage|codecov|coveralls|pytest-cov|twine|build|virtualenv|poetry|pipenv|pre-commit|flake8|mypy|black|isort|ruff|pylint)([<>=!~;[ ]|$)/i;

/** What CI / Makefile / nox lines add to a Python install, parsed from `pip install …` lines. */
export interface PythonExtras {
  requirementFiles: string[];
  constraintFiles: string[];
  extras: string[];
  packages: string[];
  /** the lines that contributed, for the row's notes */
  used: string[];
}

/** Read `pip install` / `uv pip install` lines into {@link PythonExtras}; other lines are ignored. */
export function pythonExtrasFrom(lines: string[], files: string[]): PythonExtras {
  const out: PythonExtras = { requirementFiles: [], constraintFiles: [], extras: [], packages: [], used: [] };
  for (const line of lines) {
    for (const words of shellSegments(line)) {
      const i = words.findIndex((w, k) => w === 'install' && /^(pip3?|pip)$/.test(words[k - 1] ?? ''));
      if (i < 0) continue;
      let used = false;
      for (let k = i + 1; k < words.length; k++) {
        const w = words[k];
        const next = () => words[++k] ?? '';
        if (w === '-r' || w === '--requirement') {
          const f = next().replace(/^\.\//, '');
          if (files.includes(f)) (out.requirementFiles.push(f), (used = true));
        } else if (w.startsWith('-r') && w.length > 2) {
          const f = w.slice(2).replace(/^\.\//, '');
          if (files.includes(f)) (out.requirementFiles.push(f), (used = true));
        } else if (w === '-c' || w === '--constraint') {
          const f = next().replace(/^\.\//, '');
          if (files.includes(f)) (out.constraintFiles.push(f), (used = true));
        } else if (w === '-e' || w === '--editable' || /^\.(\[[^\]]*\])?$/.test(w)) {
          const target = w.startsWith('-') ? next() : w;
          const m = /^\.\/?(?:\[([^\]]*)\])?$/.exec(target);
          if (m?.[1]) (out.extras.push(...m[1].split(',').map((x) => x.trim()).filter(Boolean)), (used = true));
        } else if (['-i', '--index-url', '--extra-index-url', '-f', '--find-links', '--target', '-t', '--prefix', '--root'].includes(w)) {
          k++; // options with a value we do not carry over
        } else if (!w.startsWith('-') && !TOOLING.test(w) && /^[A-Za-z0-9][A-Za-z0-9_.\-[\],]*([<>=!~]=?[^\s]*)?$/.test(w)) {
          out.packages.push(w);
          used = true;
        }
      }
      if (used) out.used.push(line);
    }
  }
  return out;
}

/** poetry's dev dependencies (`[tool.poetry.dev-dependencies]`, `[tool.poetry.group.<dev|test>.dependencies]`) as pip requirements (`^1.2` → `>=1.2,<2`). */
export function poetryDevRequirements(pyproject: string): string[] {
  const out: string[] = [];
  for (const m of pyproject.matchAll(/^\[tool\.poetry\.(?:dev-dependencies|group\.(?:dev|test|tests|testing)\.dependencies)\]\s*\n([\s\S]*?)(?=^\[|(?![\s\S]))/gm)) {
    for (const l of m[1].matchAll(/^([A-Za-z0-9_.-]+)\s*=\s*["']([^"']+)["']/gm)) {
      const [, name, spec] = l;
      if (name === 'python') continue;
      out.push(`${name}${poetrySpec(spec)}`);
    }
    for (const l of m[1].matchAll(/^([A-Za-z0-9_.-]+)\s*=\s*\{[^}]*version\s*=\s*["']([^"']+)["']/gm)) out.push(`${l[1]}${poetrySpec(l[2])}`);
  }
  return [...new Set(out)];
}

/** A poetry version constraint as a PEP 440 specifier (poetry docs, "Dependency specification"). */
export function poetrySpec(spec: string): string {
  const s = spec.trim();
  if (s === '*' || s === '') return '';
  const caret = /^\^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(s);
  if (caret) {
    const [maj, min, pat] = [Number(caret[1]), caret[2] === undefined ? null : Number(caret[2]), caret[3] === undefined ? null : Number(caret[3])];
    const lo = [maj, min ?? 0, pat ?? 0].join('.');
    const hi = maj > 0 ? `${maj + 1}.0` : min !== null && min > 0 ? `0.${min + 1}` : `0.0.${(pat ?? 0) + 1}`;
    return `>=${lo},<${hi}`;
  }
  const tilde = /^~(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(s);
  if (tilde) return `>=${[tilde[1], tilde[2] ?? 0, tilde[3] ?? 0].join('.')},<${tilde[2] !== undefined ? `${tilde[1]}.${Number(tilde[2]) + 1}` : `${Number(tilde[1]) + 1}.0`}`;
  if (/^\d/.test(s)) return `==${s}`;
  return s.replace(/\s+/g, '');
}

/** A Python install plan: the commands and what the rules decided, for the row. */
export interface InstallPlan {
  commands: string[];
  notes: string[];
}

/**
 * Python install commands: venv of the chosen interpreter, uv, then (each its own command so a failure
 * names its step) requirement files, the project with its test extras, dependency groups, and the extra
 * packages tox / nox / CI / Makefile / poetry name; pytest last.
 */
export function pythonInstallPlan(d: Detection, snap: RepoSnapshot, decl: Declarations, toolchain: ToolchainChoice): InstallPlan {
  const notes: string[] = [`python ${toolchain.version} (${toolchain.source})`];
  const date = resolutionDate(snap.commitDate, toolchain.released);
  if (date) notes.push(`dependencies resolved as of ${date.slice(0, 10)}${Date.parse(snap.commitDate ?? '') < Date.parse(toolchain.released) ? ` (commit ${snap.commitDate?.slice(0, 10)}, floored to Python ${toolchain.version}'s release)` : ''}`);
  const dated = `uv pip install --python /opt/venv/bin/python${date ? ` --exclude-newer ${date}` : ''} --overrides ${OVERRIDES_FILE}`;
  // Build backends are exempt from the cut-off: uv builds editable installs through PEP 660, which setuptools
  // only has since 64 (2022); an older backend fails with "no attribute 'build_editable'".
  const today = `${new Date().toISOString().slice(0, 10)}T00:00:00Z`;
  const uv = date ? `${dated}${BUILD_BACKENDS.map((b) => ` --exclude-newer-package ${b}=${today}`).join('')}` : dated;
  const cmds = [
    'python3 -m venv /opt/venv',
    `mkdir -p ${OVERRIDES_FILE.replace(/\/[^/]+$/, '')} && touch ${OVERRIDES_FILE} && python -m pip install -q uv`,
    // setuptools and wheel as of the commit in the environment itself: old setup.py files and pkg_resources
    // imports need them, and Python 3.12+ venvs no longer carry setuptools.
    `${dated} setuptools wheel`,
  ];
  const sources: string[] = [];
  if (decl.ci) sources.push(...decl.ci.steps.filter((s) => s.kind === 'install').map((s) => s.line));
  sources.push(...decl.make.filter((s) => s.kind === 'install').map((s) => s.line));
  const fromLines = pythonExtrasFrom(sources, snap.files);
  if (fromLines.used.length) notes.push(`from CI/Makefile: ${fromLines.used.join(' ; ')}`);
  const reqFiles = [...new Set([...d.requirementFiles, ...(decl.tox?.requirementFiles ?? []), ...(decl.nox?.requirementFiles ?? []), ...fromLines.requirementFiles])].filter((f) => snap.files.includes(f));
  const constraint = fromLines.constraintFiles.map((f) => ` -c ${q(f)}`).join('');
  for (const f of reqFiles) cmds.push(`${uv}${constraint} -r ${q(f)}`);
  if (d.installable) {
    let extras = [...new Set([...d.extras, ...(decl.tox?.extras ?? []), ...(decl.nox?.extras ?? []), ...fromLines.extras])];
    // setup.py that computes extras_require hides their names from a static read; pip and uv ignore an
    // extra the project does not define, so the usual test names are asked for.
    if (!extras.length && /extras_require/.test(snap.contents['setup.py'] ?? '')) {
      extras = ['test', 'tests', 'testing', 'dev'];
      notes.push('extras computed by setup.py: asked for test, tests, testing, dev');
    }
    cmds.push(`${uv}${constraint} -e ${q(extras.length ? `.[${extras.join(',')}]` : '.')}`);
  }
  for (const g of d.groups) cmds.push(`${uv} --group ${q(g)}`);
  const poetry = poetryDevRequirements(snap.contents['pyproject.toml'] ?? '');
  if (poetry.length) notes.push(`poetry dev dependencies: ${poetry.length}`);
  const pkgs = [...new Set([...d.toxDeps, ...(decl.nox?.installs ?? []), ...fromLines.packages, ...poetry])].filter((p) => !TOOLING.test(p) && !/^pytest([<>=!~;[ ]|$)/.test(p));
  if (pkgs.length) cmds.push(`${uv}${constraint} ${pkgs.map(q).join(' ')}`);
  // The harness drives every Python suite through pytest (it collects unittest cases too): the lockfile's
  // pin, else the pytest of the resolution date (which may be later than the commit: the interpreter floor),
  // else the major current at the commit.
  cmds.push(d.pytestPin ? `${uv} 'pytest==${d.pytestPin}'` : date || d.pytestBelow === null ? `${uv} pytest` : `${uv} 'pytest<${d.pytestBelow}'`);
  return { commands: cmds, notes };
}

/** Dependencies that download a browser or another binary at install time, and the tests that need a browser. */
const BROWSER_DEPS = /(^|["'/\s])(puppeteer|puppeteer-core|karma-chrome-launcher|karma-chromium-launcher|@web\/test-runner-chrome|@web\/test-runner-puppeteer|selenium-webdriver|chromedriver|testcafe)(["'@:\s]|$)/m;

/** The profile line every JS install gets (see the module comment), with the browser paths when `browser`. */
export function jsInstallProfile(browser: boolean): string {
  const vars = ['PUPPETEER_SKIP_DOWNLOAD=1', 'PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1', 'PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1', 'CYPRESS_INSTALL_BINARY=0', 'ELECTRON_SKIP_BINARY_DOWNLOAD=1', 'CHROMEDRIVER_SKIP_DOWNLOAD=true', 'GECKODRIVER_SKIP_DOWNLOAD=true', 'SENTRYCLI_SKIP_DOWNLOAD=1', 'SKIP_SASS_BINARY_DOWNLOAD_FOR_CI=true', 'HUSKY=0'];
  // Chromium refuses to run as root without --no-sandbox; the wrapper adds it for every launcher.
  if (browser) vars.push('CHROME_BIN=/usr/local/bin/chromium-no-sandbox', 'CHROMIUM_BIN=/usr/local/bin/chromium-no-sandbox', 'PUPPETEER_EXECUTABLE_PATH=/usr/local/bin/chromium-no-sandbox');
  return `printf '%s\\n' ${vars.map((v) => q(`export ${v}`)).join(' ')} > ${INSTALL_PROFILE}`;
}

/** JS install additions: the profile, Debian's chromium when tests need a browser, the date for npm without a lockfile, CI build steps. */
export interface JsInstallPlan {
  /** commands run before the package manager's install */
  before: string[];
  /** `--before=<date>` for `npm install` when no lockfile pins versions, else null */
  npmBefore: string | null;
  /** build steps CI runs before the tests (added to the pre-commands unless the test script builds already) */
  buildSteps: string[];
  notes: string[];
}

/** See {@link JsInstallPlan}. */
export function jsInstallPlan(d: Detection, snap: RepoSnapshot, decl: Declarations, toolchain: ToolchainChoice): JsInstallPlan {
  const notes: string[] = [`node ${toolchain.version} (${toolchain.source})`];
  const c = snap.contents;
  const lockTexts = ['package.json', 'package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'npm-shrinkwrap.json'].map((f) => c[f] ?? '').join('\n');
  const browser = BROWSER_DEPS.test(lockTexts);
  const before = [jsInstallProfile(browser)];
  notes.push('binary downloads skipped (puppeteer, playwright, cypress, electron, chromedriver, sass…)');
  if (browser) {
    before.push(
      'export DEBIAN_FRONTEND=noninteractive && apt-get update -q && apt-get install -y -q --no-install-recommends chromium && rm -rf /var/lib/apt/lists/* && ' +
        `printf '#!/bin/sh\\nexec /usr/bin/chromium --no-sandbox --disable-dev-shm-usage "$@"\\n' > /usr/local/bin/chromium-no-sandbox && chmod 755 /usr/local/bin/chromium-no-sandbox`,
    );
    notes.push("tests need a browser: Debian's chromium");
  }
  const locked = ['package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml'].some((f) => snap.files.includes(f));
  const date = !locked && d.packageManager === 'npm' ? resolutionDate(snap.commitDate, '1970-01-01') : null;
  if (date) notes.push(`no lockfile: npm install --before=${date.slice(0, 10)}`);
  const have = d.preTest.join('\n');
  const buildSteps = (decl.ci?.steps ?? [])
    .filter((s) => s.kind === 'build' && !have.includes(s.line))
    .map((s) => s.line);
  if (buildSteps.length) notes.push(`build steps from ${decl.ci?.source}: ${buildSteps.join(' ; ')}`);
  return { before, npmBefore: date, buildSteps, notes };
}

/** Package names that are lint, type-check, formatting or docs tooling: dropping one never changes what the tests exercise. */
const DROPPABLE = /^(types-[\w.-]+|[\w.-]+-stubs|mypy(-[\w-]+)?|flake8([\w-]*)|pylint([\w-]*)|black|isort|ruff|pre-commit|pyright|bandit|pydocstyle|pycodestyle|pyflakes|autopep8|yapf|codespell|doc8|rstcheck|twine|check-manifest|sphinx([\w-]*)|furo|myst-parser|mkdocs([\w-]*)|sqlfluff|pyupgrade|blacken-docs|interrogate|darglint|safety|pip-audit)$/i;

/**
 * The requirement that made a failed uv / pip install unresolvable, when it is lint or type-stub tooling
 * (so it may be dropped); null otherwise. Reads uv's resolver messages ("no version of X", "X was not found
 * in the package registry", "all versions of X", "X==1.2 was yanked") and pip's ("No matching distribution
 * found for X").
 */
export function droppableRequirement(log: string): string | null {
  const names = [
    ...log.matchAll(/no versions? of ([A-Za-z0-9_.-]+)/gi),
    ...log.matchAll(/([A-Za-z0-9_.-]+) was not found in the package registry/gi),
    ...log.matchAll(/all (?:available )?versions of ([A-Za-z0-9_.-]+)/gi),
    ...log.matchAll(/([A-Za-z0-9_.-]+)(?:==|===)[^\s,]+ (?:was|is) yanked/gi),
    ...log.matchAll(/No matching distribution found for ([A-Za-z0-9_.-]+)/gi),
    ...log.matchAll(/Could not find a version that satisfies the requirement ([A-Za-z0-9_.-]+)/gi),
  ].map((m) => m[1].toLowerCase());
  return names.find((n) => DROPPABLE.test(n)) ?? null;
}

/** The install command that drops `name` from every later uv resolution (appended to the overrides file). */
export function dropCommand(name: string): string {
  return `echo ${q(`${name} ; sys_platform == "never"`)} >> ${OVERRIDES_FILE}`;
}

/**
 * `owner/repo` of a git-hosted dependency an npm or yarn install could not fetch (`git ls-remote` / `git
 * clone` of a github.com, gitlab.com or bitbucket.org URL: the network here reaches package registries
 * only), or null. Such a dependency is almost always pulled in by dev tooling of an old commit (ljharb/qs:
 * `evalmd@0.0.19` depends on `reggi/node-fs-extra#enhanced`).
 */
export function unreachableGitDependency(log: string): string | null {
  const m = /\b(?:ls-remote|clone)\b[^\n]*?(?:github\.com|gitlab\.com|bitbucket\.org)[/:]([\w.-]+\/[\w.-]+?)(?:\.git)?(?=[\s#"']|$)/m.exec(log);
  return m ? m[1]! : null;
}

/**
 * Shell lines (network on, in the work tree) printing, one per line, the root package.json's devDependencies
 * whose published manifests (any version in the declared range) depend on `repo` by git: one level deep,
 * which is where old dev tooling declares such forks. Prints nothing when none does or npm cannot tell.
 */
export function gitDependentsProbe(repo: string): string {
  const list = `node -e 'const p=require("./package.json");for(const [n,r] of Object.entries(p.devDependencies||{}))console.log(n+"\\t"+r)'`;
  return `${list} | while IFS=$'\\t' read -r n r; do npm view "$n@$r" dependencies --json 2>/dev/null | grep -qF ${q(repo)} && echo "$n"; done; true`;
}

/** The install line that removes devDependency `name` from package.json (by key: names may hold dots and slashes, which `npm pkg` paths would split). */
export function dropDevDependencyCommand(name: string): string {
  const edit = 'const fs=require("fs"),p=JSON.parse(fs.readFileSync("package.json","utf8"));delete p.devDependencies[process.argv[1]];fs.writeFileSync("package.json",JSON.stringify(p,null,2)+"\\n")';
  return `node -e ${q(edit)} ${q(name)}`;
}

/**
 * Package managers' own error lines: npm ("npm ERR! code E…", "npm error network request to URL failed"),
 * pnpm (`ERR_PNPM_…`), yarn ("error …"), pip/uv ("ERROR: …", "error: …") and git ("fatal: …"). An install that
 * falls back through several commands (`npm ci || npm install …`) ends with generic advice ("check your proxy
 * settings"); the line that names the package or URL is earlier in the output.
 */
const ERROR_LINE = /^(npm (ERR!|error) (code|errno|network request|404|notarget|ENOVERSIONS|No matching|Could not resolve)|.*\bERR_PNPM_\w+|error (Couldn't|An unexpected|Command failed|\S+: )|ERROR: (Could not|No matching|Cannot|Failed)|error: (Failed|No solution|Because|Distribution)|fatal: )/;

/**
 * The distinct error lines of an install's output (see {@link ERROR_LINE}), first `max` of them, each cut at
 * 300 characters; empty when none is recognised.
 */
export function errorLines(output: string, max = 6): string[] {
  const out: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!ERROR_LINE.test(line) || out.includes(line.slice(0, 300))) continue;
    out.push(line.slice(0, 300));
    if (out.length === max) break;
  }
  return out;
}
