/**
 * AVA: run with `--tap` (AVA's TAP reporter, one test point per test, `# SKIP` / `# TODO` directives),
 * once per selected file: one file's uncaught exception must not take other files' tests with it, and
 * AVA's TAP titles carry a file prefix derived from the path (`dir › file › title`, extension and
 * test/ directories dropped) only when several files ran. Test ids: `file > title`. The whole suite
 * ('all') is one AVA run; its ids keep AVA's prefix (`prefix > title`), enough to count the tests.
 * AVA ≥ 1 prints TAP on stdout; the report is that stdout, the log has it too.
 */
import type { ParseContext, Runner, TestCommandOptions, TestResult } from './types.js';
import { dedupeResults } from './types.js';
import { tapResults } from './tap.js';
import { fileLogs, fileParts, perFileCommand, shFiles, shq } from './util.js';

const ENV = 'CI=true NO_COLOR=1 FORCE_COLOR=0';

/** Per file: `npx ava <repo args> --tap <file>`; 'all': `npx ava <repo args> --tap [script's globs]`. */
function testCommand(opts: TestCommandOptions): string {
  const args = opts.args?.length ? ' ' + shFiles(opts.args) : '';
  if (opts.files === 'all') {
    const globs = opts.patterns?.length ? ' ' + shFiles(opts.patterns) : '';
    return `${ENV} npx ava${args} --tap${globs} > ${shq(opts.reportPath)}; __x=$?; cat ${shq(opts.reportPath)}; exit $__x`;
  }
  return perFileCommand({
    files: shFiles(opts.files),
    reportPath: opts.reportPath,
    run: `{ ${ENV} npx ava${args} --tap "$__f" > "$__part"; __x=$?; cat "$__part"; (exit $__x); }`,
  });
}

/**
 * Test points that are not tests: an uncaught exception or unhandled rejection (`Error: …`), a worker
 * that exited non-zero, a timeout. They make the file an ERROR entry.
 */
const FILE_ERROR = /^(Uncaught exception|Unhandled rejection|Timed out|[A-Z]\w*Error: |Error: )|exited with a non-zero exit code/;

/**
 * A per-file run's points as `file > title`: file-level error points become one ERROR named by the file;
 * a title that still carries AVA's `prefix ›` (AVA adds it when the title could be ambiguous) keeps it,
 * since a test title may itself contain `›`.
 */
function perFile(results: TestResult[], file: string): TestResult[] {
  return results.map((r) => {
    if (r.name === file) return r;
    const title = r.name.slice(file.length + 3);
    return FILE_ERROR.test(title) ? { name: file, status: 'ERROR' as const } : r;
  });
}

function parse(report: string | null, log: string, _ctx?: ParseContext): TestResult[] {
  if (report !== null && !report.includes('<!-- swe-stream file: ')) {
    // The one-run form: ids are AVA's titles with its prefix.
    return dedupeResults(tapResults(report, '', null, true).map((r) => ({ ...r, name: r.name.replace(/^ > /, '').replace(' › ', ' > ') })));
  }
  const out: TestResult[] = [];
  const done = new Set<string>();
  for (const p of report !== null ? fileParts(report) : []) {
    out.push(...perFile(tapResults(p.text, p.file, p.exitCode, true), p.file));
    done.add(p.file);
  }
  for (const [file, text] of fileLogs(log)) if (!done.has(file)) out.push(...perFile(tapResults(text, file, null, true), file));
  return dedupeResults(out);
}

/** AVA's default files: test.js, src/test.js, source/test.js, **\/test-*.js, **\/*.spec.js, **\/*.test.js, **\/test/**\/*.js, **\/tests/**\/*.js, **\/__tests__/**\/*.js (helpers and fixtures excluded). */
function isTestFile(path: string): boolean {
  if (/(^|\/)(node_modules|fixtures?|helpers?)\//.test(path) || !/\.[cm]?[jt]sx?$/.test(path)) return false;
  const base = path.split('/').pop() ?? '';
  if (base.startsWith('_')) return false;
  return /^test\.[cm]?[jt]s$/.test(base) || /^test-/.test(base) || /\.(spec|test)\.[cm]?[jt]sx?$/.test(base) || /(^|\/)(test|tests|__tests__)\//.test(path);
}

/** The AVA runner. */
export const ava: Runner = { name: 'ava', reportFormat: 'tap', testCommand, parse, isTestFile };
