/**
 * The living dataset's commands (ARCHITECTURE.md §8): `release`, `revalidate`, `images push|gc`, and the
 * schedule `run --revalidate-every` uses. Each opens ClickHouse (server or chDB under the data dir) and,
 * where images are involved, the Docker engine of the configured sandboxes.
 *
 * The OCI registry is `--registry host:port`, else `SWE_STREAM_OCI_REGISTRY`, else 127.0.0.1:5000
 * (infra/oci-registry.sh).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type Docker from 'dockerode';
import { openClickHouse, type ClickHouse } from '../../connectors/sinks/connection.js';
import { createRelease, parseTime, ReleaseUsageError } from '../../connectors/dataset/release.js';
import { gcImages, pushImages, type PushResult } from '../images-ops.js';
import { revalidate } from '../dataset-ops.js';
import { pushedImages } from '../../connectors/dataset/store.js';
import { percentile } from '../../connectors/dataset/card.js';
import { DockerSandboxFactory } from '../../operators/sandbox/docker.js';
import type { Config } from '../config.js';
import { commonOptions, configFrom, type CommonFlags } from '../common.js';
import { Deps } from '../compose.js';
import { log } from '../../streams/log.js';

/** The registry address from the flag, the environment, or the default. */
export function registryAddress(flag?: string): string {
  return flag || process.env.SWE_STREAM_OCI_REGISTRY || '127.0.0.1:5000';
}

async function withClickHouse<T>(cfg: Config, fn: (ch: ClickHouse) => Promise<T>): Promise<T> {
  const ch = await openClickHouse({ url: cfg.clickhouse.url, dataDir: cfg.dataDir, database: cfg.clickhouse.database });
  try {
    return await fn(ch);
  } finally {
    await ch.close();
  }
}

function dockerOf(deps: Deps): Docker {
  return (deps.sandboxes as DockerSandboxFactory).docker;
}

/** Median and p90 of the unique bytes of every pushed image of `ids` (all pushed when omitted). */
async function uniqueBytesSummary(ch: ClickHouse): Promise<{ tasks: number; median: number; p90: number; compressed_median: number; compressed_p90: number }> {
  const rows = [...(await pushedImages(ch)).values()];
  const u = rows.map((r) => r.unique_bytes).sort((a, b) => a - b);
  const c = rows.map((r) => r.unique_compressed_bytes).sort((a, b) => a - b);
  return { tasks: rows.length, median: percentile(u, 50), p90: percentile(u, 90), compressed_median: percentile(c, 50), compressed_p90: percentile(c, 90) };
}

const pushSummary = (r: PushResult) => ({ pushed: r.pushed.length, current: r.current, failed: r.failed, missing: r.missing });

interface ReleaseFlags extends CommonFlags { out?: string; asOf?: string; createdAfter?: string; registry?: string; localImages?: boolean }

/** `release NAME`: push releasable images (unless --local-images), then write the release. Exit 2 on usage errors, 1 when pushes failed. */
async function releaseAction(name: string, flags: ReleaseFlags): Promise<number> {
  const cfg = configFrom(flags);
  let asOfMs: number | undefined;
  let createdAfterMs: number | undefined;
  try {
    asOfMs = parseTime('--as-of', flags.asOf);
    createdAfterMs = parseTime('--created-after', flags.createdAfter);
  } catch (e) {
    process.stderr.write(`swe-stream release: ${(e as Error).message}\n`);
    return 2;
  }
  const out = resolve(flags.out ?? `${cfg.dataDir}/releases`);
  return withClickHouse(cfg, async (ch) => {
    if (!flags.localImages) {
      const pushed = await pushImages(ch, { docker: dockerOf(new Deps(cfg)), registry: registryAddress(flags.registry) });
      if (pushed.failed.length) {
        process.stderr.write(`swe-stream release: ${pushed.failed.length} task image(s) could not be pushed (the registry is down?); nothing released. ${pushed.failed[0]!.error}\n`);
        return 1;
      }
    }
    try {
      const r = await createRelease(ch, { name, out, dataDir: cfg.dataDir, asOfMs, createdAfterMs, localImages: flags.localImages, command: ['swe-stream', ...process.argv.slice(2)].join(' ') });
      process.stdout.write(`released ${r.name}: ${r.rows} rows (${r.added} added, ${r.retired} retired, ${r.changed} changed) to ${r.dir}\n`);
      return 0;
    } catch (e) {
      if (!(e instanceof ReleaseUsageError)) throw e;
      process.stderr.write(`swe-stream release: ${e.message}\n`);
      return 2;
    }
  });
}

/** Parse `7d`, `12h`, `30m`, `45s` or plain ms. @returns ms, or null when malformed */
export function parseDuration(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[(m[2] ?? 'ms') as 'ms'];
  return Math.round(Number(m[1]) * unit);
}

/**
 * The schedule inside `run --revalidate-every D`: every D, re-validate the released tasks not
 * re-validated in the last D. One pass at a time; a failing pass is logged and the next tick retries.
 * @returns a stop function
 */
export function scheduleRevalidation(cfg: Config, everyMs: number, runs = 3): () => void {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const deps = new Deps(cfg);
      const r = await withClickHouse(cfg, (ch) => revalidate(ch, { sandboxes: deps.sandboxes, docker: dockerOf(deps), runs, since: Date.now() - everyMs, timeoutMs: cfg.sandbox.testTimeoutMs }));
      log.info({ tasks: r.tasks, outcomes: r.byOutcome }, 'scheduled re-validation done');
    } catch (e) {
      log.error({ err: (e as Error).message, retriable: (e as { retriable?: boolean }).retriable ?? true }, 'scheduled re-validation failed; the next tick retries');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  void tick();
  return () => clearInterval(timer);
}

/** Register `release`, `revalidate` and `images`. */
export function registerLiving(program: Command): void {
  commonOptions(
    program.command('release <name>')
      .description('write an immutable release: Parquet + JSONL in both row formats, dataset card, CHANGES, SHA256SUMS; pushes task images first')
      .option('--out <dir>', 'parent directory (default <data dir>/releases)')
      .option('--as-of <time>', 'snapshot time: rows and retirements recorded after it are left out (default now)')
      .option('--created-after <time>', 'only PRs created at or after this ISO 8601 date/time')
      .option('--registry <host:port>', 'OCI registry for task images')
      .option('--local-images', 'do not push; rows keep local image references'),
  ).action(async (name: string, flags: ReleaseFlags) => { process.exitCode = await releaseAction(name, flags); });

  commonOptions(
    program.command('revalidate')
      .description('re-run every released task from its image: gold → resolved, empty → not, --runs times; retire what drifted')
      .option('--since <time>', 'skip tasks re-validated at or after this time')
      .option('--runs <n>', 'rounds of gold + empty per task', '3')
      .option('--instance <id...>', 'only these released instances (instance_id, repeatable)')
      .option('--repo <owner/name...>', 'only released tasks of these repositories (repeatable)'),
  ).action(async (flags: CommonFlags & { since?: string; runs: string; instance?: string[]; repo?: string[] }) => {
    const cfg = configFrom(flags);
    let since: number | undefined;
    try { since = parseTime('--since', flags.since); } catch (e) { process.stderr.write(`swe-stream revalidate: ${(e as Error).message}\n`); process.exitCode = 2; return; }
    const deps = new Deps(cfg);
    const r = await withClickHouse(cfg, (ch) => revalidate(ch, { sandboxes: deps.sandboxes, docker: dockerOf(deps), runs: Number(flags.runs), since, instances: flags.instance, repos: flags.repo, timeoutMs: cfg.sandbox.testTimeoutMs }));
    process.stdout.write(JSON.stringify({ tasks: r.tasks, outcomes: r.byOutcome, retired: r.rows.filter((x) => x.retire).map((x) => ({ instance_id: x.instance_id, outcome: x.outcome, detail: x.detail })) }) + '\n');
  });

  const images = program.command('images').description('task images in the OCI registry');
  commonOptions(images.command('push').description('push the task images of releasable tasks (retried); prints what was pushed and unique bytes per task')
    .option('--registry <host:port>', 'OCI registry')).action(async (flags: CommonFlags & { registry?: string }) => {
    const cfg = configFrom(flags);
    const r = await withClickHouse(cfg, async (ch) => ({ ...pushSummary(await pushImages(ch, { docker: dockerOf(new Deps(cfg)), registry: registryAddress(flags.registry) })), unique_bytes: await uniqueBytesSummary(ch) }));
    process.stdout.write(JSON.stringify(r) + '\n');
    if (r.failed.length) process.exitCode = 1;
  });
  commonOptions(images.command('gc').description('remove superseded env images and unreleased task images (never what a release references)'))
    .action(async (flags: CommonFlags) => {
      const cfg = configFrom(flags);
      const r = await withClickHouse(cfg, (ch) => gcImages(ch, { docker: dockerOf(new Deps(cfg)) }));
      process.stdout.write(JSON.stringify({ removed_task_images: r.removedTaskImages.length, removed_env_images: r.removedEnvImages.length, deleted_manifests: r.deletedManifests.length, kept: r.kept }) + '\n');
    });
}
