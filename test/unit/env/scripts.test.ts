/**
 * Reading how a repository's own test script runs its runner (operators/env/scripts.ts) and a Python
 * repository's pytest configuration (operators/env/python-tests.ts), through detect().
 */
import { describe, expect, it } from 'vitest';
import { detect, type Detection, type RepoSnapshot } from '../../../operators/env/detect.js';
import { buildRecipe } from '../../../operators/env/recipes.js';
import { cleanAddopts, pytestAddopts, pytestInvocations } from '../../../operators/env/python-tests.js';
import { findRunnerCalls, shellSegments } from '../../../operators/env/scripts.js';

function snap(contents: Record<string, string>, extra: string[] = []): RepoSnapshot {
  return { files: [...Object.keys(contents), ...extra], contents };
}
function ok(d: ReturnType<typeof detect>): Detection {
  if ('reason' in d) throw new Error(`expected a detection, got ${d.reason}: ${d.detail}`);
  return d;
}
const js = (scripts: Record<string, string>, devDependencies: Record<string, string> = {}, files = ['src/a.js', 'test/a.test.js']) =>
  ok(detect(snap({ 'package.json': JSON.stringify({ scripts, devDependencies }) }, files), 'javascript'));

describe('test scripts', () => {
  it('splits commands at && ; || | and drops redirections (shell-quote)', () => {
    expect(shellSegments(`tape 'test/**/*.js' | tap-spec && jest --ci 2>&1 > out.txt; echo "a b"`)).toEqual([['tape', 'test/**/*.js'], ['tap-spec'], ['jest', '--ci'], ['echo', 'a b']]);
    expect(shellSegments('mocha test/*.spec.js')).toEqual([['mocha', 'test/*.spec.js']]);
  });

  it('every TZ variant of a suite run several times is an invocation with its label and paths (dayjs)', () => {
    const d = js({
      test: 'TZ=Pacific/Auckland npm run test-tz && TZ=Europe/London npm run test-tz && TZ=America/Whitehorse npm run test-tz && npm run test-tz && jest',
      'test-tz': 'date && jest test/timezone.test --coverage=false',
    }, { jest: '^22' });
    expect(d.runner).toBe('jest');
    expect(d.invocations).toEqual([
      { label: 'TZ=Pacific/Auckland', env: { TZ: 'Pacific/Auckland' }, nodeOptions: [], args: [], paths: ['test/timezone.test'] },
      { label: 'TZ=Europe/London', env: { TZ: 'Europe/London' }, nodeOptions: [], args: [], paths: ['test/timezone.test'] },
      { label: 'TZ=America/Whitehorse', env: { TZ: 'America/Whitehorse' }, nodeOptions: [], args: [], paths: ['test/timezone.test'] },
      { label: '', env: {}, nodeOptions: [], args: [], paths: [] },
    ]);
    const r = buildRecipe(d, ['test/a.test.js'], {}, 'base');
    expect(r.testCommand.match(/swe-stream variant: /g)!.length).toBe(8);
  });

  it('keeps node flags before the runner entry and cross-env variables', () => {
    const d = js({ test: 'cross-env NODE_ENV=test node --experimental-vm-modules --no-warnings node_modules/jest/bin/jest.js --config jest.config.mjs' }, { jest: '29' });
    expect(d.invocations).toEqual([{ label: '', env: { NODE_ENV: 'test' }, nodeOptions: ['--experimental-vm-modules', '--no-warnings'], args: ['--config', 'jest.config.mjs'], paths: [] }]);
    const r = buildRecipe(d, [], {}, 'base');
    expect(r.testCommand).toContain(`export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }"'--experimental-vm-modules --no-warnings'`);
    expect(r.testCommand).toContain('npx jest --config jest.config.mjs --ci');
  });

  it('finds jasmine, AVA, tape, node-tap and plain-node tape files; coverage wrappers dropped', () => {
    expect(js({ test: 'jasmine --config=jasmine.json' }, { jasmine: '5' })).toMatchObject({ runner: 'jasmine', invocations: [{ args: ['--config=jasmine.json'], paths: [] }] });
    expect(js({ test: 'xo && c8 ava --verbose' }, { ava: '6', xo: '1' })).toMatchObject({ runner: 'ava', invocations: [{ args: [], paths: [] }] });
    expect(js({ test: 'tape -r @babel/register "test/**/*.js" | tap-spec' }, { tape: '5' })).toMatchObject({ runner: 'tap', invocations: [{ args: ['-r', '@babel/register'], paths: ['test/**/*.js'] }] });
    expect(js({ test: 'tap --no-coverage test/*.js' }, { tap: '16' })).toMatchObject({ runner: 'tap', invocations: [{ paths: ['test/*.js'] }] });
    expect(js({ test: 'node test/index.js' }, { tape: '5' })).toMatchObject({ runner: 'tap', invocations: [{ paths: ['test/index.js'] }] });
    expect(js({ test: 'yarn jest --silent' }, { jest: '29' })).toMatchObject({ runner: 'jest' });
    expect(js({ test: 'karma start test/karma.conf.js --single-run' }, { karma: '6' })).toMatchObject({ runner: 'karma', invocations: [{ args: ['test/karma.conf.js', '--single-run'], paths: [] }] });
    expect(js({ test: 'npm run lint' }, { ava: '6' }, ['test/a.js']).runner).toBe('ava');
    expect(js({}, {}, ['spec/support/jasmine.json', 'spec/a.spec.js']).runner).toBe('jasmine');
  });

  it('carries the variables of `npm run x` into the referenced script', () => {
    const calls = findRunnerCalls({ test: 'NODE_ENV=test npm run unit', unit: 'mocha test/unit' }, 'test');
    expect(calls).toEqual([{ runner: 'mocha', args: ['test/unit'], env: { NODE_ENV: 'test' }, nodeOptions: [] }]);
  });
});

describe('pytest configuration and Python runners', () => {
  it('reads addopts where pytest reads it first and strips coverage, lint and early-stop gates', () => {
    const cfg = '[tool:pytest]\naddopts =\n    --cov=pkg --cov-report term-missing\n    --cov-fail-under=95 -x --flake8 -p no:warnings\n    --strict-markers\n';
    expect(pytestAddopts({ 'setup.cfg': cfg })).toEqual(['--cov=pkg', '--cov-report', 'term-missing', '--cov-fail-under=95', '-x', '--flake8', '-p', 'no:warnings', '--strict-markers']);
    expect(pytestAddopts({ 'setup.cfg': cfg, 'pytest.ini': '[pytest]\naddopts = -ra\n' })).toEqual(['-ra']);
    expect(pytestAddopts({ 'pyproject.toml': '[tool.pytest.ini_options]\naddopts = ["--cov", "--mypy", "-q"]\n' })).toEqual(['--cov', '--mypy', '-q']);
    expect(cleanAddopts(['--cov', 'pkg', '--maxfail', '2', '--doctest-modules', '--cov=x', '-n', 'auto'])).toEqual(['--doctest-modules', '-n', 'auto']);
    expect(pytestInvocations({ 'setup.cfg': cfg })).toEqual([{ label: '', env: {}, nodeOptions: [], args: ['-o', "addopts=-p no:warnings --strict-markers"], paths: [] }]);
    expect(pytestInvocations({ 'tox.ini': '[pytest]\naddopts = -ra --strict-markers\n' })).toEqual([]);
  });

  it('the recipe and the selected-tests command carry the cleaned addopts', () => {
    const s = snap({ 'setup.py': 'from setuptools import setup\nsetup(name="x")\n', 'setup.cfg': '[tool:pytest]\naddopts = --cov=x --cov-fail-under=100\n' }, ['x/__init__.py', 'tests/test_x.py']);
    const d = ok(detect(s, 'python'));
    expect(d.runner).toBe('pytest');
    expect(buildRecipe(d, s.files, s.contents, 'base').testCommand).toContain('-o addopts= $(python -c');
  });

  it('unittest where pytest would not collect the tests and nothing asks for pytest', () => {
    const s = snap({ 'setup.py': 'from setuptools import setup\nsetup(name="x", test_suite="tests")\n', 'tox.ini': '[testenv]\ncommands = python -m unittest discover -s tests -p "*_tests.py" {posargs}\n' }, ['x/__init__.py', 'tests/__init__.py', 'tests/core_tests.py']);
    const d = ok(detect(s, 'python'));
    expect(d).toMatchObject({ runner: 'unittest', invocations: [{ args: ['discover', '-s', 'tests', '-p', '*_tests.py'] }] });
    expect(buildRecipe(d, s.files, s.contents, 'base').reportFormat).toBe('jsonl');
    const withPytest = snap({ ...s.contents, 'requirements-dev.txt': 'pytest\n' }, ['x/__init__.py', 'tests/core_tests.py']);
    expect(ok(detect(withPytest, 'python')).runner).toBe('pytest');
  });
});
