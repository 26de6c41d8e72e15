import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getRunner, summarize, type TestResult } from '../../../operators/runners/index.js';

const FX = join(import.meta.dirname, '../../fixtures/reports');
const read = (p: string) => readFileSync(join(FX, p), 'utf8');
const asMap = (rs: TestResult[]) => Object.fromEntries(rs.map((r) => [r.name, r.status]));

describe('pytest', () => {
  const pytest = getRunner('pytest');

  it('reads node ids and every status from the xunit1 JUnit report', () => {
    const m = asMap(pytest.parse(read('pytest/statuses.xml'), read('pytest/statuses.log')));
    expect(m).toEqual({
      'tests/sub/test_broken.py': 'ERROR',
      'tests/sub/test_ok.py::test_ok': 'PASSED',
      'tests/test_basic.py::test_pass': 'PASSED',
      'tests/test_basic.py::test_fail': 'FAILED',
      'tests/test_basic.py::test_error': 'ERROR',
      'tests/test_basic.py::test_skip': 'SKIPPED',
      'tests/test_basic.py::test_xfail': 'XFAIL',
      'tests/test_basic.py::test_xpass': 'PASSED',
      'tests/test_basic.py::test_param[1]': 'PASSED',
      'tests/test_basic.py::test_param[2]': 'FAILED',
      'tests/test_basic.py::test_param[a b]': 'PASSED',
      'tests/test_basic.py::TestGroup::test_method': 'PASSED',
      'tests/test_basic.py::TestGroup::test_method_fail': 'FAILED',
    });
  });

  it('gives the same ids and statuses from the text log alone', () => {
    const fromXml = asMap(pytest.parse(read('pytest/statuses.xml'), ''));
    const fromLog = asMap(pytest.parse(null, read('pytest/statuses.log')));
    expect(fromLog).toEqual(fromXml);
  });

  it('reads a collection error that interrupted the session as an ERROR of the module', () => {
    expect(pytest.parse(read('pytest/collect-error.xml'), read('pytest/collect-error.log'))).toEqual([
      { name: 'tests/sub/test_broken.py', status: 'ERROR', durationMs: 0 },
    ]);
    expect(asMap(pytest.parse(null, read('pytest/collect-error.log')))).toEqual({ 'tests/sub/test_broken.py': 'ERROR' });
  });

  it('keeps what a killed run printed before it died (no XML)', () => {
    expect(asMap(pytest.parse(null, read('pytest/killed.log')))).toEqual({
      'tests/test_slow.py::test_fast_one': 'PASSED',
      'tests/test_slow.py::test_fast_two': 'FAILED',
    });
  });

  it('counts a teardown error after a pass as ERROR and a strict xpass as FAILED', () => {
    const want = {
      'tests/test_teardown.py::test_passes_then_teardown_errors': 'ERROR',
      'tests/test_teardown.py::test_strict_xpass': 'FAILED',
    };
    expect(asMap(pytest.parse(read('pytest/teardown.xml'), read('pytest/teardown.log')))).toEqual(want);
    expect(asMap(pytest.parse(null, read('pytest/teardown.log')))).toEqual(want);
  });

  it('falls back to the log when the XML is truncated', () => {
    const xml = read('pytest/statuses.xml');
    const rs = pytest.parse(xml.slice(0, xml.length / 2), read('pytest/statuses.log'));
    expect(asMap(rs)['tests/test_basic.py::TestGroup::test_method_fail']).toBe('FAILED');
  });

  it('builds a command with the reporter set explicitly and quoted files', () => {
    const cmd = pytest.testCommand({ files: ['tests/test a.py', 'tests/t.py'], reportPath: '/tmp/r.xml' });
    expect(cmd).toContain('--junitxml=/tmp/r.xml');
    expect(cmd).toContain('-rA');
    expect(cmd).toContain('--continue-on-collection-errors');
    expect(cmd).toContain(`'tests/test a.py' tests/t.py`);
    expect(pytest.testCommand({ files: 'all', reportPath: '/r.xml' })).toMatch(/--junitxml=\/r\.xml$/);
  });
});

describe('jest', () => {
  const jest = getRunner('jest');
  const ctx = { workdir: '/tmp/fx/js/jestp' };
  const want = {
    'test/math.test.js > math > adds': 'PASSED',
    'test/math.test.js > math > subtracts wrong': 'FAILED',
    'test/math.test.js > math > nested group > multiplies': 'PASSED',
    'test/math.test.js > math > nested group > divides later': 'SKIPPED',
    'test/math.test.js > math > nested group > rounds': 'SKIPPED',
    'test/math.test.js > top level': 'PASSED',
    'test/hook.test.js > with hook > a': 'FAILED',
    'test/broken.test.js': 'ERROR',
  };

  it('reads the --json report with describe chains and a suite that failed to run', () => {
    expect(asMap(jest.parse(read('jest/report.json'), read('jest/run.log'), ctx))).toEqual(want);
  });

  it('reads the --verbose log the same way when the report is missing', () => {
    expect(asMap(jest.parse(null, read('jest/run.log'), ctx))).toEqual(want);
  });

  it('runs exactly the given paths with --json to the report file', () => {
    const cmd = jest.testCommand({ files: ['test/a.test.js'], reportPath: '/tmp/r.json' });
    expect(cmd).toMatch(/npx jest .*--json --outputFile=\/tmp\/r\.json .*--runTestsByPath test\/a\.test\.js$/);
  });
});

describe('vitest', () => {
  const vitest = getRunner('vitest');
  const ctx = { workdir: '/tmp/fx/js/vitestp' };

  it('reads the JUnit report: describe chains, skips, todo, expected failure, import error, hook failure', () => {
    expect(asMap(vitest.parse(read('vitest/report.xml'), read('vitest/run.log'), ctx))).toEqual({
      'test/broken.test.js': 'ERROR',
      'test/hook.test.js > with hook > a': 'SKIPPED',
      'test/hook.test.js > with hook': 'FAILED',
      'test/math.test.js > math > adds': 'PASSED',
      'test/math.test.js > math > subtracts wrong': 'FAILED',
      'test/math.test.js > math > nested group > multiplies': 'PASSED',
      'test/math.test.js > math > nested group > divides later': 'SKIPPED',
      'test/math.test.js > math > nested group > rounds': 'SKIPPED',
      'test/math.test.js > math > nested group > known failing': 'PASSED',
      'test/math.test.js > top level': 'PASSED',
    });
  });

  it('reads the verbose log when the report is missing', () => {
    const m = asMap(vitest.parse(null, read('vitest/run.log'), ctx));
    expect(m['test/math.test.js > math > subtracts wrong']).toBe('FAILED');
    expect(m['test/math.test.js > math > nested group > multiplies']).toBe('PASSED');
    expect(m['test/math.test.js > math > nested group > rounds']).toBe('SKIPPED');
    expect(m['test/broken.test.js']).toBe('ERROR');
    expect(summarize(vitest.parse(null, read('vitest/run.log'), ctx))).toEqual({ PASSED: 4, FAILED: 1, SKIPPED: 3, ERROR: 1, XFAIL: 0 });
  });
});

describe('mocha', () => {
  const mocha = getRunner('mocha');
  const ctx = { workdir: '/tmp/fx/js/mochap' };

  it('reads the JSON report, hook failures included', () => {
    expect(asMap(mocha.parse(read('mocha/report.json'), read('mocha/run.log'), ctx))).toEqual({
      'test/math.spec.js > top level': 'PASSED',
      'test/math.spec.js > math > adds': 'PASSED',
      'test/math.spec.js > math > subtracts wrong': 'FAILED',
      'test/math.spec.js > math nested group > multiplies': 'PASSED',
      'test/math.spec.js > math nested group > divides later': 'SKIPPED',
      'test/math.spec.js > math nested group > rounds': 'SKIPPED',
      'test/math.spec.js > with hook > "before all" hook for "a"': 'FAILED',
    });
  });

  it('finds the JSON on stdout (mochas without the output option), after what tests printed', () => {
    const log = 'some console.log from a test\n' + read('mocha/report.json');
    expect(mocha.parse(null, log, ctx)).toEqual(mocha.parse(read('mocha/report.json'), '', ctx));
  });

  it('turns a load exception into an ERROR of the file that failed to load', () => {
    expect(mocha.parse(null, read('mocha/load-error.log'), ctx)).toEqual([{ name: 'test/broken.spec.js', status: 'ERROR' }]);
  });

  it('reads per-file runs: one file’s load exception costs only that file', () => {
    const m = asMap(mocha.parse(read('mocha/perfile.json'), read('mocha/perfile.log'), ctx));
    expect(m['test/broken.spec.js']).toBe('ERROR');
    expect(m['test/math.spec.js > math > subtracts wrong']).toBe('FAILED');
    expect(m['test/math.spec.js > top level']).toBe('PASSED');
    expect(Object.keys(m)).toHaveLength(8);
    const cmd = mocha.testCommand({ files: ['test/a.spec.js', 'test/b c.js'], reportPath: '/tmp/r.json' });
    expect(cmd).toContain(`for __f in test/a.spec.js 'test/b c.js'; do`);
    expect(cmd).toContain('--reporter json --reporter-option output=/tmp/r.json.part "$__f"');
  });
});

describe('node:test', () => {
  const nodeTest = getRunner('node-test');
  const ctx = { workdir: '/tmp/fx/js/nodep' };
  const want = {
    'test/math.test.js > math > adds': 'PASSED',
    'test/math.test.js > math > subtracts wrong': 'FAILED',
    'test/math.test.js > math > nested group > multiplies': 'PASSED',
    'test/math.test.js > math > nested group > divides later': 'SKIPPED',
    'test/math.test.js > math > nested group > rounds': 'SKIPPED',
    'test/math.test.js > top level': 'PASSED',
    'test/math.test.js > with hook > a': 'FAILED',
    'test/broken.test.js': 'ERROR',
  };

  it('reads per-file JUnit sections (Node 20)', () => {
    expect(asMap(nodeTest.parse(read('node-test/node20.xml'), read('node-test/node20.log'), ctx))).toEqual(want);
  });

  it('reads per-file TAP sections (Node 18, no JUnit reporter); todo counts as skipped', () => {
    expect(asMap(nodeTest.parse(read('node-test/node18.tap'), read('node-test/node18.log'), ctx))).toEqual(want);
  });

  it('reads the spec log of both Nodes when the report is missing', () => {
    const w = { ...want };
    expect(asMap(nodeTest.parse(null, read('node-test/node20.log'), ctx))).toEqual(w);
    expect(asMap(nodeTest.parse(null, read('node-test/node18.log'), ctx))).toEqual(w);
  });

  it('takes files missing from a cut report from the log', () => {
    const rep = read('node-test/node20.xml');
    const cut = rep.slice(0, rep.indexOf('<!-- swe-stream file: test/broken.test.js'));
    expect(asMap(nodeTest.parse(cut, read('node-test/node20.log'), ctx))).toEqual(want);
  });
});

describe('isTestFile', () => {
  it('follows each runner’s default discovery', () => {
    expect(getRunner('pytest').isTestFile('tests/test_x.py')).toBe(true);
    expect(getRunner('pytest').isTestFile('pkg/x_test.py')).toBe(true);
    expect(getRunner('pytest').isTestFile('tests/conftest.py')).toBe(false);
    expect(getRunner('jest').isTestFile('src/__tests__/a.ts')).toBe(true);
    expect(getRunner('jest').isTestFile('src/a.spec.tsx')).toBe(true);
    expect(getRunner('jest').isTestFile('src/a.ts')).toBe(false);
    expect(getRunner('mocha').isTestFile('test/index.js')).toBe(true);
    expect(getRunner('node-test').isTestFile('test/helpers/x.js')).toBe(true);
  });

  it('rejects unknown runners without retry', () => {
    expect(() => getRunner('cucumber')).toThrow(expect.objectContaining({ retriable: false }));
  });
});
