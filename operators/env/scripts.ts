/**
 * Reading a repository's own test script (package.json `scripts`) for how it runs its test runner, so the
 * harness runs the tests the same way (issue 11, "Honour how the repository's own test script runs"):
 *
 *  - words and operators by shell-quote (POSIX shell word splitting; variables are left as written);
 *  - environment prefixes `VAR=x`, `env`, `cross-env`, `cross-env-shell`, `dotenv --`; launchers `npx`,
 *    `npm exec`, `yarn <bin>`, `pnpm exec`; coverage wrappers `nyc` and `c8` (dropped: a coverage
 *    threshold must not fail a run of a few selected tests);
 *  - `node <flags> node_modules/<runner>/…` (the script's node flags kept, e.g. `--experimental-vm-modules`);
 *  - `npm run x` / `yarn x` / `pnpm x` followed into script x, carrying the caller's variables
 *    (`TZ=Pacific/Auckland npm run test-tz`);
 *  - every call of the chosen runner is a variant ({@link invocationsOf}): `TZ=A jest && TZ=B jest` runs twice.
 */
import { parse as shellParse } from 'shell-quote';
import type { Invocation, RunnerName } from '../runners/types.js';

/** Executable names of the runners (node_modules/.bin). `tape` suites are run by the TAP runner. */
export const RUNNER_BINS: Record<string, RunnerName> = {
  jest: 'jest', vitest: 'vitest', mocha: 'mocha', _mocha: 'mocha', jasmine: 'jasmine', ava: 'ava', tap: 'tap', tape: 'tap',
};

/** Operators that end a command (a pipe's reader, e.g. `tape … | tap-spec`, is not the runner). */
const SEPARATORS = new Set(['&&', '||', ';', '|', '&', ';;', '(', ')', '|&']);
const REDIRECTS = new Set(['>', '>>', '<', '>&', '<&', '<(', '>|']);

/**
 * Split a shell command line into commands (at `&&`, `||`, `;`, `|`, `&`) and their words, as a POSIX
 * shell would (shell-quote): quotes removed, globs kept as written, `$VAR` left unexpanded, redirections
 * and their targets dropped.
 */
export function shellSegments(cmd: string): string[][] {
  const segs: string[][] = [];
  let words: string[] = [];
  let skipNext = false;
  const end = () => {
    if (words.length) segs.push(words);
    words = [];
  };
  for (const t of shellParse(cmd, (k) => `$${k}`)) {
    if (typeof t === 'string') {
      if (skipNext) skipNext = false;
      else words.push(t);
      continue;
    }
    if ('comment' in t) break;
    if ('pattern' in t) { words.push(String((t as { pattern: string }).pattern)); continue; }
    const op = (t as { op: string }).op;
    if (SEPARATORS.has(op)) end();
    else if (REDIRECTS.has(op)) {
      // `2>&1`: shell-quote gives the fd as a word before the operator.
      if (/^\d$/.test(words.at(-1) ?? '')) words.pop();
      skipNext = true;
    }
  }
  end();
  return segs;
}

/** One call of a test runner found in a script. */
export interface RunnerCall {
  runner: RunnerName;
  /** the runner's arguments as written */
  args: string[];
  env: Record<string, string>;
  /** node flags before the runner's entry script */
  nodeOptions: string[];
}

/** Flags of coverage wrappers (nyc, c8) that take a separate value. */
const WRAPPER_VALUE_FLAGS = new Set(['--reporter', '-r', '--include', '-n', '--exclude', '-x', '--extension', '-e', '--report-dir', '--temp-dir', '--require', '-i', '--instrument', '--check-coverage', '--branches', '--lines', '--functions', '--statements', '--src', '--reports-dir', '-o']);
/** node flags that take a separate value. */
const NODE_VALUE_FLAGS = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader', '--conditions', '-C', '--env-file', '--stack-size', '--max-old-space-size']);

const bin = (w: string) => w.replace(/^(\.\/)?node_modules\/\.bin\//, '');

/** Leading `VAR=x`, `env`, `cross-env`, `dotenv --` words: the variables set and the index of the command word. */
export function envPrefix(words: string[], from = 0): { env: Record<string, string>; at: number } {
  const env: Record<string, string> = {};
  let i = from;
  for (;;) {
    const w = words[i];
    if (w === undefined) return { env, at: i };
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) {
      env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
      i++;
    } else if (['cross-env', 'env', 'cross-env-shell'].includes(bin(w)) || w === '--') i++;
    else if (bin(w) === 'dotenv') {
      i++;
      while (i < words.length && words[i] !== '--' && words[i]!.startsWith('-')) i += words[i] === '-e' || words[i] === '-c' ? 2 : 1;
    } else return { env, at: i };
  }
}

/** The runner a node entry script belongs to: `node_modules/jest/bin/jest.js`, `node_modules/.bin/mocha`, `./node_modules/ava/entrypoints/cli.mjs`. */
function runnerOfScript(script: string): RunnerName | null {
  const m = /(?:^|\/)node_modules\/(?:\.bin\/)?([^/]+)/.exec(script);
  return m ? RUNNER_BINS[m[1]!] ?? null : null;
}

/**
 * Parse one command into a runner call, unwrapping environment prefixes, launchers, coverage wrappers and
 * `node <flags> <runner entry>`; `null` when the command runs no known runner. `localTapFile`: a
 * repository that depends on tape or node-tap runs a test file with plain `node test/x.js`.
 */
export function runnerCall(words: string[], opts: { scripts?: Record<string, string>; tapLibrary?: boolean } = {}): RunnerCall | null {
  let { env, at: i } = envPrefix(words);
  for (;;) {
    const w = words[i];
    if (w === undefined) return null;
    const b = bin(w);
    if (b === 'npx' || (b === 'npm' && words[i + 1] === 'exec') || (b === 'pnpm' && (words[i + 1] === 'exec' || words[i + 1] === 'dlx'))) {
      i += b === 'npx' ? 1 : 2;
      while (words[i]?.startsWith('-')) i++;
    } else if ((b === 'yarn' || b === 'pnpm') && words[i + 1] && bin(words[i + 1]!) in RUNNER_BINS && !(opts.scripts && words[i + 1]! in opts.scripts)) i++;
    else if (b === 'nyc' || b === 'c8') {
      i++;
      while (i < words.length && !(bin(words[i]!) in RUNNER_BINS) && words[i] !== 'node' && words[i] !== 'npx') {
        if (WRAPPER_VALUE_FLAGS.has(words[i]!)) i++;
        i++;
      }
    } else {
      const more = envPrefix(words, i);
      if (more.at === i) break;
      env = { ...env, ...more.env };
      i = more.at;
    }
  }
  const head = bin(words[i]!);
  const rest = words.slice(i + 1);
  if (head in RUNNER_BINS) return { runner: RUNNER_BINS[head]!, args: rest, env, nodeOptions: [] };
  if (head === 'react-scripts' && rest[0] === 'test') return { runner: 'jest', args: rest.slice(1), env, nodeOptions: [] };
  if (head === 'karma' && rest[0] === 'start') return { runner: 'karma', args: rest.slice(1), env, nodeOptions: [] };
  if (head !== 'node') return null;
  if (rest.includes('--test')) return { runner: 'node-test', args: rest.filter((a) => a !== '--test'), env, nodeOptions: [] };
  const nodeOptions: string[] = [];
  let j = 0;
  while (j < rest.length && rest[j]!.startsWith('-')) {
    nodeOptions.push(rest[j]!);
    if (NODE_VALUE_FLAGS.has(rest[j]!) && j + 1 < rest.length) nodeOptions.push(rest[++j]!);
    j++;
  }
  const script = rest[j];
  if (script === undefined) return null;
  const runner = runnerOfScript(script);
  if (runner) return { runner, args: rest.slice(j + 1), env, nodeOptions };
  // tape / node-tap files print TAP when run as plain scripts: the file is the test.
  if (opts.tapLibrary && /\.[cm]?[jt]s$/.test(script) && !script.includes('node_modules/')) return { runner: 'tap', args: [...nodeOptions, script], env, nodeOptions: [] };
  return null;
}

/** `npm run x` / `npm test` / `yarn x` / `pnpm x` / `pnpm run x` → script name x (npm-run-all style fan-out is not followed). */
function scriptRef(words: string[]): string | null {
  const [a, b, c] = words;
  if (a === 'npm' && (b === 'run' || b === 'run-script') && c) return c;
  if (a === 'npm' && (b === 'test' || b === 't')) return 'test';
  if ((a === 'yarn' || a === 'pnpm') && b === 'run' && c) return c;
  if ((a === 'yarn' || a === 'pnpm') && b && !b.startsWith('-') && !['install', 'add', 'exec', 'dlx'].includes(b)) return b;
  return null;
}

/**
 * Every runner call script `name` makes, in order, following `npm run x` references (depth ≤ 4) with
 * the referring command's variables carried into the referenced script's calls.
 */
export function findRunnerCalls(scripts: Record<string, string>, name: string, opts: { tapLibrary?: boolean } = {}, depth = 0, inherited: Record<string, string> = {}, out: RunnerCall[] = []): RunnerCall[] {
  const cmd = scripts[name];
  if (cmd === undefined || depth > 4) return out;
  for (const seg of shellSegments(cmd)) {
    const call = runnerCall(seg, { scripts, tapLibrary: opts.tapLibrary });
    if (call) {
      out.push({ ...call, env: { ...inherited, ...call.env } });
      continue;
    }
    const { env, at } = envPrefix(seg);
    const ref = scriptRef(seg.slice(at));
    if (ref && ref !== name) findRunnerCalls(scripts, ref, opts, depth + 1, { ...inherited, ...env }, out);
  }
  return out;
}

/** Flags (of any runner) whose value is the next word, so it is not taken for a test path. */
const VALUE_FLAGS = new Set([
  '--config', '-c', '--require', '-r', '--timeout', '-t', '--ui', '-u', '--file', '--ignore', '--extension', '--spec', '--grep', '-g', '--fgrep', '-f',
  '--testNamePattern', '--testPathPattern', '--testPathIgnorePatterns', '--maxWorkers', '--rootDir', '--roots', '--setupFiles', '--selectProjects',
  '--shard', '--environment', '--env', '--testEnvironment', '--project', '--dir', '--root', '--testTimeout', '--pool', '--import', '--loader', '--node-arg',
  '--helper', '--filter', '--match', '-m', '--concurrency', '--jobs', '-j', '--test-env', '--browsers', '--exclude', '--include', '--slow', '-s', '--retries',
  '--reporter', '-R', '--reporter-option', '--reporter-options', '-O', '--outputFile', '--coverageReporters', '--test-reporter', '--test-reporter-destination',
  '--coverageThreshold', '--coverageDirectory', '--test-name-pattern', '--test-concurrency',
]);
/** Booleans a few runners spell like another runner's value flag. */
const BOOLEAN_FOR: Partial<Record<RunnerName, Set<string>>> = { mocha: new Set(['-c', '-w', '-u']), jasmine: new Set(['-c']) };

/** Remove the repository's reporter / coverage / watch flags: the harness sets its own reporter (ARCHITECTURE.md §6). */
export function cleanRunnerArgs(runner: RunnerName, args: string[]): string[] {
  return splitArgs(runner, args).flat;
}

/**
 * The repository's arguments of one runner call split into flags (reporters, coverage, watch, UI and
 * bail-out flags removed: the harness sets its reporter, and every selected test must run) and
 * positional test paths. `flat` keeps flags and positionals in their order (for callers that want both).
 */
export function splitArgs(runner: RunnerName, args: string[]): { flags: string[]; paths: string[]; flat: string[] } {
  const drop = new Set(['--reporter', '-R', '--reporter-option', '--reporter-options', '-O', '--outputFile', '--coverageReporters', '--test-reporter', '--test-reporter-destination', '--coverageThreshold', '--coverageDirectory']);
  const flags: string[] = [];
  const paths: string[] = [];
  const flat: string[] = [];
  const booleans = BOOLEAN_FOR[runner] ?? new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const flag = a.split('=')[0]!;
    if (drop.has(flag)) {
      if (!a.includes('=')) i++;
      continue;
    }
    if (/^--(coverage|collectCoverage|watch|watchAll|ui|json|silent|reporters?|tap|verbose|bail|fail-fast|forbid-only)\b/.test(flag) || flag === '--experimental-test-coverage') continue;
    if (runner === 'vitest' && ['run', 'watch', 'dev'].includes(a) && flat.length === 0) continue;
    // karma's positional argument is its config file, not a test path (karma selects no files).
    if (a.startsWith('-') || runner === 'karma') {
      const takes = !a.includes('=') && VALUE_FLAGS.has(a) && !booleans.has(a) && i + 1 < args.length;
      const group = takes ? [a, args[++i]!] : [a];
      flags.push(...group);
      flat.push(...group);
    } else {
      paths.push(a);
      flat.push(a);
    }
  }
  return { flags, paths, flat };
}

function labelOf(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
}

/**
 * The invocations of `runner` among `calls` (other runners' calls are ignored): one per distinct
 * (variables, node flags, flags), their paths merged — a call without paths runs the whole suite, so
 * it absorbs the others' paths. Labels are the variables (`TZ=Pacific/Auckland`), else the flags, unique.
 * With one invocation its label is ''.
 */
export function invocationsOf(runner: RunnerName, calls: RunnerCall[]): Invocation[] {
  const byKey = new Map<string, Invocation>();
  for (const c of calls) {
    if (c.runner !== runner) continue;
    const { flags, paths } = splitArgs(runner, c.args);
    const key = JSON.stringify([c.env, c.nodeOptions, flags]);
    const prev = byKey.get(key);
    if (!prev) byKey.set(key, { label: labelOf(c.env), env: c.env, nodeOptions: c.nodeOptions, args: flags, paths });
    else if (prev.paths.length && paths.length) prev.paths = [...new Set([...prev.paths, ...paths])];
    else prev.paths = [];
  }
  const out = [...byKey.values()];
  if (out.length === 1) return [{ ...out[0]!, label: '' }];
  const seen = new Set<string>();
  out.forEach((inv, i) => {
    let label = inv.label || (inv.args.length ? inv.args.join(' ') : '');
    if (seen.has(label)) label = `${label} #${i + 1}`.trim();
    seen.add(label);
    inv.label = label;
  });
  return out;
}
