/**
 * bench/history — what the merged-PR scan (operators/pr/history.ts) sees in real repositories, against the
 * first-parent markers the scan read before (issue 11 item 1), and what it costs.
 *
 * Input: local repositories (bare mirrors or clones with `refs/pull/N/head` fetched), given as
 * `--repo PATH[=owner/name]` (repeatable). Each is scanned once on the default branch and, with
 * `--branches '*'`, on every branch as well.
 * One JSON line per repository and scan, then a total:
 *   {"bench":"history","repo":"owner/name","branches":"default","pull_refs":N,"first_parent_markers":N,"prs":N,
 *    "styles":{"merge":…,"squash":…,"rebase":…,"pull-ref":…},"unresolved":{reason:count},"ms":…,"rss_mb":…,"load1":…}
 *   {"bench":"history","total":true,"repos":N,"pull_refs":…,"first_parent_markers":…,"prs":…,"styles":{…},"unresolved":{…},"ms":…}
 * `first_parent_markers` counts "Merge pull request #N" and "… (#N)" subjects on the first-parent chain of
 * HEAD (the old scan's reach); `ms` is wall time of one scan (the load average is printed beside it: the
 * figure is only comparable between runs on an idle machine).
 * Usage: npx tsx bench/history.ts --repo ../mirrors/dayjs.git=iamkun/dayjs [--repo …] [--branches '*']
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { openLocalRepo, scanMergedPrs } from '../operators/pr/history.js';
import type { Mirror } from '../operators/pr/mirror.js';

const MARKER = /^Merge pull request #\d+ from|\(#\d+\)\s*$/;

/** Count, by key. */
function tally(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** Add the counts of `b` into `a`. */
function addInto(a: Record<string, number>, b: Record<string, number>): void {
  for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
}

/** One scan of one repository as a JSON-line object. */
async function scanLine(repo: Mirror, name: string, branches: '*' | undefined): Promise<Record<string, unknown> & { prs: number; styles: Record<string, number>; unresolved: Record<string, number>; pull_refs: number; ms: number }> {
  const t0 = performance.now();
  const r = await scanMergedPrs(repo, { branches });
  const ms = Math.round(performance.now() - t0);
  return {
    bench: 'history', repo: name, branches: branches ?? 'default', pull_refs: r.pullRefs, prs: r.prs.length,
    styles: tally(r.prs.map((p) => p.style)), unresolved: tally(r.unresolved.map((u) => u.reason)), ms,
    rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), load1: Number(loadavg()[0]!.toFixed(2)),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { repo: { type: 'string', multiple: true }, branches: { type: 'string' } } });
  if (!values.repo?.length) throw new Error('usage: bench/history.ts --repo PATH[=owner/name] [--repo …] [--branches *]');
  const total = { bench: 'history', total: true, repos: 0, pull_refs: 0, first_parent_markers: 0, prs: 0, styles: {} as Record<string, number>, unresolved: {} as Record<string, number>, ms: 0 };
  for (const spec of values.repo) {
    const [dir, name = dir!] = spec.split('=');
    const repo = await openLocalRepo(dir!, name.includes('/') ? name : 'local/repo');
    const markers = (await repo.git(['log', '--first-parent', '--format=%s', 'HEAD'])).split('\n').filter((s) => MARKER.test(s)).length;
    const line = await scanLine(repo, name, undefined);
    console.log(JSON.stringify({ ...line, first_parent_markers: markers }));
    total.repos++;
    total.pull_refs += line.pull_refs;
    total.first_parent_markers += markers;
    total.prs += line.prs;
    total.ms += line.ms;
    addInto(total.styles, line.styles);
    addInto(total.unresolved, line.unresolved);
    if (values.branches === '*') console.log(JSON.stringify(await scanLine(repo, name, '*')));
  }
  console.log(JSON.stringify(total));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
