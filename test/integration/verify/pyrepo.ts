/**
 * The generated Python/pytest repository shared by the verify and test-creator integration tests (same
 * commits, fixed dates, so the same commit ids and one cached environment image per engine).
 */
import type { SandboxFactory } from '../../../operators/sandbox/types.js';
import { GenRepo, buildEnvImage } from './helpers.js';

export const WORKDIR = '/testbed';

export const OPS_BUGGY = `def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a + b  # bug\n`;
export const OPS_FIXED = `def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n`;
// Fails on the second run of each container: /tmp survives the work-tree reset between reruns.
const FLAKY = `\ndef test_flaky():\n    import os\n    p = '/tmp/flaky-counter'\n    n = int(open(p).read()) + 1 if os.path.exists(p) else 1\n    open(p, 'w').write(str(n))\n    assert n != 2\n`;
const TESTS_BASE = `import pytest\nfrom calc.ops import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n@pytest.mark.skip(reason="later")\ndef test_skipped():\n    pass\n\n\n@pytest.mark.xfail(reason="known")\ndef test_known_bug():\n    assert False\n`;

export const repo = new GenRepo();
export const base = repo.commit({ 'calc/__init__.py': '', 'calc/ops.py': OPS_BUGGY, 'tests/__init__.py': '', 'tests/test_ops.py': TESTS_BASE, 'README.md': 'calc\n' }, 'initial');
export const parent = repo.commit({ 'README.md': 'calc, a calculator\n' }, 'docs');
export const prs = {
  good: repo.pr('good', parent, {
    'calc/ops.py': OPS_FIXED,
    'calc/square.py': 'def square(x):\n    return x * x\n',
    'tests/test_ops.py': TESTS_BASE.replace('from calc.ops import add', 'from calc.ops import add, mul') + `\n\ndef test_mul():\n    assert mul(2, 3) == 6\n` + FLAKY,
    'tests/test_square.py': 'from calc.square import square\n\n\ndef test_square():\n    assert square(3) == 9\n',
  }),
  p2f: repo.pr('p2f', parent, {
    'calc/ops.py': OPS_FIXED.replace('return a + b\n\n', 'return a - b\n\n'),
    'tests/test_ops.py': TESTS_BASE.replace('from calc.ops import add', 'from calc.ops import add, mul') + `\n\ndef test_mul():\n    assert mul(2, 3) == 6\n`,
  }),
  nof2p: repo.pr('nof2p', parent, {
    'calc/ops.py': '"""Arithmetic."""\n' + OPS_BUGGY,
    'tests/test_ops.py': TESTS_BASE + `\n\ndef test_add_zero():\n    assert add(0, 0) == 0\n`,
  }),
  flakyf2p: repo.pr('flakyf2p', parent, {
    'calc/ops.py': OPS_FIXED,
    'tests/test_ops.py': TESTS_BASE.replace('from calc.ops import add', 'from calc.ops import add, mul') + `\n\ndef test_mul_flaky():\n    import os\n    p = '/tmp/c'\n    n = int(open(p).read()) + 1 if os.path.exists(p) else 1\n    open(p, 'w').write(str(n))\n    assert mul(2, 3) == 6 and n != 2\n`,
  }),
  slow: repo.pr('slow', parent, {
    'calc/ops.py': OPS_FIXED,
    'tests/test_ops.py': TESTS_BASE + `\n\ndef test_slow():\n    import time\n    time.sleep(60)\n`,
  }),
  noparse: repo.pr('noparse', parent, {
    'calc/ops.py': OPS_FIXED,
    'tests/conftest.py': 'raise RuntimeError("conftest is broken")\n',
    'tests/test_ops.py': TESTS_BASE + `\n\ndef test_more():\n    pass\n`,
  }),
  // No test change: the Unit-test Creator's case.
  notest: repo.pr('notest', parent, { 'calc/ops.py': OPS_FIXED }),
};


/** The environment image: pytest in /opt/venv (on the base image's PATH), the repo at the parent. */
export async function pythonEnvImage(sandboxes: SandboxFactory): Promise<{ ref: string; id: string }> {
  const b = await sandboxes.baseImage('python');
  return buildEnvImage({
    sandboxes, base: b, repo, checkout: parent, workdir: WORKDIR, name: 'calc-py',
    setup: 'set -e; python3 -m venv /opt/venv; /opt/venv/bin/pip install -q pytest==8.3.5',
  });
}
