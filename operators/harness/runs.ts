/**
 * The execution harness shared by test-create (judging a generated test), verify (before/after reruns,
 * the release check) and evaluate: bring a repository checkout in a sandbox to a known state, apply
 * patches, run a test command with its explicit reporter, read the report back, parse it.
 *
 * Contract with the environment image (env-build): `workdir` is a git work tree whose object store
 * holds the PR's parent commit; installed dependencies live in untracked/ignored paths (node_modules,
 * .venv, …) or outside the work tree. {@link prepareCheckout} pins the tree to the parent commit and
 * records what must survive a reset; {@link resetCheckout} restores exactly that state between runs, so
 * reruns share one container without one run's files leaking into the next.
 */
import type { Sandbox, SandboxFactory } from '../sandbox/types.js';
import { SandboxError } from '../sandbox/types.js';
import { StageError } from '../../streams/types.js';
import type { Runner, TestResult } from '../runners/types.js';
import { shq } from '../runners/util.js';
import { parseDiff, type FileDiff } from '../pr/patch.js';
import { exitGate, invalidReason, type RunRecord } from './grading.js';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'harness' });

/** Where every test command we generate writes its machine-readable report inside the sandbox. */
export const REPORT_PATH = '/tmp/swe-stream/report';
/** Scratch directory for patches and baselines inside the sandbox (outside the work tree). */
export const SCRATCH = '/tmp/swe-stream';
const KEEP_LIST = `${SCRATCH}/keep.lst`;
const BASELINE = `${SCRATCH}/baseline.patch`;

/** Small git/shell steps get this long, ms. */
const STEP_TIMEOUT_MS = 120_000;

/** One patch to apply, named for logs. */
export interface NamedPatch {
  name: string;
  text: string;
}

/** A file to write into the work tree (an agent-written f2p_script). */
export interface WorkFile {
  /** path relative to the workdir */
  path: string;
  content: string;
}

/** Everything one test run needs. */
export interface RunSpec {
  workdir: string;
  /** shell lines run before the test command in the same shell (venv activation, PATH) */
  preCommands: string[];
  /** the test command; writes its report to {@link REPORT_PATH} */
  testCommand: string;
  runner: Runner;
  /** applied in order with {@link applyPatch}; an empty text is skipped */
  patches: NamedPatch[];
  files?: WorkFile[];
  /** hard limit of the test command, ms */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** A run's evidence: the graded record plus the raw texts. */
export interface RunEvidence extends RunRecord {
  log: string;
  report: string | null;
  /** which patch did not apply, with git's message */
  applyError?: string;
  /** 'report' when the report parsed, 'log' when results came from the text log */
  source: 'report' | 'log' | 'none';
}

async function sh(sb: Sandbox, script: string, opts: { cwd?: string; signal?: AbortSignal; timeoutMs?: number } = {}) {
  return sb.exec(script, { timeoutMs: opts.timeoutMs ?? STEP_TIMEOUT_MS, cwd: opts.cwd, signal: opts.signal });
}

/**
 * Pin the work tree to `commit` and record the state every later run starts from: the uncommitted
 * changes the environment made to tracked files (as a binary diff) and the untracked/ignored paths that
 * exist now (installs), which resets keep.
 * @throws StageError (retriable=false) when the workdir is not a git work tree or lacks the commit
 */
export async function prepareCheckout(sb: Sandbox, workdir: string, commit: string, signal?: AbortSignal): Promise<void> {
  const r = await sh(sb, [
    'set -e',
    `mkdir -p ${SCRATCH}`,
    `git rev-parse --is-inside-work-tree >/dev/null`,
    `git cat-file -e ${shq(commit)}^{commit}`,
    // Environment images are reused across PRs of one repository: move to this PR's parent when needed.
    `if [ "$(git rev-parse HEAD)" != "$(git rev-parse ${shq(commit)}^{commit})" ]; then git checkout -q -f --detach ${shq(commit)}; fi`,
    `git diff --binary HEAD > ${BASELINE}`,
    // Top-level untracked and ignored entries (directories collapsed): the installs that resets keep.
    `git status --porcelain=v1 --ignored --untracked-files=normal -z | tr '\\0' '\\n' | sed -n 's/^[?!][?!] //p' > ${KEEP_LIST}`,
  ].join('\n'), { cwd: workdir, signal });
  if (r.exitCode !== 0) {
    throw new StageError(`checkout of ${commit} in ${workdir} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).slice(-500)}`, { retriable: false, name: 'CheckoutError' });
  }
}

/** The reset as shell lines (run with `set -e` in the workdir). */
const RESET_LINES = [
  `git reset -q --hard HEAD`,
  `args=(); while IFS= read -r p; do [ -n "$p" ] && args+=(-e "/$p"); done < ${KEEP_LIST}`,
  `git clean -fdxq "\${args[@]}"`,
  `if [ -s ${BASELINE} ]; then git apply --whitespace=nowarn ${BASELINE}; fi`,
  `rm -rf ${REPORT_PATH}*`,
];

/**
 * Put the work tree back to the state {@link prepareCheckout} recorded: tracked files to HEAD plus the
 * environment's own changes, every untracked or ignored path removed except the recorded ones, the
 * report gone.
 * @throws StageError (retriable=true) when git fails (the sandbox is then suspect)
 */
export async function resetCheckout(sb: Sandbox, workdir: string, signal?: AbortSignal): Promise<void> {
  const r = await sh(sb, ['set -e', ...RESET_LINES].join('\n'), { cwd: workdir, signal });
  if (r.exitCode !== 0) throw new StageError(`reset of ${workdir} failed: ${(r.stderr || r.stdout).slice(-500)}`, { retriable: true, name: 'ResetError' });
}

// Patch and file texts already copied into a sandbox's scratch directory (they survive resets there).
const staged = new WeakMap<Sandbox, Map<string, string>>();

/** Copy `content` to a scratch file once per sandbox and content; returns its path. */
async function stage(sb: Sandbox, kind: string, name: string, content: string): Promise<string> {
  let m = staged.get(sb);
  if (!m) staged.set(sb, (m = new Map()));
  const key = `${kind}\u0000${name}\u0000${content}`;
  const hit = m.get(key);
  if (hit) return hit;
  const path = `${SCRATCH}/${kind}-${m.size}-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  await sb.writeFile(path, content);
  m.set(key, path);
  return path;
}

/**
 * Shell lines that apply a staged diff the way SWE-bench's harness does: `git apply --verbose`, then GNU
 * `patch --batch --fuzz=5 -p1` when it exists (swebench/harness/run_evaluation.py GIT_APPLY_CMDS). On
 * failure they print `swe-stream-apply-failed:<name>` and exit 3.
 */
function applyLines(file: string, name: string): string[] {
  return [
    `if ! git apply --verbose --whitespace=nowarn ${file} 2>&1; then`,
    `  if ! { command -v patch >/dev/null && patch --batch --fuzz=5 -p1 -i ${file} 2>&1; }; then echo "swe-stream-apply-failed:${name}"; exit 3; fi`,
    `fi`,
  ];
}

/**
 * Shell lines that give each file the patches modify its committed content back when the environment changed
 * it (the recorded baseline keeps such changes): the PR's diffs are against the commit, so a hunk whose
 * context the install rewrote cannot apply. developit/mitt#114: npm added the final newline that the gold
 * patch's package.json hunk says is missing, and the after runs were `patch-does-not-apply`. Files the
 * patches add are left alone; a path git does not know is skipped, and `git apply` then reports it.
 * `files`: the run's patches parsed ({@link patchFiles}).
 */
export function restoreTouchedLines(files: FileDiff[]): string[] {
  const paths = new Set<string>();
  for (const f of files) if (f.status !== 'added' && f.oldPath) paths.add(f.oldPath);
  if (paths.size === 0) return [];
  return [`for __p in ${[...paths].map(shq).join(' ')}; do git diff --quiet HEAD -- "$__p" 2>/dev/null || git checkout -q HEAD -- "$__p" 2>/dev/null || :; done`];
}

/**
 * Apply one diff to the work tree (see {@link applyLines}). An empty patch applies trivially.
 * @returns whether it applied, with the tools' output
 */
export async function applyPatch(sb: Sandbox, workdir: string, patch: NamedPatch, signal?: AbortSignal): Promise<{ applied: boolean; output: string }> {
  if (!patch.text.trim()) return { applied: true, output: '' };
  const file = await stage(sb, 'patch', patch.name, patch.text.endsWith('\n') ? patch.text : patch.text + '\n');
  const r = await sh(sb, applyLines(file, patch.name).join('\n'), { cwd: workdir, signal });
  return { applied: r.exitCode === 0, output: (r.stdout + r.stderr).slice(-2000) };
}

/** Write files into the work tree (parents created). */
export async function writeWorkFiles(sb: Sandbox, workdir: string, files: WorkFile[]): Promise<void> {
  for (const f of files) {
    const abs = f.path.startsWith('/') ? f.path : `${workdir.replace(/\/$/, '')}/${f.path}`;
    const dir = abs.slice(0, abs.lastIndexOf('/'));
    await sh(sb, `mkdir -p ${shq(dir)}`);
    await sb.writeFile(abs, f.content);
  }
}

/** Read the report, or null when the run wrote none. Engine failures propagate. */
async function readReport(sb: Sandbox): Promise<string | null> {
  try {
    return (await sb.readFile(REPORT_PATH)).toString('utf8');
  } catch (e) {
    if (e instanceof SandboxError && !e.retriable) return null;
    throw e;
  }
}

/**
 * Shell lines that bring the work tree to a run's starting state: optionally reset it (see
 * {@link resetCheckout}), apply the spec's patches in order, copy its files in. Patch and file texts are
 * copied into the sandbox once and reused by later runs.
 */
async function prepareLines(sb: Sandbox, spec: RunSpec, reset: boolean): Promise<string[]> {
  const lines = [`mkdir -p ${SCRATCH}`];
  if (reset) lines.push('set -e', ...RESET_LINES, 'set +e');
  lines.push(`rm -rf ${REPORT_PATH}*`);
  const touched = patchFiles(spec.patches);
  lines.push(...restoreTouchedLines(touched));
  for (const p of spec.patches) {
    if (!p.text.trim()) continue;
    lines.push(...applyLines(await stage(sb, 'patch', p.name, p.text.endsWith('\n') ? p.text : p.text + '\n'), p.name));
  }
  for (const f of spec.files ?? []) {
    const abs = f.path.startsWith('/') ? f.path : `${spec.workdir.replace(/\/$/, '')}/${f.path}`;
    lines.push(`mkdir -p ${shq(abs.slice(0, abs.lastIndexOf('/')))} && cp ${await stage(sb, 'file', f.path, f.content)} ${shq(abs)} || exit 4`);
  }
  lines.push(...rebuildLines(touched));
  return lines;
}

/** The files of a run's patches, parsed once for the lines that depend on them. */
export function patchFiles(patches: NamedPatch[]): FileDiff[] {
  return patches.flatMap((p) => parseDiff(p.text));
}

/** Sources compiled into a Python extension module in place (C, C++, Cython). */
const NATIVE_SOURCE_RE = /\.(c|h|cc|cpp|cxx|hpp|pyx|pxd|pxi)$/;
const REBUILT_MARK = `${SCRATCH}/extensions-rebuilt`;

/**
 * Shell lines that rebuild a Python project's extension modules in place when the patches change their
 * sources, and again on the next run of the same sandbox so it is back at the commit's build: an editable
 * install compiled them once at env-build, so without this the tests of a fix to `_speedups.c` run the old
 * binary and nothing can fail before and pass after (simplejson/simplejson#373, #374 and #376 were `no-f2p`
 * in every run). SWE-bench's harness re-installs such repositories in its eval script for the same reason.
 * Only `setup.py` projects (`build_ext --inplace`, offline, recompiling what changed); a failed build is
 * printed to the run's log and the tests still run. `files`: the run's patches parsed ({@link patchFiles}).
 */
export function rebuildLines(files: FileDiff[]): string[] {
  const native = files.some((f) => NATIVE_SOURCE_RE.test(f.path) || NATIVE_SOURCE_RE.test(f.oldPath));
  const build = [
    `__py=python3; [ -x /opt/venv/bin/python ] && __py=/opt/venv/bin/python`,
    `if ! "$__py" setup.py build_ext --inplace >${SCRATCH}/rebuild.log 2>&1; then echo "swe-stream: rebuilding the extension modules failed:"; tail -n 40 ${SCRATCH}/rebuild.log; fi`,
  ];
  if (native) return ['if [ -f setup.py ]; then', ...build, `touch ${REBUILT_MARK}`, 'fi'];
  return [`if [ -f ${REBUILT_MARK} ] && [ -f setup.py ]; then`, ...build, `rm -f ${REBUILT_MARK}`, 'fi'];
}

const M_START = '@@swe-stream-tests-start@@';
const M_END = '@@swe-stream-tests-end@@';
const M_REPORT = '@@swe-stream-report@@';

/**
 * Apply the spec's patches and files to the work tree (after a reset when `opts.reset`), run the test
 * command, and parse what it left — all in one exec, because each engine round trip costs as much as a
 * small test file's run: the script times the test command itself (the tests' own time excludes the
 * preparation) and prints the report after the log, between markers. When the output was cut (the tail
 * is kept) and the report with it, the report is read back from the sandbox.
 * Never throws for test failures, patch failures or timeouts — those are in the evidence; throws for
 * sandbox engine failures (SandboxError, retriable as the engine says) and a failing reset (StageError).
 */
export async function runOnce(sb: Sandbox, spec: RunSpec, opts: { reset?: boolean } = {}): Promise<RunEvidence> {
  const script = [
    ...(await prepareLines(sb, spec, opts.reset ?? false)),
    `echo ${M_START}`,
    `__t0=$(date +%s%N)`,
    '(',
    ...spec.preCommands,
    spec.testCommand,
    ')',
    `__rc=$?`,
    `__t1=$(date +%s%N)`,
    `printf '\n${M_END} %s %s\n' "$__rc" "$(( (__t1 - __t0) / 1000000 ))"`,
    `if [ -f ${REPORT_PATH} ]; then echo ${M_REPORT}; cat ${REPORT_PATH}; fi`,
    `exit $__rc`,
  ].join('\n');
  const r = await sb.exec(script, { timeoutMs: spec.timeoutMs, cwd: spec.workdir, signal: spec.signal, maxOutputBytes: 8 << 20 });
  const failed = /swe-stream-apply-failed:(.*)/.exec(r.stdout);
  const start = r.stdout.indexOf(M_START + '\n');
  if (failed && start < 0) {
    const out = (r.stdout + r.stderr).slice(-2000);
    return { results: [], exitCode: 1, timedOut: false, patchApplied: false, durationMs: 0, log: out, report: null, applyError: `${failed[1]!.trim()}: ${out}`, source: 'none' };
  }
  if (start < 0 && !r.truncated && !r.timedOut) {
    throw new StageError(`preparing the work tree failed (exit ${r.exitCode}): ${(r.stdout + r.stderr).slice(-500)}`, { retriable: true, name: 'PrepareError' });
  }
  const endAt = r.stdout.lastIndexOf(`\n${M_END} `);
  let exitCode = r.exitCode;
  let durationMs = r.durationMs;
  let report: string | null = null;
  let stdout = r.stdout.slice(start >= 0 ? start + M_START.length + 1 : 0);
  if (endAt >= 0) {
    const tail = r.stdout.slice(endAt + M_END.length + 2);
    const m = /^(\d+) (\d+)\n/.exec(tail);
    if (m) { exitCode = Number(m[1]); durationMs = Number(m[2]); }
    const rep = tail.indexOf(M_REPORT + '\n');
    if (rep >= 0) report = tail.slice(rep + M_REPORT.length + 1);
    stdout = r.stdout.slice(start >= 0 ? start + M_START.length + 1 : 0, endAt);
  }
  // Output cut before the report's end (or a killed run): read what the runner left on disk.
  if (report === null && (r.truncated || r.timedOut || endAt < 0)) report = await readReport(sb);
  const log = stdout + (r.stderr ? '\n' + r.stderr : '');
  const ctx = { workdir: spec.workdir };
  const fromReport: TestResult[] = report !== null ? spec.runner.parse(report, '', ctx) : [];
  const results = fromReport.length ? spec.runner.parse(report, log, ctx) : spec.runner.parse(null, log, ctx);
  return {
    results,
    exitCode,
    timedOut: r.timedOut,
    patchApplied: true,
    durationMs,
    gate: exitCode !== 0 ? exitGate(log) : null,
    log,
    report,
    source: fromReport.length ? 'report' : results.length ? 'log' : 'none',
  };
}

/** Options of {@link runRepeated}. */
export interface RepeatSpec extends Omit<RunSpec, 'signal'> {
  sandboxes: SandboxFactory;
  /** environment image (id or ref) */
  image: string;
  /** commit to pin the work tree to (the PR's parent) */
  commit: string;
  /** number of runs */
  n: number;
  labels?: Record<string, string>;
  signal?: AbortSignal;
  /** called after each valid run; true skips the remaining runs */
  stop?: (runs: RunEvidence[]) => boolean;
}

/**
 * Run the same inputs `n` times in a given container: pin the checkout, then apply → run → reset, n
 * times. An invalid run (patch did not apply, timeout, nothing parsed, non-zero exit with no failure)
 * ends the series, since one invalid run already decides the outcome for every caller.
 */
export async function runSeries(sb: Sandbox, spec: Omit<RepeatSpec, 'sandboxes' | 'image' | 'labels'>): Promise<RunEvidence[]> {
  const runs: RunEvidence[] = [];
  await prepareCheckout(sb, spec.workdir, spec.commit, spec.signal);
  for (let i = 0; i < spec.n; i++) {
    const r = await runOnce(sb, spec, { reset: i > 0 });
    runs.push(r);
    if (invalidReason(r) !== null) break;
    if (spec.stop?.(runs)) break;
  }
  return runs;
}

/**
 * Remove a sandbox without waiting: removal is off the critical path of a stage, so its latency should
 * not count. A failure is logged (the sweeper removes what is left), never thrown.
 */
export function destroyLater(sb: Sandbox): void {
  sb.destroy().catch((e: unknown) => log.warn({ sandbox: sb.id, err: (e as Error).message }, 'sandbox removal failed; the sweeper will remove it'));
}

/**
 * {@link runSeries} in one fresh container (network off) from `spec.image`, or in `spec.sandbox` when the
 * caller created it ahead of time (so its start overlaps earlier work). The container is removed after.
 * @returns the runs made and the series' wall time (container create included), ms
 */
export async function runRepeated(spec: RepeatSpec & { sandbox?: Promise<Sandbox> }): Promise<{ runs: RunEvidence[]; ms: number }> {
  const t0 = Date.now();
  const sb = await (spec.sandbox ?? spec.sandboxes.create({ image: spec.image, network: false, workdir: spec.workdir, labels: spec.labels, signal: spec.signal }));
  try {
    return { runs: await runSeries(sb, spec), ms: Date.now() - t0 };
  } finally {
    destroyLater(sb);
  }
}
