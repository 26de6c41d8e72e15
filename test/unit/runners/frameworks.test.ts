/**
 * Parsers of the runners added for breadth (issue 11): unittest, jasmine, AVA, TAP (tape, node-tap), on
 * reports and logs captured from real runs of the commands our runners produce (test/fixtures/reports/,
 * projects under test/fixtures/reports/projects/), plus the invocation wrapper (variants, env, node flags).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getRunner, pathSelects, type Invocation, type TestResult } from '../../../operators/runners/index.js';
import { TAP_CLI_PRESENT } from '../../../operators/runners/tap.js';

const FX = join(import.meta.dirname, '../../fixtures/reports');
const read = (p: string) => readFileSync(join(FX, p), 'utf8');
const asMap = (rs: TestResult[]) => Object.fromEntries(rs.map((r) => [r.name, r.status]));
const ctx = { workdir: '/testbed' };

describe('unittest', () => {
  const unittest = getRunner('unittest');
  const want = {
    'tests.test_basic.TestAdd.test_docstring': 'PASSED',
    'tests.test_basic.TestAdd.test_error': 'ERROR',
    'tests.test_basic.TestAdd.test_fail': 'FAILED',
    'tests.test_basic.TestAdd.test_pass': 'PASSED',
    'tests.test_basic.TestAdd.test_skip': 'SKIPPED',
    'tests.test_basic.TestAdd.test_subtests': 'FAILED',
    'tests.test_basic.TestAdd.test_xfail': 'XFAIL',
    'tests.test_basic.TestAdd.test_xpass': 'FAILED',
    'setUpClass (tests.test_basic.TestBrokenSetup)': 'ERROR',
    'tests/test_broken.py': 'ERROR',
    'tests.checks.Checks.test_named_outside_pattern': 'PASSED',
  };

  it('reads the JSON lines of our result class: subTest failure, unexpected success, setUpClass and import errors', () => {
    expect(asMap(unittest.parse(read('unittest/selected.jsonl'), read('unittest/selected.log')))).toEqual(want);
  });

  it('reads the -v text when the report is missing (output and docstrings between id and outcome)', () => {
    const fromLog = asMap(unittest.parse(null, read('unittest/selected.log')));
    // The text names a module that failed to import only by its last part.
    expect(fromLog).toEqual({ ...Object.fromEntries(Object.entries(want).filter(([k]) => k !== 'tests/test_broken.py')), 'test_broken.py': 'ERROR' });
  });

  it('discovers test*.py for the whole suite and takes explicit files for a selection', () => {
    expect(Object.keys(asMap(unittest.parse(read('unittest/all.jsonl'), '')))).not.toContain('tests.checks.Checks.test_named_outside_pattern');
    const cmd = unittest.testCommand({ files: ['tests/checks.py'], reportPath: '/tmp/swe-stream/report', invocations: [{ label: '', env: {}, nodeOptions: [], args: ['discover', '-s', 'tests'], paths: [] }] });
    expect(cmd).toMatch(/unittest_driver\.py \/tmp\/swe-stream\/report -v tests\/checks\.py$/);
  });

  it('keeps what a killed run wrote (a cut last line is ignored)', () => {
    const cut = read('unittest/selected.jsonl').slice(0, 120);
    expect(asMap(unittest.parse(cut, ''))).toEqual({ 'tests.test_basic.TestAdd.test_docstring': 'PASSED' });
  });
});

describe('jasmine', () => {
  const jasmine = getRunner('jasmine');

  it('reads per-file JSON lines: suite chains, pending and xit, a failing afterAll, a file that does not load', () => {
    expect(asMap(jasmine.parse(read('jasmine/sel.report'), read('jasmine/sel.log'), ctx))).toEqual({
      'spec/calc.spec.js > calc > adds': 'PASSED',
      'spec/calc.spec.js > calc > fails': 'FAILED',
      'spec/calc.spec.js > calc > is skipped': 'SKIPPED',
      'spec/calc.spec.js > calc > is pending': 'SKIPPED',
      'spec/calc.spec.js > calc > nested > deep pass': 'PASSED',
      'spec/calc.spec.js > teardown > passes before a failing afterAll': 'PASSED',
      'spec/calc.spec.js > teardown': 'FAILED',
      'spec/broken.spec.js': 'ERROR',
    });
  });

  it('names the failures from the console text when no report was written', () => {
    expect(asMap(jasmine.parse(null, read('jasmine/sel.log'), ctx))).toEqual({ 'spec/calc.spec.js > calc fails': 'FAILED' });
  });

  it('a whole-suite run that a file fails to load reports nothing (jasmine aborts it)', () => {
    expect(jasmine.parse(read('jasmine/all.report'), read('jasmine/all.log'), ctx)).toEqual([]);
  });

  it('loads its reporter as a helper and runs selected files one jasmine each', () => {
    const cmd = jasmine.testCommand({ files: ['spec/a.spec.js'], reportPath: '/tmp/swe-stream/report', invocations: [{ label: '', env: {}, nodeOptions: [], args: ['--config=spec/support/jasmine.json'], paths: [] }] });
    expect(cmd).toContain('npx jasmine --config=spec/support/jasmine.json --helper=/tmp/swe-stream/jasmine-reporter.cjs "$__f"');
    expect(cmd).toContain('for __f in spec/a.spec.js;');
  });
});

describe('ava', () => {
  const ava = getRunner('ava');

  it('reads per-file TAP: skip, todo, failing (known bug), a file that does not load', () => {
    expect(asMap(ava.parse(read('ava/sel.report'), read('ava/sel.log')))).toEqual({
      'test/calc.js > is skipped': 'SKIPPED',
      'test/calc.js > is todo': 'SKIPPED',
      'test/calc.js > adds': 'PASSED',
      'test/calc.js > fails': 'FAILED',
      'test/calc.js > known bug': 'PASSED',
      'test/calc.js > title with › arrow': 'PASSED',
      'test/broken.js': 'ERROR',
    });
  });

  it('reads the same from the log when the report is missing', () => {
    expect(asMap(ava.parse(null, read('ava/sel.log')))).toEqual(asMap(ava.parse(read('ava/sel.report'), '')));
  });

  it('reads a whole-suite run with AVA’s title prefixes', () => {
    const m = asMap(ava.parse(read('ava/all.report'), read('ava/all.log')));
    expect(m).toMatchObject({ 'calc > adds': 'PASSED', 'calc > fails': 'FAILED', 'calc > title with › arrow': 'PASSED' });
  });
});

describe('tap (node-tap, tape)', () => {
  const tap = getRunner('tap');
  const nodeTap = {
    'test/calc.js > adds': 'PASSED',
    'test/calc.js > group > inner pass': 'PASSED',
    'test/calc.js > group > inner fail': 'FAILED',
    'test/calc.js > skipped': 'SKIPPED',
    'test/calc.js > todo': 'SKIPPED',
    'test/calc.js': 'PASSED',
    'test/broken.js': 'ERROR',
  };

  it('reads node-tap 16 files run with node: nested subtests, skip/todo subtests, top-level assertions, a file that throws', () => {
    expect(asMap(tap.parse(read('tap/nodetap-sel.report'), read('tap/nodetap-sel.log')))).toEqual(nodeTap);
    expect(asMap(tap.parse(read('tap/nodetap-all.report'), read('tap/nodetap-all.log')))).toEqual(nodeTap);
  });

  it('reads the TAP in the log when the report is missing (exit codes unknown there)', () => {
    const m = asMap(tap.parse(null, read('tap/nodetap-sel.log')));
    expect(m).toMatchObject({ 'test/calc.js > group > inner fail': 'FAILED', 'test/calc.js > skipped': 'SKIPPED' });
  });

  it('reads tape 5 files: a test is its # name and the assertions after it; SKIP and TODO; a file that throws mid-run or cannot load', () => {
    const want = {
      'test/calc.js > adds': 'PASSED',
      'test/calc.js > fails': 'FAILED',
      'test/calc.js > is skipped': 'SKIPPED',
      'test/calc.js > todo assertion': 'SKIPPED',
      'test/throws.js > first passes': 'PASSED',
      'test/throws.js': 'ERROR',
      'test/broken.js': 'ERROR',
    };
    expect(asMap(tap.parse(read('tap/tape-sel.report'), read('tap/tape-sel.log')))).toEqual(want);
    expect(asMap(tap.parse(read('tap/tape-all.report'), read('tap/tape-all.log')))).toEqual(want);
  });

  it('reads node-tap 21 CLI runs of TypeScript files: the file-level subtest unwrapped, plugin and node-arg tests, a file that cannot load', () => {
    const want = {
      'test/calc.ts > adds': 'PASSED',
      'test/calc.ts > subtracts': 'FAILED',
      'test/calc.ts > group > inner pass': 'PASSED',
      'test/calc.ts > group > inner fail': 'FAILED',
      'test/calc.ts > clock from the plugin': 'PASSED',
      'test/calc.ts > gc from node-arg': 'PASSED',
      'test/calc.ts > skipped': 'SKIPPED',
      'test/calc.ts > todo': 'SKIPPED',
      'test/top.ts': 'PASSED',
      'test/broken.ts': 'ERROR',
    };
    expect(asMap(tap.parse(read('tap/nodetap18-sel.report'), read('tap/nodetap18-sel.log')))).toEqual(want);
    expect(asMap(tap.parse(read('tap/nodetap18-all.report'), read('tap/nodetap18-all.log')))).toEqual(want);
    // From the log alone (the report lost): the same tests, the unloadable file unknown without its exit code.
    const { ['test/broken.ts']: _broken, ...rest } = want;
    expect(asMap(tap.parse(null, read('tap/nodetap18-sel.log')))).toMatchObject(rest);
  });

  it('runs node-tap ≥ 18 files through its CLI when installed, else with node; finds TypeScript test files only for the CLI', () => {
    const cmd = tap.testCommand({ files: 'all', reportPath: '/r', invocations: [{ label: '', env: {}, nodeOptions: [], args: ['--import', 'tsx'], paths: [] }] });
    expect(cmd).toContain(`if ${TAP_CLI_PRESENT}; then NO_COLOR=1 FORCE_COLOR=0 TAP_COLORS=0 node_modules/.bin/tap --disable-coverage --allow-empty-coverage -R tap --node-arg=--import --node-arg=tsx "$__f"`);
    expect(cmd).toContain('else NO_COLOR=1 FORCE_COLOR=0 TAP_COLORS=0 node --import tsx "$__f"');
    expect(cmd).toMatch(/then find .*\[cm\]\?\[jt\]sx\?.*; else find .*\[cm\]\?js' /);
  });

  it('runs each file with node, keeping only node hooks of the script’s arguments', () => {
    const cmd = tap.testCommand({ files: 'all', reportPath: '/r', invocations: [{ label: '', env: {}, nodeOptions: [], args: ['-r', '@babel/register', '--no-only'], paths: ['test/**/*.js'] }] });
    expect(cmd).toContain('shopt -s globstar nullglob');
    expect(cmd).toContain('for __f in test/**/*.js;');
    expect(cmd).toContain('node -r @babel/register "$__f"');
    expect(cmd).not.toContain('--no-only');
  });
});

describe('karma', () => {
  const karma = getRunner('karma');

  it('reads the JSON lines of our inline reporter: suite chains, skipped, failed', () => {
    expect(asMap(karma.parse(read('karma/all.report'), read('karma/all.log')))).toEqual({
      'calc > is skipped': 'SKIPPED',
      'calc > adds': 'PASSED',
      'calc > fails': 'FAILED',
      'calc > nested > deep pass': 'PASSED',
    });
  });

  it('a spec file that throws while loading is a browser ERROR entry', () => {
    expect(asMap(karma.parse(read('karma/broken.report'), read('karma/broken.log')))).toMatchObject({ '(browser)': 'ERROR', 'calc > adds': 'PASSED' });
  });

  it('names the failures from the dots text when no report was written', () => {
    expect(asMap(karma.parse(null, read('karma/all.log')))).toEqual({ 'calc fails': 'FAILED' });
  });

  it('wraps the repository’s config: headless Chromium without sandbox, our reporter, single run', () => {
    const cmd = karma.testCommand({ files: ['test/a.spec.js'], reportPath: '/r', invocations: [{ label: '', env: {}, nodeOptions: [], args: ['test/karma.conf.js', '--single-run', '--browsers', 'Firefox', '--log-level=debug'], paths: [] }] });
    expect(cmd).toContain('SWE_STREAM_KARMA_CONFIG=test/karma.conf.js');
    expect(cmd).toContain("'--no-sandbox'");
    expect(cmd).toMatch(/npx karma start \/tmp\/swe-stream\/karma\.swe-stream\.cjs --log-level=debug$/);
  });
});

describe('invocations', () => {
  const jest = getRunner('jest');
  const inv = (o: Partial<Invocation>): Invocation => ({ label: '', env: {}, nodeOptions: [], args: [], paths: [], ...o });

  it('sets the script’s variables and node flags around the runner', () => {
    const cmd = jest.testCommand({ files: ['test/a.test.js'], reportPath: '/r', invocations: [inv({ env: { TZ: 'UTC', NODE_ENV: 'test' }, nodeOptions: ['--experimental-vm-modules'], args: ['--config', 'jest.config.mjs'] })] });
    expect(cmd).toBe(`( export TZ=UTC; export NODE_ENV=test; export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }"--experimental-vm-modules; CI=true NO_COLOR=1 FORCE_COLOR=0 npx jest --config jest.config.mjs --ci --maxWorkers=2 --coverage=false --json --outputFile=/r --verbose --runTestsByPath test/a.test.js )`);
  });

  it('runs every variant a selected file belongs to, each with its own report section', () => {
    const invocations = [inv({ label: 'TZ=Pacific/Auckland', env: { TZ: 'Pacific/Auckland' }, paths: ['test/timezone.test'] }), inv({ label: 'TZ=Europe/London', env: { TZ: 'Europe/London' }, paths: ['test/timezone.test'] }), inv({})];
    const tz = jest.testCommand({ files: ['test/timezone.test.js'], reportPath: '/r', invocations });
    expect(tz.match(/# swe-stream variant: /g)).toHaveLength(3);
    const other = jest.testCommand({ files: ['test/plugin.test.js'], reportPath: '/r', invocations });
    expect(other.match(/# swe-stream variant: /g)).toHaveLength(1);
    expect(other).not.toContain('Pacific');
    const all = jest.testCommand({ files: 'all', reportPath: '/r', invocations });
    expect(all).toContain('--verbose test/timezone.test )');
  });

  it('gives each test of a labelled variant the label in its id', () => {
    const section = (label: string, status: string) =>
      `<!-- swe-stream variant: ${label} -->\n${JSON.stringify({ testResults: [{ name: '/testbed/test/tz.test.js', assertionResults: [{ ancestorTitles: ['tz'], title: 'formats', status }] }] })}\n`;
    const report = section('TZ=Pacific/Auckland', 'failed') + section('', 'passed');
    const log = '# swe-stream variant: TZ=Pacific/Auckland\nFAIL test/tz.test.js\n# swe-stream variant: \nPASS test/tz.test.js\n';
    expect(asMap(jest.parse(report, log, ctx))).toEqual({ 'test/tz.test.js > tz > formats [TZ=Pacific/Auckland]': 'FAILED', 'test/tz.test.js > tz > formats': 'PASSED' });
  });

  it('runs every variant of a per-file runner in bash, each to its end, and keeps the worst exit code', () => {
    // A stand-in for npx that behaves like mocha's JSON reporter: one passing test per file, b.spec.js exits 1.
    const dir = mkdtempSync(join(tmpdir(), 'swe-variants-'));
    writeFileSync(join(dir, 'npx'), '#!/bin/bash\nout=""; for a in "$@"; do case $a in output=*) out=${a#output=};; esac; done\nf="${@: -1}"\n' +
      'echo "{\\"stats\\":{},\\"passes\\":[{\\"title\\":\\"t${TZ:+ $TZ}\\",\\"fullTitle\\":\\"s t${TZ:+ $TZ}\\",\\"file\\":\\"/testbed/$f\\"}],\\"failures\\":[],\\"pending\\":[]}" > "$out"\n[ "$f" = b.spec.js ] && exit 1 || exit 0\n', { mode: 0o755 });
    const mocha = getRunner('mocha');
    const report = join(dir, 'report');
    const cmd = mocha.testCommand({ files: ['a.spec.js', 'b.spec.js'], reportPath: report, invocations: [inv({ label: 'TZ=UTC', env: { TZ: 'UTC' } }), inv({})] });
    const r = spawnSync('bash', ['-c', `${cmd}; echo "exit $?"`], { env: { PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
    expect(r.stdout).toMatch(/exit 1\n$/);
    expect(asMap(mocha.parse(readFileSync(report, 'utf8'), r.stdout, ctx))).toEqual({
      'a.spec.js > s > t UTC [TZ=UTC]': 'PASSED', 'b.spec.js > s > t UTC [TZ=UTC]': 'PASSED', 'a.spec.js > s > t': 'PASSED', 'b.spec.js > s > t': 'PASSED',
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it('matches script paths as each runner reads them', () => {
    expect(pathSelects('test/timezone.test', 'test/timezone.test.js', 'jest')).toBe(true);
    expect(pathSelects('test/**/*.spec.js', 'test/a/b.spec.js', 'mocha')).toBe(true);
    expect(pathSelects('test/**/*.spec.js', 'src/b.spec.js', 'mocha')).toBe(false);
    expect(pathSelects('test/unit', 'test/unit/a.js', 'mocha')).toBe(true);
    expect(pathSelects('test/unit', 'test/unitary.js', 'mocha')).toBe(false);
    expect(pathSelects('{src,test}/*.test.ts', 'src/x.test.ts', 'vitest')).toBe(true);
  });
});
