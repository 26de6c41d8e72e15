/**
 * Shared shapes of the test runners (operators/runners/*): one test's outcome in one run, the runner
 * contract, and the status precedence used when a report names one test twice.
 */

/**
 * Statuses as in SWE-bench's harness (`swebench.harness.constants.TestStatus`): PASSED, FAILED, SKIPPED,
 * ERROR, XFAIL. XPASS is not a status of its own: a non-strict xpass is a pass in pytest's own accounting
 * (and a strict one a failure), so the parsers map it to PASSED / FAILED.
 */
export type TestStatus = 'PASSED' | 'FAILED' | 'SKIPPED' | 'ERROR' | 'XFAIL';

/** One test in one run. `name` is the runner's own test id (pytest node id; JS `path > describe > test`). */
export interface TestResult {
  name: string;
  status: TestStatus;
  /** the test's own duration in ms when the report says so */
  durationMs?: number;
}

/** Names of the supported runners (Environment.runner). `tap` covers node-tap and tape (both print TAP). */
export type RunnerName = 'pytest' | 'unittest' | 'jest' | 'vitest' | 'mocha' | 'node-test' | 'jasmine' | 'ava' | 'tap' | 'karma';

/** Environment.report_format values. `jsonl` = one JSON object per test, written by our own reporter module. */
export type ReportFormat = 'junit' | 'jest-json' | 'vitest-json' | 'mocha-json' | 'tap' | 'jsonl';

/**
 * How the repository's own test script starts its runner, so the harness runs the tests the same way
 * (issue 11: environment prefixes, node flags, a suite run several times under different settings).
 * One script may hold several invocations of the same runner (`TZ=A jest && TZ=B jest`): each is a variant.
 */
export interface Invocation {
  /** variant label, unique within a plan ('' for the unlabelled one), e.g. `TZ=Pacific/Auckland`; test ids of a labelled variant end with ` [label]` when more than one variant runs */
  label: string;
  /** VAR=value pairs the script sets for this run (`TZ=…`, `NODE_ENV=…`, `cross-env X=…`) */
  env: Record<string, string>;
  /** node flags the script puts before the runner's entry (`node --experimental-vm-modules node_modules/jest/bin/jest.js`); passed through NODE_OPTIONS */
  nodeOptions: string[];
  /** the runner's own arguments from the script (config path, flags), with reporters, coverage, watch and positional paths removed */
  args: string[];
  /** positional test paths or patterns the script restricts this run to ([] = the runner's default discovery) */
  paths: string[];
  /**
   * Workspace package directory (repository-relative, no trailing slash) the runner runs in: the command
   * `cd`s there, files and `paths` are relative to it, and test ids are made repository-relative again
   * (runners/plan.ts). Absent or '' = the repository root.
   */
  dir?: string;
}

export interface TestCommandOptions {
  /** repository-relative test files, or 'all' for the whole suite */
  files: string[] | 'all';
  /** absolute path in the sandbox where the machine-readable report is written */
  reportPath: string;
  /**
   * The repository's invocations of the runner (see {@link Invocation}); absent or empty = the runner's
   * defaults. Handled by the shared wrapper in runners/index.ts: a single runner only sees `args` and
   * `patterns`.
   */
  invocations?: Invocation[];
  /** the repository's own runner arguments, placed before the harness's reporter flags */
  args?: string[];
  /** with files 'all': the script's own path patterns to run instead of the runner's default discovery */
  patterns?: string[];
}

/** Context for parsing: absolute paths in reports are made relative to `workdir`. */
export interface ParseContext {
  /** the repository's working directory in the sandbox, e.g. /testbed */
  workdir?: string;
}

/**
 * One test runner: how to run a set of test files with an explicit machine-readable reporter, and how
 * to read what the run left behind.
 */
export interface Runner {
  name: RunnerName;
  reportFormat: ReportFormat;
  /**
   * A bash command (run in the repository's workdir) that runs `files` and writes the report to
   * `reportPath`; the human-readable log goes to stdout/stderr and is kept by the caller.
   * Colours are turned off so the log parses.
   */
  testCommand(opts: TestCommandOptions): string;
  /**
   * Test results from the report text (null when the run wrote none, e.g. it was killed) or, failing
   * that, from the text log. Never throws on malformed input: an unreadable report falls back to the
   * log, an unreadable log gives []. A test named twice keeps its worst status ({@link worse}).
   */
  parse(report: string | null, log: string, ctx?: ParseContext): TestResult[];
  /** Whether a repository path is a test file this runner would run by its default conventions. */
  isTestFile(path: string): boolean;
}

const RANK: Record<TestStatus, number> = { SKIPPED: 0, XFAIL: 1, PASSED: 2, FAILED: 3, ERROR: 4 };

/**
 * The worse of two statuses of one test in one run. A pytest test can pass its call and then error in
 * teardown (reported twice: PASSED and ERROR); pytest counts that test as an error, and so do we.
 */
export function worse(a: TestStatus, b: TestStatus): TestStatus {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Merge results naming the same test into one entry with the worse status; order of first appearance kept. */
export function dedupeResults(results: TestResult[]): TestResult[] {
  const byName = new Map<string, TestResult>();
  for (const r of results) {
    const prev = byName.get(r.name);
    if (!prev) byName.set(r.name, { ...r });
    else {
      prev.status = worse(prev.status, r.status);
      if (r.durationMs !== undefined) prev.durationMs = (prev.durationMs ?? 0) + r.durationMs;
    }
  }
  return [...byName.values()];
}
