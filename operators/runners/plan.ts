/**
 * Running a runner the way the repository's own test script does (issue 11): the script's environment
 * prefixes (`TZ=`, `NODE_ENV=`, `cross-env`), node flags (`node --experimental-vm-modules …/jest.js`),
 * runner arguments, and a script that runs the suite several times under different settings
 * (`TZ=A jest && TZ=B jest`). {@link withInvocations} wraps any {@link Runner} so that every caller
 * (env-build's whole-suite run, test-create's selected-tests command, verify, evaluate) gets this alike.
 *
 * With more than one invocation (variants) every variant runs, one after another, its report appended
 * to the report after a `<!-- swe-stream variant: <label> -->` marker and its log after a
 * `# swe-stream variant: <label>` line; the parser splits them again and gives each test of a labelled
 * variant the id `<runner's id> [<label>]`. A test is then FAIL_TO_PASS when it is in any variant, and
 * the variant is in its name. The command exits non-zero when any variant's run did.
 *
 * Monorepos: an invocation with a `dir` (a workspace package, operators/env/workspaces.ts) runs in that
 * directory (`( cd dir && … )`), gets the files inside it (relative to it) and its `paths` read relative to
 * it; such a command always goes through the markers (`… @@ dir`), and the parser makes the package's ids
 * repository-relative again ({@link packageTestId}), so ids agree with the row's test files.
 */
import { posix } from 'node:path';
import type { Invocation, ParseContext, Runner, TestCommandOptions, TestResult } from './types.js';
import { dedupeResults } from './types.js';
import { shq, stripAnsi } from './util.js';

const MARK_REP = '<!-- swe-stream variant: ';
const MARK_LOG = '# swe-stream variant: ';

/** The invocation of a runner with no script behind it: the runner's defaults. */
export const DEFAULT_INVOCATION: Invocation = { label: '', env: {}, nodeOptions: [], args: [], paths: [] };

/** Glob (`*`, `**`, `?`, `{a,b}`) → anchored RegExp over repository-relative paths. */
export function globRe(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '{') re += '(?:';
    else if (c === '}') re += ')';
    else if (c === ',' && re.includes('(?:')) re += '|';
    else re += c.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether a script's positional test path selects `file`: a glob matched whole, a file or directory
 * path, or — for jest and vitest, whose positional arguments are regular expressions / substrings of
 * the path — any path containing it (`jest test/timezone.test` selects `test/timezone.test.js`).
 */
export function pathSelects(pattern: string, file: string, runner: string): boolean {
  const p = pattern.replace(/^\.\//, '');
  if (/[*?{]/.test(p)) return globRe(p).test(file);
  const dir = p.replace(/\/$/, '');
  if (file === dir || file.startsWith(dir + '/')) return true;
  return (runner === 'jest' || runner === 'vitest') && file.includes(p);
}

/** One variant's share of a run: the files (or 'all' with the script's patterns) it runs. */
interface Share {
  inv: Invocation;
  files: string[] | 'all';
  patterns: string[];
}

/** Whether `file` (repository-relative) lies in the invocation's package directory (always, for the root). */
function within(inv: Invocation, file: string): boolean {
  return !inv.dir || file === inv.dir || file.startsWith(inv.dir + '/');
}

/** `file` relative to the invocation's package directory (`../` when outside it). */
function relTo(inv: Invocation, file: string): string {
  return inv.dir ? posix.relative(inv.dir, file) : file;
}

/**
 * Which variants run which of `files`. A variant restricted to paths runs only the files they select;
 * a variant of a workspace package (`dir`) only the files inside that package. Files no variant selects
 * still run once, under the first invocation of their package, else the first invocation (the PR changed
 * them: they are what the task is about, even where the script's own run would not reach them).
 */
export function shares(runner: string, invocations: Invocation[], files: string[] | 'all'): Share[] {
  if (files === 'all') return invocations.map((inv) => ({ inv, files: 'all', patterns: inv.paths }));
  const out: Share[] = [];
  const reached = new Set<string>();
  for (const inv of invocations) {
    const sel = files.filter((f) => within(inv, f) && (!inv.paths.length || inv.paths.some((p) => pathSelects(p, relTo(inv, f), runner))));
    sel.forEach((f) => reached.add(f));
    if (sel.length) out.push({ inv, files: sel, patterns: [] });
  }
  for (const f of files.filter((x) => !reached.has(x))) {
    const inv = invocations.find((i) => i.dir && within(i, f)) ?? invocations[0]!;
    const share = out.find((s) => s.inv === inv);
    if (share && share.files !== 'all') share.files = [...share.files, f];
    else if (inv === invocations[0]) out.unshift({ inv, files: [f], patterns: [] });
    else out.push({ inv, files: [f], patterns: [] });
  }
  return out;
}

/** `( export K=V …; cmd )` when the invocation sets variables or node flags, else `cmd`. */
function scoped(inv: Invocation, cmd: string): string {
  const exports = Object.entries(inv.env).map(([k, v]) => `export ${k}=${shq(v)}`);
  if (inv.nodeOptions.length) exports.push(`export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }"${shq(inv.nodeOptions.join(' '))}`);
  return exports.length ? `( ${exports.join('; ')}; ${cmd} )` : cmd;
}

/** Separates a variant's label from its package directory in the markers (` @@ packages/a`). */
const DIR_SEP = ' @@ ';

/** The marker key of an invocation: its label, and its package directory when it has one. */
const keyOf = (inv: Invocation) => (inv.dir ? `${inv.label}${DIR_SEP}${inv.dir}` : inv.label);

function command(base: Runner, opts: TestCommandOptions): string {
  const invocations = opts.invocations?.length ? opts.invocations : [DEFAULT_INVOCATION];
  const one = (s: Share, reportPath: string) => {
    const files = s.files === 'all' ? 'all' : s.files.map((f) => relTo(s.inv, f));
    const cmd = scoped(s.inv, base.testCommand({ files, reportPath, args: s.inv.args, patterns: s.patterns.length ? s.patterns : undefined }));
    // A workspace package's tests run from its own directory, as its own `npm test` would.
    return s.inv.dir ? `( cd ${shq(s.inv.dir)} && ${cmd} )` : cmd;
  };
  // A package directory always goes through the markers: the parser learns from them where ids are relative to.
  if (invocations.length === 1 && !invocations[0]!.dir) return one(shares(base.name, invocations, opts.files)[0]!, opts.reportPath);
  const rep = shq(opts.reportPath);
  const lines = [`__vrc=0`, `: > ${rep}`];
  shares(base.name, invocations, opts.files).forEach((s, i) => {
    const part = `${opts.reportPath}.v${i}`;
    lines.push(
      `echo ${shq(MARK_LOG + keyOf(s.inv))}`,
      `rm -f ${shq(part)}`,
      // Each variant in its own subshell: per-file runners end in `exit`, which must end only that variant.
      `( ${one(s, part)} ) || __vrc=$?`,
      `echo ${shq(MARK_REP + keyOf(s.inv) + ' -->')} >> ${rep}`,
      `cat ${shq(part)} >> ${rep} 2>/dev/null`,
      `echo >> ${rep}`,
      `rm -f ${shq(part)}`,
    );
  });
  // A subshell: the runner's own loops end in `exit`, which must not end the caller's shell.
  return `( ${lines.join('; ')}; exit $__vrc )`;
}

/** Split a marked text into `label → section` (in order). */
function sections(text: string, mark: string, close: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of text.split(mark).slice(1)) {
    const end = p.indexOf(close);
    if (end < 0) continue;
    const label = p.slice(0, end);
    out.set(label, (out.get(label) ?? '') + p.slice(end + close.length));
  }
  return out;
}

/** The id of a test of variant `label`: the runner's id plus ` [label]` (none for the unlabelled variant). */
export function variantId(name: string, label: string): string {
  return label ? `${name} [${label}]` : name;
}

/** Source-file extensions that make the head of a test id a file path. */
const FILE_HEAD_RE = /\.([cm]?[jt]sx?|py|coffee|feature|vue|svelte)$/;

/**
 * A test id a runner reported from package directory `dir`, made repository-relative: an id that starts
 * with a file path (`test/a.test.js > …`, `tests/test_a.py::…`) gets `dir/` on that path; any other id
 * (a dotted unittest id) gets `dir > ` in front. Absolute paths are left as they are.
 */
export function packageTestId(name: string, dir: string): string {
  if (!dir || name.startsWith('/')) return name;
  const head = /^[^\s>:]+/.exec(name)?.[0] ?? '';
  if (head && (head.includes('/') || FILE_HEAD_RE.test(head))) return posix.normalize(`${dir}/${head}`) + name.slice(head.length);
  return `${dir} > ${name}`;
}

function parse(base: Runner, report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  const clean = stripAnsi(log);
  const marked = clean.includes(MARK_LOG) || (report ?? '').includes(MARK_REP);
  if (!marked) return base.parse(report, log, ctx);
  const reps = report !== null ? sections(report, MARK_REP, ' -->\n') : new Map<string, string>();
  const logs = sections(clean, MARK_LOG, '\n');
  const out: TestResult[] = [];
  for (const key of new Set([...logs.keys(), ...reps.keys()])) {
    const at = key.lastIndexOf(DIR_SEP);
    const label = at >= 0 ? key.slice(0, at) : key;
    const dir = at >= 0 ? key.slice(at + DIR_SEP.length) : '';
    // Absolute paths in a package's report are made relative to the package, then to the repository.
    const pctx = dir && ctx?.workdir ? { ...ctx, workdir: `${ctx.workdir.replace(/\/$/, '')}/${dir}` } : ctx;
    const r = reps.get(key);
    for (const t of base.parse(r && r.trim() ? r : null, logs.get(key) ?? '', pctx)) out.push({ ...t, name: variantId(packageTestId(t.name, dir), label) });
  }
  return dedupeResults(out);
}

/**
 * `base` with the repository's invocations honoured: `testCommand` takes `invocations` (see the file
 * comment) and `parse` reads the variant sections such a command leaves. Without invocations, or with
 * one, the command and ids are the base runner's own (with the invocation's variables and flags set).
 */
export function withInvocations(base: Runner): Runner {
  return {
    ...base,
    testCommand: (opts) => command(base, opts),
    parse: (report, log, ctx) => parse(base, report, log, ctx),
  };
}
