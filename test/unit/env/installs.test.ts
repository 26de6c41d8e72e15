/**
 * Install rules that read what the repository says (CI workflows, tox, nox, Makefile, setup.py), the
 * toolchain choice, and the install repairs — on recorded repository files (test/fixtures/declarations, see
 * test/fixtures/RECORDED.md) and small inline cases.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ciTestJob, makeTestSteps, noxSessions, stepKind, toxEnv } from '../../../operators/env/declared.js';
import { chooseNode, choosePython, pythonSatisfies } from '../../../operators/env/toolchain.js';
import { chooseToolchain, droppableRequirement, dropCommand, dropDevDependencyCommand, errorLines, gitDependentsProbe, unreachableGitDependency, poetryDevRequirements, poetrySpec, pythonExtrasFrom, readDeclarations, resolutionDate } from '../../../operators/env/installs.js';
import { detect, type Detection, type RepoSnapshot } from '../../../operators/env/detect.js';
import { buildRecipe, recipeHash } from '../../../operators/env/recipes.js';

const FIX = join(import.meta.dirname, '../../fixtures/declarations');
const read = (p: string) => readFileSync(join(FIX, p), 'utf8');
function ok(d: ReturnType<typeof detect>): Detection {
  if ('reason' in d) throw new Error(`expected a detection, got ${d.reason}: ${d.detail}`);
  return d;
}

describe('CI workflows', () => {
  it('cachetools: the test job, its matrix Pythons, and the install line before tox', () => {
    const job = ciTestJob({ '.github/workflows/ci.yml': read('cachetools/ci.yml') })!;
    expect(job.source).toBe('.github/workflows/ci.yml#main');
    expect(job.pythonVersions).toEqual(['3.10', '3.11', '3.12', '3.13', '3.13t', '3.14', '3.14t', 'pypy3.10', 'pypy3.11']);
    expect(job.steps).toEqual([{ line: 'pip install coverage tox', kind: 'install' }]);
  });

  it('vuejs/core: the Linux unit-test job wins over windows and e2e jobs; the version file is noted', () => {
    const job = ciTestJob({ '.github/workflows/test.yml': read('vuejs-core/test.yml') })!;
    expect(job.source).toBe('.github/workflows/test.yml#unit-test');
    expect(job.versionFiles).toEqual(['.node-version']);
    expect(job.steps).toEqual([{ line: 'pnpm install', kind: 'install' }]);
  });

  it('build steps before the tests are kept, lint steps and steps after the tests are not; include entries and multi-line runs are read', () => {
    const wf = `jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: npm run lint
  test:
    runs-on: \${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-latest]
        node: [16, 18]
        include:
          - node: 20
    steps:
      - uses: actions/setup-node@v4
        with:
          node-version: \${{ matrix.node }}
      - run: |
          npm ci
          npm run build -- --prod \\
            --silent
          npx eslint .
      - run: npm test
      - run: npm run build:docs
`;
    const job = ciTestJob({ '.github/workflows/ci.yml': wf, '.github/workflows/broken.yml': 'jobs: [' })!;
    expect(job.nodeVersions).toEqual(['16', '18', '20']);
    expect(job.steps).toEqual([
      { line: 'npm ci', kind: 'install' },
      { line: 'npm run build -- --prod --silent', kind: 'build' },
      { line: 'npx eslint .', kind: 'lint' },
    ]);
    const skipped: string[] = [];
    ciTestJob({ '.github/workflows/broken.yml': 'jobs: [' }, skipped);
    expect(skipped).toEqual(['.github/workflows/broken.yml']);
  });

  it('classifies shell lines', () => {
    expect(stepKind('python -m pip install -e .[test]')).toBe('install');
    expect(stepKind('uv sync --all-extras')).toBe('install');
    expect(stepKind('python -m pytest -x tests')).toBe('test');
    expect(stepKind('yarn build')).toBe('build');
    expect(stepKind('pnpm -r run build')).toBe('build');
    expect(stepKind('flake8 src')).toBe('lint');
    expect(stepKind('echo hi')).toBe('other');
  });
});

describe('tox, nox, Makefile', () => {
  it('marshmallow 2019: tox extras and envlist Pythons (lint and docs envs are not Pythons)', () => {
    expect(toxEnv(read('marshmallow/tox.ini'))).toEqual({ pythonVersions: ['3.5', '3.6', '3.7'], deps: [], requirementFiles: [], extras: ['tests'] });
  });

  it('cachetools: plain deps of [testenv]', () => {
    expect(toxEnv(read('cachetools/tox.ini'))).toMatchObject({ deps: ['pytest', 'pytest-cov'], pythonVersions: [] });
  });

  it('generative envlists, -r files and factor-conditional deps', () => {
    const t = toxEnv('[tox]\nenvlist = py{38,39,310}-django{32,42}, lint\n[testenv]\ndeps =\n    -r{toxinidir}/requirements/test.txt\n    django32: Django>=3.2,<3.3\n    py38: mock\n    !py38: attrs\n    lint: flake8\nextras = testing, yaml\n');
    expect(t).toEqual({ pythonVersions: ['3.8', '3.9', '3.10'], deps: ['mock'], requirementFiles: ['requirements/test.txt'], extras: ['testing', 'yaml'] });
  });

  it('noxfile sessions whose name says test', () => {
    const nox = `import nox\nPYTHONS = ["3.8", "3.9", "3.10"]\n\n@nox.session(python=PYTHONS)\ndef tests(session):\n    session.install("-r", "requirements-test.txt")\n    session.install("-e", ".[socks]", "trustme")\n    session.run("pytest")\n\n@nox.session\ndef lint(session):\n    session.install("black")\n`;
    expect(noxSessions(nox)).toEqual({ pythonVersions: ['3.8', '3.9', '3.10'], installs: ['trustme'], requirementFiles: ['requirements-test.txt'], extras: ['socks'] });
  });

  it('the Makefile test target with its install prerequisites', () => {
    const mk = `PYTHON ?= python3\n.PHONY: test\ninstall-dev:\n\t$(PYTHON) -m pip install -e .[dev]\n\t@pip install -r requirements-test.txt\ntest: install-dev\n\t$(PYTHON) -m pytest tests\n\techo done\nlint:\n\tflake8\n`;
    expect(makeTestSteps(mk)).toEqual([
      { line: 'python -m pip install -e .[dev]', kind: 'install' },
      { line: 'pip install -r requirements-test.txt', kind: 'install' },
    ]);
  });

  it('pip install lines become requirement files, extras and packages; tooling is left out', () => {
    expect(pythonExtrasFrom(['pip install -U pip', 'python -m pip install -e ".[test,yaml]" -r requirements/ci.txt hypothesis "numpy<2" tox', 'pip install --index-url https://x y'], ['requirements/ci.txt'])).toEqual({
      requirementFiles: ['requirements/ci.txt'],
      constraintFiles: [],
      extras: ['test', 'yaml'],
      packages: ['hypothesis', 'numpy<2', 'y'],
      used: ['python -m pip install -e ".[test,yaml]" -r requirements/ci.txt hypothesis "numpy<2" tox', 'pip install --index-url https://x y'],
    });
  });

  it('poetry dev dependencies as pip requirements', () => {
    expect(poetrySpec('^1.2.3')).toBe('>=1.2.3,<2.0');
    expect(poetrySpec('^0.4')).toBe('>=0.4.0,<0.5');
    expect(poetrySpec('~2.1')).toBe('>=2.1.0,<2.2');
    expect(poetrySpec('7.1')).toBe('==7.1');
    expect(poetrySpec('>=1, <3')).toBe('>=1,<3');
    expect(poetryDevRequirements('[tool.poetry.dependencies]\npython = "^3.8"\n\n[tool.poetry.group.dev.dependencies]\npytest = "^7.0"\nfreezegun = { version = "^1.2", optional = false }\n')).toEqual(['pytest>=7.0.0,<8.0', 'freezegun>=1.2.0,<2.0']);
  });
});

describe('toolchain', () => {
  it('reads PEP 440 specifiers as projects mean them', () => {
    expect(pythonSatisfies('3.9.2', '>=3.7,<3.10')).toBe(true);
    expect(pythonSatisfies('3.11.2', '>=3.7,<3.10')).toBe(false);
    expect(pythonSatisfies('3.11.2', '!=3.11.*')).toBe(false);
    expect(pythonSatisfies('3.11.2', '~=3.8')).toBe(true);
    expect(pythonSatisfies('3.13.5', '<=3.11')).toBe(false);
    expect(pythonSatisfies('3.11.2', '<=3.11')).toBe(true);
    expect(pythonSatisfies('3.9.2', '>3.9')).toBe(false);
    expect(pythonSatisfies('3.13.5', '>=2.7, !=3.0.*, !=3.1.*')).toBe(true);
  });

  it('Python: requires-python bounds, then the highest declared available version, else the nearest', () => {
    expect(choosePython({ requiresPython: '>=3.10', supported: { ci: ['3.10', '3.11', '3.12', '3.13', 'pypy3.10'] } })).toMatchObject({ ok: true, version: '3.13' });
    expect(choosePython({ supported: { classifiers: ['3.5', '3.6', '3.7'] } })).toMatchObject({ ok: true, version: '3.9' });
    expect(choosePython({ supported: { 'tox envlist': ['3.10', '3.12'] } })).toMatchObject({ ok: true, version: '3.11' });
    expect(choosePython({ pinned: '3.13.1\n', supported: { ci: ['3.9'] } })).toMatchObject({ ok: true, version: '3.13', source: '.python-version 3.13' });
    expect(choosePython({ commitDate: '2019-05-01T00:00:00Z' })).toMatchObject({ version: '3.9', source: 'default for a commit of 2019-05-01' });
    expect(choosePython({ commitDate: '2023-05-01T00:00:00Z' })).toMatchObject({ version: '3.11' });
    const none = choosePython({ requiresPython: '>=2.7,<3.8' });
    expect(none).toEqual({ ok: false, detail: 'needs Python >=2.7,<3.8 (requires-python); base images provide 3.9, 3.11, 3.13' });
  });

  it('Node: engines bound, .nvmrc pin, CI matrix, else the LTS line of the commit date', () => {
    expect(chooseNode({ engines: '>=20.0.0', pinned: 22 })).toMatchObject({ ok: true, version: '22' });
    expect(chooseNode({ pinned: 10 })).toMatchObject({ ok: true, version: '14', source: '.nvmrc 10' });
    expect(chooseNode({ supported: { ci: ['10.x', '12.x', '14.x'] } })).toMatchObject({ version: '14' });
    expect(chooseNode({ engines: '^16 || ^18', supported: { ci: ['16', '18', '20'] } })).toMatchObject({ version: '18' });
    expect(chooseNode({ commitDate: '2021-03-01T00:00:00Z' })).toMatchObject({ version: '14' });
    expect(chooseNode({ commitDate: '2023-03-01T00:00:00Z' })).toMatchObject({ version: '18' });
    expect(chooseNode({ engines: '<12' })).toEqual({ ok: false, detail: 'needs Node <12 (engines.node); installable: 14, 16, 18, 20, 22, 24' });
  });

  it('cachetools at a 2026 commit: Python 3.13 from the CI matrix within requires-python', () => {
    const contents = { 'pyproject.toml': read('cachetools/pyproject.toml'), 'tox.ini': read('cachetools/tox.ini'), '.github/workflows/ci.yml': read('cachetools/ci.yml') };
    const snap: RepoSnapshot = { files: [...Object.keys(contents), 'src/cachetools/__init__.py', 'tests/test_cache.py'], contents, commitDate: '2026-04-20T20:56:12+02:00' };
    const d = ok(detect(snap));
    const tc = chooseToolchain(d, snap, readDeclarations(snap));
    expect(tc).toMatchObject({ ok: true, version: '3.13' });
    expect(tc.ok && tc.source).toContain('CI .github/workflows/ci.yml#main 3.10, 3.11, 3.12, 3.13, 3.14');
  });

  it('vuejs/core: lts/* from .node-version within engines >=20', () => {
    const contents = { 'package.json': read('vuejs-core/package.json'), '.node-version': read('vuejs-core/.node-version'), 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n" };
    const snap: RepoSnapshot = { files: [...Object.keys(contents), 'packages/runtime-core/__tests__/h.spec.ts', 'vitest.config.ts'], contents, commitDate: '2026-08-21T08:21:46+08:00' };
    const d = ok(detect(snap, 'typescript'));
    expect(chooseToolchain(d, snap, readDeclarations(snap))).toMatchObject({ ok: true, version: '22' });
  });
});

describe('recipes from declarations', () => {
  it('marshmallow 2019 (setup.py extras in a variable, tox extras = tests): Python 3.9, the tests extra, libraries of 2020-10 (3.9 release floor)', () => {
    const contents = { 'setup.py': read('marshmallow/setup.py'), 'tox.ini': read('marshmallow/tox.ini') };
    const files = [...Object.keys(contents), 'src/marshmallow/__init__.py', 'tests/test_schema.py'];
    const d = ok(detect({ files, contents }));
    const r = buildRecipe(d, files, contents, { baseImage: 'b', commitDate: '2019-08-28T20:28:18-04:00' });
    expect(r.pythonVersion).toBe('3.9');
    expect(r.toolchainSource).toBe('requires-python >=3.5; classifiers 3.5, 3.6, 3.7; tox envlist 3.5, 3.6, 3.7');
    const project = r.installCommands.find((c) => c.endsWith(" -e '.[tests]'"))!;
    expect(project).toMatch(/^uv pip install --python \/opt\/venv\/bin\/python --exclude-newer 2020-10-06T00:00:00Z --overrides \/opt\/swe-stream\/overrides\.txt /);
    // Build backends are exempt from the cut-off (PEP 660 editable builds need setuptools >= 64).
    expect(project).toMatch(/--exclude-newer-package setuptools=\d{4}-\d\d-\d\dT00:00:00Z/);
    expect(r.installNotes).toContain("dependencies resolved as of 2020-10-06 (commit 2019-08-28, floored to Python 3.9's release)");
  });

  it('setup.py that computes extras_require without any other declaration asks for the usual test extras', () => {
    const contents = { 'setup.py': 'from setuptools import setup\nEXTRAS = {"tests": ["simplejson"]}\nsetup(name="x", extras_require=EXTRAS)\n' };
    const files = ['setup.py', 'x/__init__.py', 'tests/test_x.py'];
    const r = buildRecipe(ok(detect({ files, contents })), files, contents, 'b');
    expect(r.installCommands.some((c) => c.endsWith("-e '.[test,tests,testing,dev]'"))).toBe(true);
    expect(r.installNotes).toContain('extras computed by setup.py: asked for test, tests, testing, dev');
  });

  it('JS: skip-download profile always; Debian chromium when a browser launcher is a dependency; npm --before without a lockfile; CI build steps become pre-commands', () => {
    const pkg = { scripts: { test: 'mocha' }, devDependencies: { mocha: '10', puppeteer: '^21' } };
    const wf = 'jobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: npm install\n      - run: npm run build\n      - run: npm test\n';
    const contents = { 'package.json': JSON.stringify(pkg), '.github/workflows/ci.yml': wf };
    const files = [...Object.keys(contents), 'test/a.test.js'];
    const r = buildRecipe(ok(detect({ files, contents })), files, contents, { baseImage: 'b', commitDate: '2021-03-04T05:06:07Z' });
    expect(r.installCommands[0]).toContain('PUPPETEER_SKIP_DOWNLOAD=1');
    expect(r.installCommands[0]).toContain('CHROME_BIN=/usr/local/bin/chromium-no-sandbox');
    expect(r.installCommands[1]).toContain('apt-get install -y -q --no-install-recommends chromium');
    expect(r.installCommands).toContain('npm install -g node@14 && hash -r && node --version');
    expect(r.installCommands.at(-1)).toBe('npm install --no-audit --no-fund --before=2021-03-05T00:00:00Z || npm install --no-audit --no-fund --before=2021-03-05T00:00:00Z --legacy-peer-deps || npm install --no-audit --no-fund || npm install --no-audit --no-fund --legacy-peer-deps');
    expect(r.preCommands).toContain('npm run build');
    expect(r.nodeVersion).toBe('14');
  });

  it('the resolution date does not change the recipe hash (consecutive PRs share an image)', () => {
    const contents = { 'setup.py': 'from setuptools import setup\nsetup(name="x")\n' };
    const files = ['setup.py', 'tests/test_x.py'];
    const d = ok(detect({ files, contents }));
    const a = buildRecipe(d, files, contents, { baseImage: 'b', commitDate: '2023-01-01T00:00:00Z' });
    const b = buildRecipe(d, files, contents, { baseImage: 'b', commitDate: '2023-02-01T00:00:00Z' });
    expect(a.installCommands).not.toEqual(b.installCommands);
    expect(a.hash).toBe(b.hash);
    const { hash: _h, ...rest } = a;
    expect(recipeHash({ ...rest, baseImage: 'other' }, contents)).not.toBe(a.hash);
  });
});

describe('install repairs', () => {
  it('names a lint or type-stub requirement that no longer resolves, and only those', () => {
    const uvLog = '  × No solution found when resolving dependencies:\n  ╰─▶ Because there is no version of types-sqlalchemy==1.4.53.38 and you require types-sqlalchemy==1.4.53.38, we can conclude that your requirements are unsatisfiable.';
    expect(droppableRequirement(uvLog)).toBe('types-sqlalchemy');
    expect(droppableRequirement('ERROR: Could not find a version that satisfies the requirement flake8-docstrings==9.9 (from versions: 1.0)\nERROR: No matching distribution found for flake8-docstrings==9.9')).toBe('flake8-docstrings');
    expect(droppableRequirement('  ╰─▶ Because numpy was not found in the package registry and you require numpy, we can conclude…')).toBeNull();
    expect(dropCommand('types-sqlalchemy')).toBe(`echo 'types-sqlalchemy ; sys_platform == "never"' >> /opt/swe-stream/overrides.txt`);
  });

  it('names the git-hosted dependency an npm or yarn install could not fetch (ljharb/qs#562 here: evalmd@0.0.19 → reggi/node-fs-extra)', () => {
    const npm = [
      'npm ERR! code 128',
      'npm ERR! An unknown git error occurred',
      'npm ERR! command git --no-replace-objects ls-remote ssh://git@github.com/reggi/node-fs-extra.git',
      'npm ERR! ssh -oStrictHostKeyChecking=accept-new: 1: ssh: not found',
      'npm ERR! fatal: Could not read from remote repository.',
    ].join('\n');
    expect(unreachableGitDependency(npm)).toBe('reggi/node-fs-extra');
    const yarn = 'error Command failed.\nExit code: 128\nCommand: git\nArguments: ls-remote --tags --heads git://github.com/some-one/left-pad.js.git\nDirectory: /testbed';
    expect(unreachableGitDependency(yarn)).toBe('some-one/left-pad.js');
    expect(unreachableGitDependency('npm ERR! 404 Not Found - GET https://registry.npmjs.org/nope')).toBeNull();
  });

  it('finds the devDependency whose manifest depends on that repository, and drops it by key (dots and scopes kept whole)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gitdep-'));
    try {
      const pkg = { name: 'x', devDependencies: { evalmd: '^0.0.19', 'lodash.merge': '^4', '@ljharb/eslint-config': '^22', tape: '^5' } };
      writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
      // A stand-in `npm view` answering from recorded registry manifests (evalmd 0.0.19's dependencies as the registry serves them).
      mkdirSync(join(dir, 'bin'));
      writeFileSync(join(dir, 'bin/npm'), '#!/bin/sh\ncase "$2" in evalmd@*) echo \'{"fs-extra":"reggi/node-fs-extra#enhanced","acorn":"^7.0.0"}\';; tape@*) echo \'{"deep-equal":"^2"}\';; *) exit 1;; esac\n', { mode: 0o755 });
      const sh = (cmd: string) => execFileSync('bash', ['-c', cmd], { cwd: dir, env: { ...process.env, PATH: `${dir}/bin:${process.env.PATH}` }, encoding: 'utf8' });
      expect(sh(gitDependentsProbe('reggi/node-fs-extra')).trim()).toBe('evalmd');
      expect(sh(gitDependentsProbe('nobody/nothing')).trim()).toBe('');
      sh(dropDevDependencyCommand('lodash.merge'));
      sh(dropDevDependencyCommand('@ljharb/eslint-config'));
      expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).devDependencies).toEqual({ evalmd: '^0.0.19', tape: '^5' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resolution dates: the day after the commit, floored, never in the future', () => {
    expect(resolutionDate('2019-08-28T20:28:18-04:00', '2020-10-05')).toBe('2020-10-06T00:00:00Z');
    expect(resolutionDate('2023-08-28T23:28:18-04:00', '2020-10-05')).toBe('2023-08-30T00:00:00Z');
    expect(resolutionDate('2999-01-01T00:00:00Z', '2020-10-05')).toBeNull();
    expect(resolutionDate(null, '2020-10-05')).toBeNull();
  });
});

describe('install failure details', () => {
  it('name the package or URL from npm\'s own error lines, not only the generic advice at the end', () => {
    // The shape of markedjs/marked's failure here: a lockfile entry resolved to a GitHub tarball, behind
    // `npm ci || npm install || npm install --legacy-peer-deps`, whose output ends in proxy advice.
    const out = [
      'npm ERR! code ENOTFOUND',
      'npm ERR! errno ENOTFOUND',
      'npm ERR! network request to https://codeload.github.com/markedjs/marked/tar.gz/v18.0.0 failed, reason: getaddrinfo ENOTFOUND codeload.github.com',
      'npm ERR! network This is a problem related to network connectivity.',
      'npm ERR! network In most cases you are behind a proxy or have bad network settings.',
      'npm ERR! code ENOTFOUND',
      ' ERR_PNPM_FETCH_404  GET https://registry.npmjs.org/nope: Not Found - 404',
      'npm WARN deprecated q@1.5.1: You or someone you depend on is using Q',
    ].join('\n');
    expect(errorLines(out)).toEqual([
      'npm ERR! code ENOTFOUND',
      'npm ERR! errno ENOTFOUND',
      'npm ERR! network request to https://codeload.github.com/markedjs/marked/tar.gz/v18.0.0 failed, reason: getaddrinfo ENOTFOUND codeload.github.com',
      'ERR_PNPM_FETCH_404  GET https://registry.npmjs.org/nope: Not Found - 404',
    ]);
    expect(errorLines('all good\nnpm WARN deprecated x')).toEqual([]);
  });
});
