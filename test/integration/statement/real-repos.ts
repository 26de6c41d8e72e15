/**
 * Offline measurement (not a vitest file): runs the statement stage's rule path over merged PRs from local
 * bare mirrors of real repositories and prints statements produced, leakage flags by kind, rejections, and
 * category/difficulty distributions. Code/test split by operators/pr/classify.ts; FAIL_TO_PASS approximated by
 * the test functions/titles the test patch adds (verify would compute it by execution).
 *
 *   npx tsx test/integration/statement/real-repos.ts /work/.mirror/owner+name/repo [...]
 */
import { execFileSync } from 'node:child_process';
import { parseDiff, joinDiff } from '../../../operators/pr/patch.js';
import { isTestPath, isCodePath, isDocsPath } from '../../../operators/pr/classify.js';
import { statementStage } from '../../../operators/statement.js';
import { checkLeakage, changedIdentifiers, publicApiNames } from '../../../operators/quality/leakage.js';
import { slicedTask, envelope } from './fixture.js';

const git = (dir: string, ...args: string[]) => execFileSync('git', ['--git-dir', dir, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });

interface Pr { repo: string; number: number; title: string; body: string; diff: string }

function prsOf(dir: string, repo: string, limit: number): Pr[] {
  const out: Pr[] = [];
  const log = git(dir, 'log', '--first-parent', '-n', '3000', '--format=%H%x00%P%x00%B%x1e', 'HEAD');
  for (const rec of log.split('\x1e')) {
    const [sha, parents, msg] = rec.replace(/^\n/, '').split('\x00');
    if (!sha || !msg) continue;
    const parent = parents!.split(' ')[0];
    if (!parent) continue;
    let m = /^Merge pull request #(\d+) from \S+\n\n([^\n]+)\n?([\s\S]*)$/.exec(msg.trim());
    let number: number, title: string, body: string;
    if (m) { number = +m[1]!; title = m[2]!; body = m[3]!.trim(); }
    else if ((m = /^(.*)\(#(\d+)\)\s*(?:\n([\s\S]*))?$/.exec(msg.trim()))) { number = +m[2]!; title = m[1]!.trim(); body = (m[3] ?? '').trim(); }
    else continue;
    const diff = git(dir, 'diff', '--no-color', parent, sha);
    if (diff.length > 300_000) continue;
    out.push({ repo, number, title, body, diff });
    if (out.length >= limit) break;
  }
  return out;
}

function f2pOf(testPatch: string): string[] {
  const names: string[] = [];
  for (const f of parseDiff(testPatch))
    for (const h of f.hunks)
      for (const l of h.lines) {
        if (l.type !== '+') continue;
        const py = /^\s*(?:async\s+)?def\s+(test\w*)/.exec(l.text);
        if (py) names.push(`${f.path}::${py[1]}`);
        const js = /\b(?:it|test)\s*\(\s*(['"`])(.+?)\1/.exec(l.text);
        if (js) names.push(`${f.path} > ${js[2]}`);
      }
  return names;
}

const tally = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

async function main() {
  const stage = statementStage();
  const outcomes = new Map<string, number>();
  const kinds = new Map<string, number>();
  const cats = new Map<string, number>();
  const levels = new Map<string, number>();
  const flaggedKept: string[] = [];
  let seen = 0;
  // Recall probe: each accepted statement with one planted leak per kind; counts detections / plants.
  const planted = new Map<string, [number, number]>();
  const plant = (kind: string, hit: boolean) => {
    const [h, n] = planted.get(kind) ?? [0, 0];
    planted.set(kind, [h + (hit ? 1 : 0), n + 1]);
  };
  for (const dir of process.argv.slice(2)) {
    const repo = dir.split('/').at(-2)!.replace('+', '/');
    for (const pr of prsOf(dir, repo, 400)) {
      const files = parseDiff(pr.diff).filter((f) => !f.binary);
      const tests = files.filter((f) => isTestPath(f.path));
      const code = files.filter((f) => !isTestPath(f.path) && isCodePath(f.path) && !isDocsPath(f.path));
      if (!tests.length || !code.length) continue;
      const f2p = f2pOf(joinDiff(tests));
      if (!f2p.length) continue;
      seen++;
      const t = slicedTask({ title: pr.title, body: pr.body });
      t.candidate = { ...t.candidate, repo, pr_id: `${repo}#${pr.number}`, number: pr.number, diff: pr.diff };
      t.tests = { ...t.tests, gold_patch: joinDiff(code), test_patch: joinDiff(tests) };
      t.verification = { ...t.verification, FAIL_TO_PASS: f2p };
      const o = await stage.handle(envelope(t));
      tally(outcomes, o.kind === 'rejected' ? `rejected:${o.reason}` : o.kind);
      if (o.kind === 'accepted') {
        const s = o.value.statement;
        tally(cats, s.category);
        tally(levels, s.difficulty.level);
        for (const k of new Set(s.leakage_evidence.map((e) => e.kind))) tally(kinds, `kept:${k}`);
        const gold = t.tests.gold_patch;
        const input = { patch: gold, testPatch: t.tests.test_patch, failToPass: f2p };
        // lines also removed elsewhere are moved code that exists before the fix: not a leak by design
        const removedLines = new Set(parseDiff(gold).flatMap((f) => f.hunks.flatMap((h) => h.lines.filter((l) => l.type === '-').map((l) => l.text.trim().replace(/\s+/g, ' ')))));
        const line = parseDiff(gold).flatMap((f) => f.hunks.flatMap((h) => h.lines.filter((l) => l.type === '+').map((l) => l.text.trim()))).filter((l) => l.length >= 20 && /[A-Za-z_]{3}/.test(l) && !removedLines.has(l.replace(/\s+/g, ' '))).sort((a, b) => b.length - a.length)[0];
        if (line && process.env.SHOW_MISSES && !checkLeakage({ ...input, statement: `x\n    ${line}` }).flagged) console.log("MISS patch-line", JSON.stringify(line));
        if (line) plant('patch-line', checkLeakage({ ...input, statement: `${s.problem_statement}\n\nChange it to:\n    ${line}` }).evidence.some((e) => e.kind === 'patch-line'));
        plant('file-path', checkLeakage({ ...input, statement: `${s.problem_statement}\n\nThe problem is in ${parseDiff(gold)[0]!.path}.` }).evidence.some((e) => e.kind === 'file-path'));
        const name = f2p[0]!.split(/::| > /).at(-1)!;
        if (process.env.SHOW_MISSES && !checkLeakage({ ...input, statement: `x "${name}"` }).flagged) console.log('MISS test-name', JSON.stringify(f2p[0]));
        plant('test-name', checkLeakage({ ...input, statement: `${s.problem_statement}\n\nSee the test "${name}".` }).evidence.some((e) => e.kind === 'test-name'));
        const api = new Set(publicApiNames(gold, t.tests.test_patch));
        const internal = changedIdentifiers(parseDiff(gold)).find((n) => !api.has(n) && !/^[a-z]+$/.test(n));
        if (internal) plant('identifier', checkLeakage({ ...input, statement: `${s.problem_statement}\n\nLook at ${internal}.` }).evidence.some((e) => e.kind === 'identifier'));
        if (s.leakage_evidence.length && flaggedKept.length < 8) flaggedKept.push(`${repo}#${pr.number} ${JSON.stringify(s.leakage_evidence.slice(0, 3))}`);
      } else if (o.kind === 'rejected') {
        if (o.detail) for (const k of new Set([...o.detail.matchAll(/(patch-line|file-path|identifier|test-name|string-literal):/g)].map((m) => m[1]!))) tally(kinds, `rejected:${k}`);
        if (o.reason === 'leaky-statement') console.log(`REJECTED ${repo}#${pr.number}: ${o.detail?.slice(0, 160)}`);
      }
    }
  }
  const show = (n: string, m: Map<string, number>) => console.log(n, JSON.stringify(Object.fromEntries([...m].sort((a, b) => b[1] - a[1]))));
  console.log(`PRs with code+tests: ${seen}`);
  show('outcomes', outcomes);
  show('evidence kinds (statements with ≥1)', kinds);
  show('categories', cats);
  show('difficulty', levels);
  console.log('planted-leak recall', JSON.stringify(Object.fromEntries([...planted].map(([k, [h, n]]) => [k, `${h}/${n}`]))));
  console.log('kept with evidence (sample):\n' + flaggedKept.join('\n'));
}
await main();
