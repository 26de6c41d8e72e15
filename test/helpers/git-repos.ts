/**
 * Small, deterministic git repositories with merged pull requests, for tests of every stage and the
 * end-to-end test. Each repository is a tiny Python package (pytest) or JavaScript package (node:test,
 * zero dependencies) whose initial commit contains a few functions with a bug each; every "fix" PR
 * fixes one bug and adds a test file with one test that FAILS before the fix and PASSES after it
 * (fail-to-pass) and one that passes both before and after (pass-to-pass). Other PR kinds change code
 * without tests, only docs, only config by a bot, or code in an unsupported language.
 *
 * PRs land on `main` in GitHub's two styles:
 *  - `merge`:  `git merge --no-ff` with subject `Merge pull request #N from <user>/<branch>`, the PR title
 *              on the first body line and the PR body after it (two parents: main, PR head);
 *  - `squash`: one commit `<title> (#N)` with the PR body as message body (one parent).
 * `refs/pull/N/head` points at the PR head, as in a GitHub clone that fetched pull refs.
 * Author/committer dates are fixed (2024-01-01 plus one hour per commit), so commit shas are identical on
 * every run and machine.
 *
 * Usage:
 * ```ts
 * const repo = await createRepo({ language: 'python' });           // DEFAULT_PRS
 * repo.path, repo.repo ('acme/mathlib-python'), repo.prs[0].prCommit, repo.prs[0].failToPass …
 * await repo.cleanup();
 * ```
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type RepoLanguage = 'python' | 'javascript';
export type MergeStyle = 'merge' | 'squash';
/**
 * What a PR changes:
 *  - `fix`           code fix + new test file (fail-to-pass and pass-to-pass tests);
 *  - `fix-no-tests`  the code fix alone;
 *  - `docs`          README/docs only;
 *  - `config-bot`    a dependency bump in the manifest by `dependabot[bot]`;
 *  - `other-language` a C helper file (code in an unsupported language) only.
 */
export type PrKind = 'fix' | 'fix-no-tests' | 'docs' | 'config-bot' | 'other-language';

/** One PR to create. */
export interface PrSpec {
  number: number;
  style: MergeStyle;
  kind: PrKind;
  title?: string;
  body?: string;
  /** issue number the PR body says it fixes ("Fixes #N") */
  fixesIssue?: number;
  /** more files (path → content) committed with the fix of a `fix` / `fix-no-tests` PR, e.g. a regenerated lockfile */
  extraFiles?: Record<string, string>;
}

/** One test, by file and name, with its runner id (pytest node id, or node:test name). */
export interface TestRef {
  file: string;
  name: string;
  /** pytest: `tests/test_clamp.py::test_clamp_high`; node:test: the test name */
  id: string;
}

/** A PR as created. */
export interface GeneratedPr {
  number: number;
  style: MergeStyle;
  kind: PrKind;
  title: string;
  body: string;
  /** merge commit (style merge) or squash commit on main */
  prCommit: string;
  /** first parent of prCommit */
  parentCommit: string;
  /** PR head (refs/pull/N/head) */
  headSha: string;
  /** `<user>/<branch>` */
  headRef: string;
  author: string;
  codeFiles: string[];
  testFiles: string[];
  /** fail before the PR, pass after (fix PRs only) */
  failToPass: TestRef[];
  /** pass before and after (fix PRs: the new passing test and the initial suite) */
  passToPass: TestRef[];
  /** the bug this PR fixes, if any */
  bug: string | null;
}

/** A created repository. */
export interface GeneratedRepo {
  /** work tree path (a normal, non-bare repository on branch main) */
  path: string;
  /** `owner/name` */
  repo: string;
  language: RepoLanguage;
  branch: 'main';
  /** the initial commit */
  rootCommit: string;
  prs: GeneratedPr[];
  /** command (argv) that runs the whole suite in the work tree: `python3 -m pytest -q` / `node --test` */
  testCommand: string[];
  /** remove the temporary directory (only when the helper created it) */
  cleanup(): Promise<void>;
}

/** Options of {@link createRepo}. */
export interface CreateRepoOptions {
  language: RepoLanguage;
  /** default DEFAULT_PRS */
  prs?: PrSpec[];
  /** `owner/name`, default `acme/mathlib-<language>` */
  repo?: string;
  /** parent directory (default: a new temp dir, removed by cleanup) */
  dir?: string;
  /** licence text to commit as LICENSE (default MIT); null for none */
  license?: 'MIT' | 'GPL-3.0' | null;
}

/** Both merge styles, with and without tests, plus the PR kinds the filter must reject. */
export const DEFAULT_PRS: PrSpec[] = [
  { number: 1, style: 'merge', kind: 'fix', fixesIssue: 101 },
  { number: 2, style: 'squash', kind: 'fix' },
  { number: 3, style: 'squash', kind: 'fix-no-tests' },
  { number: 4, style: 'merge', kind: 'docs' },
  { number: 5, style: 'squash', kind: 'config-bot' },
  { number: 6, style: 'merge', kind: 'fix-no-tests' },
  { number: 7, style: 'squash', kind: 'other-language' },
];

interface Bug {
  name: string;
  py: { buggy: string; fixed: string; test: string; pass: string; fail: string };
  js: { buggy: string; fixed: string; test: string; pass: string; fail: string };
}

const BUGS: Bug[] = [
  {
    name: 'clamp',
    py: {
      buggy: 'def clamp(x, lo, hi):\n    """Limit x to the range [lo, hi]."""\n    if x < lo:\n        return lo\n    return x\n',
      fixed: 'def clamp(x, lo, hi):\n    """Limit x to the range [lo, hi]."""\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n',
      test: 'from mathlib.clamp import clamp\n\n\ndef test_clamp_low():\n    assert clamp(-1, 0, 10) == 0\n\n\ndef test_clamp_high():\n    assert clamp(11, 0, 10) == 10\n',
      pass: 'test_clamp_low', fail: 'test_clamp_high',
    },
    js: {
      buggy: "'use strict';\n/** Limit x to the range [lo, hi]. */\nfunction clamp(x, lo, hi) {\n  if (x < lo) return lo;\n  return x;\n}\nmodule.exports = { clamp };\n",
      fixed: "'use strict';\n/** Limit x to the range [lo, hi]. */\nfunction clamp(x, lo, hi) {\n  if (x < lo) return lo;\n  if (x > hi) return hi;\n  return x;\n}\nmodule.exports = { clamp };\n",
      test: "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert');\nconst { clamp } = require('../src/clamp.js');\n\ntest('clamp keeps the lower bound', () => {\n  assert.strictEqual(clamp(-1, 0, 10), 0);\n});\n\ntest('clamp keeps the upper bound', () => {\n  assert.strictEqual(clamp(11, 0, 10), 10);\n});\n",
      pass: 'clamp keeps the lower bound', fail: 'clamp keeps the upper bound',
    },
  },
  {
    name: 'mean',
    py: {
      buggy: 'def mean(xs):\n    """Arithmetic mean; 0.0 for an empty sequence."""\n    return sum(xs) / len(xs)\n',
      fixed: 'def mean(xs):\n    """Arithmetic mean; 0.0 for an empty sequence."""\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)\n',
      test: 'from mathlib.mean import mean\n\n\ndef test_mean_values():\n    assert mean([1, 2, 3]) == 2\n\n\ndef test_mean_empty():\n    assert mean([]) == 0.0\n',
      pass: 'test_mean_values', fail: 'test_mean_empty',
    },
    js: {
      buggy: "'use strict';\n/** Arithmetic mean; 0 for an empty array. */\nfunction mean(xs) {\n  return xs.reduce((a, b) => a + b, 0) / xs.length;\n}\nmodule.exports = { mean };\n",
      fixed: "'use strict';\n/** Arithmetic mean; 0 for an empty array. */\nfunction mean(xs) {\n  if (xs.length === 0) return 0;\n  return xs.reduce((a, b) => a + b, 0) / xs.length;\n}\nmodule.exports = { mean };\n",
      test: "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert');\nconst { mean } = require('../src/mean.js');\n\ntest('mean of values', () => {\n  assert.strictEqual(mean([1, 2, 3]), 2);\n});\n\ntest('mean of nothing is zero', () => {\n  assert.strictEqual(mean([]), 0);\n});\n",
      pass: 'mean of values', fail: 'mean of nothing is zero',
    },
  },
  {
    name: 'sign',
    py: {
      buggy: 'def sign(x):\n    """-1, 0 or 1 according to the sign of x."""\n    return 1 if x >= 0 else -1\n',
      fixed: 'def sign(x):\n    """-1, 0 or 1 according to the sign of x."""\n    if x == 0:\n        return 0\n    return 1 if x > 0 else -1\n',
      test: 'from mathlib.sign import sign\n\n\ndef test_sign_negative():\n    assert sign(-5) == -1\n\n\ndef test_sign_zero():\n    assert sign(0) == 0\n',
      pass: 'test_sign_negative', fail: 'test_sign_zero',
    },
    js: {
      buggy: "'use strict';\n/** -1, 0 or 1 according to the sign of x. */\nfunction sign(x) {\n  return x >= 0 ? 1 : -1;\n}\nmodule.exports = { sign };\n",
      fixed: "'use strict';\n/** -1, 0 or 1 according to the sign of x. */\nfunction sign(x) {\n  if (x === 0) return 0;\n  return x > 0 ? 1 : -1;\n}\nmodule.exports = { sign };\n",
      test: "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert');\nconst { sign } = require('../src/sign.js');\n\ntest('sign of a negative number', () => {\n  assert.strictEqual(sign(-5), -1);\n});\n\ntest('sign of zero', () => {\n  assert.strictEqual(sign(0), 0);\n});\n",
      pass: 'sign of a negative number', fail: 'sign of zero',
    },
  },
  {
    name: 'last',
    py: {
      buggy: 'def last(xs):\n    """The last element, or None for an empty sequence."""\n    return xs[-1] if len(xs) > 1 else None\n',
      fixed: 'def last(xs):\n    """The last element, or None for an empty sequence."""\n    return xs[-1] if xs else None\n',
      test: 'from mathlib.last import last\n\n\ndef test_last_many():\n    assert last([1, 2, 3]) == 3\n\n\ndef test_last_single():\n    assert last([7]) == 7\n',
      pass: 'test_last_many', fail: 'test_last_single',
    },
    js: {
      buggy: "'use strict';\n/** The last element, or undefined for an empty array. */\nfunction last(xs) {\n  return xs.length > 1 ? xs[xs.length - 1] : undefined;\n}\nmodule.exports = { last };\n",
      fixed: "'use strict';\n/** The last element, or undefined for an empty array. */\nfunction last(xs) {\n  return xs.length > 0 ? xs[xs.length - 1] : undefined;\n}\nmodule.exports = { last };\n",
      test: "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert');\nconst { last } = require('../src/last.js');\n\ntest('last of many', () => {\n  assert.strictEqual(last([1, 2, 3]), 3);\n});\n\ntest('last of one', () => {\n  assert.strictEqual(last([7]), 7);\n});\n",
      pass: 'last of many', fail: 'last of one',
    },
  },
  {
    name: 'is_even',
    py: {
      buggy: 'def is_even(n):\n    """Whether the integer n is even."""\n    return n >= 0 and n % 2 == 0\n',
      fixed: 'def is_even(n):\n    """Whether the integer n is even."""\n    return n % 2 == 0\n',
      test: 'from mathlib.is_even import is_even\n\n\ndef test_even_positive():\n    assert is_even(4)\n\n\ndef test_even_negative():\n    assert is_even(-4)\n',
      pass: 'test_even_positive', fail: 'test_even_negative',
    },
    js: {
      buggy: "'use strict';\n/** Whether the integer n is even. */\nfunction isEven(n) {\n  return n >= 0 && n % 2 === 0;\n}\nmodule.exports = { isEven };\n",
      fixed: "'use strict';\n/** Whether the integer n is even. */\nfunction isEven(n) {\n  return Math.abs(n) % 2 === 0;\n}\nmodule.exports = { isEven };\n",
      test: "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert');\nconst { isEven } = require('../src/is_even.js');\n\ntest('even positive', () => {\n  assert.ok(isEven(4));\n});\n\ntest('even negative', () => {\n  assert.ok(isEven(-4));\n});\n",
      pass: 'even positive', fail: 'even negative',
    },
  },
];

const MIT = `MIT License

Copyright (c) 2024 Acme

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
`;
const GPL = `                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

 Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
 Everyone is permitted to copy and distribute verbatim copies
 of this license document, but changing it is not allowed.
`;

const BASE_TIME = Date.UTC(2024, 0, 1, 0, 0, 0) / 1000;

class Git {
  private tick = 0;
  constructor(readonly cwd: string) {}
  /** Run git with the next fixed timestamp; the committer is GitHub unless `committer` is given. */
  async run(args: string[], author?: { name: string; email: string }, committer?: { name: string; email: string }): Promise<string> {
    const t = `${BASE_TIME + 3600 * this.tick++} +0000`;
    const a = author ?? { name: 'Maintainer', email: 'maintainer@example.com' };
    const c = committer ?? { name: 'GitHub', email: 'noreply@github.com' };
    const { stdout } = await run('git', args, {
      cwd: this.cwd,
      env: {
        ...process.env,
        GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_NAME: a.name, GIT_AUTHOR_EMAIL: a.email, GIT_AUTHOR_DATE: t,
        GIT_COMMITTER_NAME: c.name, GIT_COMMITTER_EMAIL: c.email, GIT_COMMITTER_DATE: t,
      },
    });
    return stdout.trim();
  }
}

async function write(root: string, rel: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await writeFile(path.join(root, rel), text);
}

/**
 * Create a repository with the given PRs merged into `main`, in order.
 * @throws Error when git fails (git ≥ 2.28 needed for `init -b`), or when more fix PRs are asked for than
 *   there are bugs (5).
 */
export async function createRepo(opts: CreateRepoOptions): Promise<GeneratedRepo> {
  const lang = opts.language;
  const specs = opts.prs ?? DEFAULT_PRS;
  const repoName = opts.repo ?? `acme/mathlib-${lang}`;
  const parent = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'swe-stream-repo-')));
  const root = path.join(parent, ...repoName.split('/'));
  await mkdir(root, { recursive: true });
  const g = new Git(root);
  await g.run(['init', '-q', '-b', 'main']);
  const py = lang === 'python';
  const bugs = BUGS.slice(0, Math.max(1, specs.filter((s) => s.kind === 'fix' || s.kind === 'fix-no-tests').length));
  if (specs.filter((s) => s.kind === 'fix' || s.kind === 'fix-no-tests').length > BUGS.length) throw new Error(`at most ${BUGS.length} fix PRs per repository`);

  // Initial commit: buggy modules, a passing test suite, manifest, licence.
  if (py) {
    await write(root, 'pyproject.toml', `[project]\nname = "mathlib"\nversion = "0.1.0"\nrequires-python = ">=3.8"\ndependencies = []\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n`);
    await write(root, 'mathlib/__init__.py', '"""Tiny maths helpers."""\n\n\ndef identity(x):\n    return x\n');
    for (const b of bugs) await write(root, `mathlib/${b.name}.py`, b.py.buggy);
    await write(root, 'tests/__init__.py', '');
    await write(root, 'tests/test_basics.py', 'from mathlib import identity\n\n\ndef test_identity():\n    assert identity(3) == 3\n');
  } else {
    await write(root, 'package.json', JSON.stringify({ name: 'mathlib', version: '0.1.0', private: true, license: 'MIT', main: 'src/index.js', scripts: { test: 'node --test' }, devDependencies: { 'left-pad': '1.0.0' } }, null, 2) + '\n');
    await write(root, 'src/index.js', "'use strict';\nfunction identity(x) {\n  return x;\n}\nmodule.exports = { identity };\n");
    for (const b of bugs) await write(root, `src/${b.name}.js`, b.js.buggy);
    await write(root, 'test/basics.test.js', "'use strict';\nconst test = require('node:test');\nconst assert = require('node:assert');\nconst { identity } = require('../src/index.js');\n\ntest('identity', () => {\n  assert.strictEqual(identity(3), 3);\n});\n");
  }
  await write(root, 'README.md', '# mathlib\n\nTiny maths helpers.\n');
  if (opts.license !== null) await write(root, 'LICENSE', opts.license === 'GPL-3.0' ? GPL : MIT);
  await write(root, '.gitignore', py ? '__pycache__/\n.pytest_cache/\n' : 'node_modules/\n');
  await g.run(['add', '-A']);
  await g.run(['commit', '-q', '-m', 'Initial commit']);
  const rootCommit = await g.run(['rev-parse', 'HEAD']);
  const basicsTest: TestRef = py ? { file: 'tests/test_basics.py', name: 'test_identity', id: 'tests/test_basics.py::test_identity' } : { file: 'test/basics.test.js', name: 'identity', id: 'identity' };

  const prs: GeneratedPr[] = [];
  let bugIdx = 0;
  for (const spec of specs) {
    const user = spec.kind === 'config-bot' ? 'dependabot[bot]' : `contributor${spec.number}`;
    const author = spec.kind === 'config-bot'
      ? { name: 'dependabot[bot]', email: '49699333+dependabot[bot]@users.noreply.github.com' }
      : { name: `Contributor ${spec.number}`, email: `${1000 + spec.number}+${user}@users.noreply.github.com` };
    const bug = spec.kind === 'fix' || spec.kind === 'fix-no-tests' ? bugs[bugIdx++]! : null;
    const branch = bug ? `fix-${bug.name.replace('_', '-')}` : `${spec.kind}-${spec.number}`;
    const title = spec.title ?? (bug ? `Fix ${bug.name} edge case` : spec.kind === 'docs' ? 'Document usage' : spec.kind === 'config-bot' ? 'Bump left-pad from 1.0.0 to 1.3.0' : 'Add a C helper');
    const body = spec.body ?? [bug ? `${bug.name} returned a wrong result at the edge of its domain.` : 'Housekeeping.', spec.fixesIssue ? `\nFixes #${spec.fixesIssue}` : ''].join('');
    await g.run(['checkout', '-q', '-b', branch, 'main']);
    const codeFiles: string[] = [];
    const testFiles: string[] = [];
    const failToPass: TestRef[] = [];
    const passToPass: TestRef[] = [];
    if (bug) {
      const code = py ? `mathlib/${bug.name}.py` : `src/${bug.name}.js`;
      const t = py ? bug.py : bug.js;
      if (spec.kind === 'fix') {
        const tf = py ? `tests/test_${bug.name}.py` : `test/${bug.name}.test.js`;
        await write(root, tf, t.test);
        await g.run(['add', '-A']);
        await g.run(['commit', '-q', '-m', `Add a test for ${bug.name}`], author);
        testFiles.push(tf);
        failToPass.push({ file: tf, name: t.fail, id: py ? `${tf}::${t.fail}` : t.fail });
        passToPass.push({ file: tf, name: t.pass, id: py ? `${tf}::${t.pass}` : t.pass }, basicsTest);
      }
      await write(root, code, t.fixed);
      for (const [f, content] of Object.entries(spec.extraFiles ?? {})) await write(root, f, content);
      await g.run(['add', '-A']);
      await g.run(['commit', '-q', '-m', `Fix ${bug.name}${spec.fixesIssue ? `\n\nCloses #${spec.fixesIssue}` : ''}`], author);
      codeFiles.push(code);
    } else if (spec.kind === 'docs') {
      await write(root, 'README.md', '# mathlib\n\nTiny maths helpers.\n\n## Usage\n\nImport the function you need.\n');
      await write(root, 'docs/usage.md', '# Usage\n\nEvery helper is a pure function.\n');
      await g.run(['add', '-A']);
      await g.run(['commit', '-q', '-m', 'Document usage'], author);
    } else if (spec.kind === 'config-bot') {
      if (py) await write(root, 'pyproject.toml', `[project]\nname = "mathlib"\nversion = "0.1.0"\nrequires-python = ">=3.8"\ndependencies = ["attrs>=23.1"]\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n`);
      else await write(root, 'package.json', JSON.stringify({ name: 'mathlib', version: '0.1.0', private: true, license: 'MIT', main: 'src/index.js', scripts: { test: 'node --test' }, devDependencies: { 'left-pad': '1.3.0' } }, null, 2) + '\n');
      await g.run(['add', '-A']);
      await g.run(['commit', '-q', '-m', title], author);
    } else {
      await write(root, 'native/helper.c', 'int add(int a, int b) { return a + b; }\n');
      codeFiles.push('native/helper.c');
      await g.run(['add', '-A']);
      await g.run(['commit', '-q', '-m', title], author);
    }
    const headSha = await g.run(['rev-parse', 'HEAD']);
    await g.run(['checkout', '-q', 'main']);
    const parentCommit = await g.run(['rev-parse', 'HEAD']);
    const headRef = `${user.replace(/\[bot\]$/, '')}/${branch}`;
    if (spec.style === 'merge') {
      await g.run(['merge', '-q', '--no-ff', '-m', `Merge pull request #${spec.number} from ${headRef}\n\n${title}\n\n${body}`.trimEnd(), branch]);
    } else {
      await g.run(['merge', '-q', '--squash', branch]);
      await g.run(['commit', '-q', '-m', `${title} (#${spec.number})\n\n${body}`.trimEnd()], author);
    }
    const prCommit = await g.run(['rev-parse', 'HEAD']);
    await g.run(['update-ref', `refs/pull/${spec.number}/head`, headSha]);
    await g.run(['branch', '-q', '-D', branch]);
    prs.push({ number: spec.number, style: spec.style, kind: spec.kind, title, body, prCommit, parentCommit, headSha, headRef, author: user, codeFiles, testFiles, failToPass, passToPass, bug: bug?.name ?? null });
  }

  return {
    path: root,
    repo: repoName,
    language: lang,
    branch: 'main',
    rootCommit,
    prs,
    testCommand: py ? ['python3', '-m', 'pytest', '-q'] : ['node', '--test'],
    cleanup: async () => {
      if (!opts.dir) await rm(parent, { recursive: true, force: true });
    },
  };
}

/** How a PR of {@link createHistoryRepo} lands: GitHub's three buttons, a command-line merge, a fast-forward, or not at all. */
export type LandingStyle = 'merge' | 'squash' | 'rebase' | 'pull-ref' | 'fast-forward' | 'closed';

/** One PR of a history repository, with what the git source must report for it. */
export interface HistoryPr {
  number: number;
  landing: LandingStyle;
  /** branch the PR targets */
  target: string;
  /** the task's base commit the scan must report (merge base, squash parent, parent of the landed range) */
  base: string;
  /** the end of the PR's change (merge commit, or the head when the target moved after the fork; squash commit; last landed commit) */
  commit: string;
  /** the commit that landed it (merge, squash, last rebased commit) */
  landingSha: string;
  headSha: string;
  /** files the PR changes: `git diff base commit` must name exactly these */
  files: string[];
}

/** A repository whose PRs land in every style, on `main`, a gitflow `dev` and a release branch. */
export interface HistoryRepo {
  path: string;
  repo: string;
  prs: HistoryPr[];
  /** a contributor's commit "… (#101)" on a merged side branch: names an issue, must not become a squash PR */
  issueRefCommit: string;
  cleanup(): Promise<void>;
}

/** Work-tree operations of {@link createHistoryRepo}; every commit gets the next fixed timestamp. */
class HistoryBuilder {
  readonly prs: HistoryPr[] = [];
  constructor(readonly g: Git, readonly root: string) {}

  async sha(rev: string): Promise<string> {
    return this.g.run(['rev-parse', rev]);
  }

  /** Commit one file on the current branch (a contributor's commit is also committed by them, as on their machine). */
  async commitFile(file: string, text: string, msg: string, author?: { name: string; email: string }): Promise<string> {
    await write(this.root, file, text);
    await this.g.run(['add', '-A']);
    await this.g.run(['commit', '-q', '-m', msg], author, author);
    return this.sha('HEAD');
  }

  /** A PR branch from `from` with `commits` commits, each adding `src/pr<N>-<i>.js` (plus a test file in the first). */
  async branch(n: number, from: string, commits = 1): Promise<{ branch: string; head: string; files: string[] }> {
    const branch = `pr-${n}`;
    const author = { name: `Contributor ${n}`, email: `${2000 + n}+contributor${n}@users.noreply.github.com` };
    await this.g.run(['checkout', '-q', '-b', branch, from]);
    const files = [`test/pr${n}.test.js`];
    await write(this.root, files[0]!, `'use strict';\nrequire('node:test')('pr ${n}', () => {});\n`);
    for (let i = 1; i <= commits; i++) {
      files.push(`src/pr${n}-${i}.js`);
      await this.commitFile(`src/pr${n}-${i}.js`, `module.exports = ${n * 10 + i};\n`, `Change ${i} of PR ${n}`, author);
    }
    const head = await this.sha('HEAD');
    await this.g.run(['update-ref', `refs/pull/${n}/head`, head]);
    return { branch, head, files: files.sort() };
  }

  /** Land PR `n` (branched from `from`, default the target's tip) on `target` in `landing` style. */
  async pr(n: number, target: string, landing: LandingStyle, opts: { from?: string; commits?: number } = {}): Promise<HistoryPr> {
    const { branch, head, files } = await this.branch(n, opts.from ?? target, opts.commits);
    await this.g.run(['checkout', '-q', target]);
    const tip = await this.sha('HEAD');
    let base = await this.g.run(['merge-base', tip, head]);
    let commit = head;
    if (landing === 'merge' || landing === 'pull-ref') {
      const msg = landing === 'merge' ? `Merge pull request #${n} from contributor${n}/${branch}\n\nPR ${n} title` : `Merge branch '${branch}'`;
      await this.g.run(['merge', '-q', '--no-ff', '-m', msg, branch]);
    } else if (landing === 'squash') {
      await this.g.run(['merge', '-q', '--squash', branch]);
      await this.g.run(['commit', '-q', '-m', `PR ${n} title (#${n})\n\nSquashed.`]);
      commit = await this.sha('HEAD');
      base = tip;
    } else if (landing === 'rebase') {
      await this.g.run(['cherry-pick', `${base}..${branch}`]);
      commit = await this.sha('HEAD');
      base = tip;
    } else if (landing === 'fast-forward') {
      await this.g.run(['merge', '-q', '--ff-only', branch]);
    }
    const landingSha = landing === 'closed' ? head : await this.sha('HEAD');
    // A head that was up to date with the target merges to the same tree: the merge commit is the PR's commit.
    if ((landing === 'merge' || landing === 'pull-ref') && base === tip) commit = landingSha;
    await this.g.run(['branch', '-q', '-D', branch]);
    const pr = { number: n, landing, target, base, commit, landingSha, headSha: head, files };
    this.prs.push(pr);
    return pr;
  }
}

/**
 * Create a JavaScript repository whose PRs land in every style (see {@link HistoryPr} for what each records):
 *  - on `main`: #1 merge commit, #2 squash, #3 rebase-merge of two commits forked before #1 and #2, #4 merged on the
 *    command line ("Merge branch 'pr-4'"), #5 a merge commit of a branch forked before #1–#4 landed (its
 *    merge base is old: a diff against the moved main would drag in #1–#4), #13 a fast-forward of two commits;
 *  - gitflow: `dev` gets #7 (merge commit, its branch also carries a contributor's "Fix parser (#101)"
 *    commit) and #8 (squash); `dev` → `main` by #9 ("Merge pull request #9 from acme/dev"), `main` back into
 *    `dev`, #10 (rebase) on `dev`, `dev` → `main` again by #11;
 *  - `release/1.x` (from the parent of #2's squash): #6 squash merged into it (never merged back), then #2
 *    cherry-picked onto it (the same "(#2)" subject twice in history);
 *  - #12 closed without merging (its ref stays).
 * @throws Error when git fails.
 */
export async function createHistoryRepo(opts: { repo?: string } = {}): Promise<HistoryRepo> {
  const repoName = opts.repo ?? 'acme/history-js';
  const parent = await mkdtemp(path.join(tmpdir(), 'swe-stream-history-'));
  const root = path.join(parent, ...repoName.split('/'));
  await mkdir(root, { recursive: true });
  const g = new Git(root);
  const b = new HistoryBuilder(g, root);
  await g.run(['init', '-q', '-b', 'main']);
  await b.commitFile('package.json', '{ "name": "history", "scripts": { "test": "node --test" } }\n', 'Initial commit');
  const early = await b.sha('main');
  await b.pr(1, 'main', 'merge');
  const squash2 = await b.pr(2, 'main', 'squash');
  await b.pr(3, 'main', 'rebase', { from: early, commits: 2 });
  await b.pr(4, 'main', 'pull-ref');
  await b.pr(5, 'main', 'merge', { from: early });
  await g.run(['checkout', '-q', '-b', 'dev', 'main']);
  await g.run(['checkout', '-q', '-b', 'pr-7-wip', 'dev']);
  const issueRefCommit = await b.commitFile('docs/parser.md', '# parser\n', 'Fix parser (#101)', { name: 'Contributor 7', email: '2007+contributor7@users.noreply.github.com' });
  await g.run(['checkout', '-q', 'dev']);
  const pr7 = await b.pr(7, 'dev', 'merge', { from: 'pr-7-wip' });
  pr7.files = [...pr7.files, 'docs/parser.md'].sort();
  await g.run(['branch', '-q', '-D', 'pr-7-wip']);
  await b.pr(8, 'dev', 'squash');
  await g.run(['checkout', '-q', 'main']);
  await g.run(['merge', '-q', '--no-ff', '-m', 'Merge pull request #9 from acme/dev\n\nD2M', 'dev']);
  await g.run(['update-ref', 'refs/pull/9/head', await b.sha('dev')]);
  await g.run(['checkout', '-q', 'dev']);
  await g.run(['merge', '-q', '--no-ff', '-m', "Merge branch 'main' into dev", 'main']);
  await b.pr(10, 'dev', 'rebase');
  await g.run(['checkout', '-q', 'main']);
  await g.run(['merge', '-q', '--no-ff', '-m', 'Merge pull request #11 from acme/dev\n\nD2M again', 'dev']);
  await g.run(['update-ref', 'refs/pull/11/head', await b.sha('dev')]);
  await g.run(['checkout', '-q', '-b', 'release/1.x', `${squash2.landingSha}^`]);
  await b.pr(6, 'release/1.x', 'squash');
  await g.run(['cherry-pick', squash2.landingSha]);
  await g.run(['checkout', '-q', 'main']);
  await b.pr(12, 'main', 'closed');
  await b.pr(13, 'main', 'fast-forward', { commits: 2 });
  return { path: root, repo: repoName, prs: b.prs, issueRefCommit, cleanup: () => rm(parent, { recursive: true, force: true }) };
}
