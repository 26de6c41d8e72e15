/**
 * TAP suites: node-tap (`tap`) and tape. Both libraries print TAP when a test file runs as a plain node
 * script, so the command runs each file with `node` (the script's `-r`/`--require`, `--import`, `--loader`
 * hooks kept), once per file: TAP names no file, and one file that throws must cost only its own tests.
 * Running files directly also sidesteps what differs between the two CLIs and across node-tap majors
 * (reporters, `--no-coverage` vs `--disable-coverage`, node-tap ≥ 15's default 100% coverage check).
 * node-tap ≥ 18 (the `@tapjs/run` package is installed) is the exception: its test files need what only
 * its CLI sets up (the TypeScript loader that maps `./x.js` imports to `x.ts`, the plugins and `node-arg`s
 * of `.taprc` / package.json `tap`), so each file runs as `tap --disable-coverage --allow-empty-coverage
 * -R tap <file>`, and the file-level subtest the CLI wraps it in is unwrapped when parsing. The CLI
 * installs and builds configured plugins on first use, which needs the network: env-build warms it up
 * ({@link TAP_WARMUP}), and the reset keeps its `.tap/` directory.
 * The TAP on stdout is both the report and the log; stderr is the rest of the log.
 *
 * Parsed with tap-parser (TAP 13/14 with indented subtests; the Test Anything Protocol spec,
 * testanything.org). Test ids `file > test` for tape (a test is a `# name` comment and the assertions
 * after it, failing when any of them fails) and `file > subtest > subtest` for node-tap (a test is a
 * subtest without subtests of its own); assertions outside any test are the file's own entry `file`.
 * A file whose run exited non-zero with no failing test parsed (it threw before or between tests) is an
 * ERROR entry `file`. SKIP and TODO directives count as SKIPPED.
 */
import { Parser } from 'tap-parser';
import type { ParseContext, Runner, TestCommandOptions, TestResult, TestStatus } from './types.js';
import { dedupeResults } from './types.js';
import { jsId } from './jest.js';
import { fileLogs, fileParts, perFileCommand, shFiles, stripAnsi } from './util.js';

/** Files node-tap would run by default (its `test-regex`), test/fixtures and node_modules excluded; `ext` is the extension regex. */
function findTap(ext: string): string {
  return `find . \\( -name node_modules -o -name fixtures -o -name fixture -o -name .tap \\) -prune -o -type f \\( -path '*/test/*' -o -path '*/tests/*' -o -path '*/__tests__/*' -o -name '*.test.*' -o -name '*.spec.*' \\) -regex '.*\\.${ext}' -print | sed 's|^\\./||' | sort`;
}

/** JavaScript test files by node-tap's conventions (what plain `node` runs). */
export const FIND_TAP = findTap('[cm]?js');

/** Shell test: node-tap ≥ 18 is installed (its runner package exists and the CLI is linked). */
export const TAP_CLI_PRESENT = '[ -f node_modules/@tapjs/run/package.json ] && [ -x node_modules/.bin/tap ]';

/** node-tap ≥ 18's CLI also runs TypeScript test files. */
const FIND_TAP_CLI = findTap('[cm]?[jt]sx?');

/**
 * Install line (network on) for node-tap ≥ 18: one CLI run of an empty TAP file outside the work tree,
 * so the CLI installs the plugins its configuration names (into `.tap/plugins`) and builds its test
 * class while the registry is reachable; test runs are offline. A failed warm-up does not fail the
 * install: the whole-suite check shows what is missing.
 */
export const TAP_WARMUP = `if ${TAP_CLI_PRESENT}; then printf 'console.log("1..0")\\n' > /tmp/swe-stream-tap-warmup.tap.mjs && { node_modules/.bin/tap -R silent --disable-coverage --allow-empty-coverage /tmp/swe-stream-tap-warmup.tap.mjs || echo 'swe-stream: node-tap warm-up failed'; }; fi`;

/** Node flags among the script's runner arguments (`-r x`, `--require=x`, `--import x`, `--loader x`); the rest are CLI options node would not take. */
export function nodeHooks(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (['-r', '--require', '--import', '--loader', '--experimental-loader'].includes(a) && i + 1 < args.length) out.push(a, args[++i]!);
    else if (/^--(require|import|loader|experimental-loader)=/.test(a)) out.push(a);
  }
  return out;
}

/**
 * `node <hooks> <file>` per file, or node-tap ≥ 18's CLI per file when it is installed (see the file
 * comment; decided in the sandbox, so one command serves every commit of a repository); 'all' = the
 * script's globs, else node-tap's default files.
 */
function testCommand(opts: TestCommandOptions): string {
  const hooks = nodeHooks(opts.args ?? []);
  const files = opts.files === 'all' ? (opts.patterns?.length ? opts.patterns.join(' ') : `$(if ${TAP_CLI_PRESENT}; then ${FIND_TAP_CLI}; else ${FIND_TAP}; fi)`) : shFiles(opts.files);
  const nodeArgs = hooks.length ? shFiles(hooks) + ' ' : '';
  const cliArgs = hooks.length ? shFiles(hooks.map((h) => `--node-arg=${h}`)) + ' ' : '';
  const env = 'NO_COLOR=1 FORCE_COLOR=0 TAP_COLORS=0';
  return perFileCommand({
    prelude: ['shopt -s globstar nullglob'],
    files,
    reportPath: opts.reportPath,
    run:
      `{ if ${TAP_CLI_PRESENT}; then ${env} node_modules/.bin/tap --disable-coverage --allow-empty-coverage -R tap ${cliArgs}"$__f"; ` +
      `else ${env} node ${nodeArgs}"$__f"; fi > "$__part"; __x=$?; cat "$__part"; (exit $__x); }`,
  });
}

type TapEvent = [string, ...unknown[]];
interface Assert { ok: boolean; name: string; skip: boolean | string; todo: boolean | string; closingTestPoint?: boolean; time?: number | null }

const SUMMARY_COMMENT = /^#\s*(Subtest:|time=|tests \d|pass \d|fail \d|failed \d|skip:? \d|todo:? \d|ok\s*$|not ok\s*$)/;

function statusOf(a: Assert): TestStatus {
  if (a.skip || a.todo) return 'SKIPPED';
  return a.ok ? 'PASSED' : 'FAILED';
}

/** Whether an event list holds a subtest (an assertion closing a child). */
function hasSubtests(events: TapEvent[]): boolean {
  return events.some((e) => e[0] === 'assert' && (e[1] as Assert).closingTestPoint === true);
}

/**
 * Tests of one level of a TAP stream: subtests recurse (or are leaves), loose assertions are grouped
 * under the current `# name` comment (tape) or under the level's own name.
 */
function walk(events: TapEvent[], chain: string[], out: TestResult[], points: boolean): void {
  let group: string | null = null;
  let pendingChild: TapEvent[] | null = null;
  const groups = new Map<string, TestStatus>();
  for (const e of events) {
    if (e[0] === 'comment') {
      const c = String(e[1]).trim();
      // tape announces a skipped test as a comment `# SKIP <name>` and runs none of its assertions.
      const skipped = /^#\s*SKIP\s+(.+)$/.exec(c);
      if (skipped) { out.push({ name: jsId(chain[0]!, [...chain.slice(1), skipped[1]!]), status: 'SKIPPED' }); group = null; continue; }
      if (!SUMMARY_COMMENT.test(c)) group = c.replace(/^#\s*/, '');
    } else if (e[0] === 'child') pendingChild = e[1] as TapEvent[];
    else if (e[0] === 'assert') {
      const a = e[1] as Assert;
      if (a.closingTestPoint && pendingChild) {
        const sub = [...chain, a.name];
        if (hasSubtests(pendingChild)) {
          const before = out.length;
          walk(pendingChild, sub, out, points);
          // A subtest that failed although none of its tests did (a plan mismatch, a throw between tests).
          if (!a.ok && !(a.skip || a.todo) && !out.slice(before).some((r) => r.status === 'FAILED' || r.status === 'ERROR')) out.push({ name: jsId(sub[0]!, sub.slice(1)), status: 'ERROR' });
        } else out.push({ name: jsId(sub[0]!, sub.slice(1)), status: statusOf(a), durationMs: typeof a.time === 'number' ? a.time : undefined });
        pendingChild = null;
        continue;
      }
      pendingChild = null;
      if (points) {
        out.push({ name: jsId(chain[0]!, [...chain.slice(1), a.name]), status: statusOf(a), durationMs: typeof a.time === 'number' ? a.time : undefined });
        continue;
      }
      // node-tap prints a skipped or todo subtest as a bare test point, with no child.
      if (group === null && (a.skip || a.todo)) {
        out.push({ name: jsId(chain[0]!, [...chain.slice(1), a.name]), status: 'SKIPPED' });
        continue;
      }
      const key = group ?? '';
      const prev = groups.get(key);
      const st = statusOf(a);
      groups.set(key, prev === undefined ? st : prev === 'FAILED' || st === 'FAILED' ? 'FAILED' : prev === 'PASSED' || st === 'PASSED' ? 'PASSED' : st);
    }
  }
  for (const [g, status] of groups) {
    const names = g ? [...chain, g] : chain;
    out.push({ name: jsId(names[0]!, names.slice(1)), status });
  }
}

/**
 * The events inside the subtest node-tap ≥ 18's CLI wraps a file in (`# Subtest: test/x.ts` … `ok 1 -
 * test/x.ts`), when that is all the stream holds; null for a file run with plain `node`, whose top level
 * is the file's own tests.
 */
function cliFileLevel(events: TapEvent[], file: string): TapEvent[] | null {
  const bare = (n: string) => n.replace(/^\.\//, '');
  let child: TapEvent[] | null = null;
  let wrapped: TapEvent[] | null = null;
  for (const e of events) {
    if (e[0] === 'child') child = e[1] as TapEvent[];
    else if (e[0] === 'assert') {
      const a = e[1] as Assert;
      if (wrapped || !a.closingTestPoint || !child || bare(a.name) !== bare(file)) return null;
      wrapped = child;
    }
  }
  return wrapped;
}

/**
 * Tests in the TAP one file printed (see the file comment). `exitCode` is that file's run's exit code
 * when known: non-zero with no failing test parsed makes the file an ERROR entry. `points`: every test
 * point is a test of its own (AVA), instead of tape's `# name` groups of assertions.
 */
export function tapResults(text: string, file: string, exitCode: number | null, points = false): TestResult[] {
  let events: TapEvent[];
  try {
    events = Parser.parse(stripAnsi(text)) as unknown as TapEvent[];
  } catch {
    events = []; // tap-parser does not throw on bad TAP, but a parser bug must not lose the run
  }
  const out: TestResult[] = [];
  walk(cliFileLevel(events, file) ?? events, [file], out, points);
  if (exitCode !== null && exitCode !== 0 && !out.some((r) => r.status === 'FAILED' || r.status === 'ERROR')) out.push({ name: file, status: 'ERROR' });
  return out;
}

function parse(report: string | null, log: string, _ctx?: ParseContext): TestResult[] {
  const parts = report !== null ? fileParts(report) : [];
  const out: TestResult[] = [];
  const done = new Set<string>();
  for (const p of parts) {
    // A part cut off by a kill has no exit line: what it printed still counts.
    out.push(...tapResults(p.text, p.file, p.exitCode));
    done.add(p.file);
  }
  // Files the report lacks (the run was killed before appending them): their TAP is in the log.
  for (const [file, text] of fileLogs(log)) if (!done.has(file)) out.push(...tapResults(text, file, null));
  return dedupeResults(out);
}

/** node-tap's default test files (`test/`, `tests/`, `__tests__/`, `*.test.*`, `*.spec.*`), fixtures excluded. */
function isTestFile(path: string): boolean {
  if (/(^|\/)(node_modules|fixtures?)\//.test(path) || !/\.[cm]?[jt]sx?$/.test(path)) return false;
  return /(^|\/)(tests?|__tests__)\//.test(path) || /\.(test|spec)\.[cm]?[jt]sx?$/.test(path);
}

/** The TAP runner (node-tap and tape). */
export const tap: Runner = { name: 'tap', reportFormat: 'tap', testCommand, parse, isTestFile };
