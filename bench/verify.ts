/**
 * bench/verify — the verify stage's overhead over the tests themselves (issue 5): verification wall time
 * divided by the tests' own run time at the same concurrency. Target ≤ 1.15.
 *
 * Workload: a generated Python/pytest repository whose selected test file burns CPU for about `--suite`
 * seconds per run (many small CPU-bound tests plus the PR's fail-to-pass test), in a real Docker
 * environment image. For each suite size and concurrency c, c PRs are verified at once (full stage: 2
 * before + 3 after runs, of which the release check's empty and gold runs in the task image are one
 * each: 5 test runs per PR, printed as `runs_per_pr`). The baseline is the
 * tests' own time at the same concurrency: c containers at once, each running the same test command
 * `runs_per_pr` times back to back on the patched tree, nothing else. Prints one JSON line per configuration:
 *   {"bench":"verify","suite_s":S,"concurrency":C,"runs_per_pr":5,"verify_ms":…,"tests_ms":…,"baseline_ms":…,
 *    "ratio":verify_ms/baseline_ms,"ratio_own":verify_ms/tests_ms,"target":1.15}
 * (`tests_ms` is what verify measured of its own test commands; `ratio_own` is the same quotient against it.)
 *
 * Usage: npx tsx bench/verify.ts [--suites 2,10,30] [--concurrency 1,2] [--no-task-image]
 */
import { parseArgs } from 'node:util';
import { DockerSandboxFactory } from '../operators/sandbox/docker.js';
import { testCreateStage } from '../operators/test-create.js';
import { verifyStage } from '../operators/verify.js';
import { getRunner } from '../operators/runners/index.js';
import { prepareCheckout, resetCheckout, runOnce } from '../operators/harness/runs.js';
import type { TestsReady } from '../schemas/types.gen.js';
import { GenRepo, buildEnvImage, candidateOf, environmentOf, envelope, readyOf } from '../test/integration/verify/helpers.js';

const { values: args } = parseArgs({
  options: {
    suites: { type: 'string', default: '2,10,30' },
    concurrency: { type: 'string', default: '1,2' },
    'no-task-image': { type: 'boolean', default: false },
  },
});
const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ bench: 'verify', ...o }));
const WORKDIR = '/testbed';
const sandboxes = new DockerSandboxFactory({ labels: { 'swe-stream.bench': 'verify' } });

/** A test module of `n` CPU-bound tests totalling about `seconds`. */
function burnTests(seconds: number, n = 50): string {
  const each = seconds / n;
  let out = 'import time\n\n\ndef burn(s):\n    end = time.perf_counter() + s\n    x = 0\n    while time.perf_counter() < end:\n        x += 1\n    return x\n';
  for (let i = 0; i < n; i++) out += `\n\ndef test_burn_${i}():\n    assert burn(${each.toFixed(4)}) > 0\n`;
  return out;
}

async function main(): Promise<void> {
  const suites = args.suites!.split(',').map(Number);
  const concs = args.concurrency!.split(',').map(Number);
  const repo = new GenRepo();
  try {
    const parent = repo.commit({ 'lib/__init__.py': '', 'lib/m.py': 'def f():\n    return 1\n', 'tests/__init__.py': '' }, 'base');
    const prs = new Map<number, string>();
    for (const s of suites) prs.set(s, repo.pr(`suite-${s}`, parent, { 'lib/m.py': 'def f():\n    return 2\n', [`tests/test_suite_${s}.py`]: burnTests(s) + '\n\ndef test_f():\n    from lib.m import f\n    assert f() == 2\n' }));
    const base = await sandboxes.baseImage('python');
    const img = await buildEnvImage({ sandboxes, base, repo, checkout: parent, workdir: WORKDIR, name: 'bench-verify', setup: 'set -e; python3 -m venv /opt/venv; /opt/venv/bin/pip install -q pytest==8.3.5' });
    const environment = environmentOf(img, { language: 'python', runner: 'pytest', workdir: WORKDIR });
    const runner = getRunner('pytest');
    const verify = verifyStage({ sandboxes, taskImage: !args['no-task-image'], taskImagePrefix: 'swe-stream-bench/task' });
    const tc = testCreateStage();
    let n = 0;
    for (const s of suites) {
      for (const c of concs) {
        const readies: TestsReady[] = [];
        for (let i = 0; i < c; i++) {
          const out = await tc.handle(envelope(readyOf(candidateOf(repo, { name: 'bench', number: 1000 + ++n, parent, pr: prs.get(s)!, language: 'python' }), environment)));
          if (out.kind !== 'accepted') throw new Error(JSON.stringify(out));
          readies.push(out.value);
        }
        const t0 = Date.now();
        const outs = await Promise.all(readies.map((r) => verify.handle(envelope(r))));
        const verifyMs = Date.now() - t0;
        const testsMs = outs.reduce((sum, o) => sum + (o.kind === 'accepted' ? o.value.verification.tests_ms : 0), 0) / c;
        const notOk = outs.filter((o) => o.kind !== 'accepted');
        if (notOk.length) throw new Error(`verify did not accept: ${JSON.stringify(notOk[0])}`);
        for (const o of outs) if (o.kind === 'accepted' && o.value.verification.task_image_ref) await sandboxes.docker.getImage(o.value.verification.task_image_ref).remove({ force: true }).catch(() => undefined);
        // Baseline: the tests' own time, same number of runs and same concurrency, nothing else timed.
        // Every test run verify made for one PR (the release check's gold and empty runs are among them).
        const runsPerPr = outs[0]!.kind === 'accepted' ? outs[0]!.value.verification.runs_before + outs[0]!.value.verification.runs_after : 5;
        const own = await Promise.all(readies.map(async (r) => {
          const sb = await sandboxes.create({ image: img.id, network: false, workdir: WORKDIR });
          try {
            await prepareCheckout(sb, WORKDIR, parent);
            let ms = 0;
            for (let i = 0; i < runsPerPr; i++) {
              if (i > 0) await resetCheckout(sb, WORKDIR);
              const ev = await runOnce(sb, { workdir: WORKDIR, preCommands: [], testCommand: r.tests.test_command, runner, patches: [{ name: 'test', text: r.tests.test_patch }, { name: 'gold', text: r.tests.gold_patch }], timeoutMs: 900_000 });
              ms += ev.durationMs ?? 0;
            }
            return ms;
          } finally {
            await sb.destroy();
          }
        }));
        const baselineMs = own.reduce((a, b) => a + b, 0) / c;
        const verifyPerPr = verifyMs; // c PRs at once: wall time of the batch vs each PR's own test time at that concurrency
        emit({ suite_s: s, concurrency: c, runs_per_pr: runsPerPr, verify_ms: verifyPerPr, tests_ms: Math.round(testsMs), baseline_ms: Math.round(baselineMs), ratio: +(verifyPerPr / baselineMs).toFixed(3), ratio_own: +(verifyPerPr / testsMs).toFixed(3), target: 1.15 });
      }
    }
  } finally {
    repo.remove();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
