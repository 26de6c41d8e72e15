import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { detect, enginesMinMajor, manifestPaths, nvmrcMajor, requiresPythonMin, shellSegments, cleanRunnerArgs, toxTestDeps, type Detection, type RepoSnapshot } from '../../../operators/env/detect.js';
import { buildRecipe, normaliseManifest } from '../../../operators/env/recipes.js';
import { TAP_WARMUP } from '../../../operators/runners/tap.js';

const BASE = 'swe-stream/base-x:1';
/** The uv install prefix of a recipe without a commit date (no resolution cut-off). */
const UV = 'uv pip install --python /opt/venv/bin/python --overrides /opt/swe-stream/overrides.txt';
/** The first JS install command: the skip-download profile (operators/env/installs.ts). */
const PROFILE = expect.stringMatching(/^printf .*PUPPETEER_SKIP_DOWNLOAD=1.* > \/etc\/profile\.d\/swe-stream-install\.sh$/);

function snap(contents: Record<string, string>, extra: string[] = []): RepoSnapshot {
  return { files: [...Object.keys(contents), ...extra], contents };
}
function ok(d: ReturnType<typeof detect>): Detection {
  if ('reason' in d) throw new Error(`expected a detection, got ${d.reason}: ${d.detail}`);
  return d;
}

describe('shell parsing helpers', () => {
  it('splits on && ; || and keeps quoted words whole', () => {
    expect(shellSegments(`cross-env TZ=Pacific/Auckland npm run test-tz && jest --coverage --coverageThreshold="{ \\"global\\": { \\"lines\\": 100} }"; echo 'a b' || x`)).toEqual([
      ['cross-env', 'TZ=Pacific/Auckland', 'npm', 'run', 'test-tz'],
      ['jest', '--coverage', '--coverageThreshold={ "global": { "lines": 100} }'],
      ['echo', 'a b'],
      ['x'],
    ]);
  });
  it('drops the repository reporter, coverage and watch flags', () => {
    expect(cleanRunnerArgs('mocha', ['--require', '@babel/register', '--reporter', 'dot', '--recursive'])).toEqual(['--require', '@babel/register', '--recursive']);
    expect(cleanRunnerArgs('jest', ['--coverage', '--coverageThreshold={}', '--watchAll=false', 'test/x'])).toEqual(['test/x']);
    expect(cleanRunnerArgs('vitest', ['run', '--reporter=verbose', '--coverage.enabled'])).toEqual([]);
  });
  it('reads Node and Python version constraints', () => {
    expect(nvmrcMajor('v20.11.1\n')).toBe(20);
    expect(nvmrcMajor('lts/hydrogen')).toBe(18);
    expect(nvmrcMajor('lts/*')).toBe(22);
    expect(enginesMinMajor('>=22.12.0')).toBe(22);
    expect(enginesMinMajor('>= 0.10')).toBe(0);
    expect(enginesMinMajor('^14 || >=16')).toBe(14);
    expect(enginesMinMajor('<16 >=12')).toBe(12);
    expect(requiresPythonMin('>=3.10')).toEqual([3, 10]);
    expect(requiresPythonMin('>3.11,<4')).toEqual([3, 12]);
  });
  it('reads plain tox [testenv] deps only', () => {
    expect(toxTestDeps('[tox]\nenvlist = py3\n[testenv]\ndeps =\n    pytest>=7\n    -rrequirements.txt\n    py311: mock\n    hypothesis\ncommands = pytest\n')).toEqual(['pytest>=7', 'hypothesis']);
  });
});

describe('Python detection and recipes', () => {
  it('a unittest repository with requirement files and tox (more-itertools layout) runs through pytest', () => {
    const s = snap(
      {
        'pyproject.toml': '[build-system]\nrequires = ["flit_core >=4,<5"]\nbuild-backend = "flit_core.buildapi"\n\n[project]\nname = "more-itertools"\nrequires-python = ">=3.10"\ndynamic = ["version"]\n',
        'tox.ini': '[tox]\nenvlist = py{310,311}\n\n[testenv]\ncommands = {envpython} -m unittest -v {posargs}\n',
        'requirements/testing.txt': 'coverage\nruff\n',
        'requirements/development.txt': '--requirement testing.txt\n',
      },
      ['more_itertools/__init__.py', 'tests/test_more.py', 'docs/conf.py'],
    );
    const d = ok(detect(s, 'python'));
    expect(d).toMatchObject({ language: 'python', runner: 'pytest', packageManager: 'pip', installable: true, requirementFiles: ['requirements/testing.txt'] });
    const r = buildRecipe(d, s.files, s.contents, BASE);
    expect(r.installCommands).toEqual([
      'python3 -m venv /opt/venv',
      'mkdir -p /opt/swe-stream && touch /opt/swe-stream/overrides.txt && python -m pip install -q uv',
      `${UV} setuptools wheel`,
      `${UV} -r requirements/testing.txt`,
      `${UV} -e .`,
      `${UV} pytest`,
    ]);
    expect(r.testCommand).toContain('python -m pytest -rA -v --color=no -p no:cacheprovider --continue-on-collection-errors -o junit_family=xunit1 ');
    expect(r.testCommand).toContain(' --junitxml=/tmp/swe-stream/report.xml');
    // requires-python >=3.10 rules out 3.9; tox's py310/py311 pick 3.11.
    expect(r).toMatchObject({ reportFormat: 'junit', workdir: '/testbed', pythonVersion: '3.11', toolchainSource: 'requires-python >=3.10; tox envlist 3.10, 3.11' });
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('pins pytest to the major current at the commit date', () => {
    const files = ['x/__init__.py', 'tests/test_x.py'];
    const mk = (commitDate: string | null) => {
      const s = { files: ['setup.py', ...files], contents: { 'setup.py': 'from setuptools import setup\nsetup(name="x")\n' }, commitDate };
      return buildRecipe(ok(detect(s)), s.files, s.contents, { baseImage: BASE, commitDate }).installCommands.at(-1);
    };
    // With a commit date, the pytest of that date (uv --exclude-newer) rather than a major bound.
    expect(mk('2025-06-01T10:00:00+02:00')).toMatch(/--exclude-newer 2025-06-02T00:00:00Z .* pytest$/);
    // A 2021 commit gets Python 3.9 and libraries no older than 3.9's release.
    expect(mk('2021-01-01T00:00:00Z')).toMatch(/--exclude-newer 2021-01-02T00:00:00Z .* pytest$/);
    expect(mk('2026-01-01T00:00:00Z')).toMatch(/ pytest$/);
    expect(mk(null)).toBe(`${UV} pytest`);
    // A lockfile's pin wins (click keeps pytest in uv.lock).
    const s = { files: ['setup.py', 'uv.lock', ...files], contents: { 'setup.py': '', 'uv.lock': 'version = 1\n\n[[package]]\nname = "pytest"\nversion = "8.3.5"\nsource = { registry = "https://pypi.org/simple" }\n' }, commitDate: '2026-01-01T00:00:00Z' };
    const d = ok(detect(s));
    expect(d.pytestPin).toBe('8.3.5');
    expect(d.manifests).not.toContain('uv.lock');
    expect(buildRecipe(d, s.files, s.contents, BASE).installCommands.at(-1)).toBe(`${UV} 'pytest==8.3.5'`);
  });

  it('PEP 735 dependency groups and test extras are installed (click layout)', () => {
    const s = snap(
      {
        'pyproject.toml': '[project]\nname = "click"\nversion = "8.5.0.dev"\nrequires-python = ">=3.10"\n\n[project.optional-dependencies]\ntesting = ["pytest"]\ndocs = ["sphinx"]\n\n[dependency-groups]\ndev = ["ruff", "tox"]\ntests = [\n    "pytest",\n]\ntyping = ["mypy"]\n\n[build-system]\nrequires = ["flit_core>=3.11,<4"]\n',
      },
      ['src/click/core.py', 'tests/test_basic.py'],
    );
    const d = ok(detect(s));
    expect(d.groups).toEqual(['tests']);
    expect(d.extras).toEqual(['testing']);
    const r = buildRecipe(d, s.files, s.contents, BASE);
    expect(r.installCommands).toContain(`${UV} -e '.[testing]'`);
    expect(r.installCommands).toContain(`${UV} --group tests`);
  });

  it('a version bump of the package does not change the recipe hash; a dependency change does', () => {
    const py = (v: string, dep: string) => `[project]\nname = "x"\nversion = "${v}"\ndependencies = ["${dep}"]\n[tool.ruff]\nline-length = 80\n`;
    const mk = (text: string) => {
      const s = snap({ 'pyproject.toml': text }, ['tests/test_x.py']);
      return buildRecipe(ok(detect(s)), s.files, s.contents, BASE).hash;
    };
    expect(mk(py('1.0', 'attrs'))).toBe(mk(py('1.1', 'attrs')));
    expect(mk(py('1.0', 'attrs'))).not.toBe(mk(py('1.0', 'attrs>=23')));
    expect(normaliseManifest('pyproject.toml', py('1.0', 'a'))).not.toContain('line-length');
  });

  it('leaves the interpreter to the toolchain rules and rejects repositories without tests', () => {
    const py312 = snap({ 'pyproject.toml': '[project]\nname="x"\nrequires-python = ">=3.12"\n' }, ['tests/test_a.py']);
    expect(buildRecipe(ok(detect(py312)), py312.files, py312.contents, BASE).pythonVersion).toBe('3.13');
    expect(detect(snap({ 'setup.py': 'from setuptools import setup\nsetup(name="x")\n' }, ['x/__init__.py']))).toMatchObject({ reason: 'no-test-suite' });
    expect(detect(snap({ 'README.md': '' }, ['main.go']))).toMatchObject({ reason: 'unsupported-language' });
  });
});

describe('JavaScript detection and recipes', () => {
  it('dayjs layout: the whole-suite jest call is chosen over single-file calls, coverage off, json report', () => {
    const pkg = {
      scripts: {
        test: 'cross-env TZ=Pacific/Auckland npm run test-tz && npm run test-tz && jest --coverage --coverageThreshold="{ \\"global\\": { \\"lines\\": 100} }"',
        'test-tz': 'date && jest test/timezone.test --coverage=false',
      },
      jest: { roots: ['test'] },
      devDependencies: { jest: '^22.4.3' },
    };
    const s = snap({ 'package.json': JSON.stringify(pkg), 'package-lock.json': '{"lockfileVersion":3,"version":"0.0.0","packages":{"":{"version":"0.0.0"}}}' }, ['src/index.js', 'test/parse.test.js']);
    const d = ok(detect(s, 'javascript'));
    expect(d).toMatchObject({ runner: 'jest', runnerArgs: [], packageManager: 'npm', nodeMajor: null });
    const r = buildRecipe(d, s.files, s.contents, BASE);
    expect(r.installCommands).toEqual([PROFILE, 'npm ci --no-audit --no-fund || npm install --no-audit --no-fund || npm install --no-audit --no-fund --legacy-peer-deps']);
    expect(r.testCommand).toContain('jest --ci --maxWorkers=2 --coverage=false --json --outputFile=/tmp/swe-stream/report.json');
    expect(r.preCommands).toEqual(['export PATH="$PWD/node_modules/.bin:$PATH"']);
    expect(r.reportFormat).toBe('jest-json');
  });

  it('commander layout: node --test with engines >=22 installs node@22 and a junit reporter', () => {
    const pkg = { type: 'module', scripts: { test: 'node --test && npm run check:type:ts', 'check:type:ts': 'tsd && tsc -p tsconfig.ts.json' }, engines: { node: '>=22.12.0' }, devDependencies: { typescript: '^6' } };
    const s = snap({ 'package.json': JSON.stringify(pkg), 'package-lock.json': '{}', 'tsconfig.json': '{}' }, ['index.js', 'tests/command.test.js']);
    const d = ok(detect(s));
    expect(d).toMatchObject({ runner: 'node-test', nodeMajor: 22, language: 'typescript' });
    const r = buildRecipe(d, s.files, s.contents, BASE);
    expect(r.installCommands[1]).toBe('npm install -g node@22 && hash -r && node --version');
    expect(r.testCommand).toContain('node --test --test-reporter=$__fmt');
    expect(r.testCommand).toContain('/tmp/swe-stream/report.xml');
    expect(r.nodeVersion).toBe('22');
  });

  it('node-lru-cache layout: `tap` with node-tap 21 and engines 20 || >=22; the install ends with the node-tap warm-up (plugins while the network is on)', () => {
    const pkg = { type: 'module', scripts: { prepare: 'tshy', pretest: 'npm run prepare', test: 'tap' }, engines: { node: '20 || >=22' }, devDependencies: { tap: '^21.7.2', tshy: '^4.1.1' } };
    const s = snap({ 'package.json': JSON.stringify(pkg), 'package-lock.json': '{}', '.taprc': 'plugin:\n  - "@tapjs/clock"\n' }, ['src/index.ts', 'test/ttl.ts', 'test/fixtures/expose.ts']);
    const d = ok(detect(s));
    expect(d).toMatchObject({ runner: 'tap', nodeMajor: 20 });
    const r = buildRecipe(d, s.files, s.contents, BASE);
    expect(r.installCommands.at(-1)).toBe(TAP_WARMUP);
    expect(r.preCommands).toContain('npm run prepare');
  });

  it('node --test without an engines range stays on the base image Node (the shared runner falls back to TAP there)', () => {
    const s = snap({ 'package.json': JSON.stringify({ scripts: { test: 'node --test test/' } }) }, ['test/a.test.js']);
    expect(ok(detect(s)).nodeMajor).toBeNull();
  });

  it('validator layout: nyc-wrapped mocha keeps its requires, drops its reporter, and the pretest build runs first (lint dropped)', () => {
    const pkg = { scripts: { pretest: 'npm run build && npm run lint', test: 'nyc --reporter=cobertura --reporter=text-summary mocha --require @babel/register --reporter dot --recursive' }, devDependencies: { mocha: '^6.2.3', nyc: '^14' } };
    const s = snap({ 'package.json': JSON.stringify(pkg) }, ['src/index.js', 'test/validators.test.js']);
    const d = ok(detect(s));
    expect(d).toMatchObject({ runner: 'mocha', runnerArgs: ['--require', '@babel/register', '--recursive'], preTest: ['npm run build'] });
    const r = buildRecipe(d, s.files, s.contents, BASE);
    expect(r.installCommands).toEqual([PROFILE, 'npm install --no-audit --no-fund || npm install --no-audit --no-fund --legacy-peer-deps']);
    // The repository's mocha hooks and build reach every later test run through pre_commands.
    expect(r.preCommands).toEqual(['export PATH="$PWD/node_modules/.bin:$PATH"', "export NODE_OPTIONS='--require @babel/register'", 'npm run build']);
    expect(r.testCommand).toMatch(/export NODE_OPTIONS='--require @babel\/register' && npm run build && \{ CI=true NO_COLOR=1 FORCE_COLOR=0 npx mocha --require @babel\/register --recursive --reporter json --reporter-option output=\/tmp\/swe-stream\/report\.json; \}$/);
  });

  it('package managers from packageManager and lockfiles; vitest with the junit reporter', () => {
    const pkg = { scripts: { test: 'vitest --coverage' }, devDependencies: { vitest: '^3' } };
    const files = ['src/a.ts', 'src/a.test.ts'];
    const pn = ok(detect(snap({ 'package.json': JSON.stringify(pkg), 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n" }, files)));
    expect(pn).toMatchObject({ packageManager: 'pnpm', runner: 'vitest', runnerArgs: [] });
    expect(buildRecipe(pn, files, {}, BASE).testCommand).toContain('vitest run --coverage.enabled=false --reporter=verbose --reporter=junit --outputFile=/tmp/swe-stream/report.xml');
    expect(ok(detect(snap({ 'package.json': JSON.stringify(pkg), 'yarn.lock': '' }, files))).packageManager).toBe('yarn');
    expect(ok(detect(snap({ 'package.json': JSON.stringify({ ...pkg, packageManager: 'yarn@4.1.0' }), 'yarn.lock': '' }, files))).packageManager).toBe('yarn-berry');
  });

  it('falls back to devDependencies when the test script names no runner, and rejects the npm placeholder', () => {
    const files = ['lib/a.js', 'test/a.spec.js'];
    expect(ok(detect(snap({ 'package.json': JSON.stringify({ scripts: { test: 'gulp test' }, devDependencies: { mocha: '10' } }) }, files))).runner).toBe('mocha');
    expect(detect(snap({ 'package.json': JSON.stringify({ scripts: { test: 'echo "Error: no test specified" && exit 1' } }) }, files))).toMatchObject({ reason: 'no-test-suite' });
  });

  it('the package version in package.json and package-lock.json does not change the hash', () => {
    const mk = (v: string) => {
      const s = snap({ 'package.json': JSON.stringify({ version: v, scripts: { test: 'jest' }, devDependencies: { jest: '29' } }), 'package-lock.json': JSON.stringify({ version: v, lockfileVersion: 3, packages: { '': { version: v }, 'node_modules/jest': { version: '29.0.0' } } }) }, ['a.test.js']);
      return buildRecipe(ok(detect(s)), s.files, s.contents, BASE).hash;
    };
    expect(mk('1.0.0')).toBe(mk('1.0.1'));
  });

  it('asks only for root manifests', () => {
    expect(manifestPaths(['package.json', 'packages/a/package.json', 'requirements-dev.txt', 'src/x.py', '.nvmrc', 'jest.config.js', 'uv.lock'])).toEqual(['package.json', 'requirements-dev.txt', '.nvmrc', 'jest.config.js', 'uv.lock']);
  });
});

// Real manifests recorded from public repositories (test/fixtures/manifests: the file list at HEAD and the
// contents of the manifests manifestPaths() asks for; see test/fixtures/RECORDED.md).
const MANIFESTS = path.resolve(import.meta.dirname, '../../fixtures/manifests');
const real: Array<[string, string, Partial<Detection>]> = [
  ['iamkun__dayjs', 'javascript', { runner: 'jest', packageManager: 'npm' }],
  ['tj__commander.js', 'javascript', { runner: 'node-test', nodeMajor: 22 }],
  ['validatorjs__validator.js', 'javascript', { runner: 'mocha', preTest: ['npm run build'] }],
  ['more-itertools__more-itertools', 'python', { runner: 'pytest', installable: true }],
  ['pallets__click', 'python', { runner: 'pytest', groups: ['tests'] }],
];
describe.each(real)('real manifests of %s at a recorded HEAD', (name, lang, want) => {
  it(`detects ${JSON.stringify(want)}`, () => {
    const rec = JSON.parse(gunzipSync(readFileSync(path.join(MANIFESTS, `${name}.json.gz`))).toString('utf8')) as RepoSnapshot;
    expect(manifestPaths(rec.files).sort()).toEqual(Object.keys(rec.contents).sort());
    const d = ok(detect({ files: rec.files, contents: rec.contents }, lang));
    expect(d).toMatchObject(want);
  });
});
