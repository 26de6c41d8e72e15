import { describe, expect, it } from 'vitest';
import { isTestPath, selectedTestCommand, splitPatch } from '../../../operators/test-create.js';
import { getRunner } from '../../../operators/runners/index.js';
import { parseDiff } from '../../../operators/pr/patch.js';

const DIFF = [
  'diff --git a/src/calc.py b/src/calc.py',
  'index 1111111..2222222 100644',
  '--- a/src/calc.py',
  '+++ b/src/calc.py',
  '@@ -1,2 +1,2 @@',
  ' def mul(a, b):',
  '-    return a + b',
  '+    return a * b',
  'diff --git a/tests/test_calc.py b/tests/test_calc.py',
  'index 3333333..4444444 100644',
  '--- a/tests/test_calc.py',
  '+++ b/tests/test_calc.py',
  '@@ -1 +1,4 @@',
  ' from src.calc import mul',
  '+',
  '+def test_mul():',
  '+    assert mul(2, 3) == 6',
  'diff --git a/tests/conftest.py b/tests/conftest.py',
  'new file mode 100644',
  'index 0000000..5555555',
  '--- /dev/null',
  '+++ b/tests/conftest.py',
  '@@ -0,0 +1 @@',
  '+import pytest',
  'diff --git a/tests/test_old.py b/tests/test_old.py',
  'deleted file mode 100644',
  'index 6666666..0000000',
  '--- a/tests/test_old.py',
  '+++ /dev/null',
  '@@ -1 +0,0 @@',
  '-def test_old(): pass',
  'diff --git a/docs/logo.png b/docs/logo.png',
  'index 7777777..8888888 100644',
  'Binary files a/docs/logo.png and b/docs/logo.png differ',
  'diff --git a/CHANGES.md b/CHANGES.md',
  'index 9999999..aaaaaaa 100644',
  '--- a/CHANGES.md',
  '+++ b/CHANGES.md',
  '@@ -1 +1,2 @@',
  ' # Changes',
  '+- mul multiplies',
  '',
].join('\n');

const files = (kinds: Record<string, string>) => Object.entries(kinds).map(([path, kind]) => ({ path, old_path: null, kind, status: 'modified', additions: 1, deletions: 0, hunks: 1, binary: false, vendored: false }));

describe('splitPatch', () => {
  const pytest = getRunner('pytest');

  it('splits by the filter’s classification: tests to the test patch, everything else (docs too) to the gold patch; binaries dropped', () => {
    const s = splitPatch({ diff: DIFF, files: files({ 'src/calc.py': 'code', 'tests/test_calc.py': 'test', 'tests/conftest.py': 'test', 'tests/test_old.py': 'test', 'docs/logo.png': 'docs', 'CHANGES.md': 'docs' }) }, pytest);
    expect(parseDiff(s.goldPatch).map((f) => f.path)).toEqual(['src/calc.py', 'CHANGES.md']);
    expect(parseDiff(s.testPatch).map((f) => f.path)).toEqual(['tests/test_calc.py', 'tests/conftest.py', 'tests/test_old.py']);
    expect(s.testFiles).toEqual(['tests/test_calc.py']);
    expect(s.binaryDropped).toEqual(['docs/logo.png']);
    // The halves re-join to the original text patch (minus the binary section).
    expect(s.testPatch).toContain('+def test_mul():\n');
    expect(s.goldPatch.endsWith('+- mul multiplies\n')).toBe(true);
  });

  it('falls back to the runner’s conventions for paths the candidate does not list', () => {
    const jest = getRunner('jest');
    expect(isTestPath('src/__tests__/a.js', { files: [] }, jest)).toBe(true);
    expect(isTestPath('test/fixtures/data.json', { files: [] }, jest)).toBe(true);
    expect(isTestPath('src/a.js', { files: [] }, jest)).toBe(false);
    expect(isTestPath('src/a.js', { files: files({ 'src/a.js': 'test' }) }, jest)).toBe(true);
  });

  it('selects only runnable test files and writes the report where the harness reads it', () => {
    expect(selectedTestCommand(pytest, ['tests/test_calc.py'])).toMatch(/--junitxml=\/tmp\/swe-stream\/report .*tests\/test_calc\.py$/);
    expect(selectedTestCommand(getRunner('jest'), 'all')).toContain('--outputFile=/tmp/swe-stream/report');
  });
});
