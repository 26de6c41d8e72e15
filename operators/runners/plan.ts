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
 */
import type { Invocation, ParseContext, Runner, TestCommandOptions, TestResult } from './types.js';
import { dedupeResults } from './types.js';
import { shq, stripAnsi } from './util.js';

const MARK_REP = '<!-- swe-stream variant: ';
const MARK_LOG = '# swe-stream variant: ';

/** The invocation of a runner with no script behind it: the runner's defaults. */
export const DEFAULT_INVOCATION: Invocation = { label: '', env: {}, nodeOptions: [], args: [], paths: [] };

/** Glob (`*`, `**`, `?`, `{a,b}`) → anchored RegExp over repository-relative paths. */
function globRe(glob: string): RegExp {
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

/**
 * Which variants run which of `files`. A variant restricted to paths runs only the files they select;
 * files no variant selects still run once, under the first invocation (the PR changed them: they are
 * what the task is about, even where the script's own run would not reach them).
 */
export function shares(runner: string, invocations: Invocation[], files: string[] | 'all'): Share[] {
  if (files === 'all') return invocations.map((inv) => ({ inv, files: 'all', patterns: inv.paths }));
  const out: Share[] = [];
  const reached = new Set<string>();
  for (const inv of invocations) {
    const sel = inv.paths.length ? files.filter((f) => inv.paths.some((p) => pathSelects(p, f, runner))) : files;
    sel.forEach((f) => reached.add(f));
    if (sel.length) out.push({ inv, files: sel, patterns: [] });
  }
  const rest = files.filter((f) => !reached.has(f));
  if (rest.length) {
    const first = out.find((s) => s.inv === invocations[0]);
    if (first && first.files !== 'all') first.files = [...first.files, ...rest];
    else out.unshift({ inv: invocations[0]!, files: rest, patterns: [] });
  }
  return out;
}

/** `( export K=V …; cmd )` when the invocation sets variables or node flags, else `cmd`. */
function scoped(inv: Invocation, cmd: string): string {
  const exports = Object.entries(inv.env).map(([k, v]) => `export ${k}=${shq(v)}`);
  if (inv.nodeOptions.length) exports.push(`export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }"${shq(inv.nodeOptions.join(' '))}`);
  return exports.length ? `( ${exports.join('; ')}; ${cmd} )` : cmd;
}

function command(base: Runner, opts: TestCommandOptions): string {
  const invocations = opts.invocations?.length ? opts.invocations : [DEFAULT_INVOCATION];
  const one = (s: Share, reportPath: string) =>
    scoped(s.inv, base.testCommand({ files: s.files, reportPath, args: s.inv.args, patterns: s.patterns.length ? s.patterns : undefined }));
  if (invocations.length === 1) return one(shares(base.name, invocations, opts.files)[0]!, opts.reportPath);
  const rep = shq(opts.reportPath);
  const lines = [`__vrc=0`, `: > ${rep}`];
  shares(base.name, invocations, opts.files).forEach((s, i) => {
    const part = `${opts.reportPath}.v${i}`;
    lines.push(
      `echo ${shq(MARK_LOG + s.inv.label)}`,
      `rm -f ${shq(part)}`,
      // Each variant in its own subshell: per-file runners end in `exit`, which must end only that variant.
      `( ${one(s, part)} ) || __vrc=$?`,
      `echo ${shq(MARK_REP + s.inv.label + ' -->')} >> ${rep}`,
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

function parse(base: Runner, report: string | null, log: string, ctx?: ParseContext): TestResult[] {
  const clean = stripAnsi(log);
  const marked = clean.includes(MARK_LOG) || (report ?? '').includes(MARK_REP);
  if (!marked) return base.parse(report, log, ctx);
  const reps = report !== null ? sections(report, MARK_REP, ' -->\n') : new Map<string, string>();
  const logs = sections(clean, MARK_LOG, '\n');
  const out: TestResult[] = [];
  for (const label of new Set([...logs.keys(), ...reps.keys()])) {
    const r = reps.get(label);
    for (const t of base.parse(r && r.trim() ? r : null, logs.get(label) ?? '', ctx)) out.push({ ...t, name: variantId(t.name, label) });
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
