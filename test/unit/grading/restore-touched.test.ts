/**
 * operators/harness/runs.ts `restoreTouchedLines`: before a run applies the PR's patches, a file the patches
 * modify gets its committed content back when the environment changed it. The case is developit/mitt#114's:
 * package.json committed without a final newline, an install that rewrote it with one, and a gold patch whose
 * last hunk carries "\ No newline at end of file". Real git and bash in a temporary repository.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { patchFiles, rebuildLines, restoreTouchedLines } from '../../../operators/harness/runs.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

const PKG = '{\n  "name": "m",\n  "devDependencies": {\n    "typescript": "^3.9.3"\n  }\n}'; // no final newline, as in mitt

/** A repository at its base commit, and the gold patch of a later commit that edits package.json and adds a file. */
function repoWithPatch(): { dir: string; gold: string } {
  const dir = mkdtempSync(join(tmpdir(), 'swe-restore-'));
  dirs.push(dir);
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { cwd: dir, encoding: 'utf8' });
  git('init', '-q');
  writeFileSync(join(dir, 'package.json'), PKG);
  writeFileSync(join(dir, 'index.js'), 'module.exports = 1;\n');
  git('add', '.');
  git('commit', '-qm', 'base');
  writeFileSync(join(dir, 'package.json'), PKG.replace('^3.9.3', '^3.9.7') + '\n');
  writeFileSync(join(dir, 'new.js'), 'module.exports = 2;\n');
  git('add', '.');
  git('commit', '-qm', 'fix');
  const gold = git('diff', 'HEAD~1', 'HEAD');
  git('checkout', '-q', 'HEAD~1');
  return { dir, gold };
}

function bash(dir: string, script: string): { status: number | null; out: string } {
  const r = spawnSync('bash', ['-c', script], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('files the patches modify start from their committed content', () => {
  it('an install that rewrote package.json no longer makes the gold patch fail to apply', () => {
    const { dir, gold } = repoWithPatch();
    writeFileSync(join(dir, 'gold.diff'), gold);
    writeFileSync(join(dir, 'package.json'), PKG + '\n'); // what `npm install` leaves
    expect(bash(dir, 'git apply --check gold.diff').status).not.toBe(0); // the failure this guards against

    const lines = restoreTouchedLines(patchFiles([{ name: 'gold', text: gold }]));
    const r = bash(dir, [...lines, 'git apply gold.diff'].join('\n'));
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(join(dir, 'package.json'), 'utf8')).toContain('"typescript": "^3.9.7"');
    expect(readFileSync(join(dir, 'new.js'), 'utf8')).toBe('module.exports = 2;\n');
  });

  it('leaves files the patches do not touch as the environment made them, and adds no lines for added files only', () => {
    const { dir, gold } = repoWithPatch();
    writeFileSync(join(dir, 'index.js'), 'module.exports = 1; // built\n');
    const r = bash(dir, restoreTouchedLines(patchFiles([{ name: 'gold', text: gold }])).join('\n'));
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(join(dir, 'index.js'), 'utf8')).toBe('module.exports = 1; // built\n');
    const onlyAdded = gold.slice(gold.indexOf('diff --git a/new.js'), gold.indexOf('diff --git a/package.json'));
    expect(onlyAdded).toContain('new file mode');
    expect(restoreTouchedLines(patchFiles([{ name: 'gold', text: onlyAdded }]))).toEqual([]);
  });
});

describe('extension modules follow the patches that change their sources', () => {
  const cDiff = 'diff --git a/pkg/_speedups.c b/pkg/_speedups.c\n--- a/pkg/_speedups.c\n+++ b/pkg/_speedups.c\n@@ -1 +1 @@\n-int x = 1;\n+int x = 2;\n';
  const pyDiff = 'diff --git a/tests/test_x.py b/tests/test_x.py\n--- a/tests/test_x.py\n+++ b/tests/test_x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n';

  /** Run the lines in a directory whose setup.py only records that it was asked to build. */
  function runLines(dir: string, scratch: string, lines: string[]): string {
    const script = lines.join('\n').replaceAll('/tmp/swe-stream', scratch);
    const r = bash(dir, script);
    expect(r.status, r.out).toBe(0);
    return readFileSync(join(dir, 'builds.log'), 'utf8');
  }

  it('rebuilds after a patch to C sources, once more to return to the commit, then not at all', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swe-rebuild-'));
    const scratch = mkdtempSync(join(tmpdir(), 'swe-scratch-'));
    dirs.push(dir, scratch);
    writeFileSync(join(dir, 'setup.py'), "import sys\nopen('builds.log', 'a').write(' '.join(sys.argv[1:]) + '\\n')\n");
    writeFileSync(join(dir, 'builds.log'), '');
    expect(runLines(dir, scratch, rebuildLines(patchFiles([{ name: 'test', text: pyDiff }])))).toBe(''); // nothing native, nothing built before
    expect(runLines(dir, scratch, rebuildLines(patchFiles([{ name: 'test', text: pyDiff }, { name: 'gold', text: cDiff }])))).toBe('build_ext --inplace\n');
    expect(runLines(dir, scratch, rebuildLines(patchFiles([])))).toBe('build_ext --inplace\nbuild_ext --inplace\n'); // the empty-patch run after it
    expect(runLines(dir, scratch, rebuildLines(patchFiles([])))).toBe('build_ext --inplace\nbuild_ext --inplace\n');
  });

  it('does nothing in a project without setup.py', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swe-rebuild-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'builds.log'), '');
    expect(runLines(dir, dir, rebuildLines(patchFiles([{ name: 'gold', text: cDiff }])))).toBe('');
  });
});
