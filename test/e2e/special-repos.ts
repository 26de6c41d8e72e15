/**
 * Two small Python repositories the shared generator does not make, for the end-to-end test:
 *  - `acme/flaky-py`: PR #1 (squash) fixes a bug and adds a test file with a fail-to-pass test and a test
 *    that passes only on the first run in a container (a counter file outside the checkout), so the two
 *    release-check runs in the task container disagree — a flaky test the verifier must exclude and record;
 *  - `acme/broken-install-py`: PR #1 (merge style) fixes a bug with a test, but the repository's
 *    requirements.txt names a package no index has — the environment cannot be installed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

function git(cwd: string, args: string[], date: string): void {
  execFileSync('git', args, {
    cwd,
    env: { ...process.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date, GIT_AUTHOR_NAME: 'dev', GIT_AUTHOR_EMAIL: 'dev@example.com', GIT_COMMITTER_NAME: 'dev', GIT_COMMITTER_EMAIL: 'dev@example.com' },
    stdio: 'ignore',
  });
}

function write(root: string, files: Record<string, string>): void {
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), c);
  }
}

const BUGGY = 'def double(x):\n    """Twice x."""\n    return x + x if x > 0 else x\n';
const FIXED = 'def double(x):\n    """Twice x."""\n    return x + x\n';
const SETUP = {
  'pyproject.toml': '[project]\nname = "pkg"\nversion = "0.1.0"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
  'pkg/__init__.py': '',
  'pkg/double.py': BUGGY,
  'tests/test_base.py': 'from pkg.double import double\n\n\ndef test_double_positive():\n    assert double(2) == 4\n',
  LICENSE: 'MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software.\n',
};

const FLAKY_TEST =
  'import os\n\nfrom pkg.double import double\n\n\ndef test_double_negative():\n    assert double(-3) == -6\n\n\n' +
  'def test_sometimes():\n    # Passes on the first run in a container and fails on any later one (a counter outside the checkout\n' +
  '    # survives the reset): every fresh-container run passes, and of the two release-check runs that share\n' +
  '    # the task container exactly one fails, so the test disagrees across runs of one state and is flaky.\n' +
  '    path = "/tmp/flaky-counter"\n    n = int(open(path).read()) if os.path.exists(path) else 0\n    open(path, "w").write(str(n + 1))\n    assert n == 0\n';

export interface SpecialRepo {
  path: string;
  repo: string;
}

/** Create both repositories under one temp dir; `cleanup` removes them. */
export function createSpecialRepos(): { flaky: SpecialRepo; broken: SpecialRepo; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'swe-e2e-'));
  const make = (name: string, extra: Record<string, string>, test: string, style: 'squash' | 'merge'): SpecialRepo => {
    const dir = join(root, 'acme', name);
    mkdirSync(dir, { recursive: true });
    git(dir, ['init', '-q', '-b', 'main'], '2024-01-01T00:00:00Z');
    write(dir, { ...SETUP, ...extra });
    git(dir, ['add', '-A'], '2024-01-01T00:00:00Z');
    git(dir, ['commit', '-q', '-m', 'Initial commit'], '2024-01-01T00:00:00Z');
    git(dir, ['checkout', '-q', '-b', 'fix-double'], '2024-01-01T01:00:00Z');
    write(dir, { 'pkg/double.py': FIXED, 'tests/test_double.py': test });
    git(dir, ['add', '-A'], '2024-01-01T01:00:00Z');
    git(dir, ['commit', '-q', '-m', 'Fix double for negative numbers'], '2024-01-01T01:00:00Z');
    git(dir, ['update-ref', 'refs/pull/1/head', 'HEAD'], '2024-01-01T01:00:00Z');
    git(dir, ['checkout', '-q', 'main'], '2024-01-01T02:00:00Z');
    if (style === 'merge') {
      git(dir, ['merge', '-q', '--no-ff', 'fix-double', '-m', 'Merge pull request #1 from dev/fix-double\n\nFix double for negative numbers\n\ndouble(-3) returned -3 instead of -6.'], '2024-01-01T02:00:00Z');
    } else {
      git(dir, ['merge', '-q', '--squash', 'fix-double'], '2024-01-01T02:00:00Z');
      git(dir, ['commit', '-q', '-m', 'Fix double for negative numbers (#1)\n\ndouble(-3) returned -3 instead of -6.'], '2024-01-01T02:00:00Z');
    }
    git(dir, ['branch', '-q', '-D', 'fix-double'], '2024-01-01T02:00:00Z');
    return { path: dir, repo: `acme/${name}` };
  };
  const flaky = make('flaky-py', {}, FLAKY_TEST, 'squash');
  const broken = make('broken-install-py', { 'requirements.txt': 'swe-stream-no-such-package-e2e==9.9.9\n' }, 'from pkg.double import double\n\n\ndef test_double_negative():\n    assert double(-3) == -6\n', 'merge');
  return { flaky, broken, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
