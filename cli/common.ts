/** Flags and configuration shared by every command. */
import { Command, Option } from 'commander';
import { loadConfig, ConfigError, type Config } from './config.js';
import { resolve } from 'node:path';
import { STAGE_NAMES, type StageName } from '../operators/pr/topology.js';
import { GitCredentials, splitUrlCredentials } from '../operators/pr/git-exec.js';

/** Options every command shares, as parsed by commander. */
export interface CommonFlags {
  config?: string;
  bus?: string;
  dataDir?: string;
  clickhouseUrl?: string;
  metricsPort?: string;
  partitions?: string;
}

/** Resolve the configuration of a command from its flags; exits 2 with a clear message when invalid. */
export function configFrom(flags: CommonFlags, extra: Record<string, unknown> = {}): Config {
  const overrides: Record<string, unknown> = { ...extra };
  if (flags.bus) overrides.bus = flags.bus;
  if (flags.dataDir) overrides.dataDir = flags.dataDir;
  if (flags.clickhouseUrl) overrides.clickhouse = { url: flags.clickhouseUrl };
  if (flags.metricsPort !== undefined) overrides.metricsPort = Number(flags.metricsPort);
  if (flags.partitions !== undefined) overrides.partitions = Number(flags.partitions);
  try {
    return loadConfig({ file: flags.config, overrides });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`swe-stream: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

/** Parse `--stages a,b,c`; exits 2 on an unknown name. */
export function parseStages(v: string | undefined): StageName[] | undefined {
  if (!v) return undefined;
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.filter((n) => !(STAGE_NAMES as readonly string[]).includes(n));
  if (bad.length) {
    process.stderr.write(`swe-stream: unknown stage(s) ${bad.join(', ')}; stages are ${STAGE_NAMES.join(', ')}\n`);
    process.exit(2);
  }
  return names as StageName[];
}

/** Add the options every bus-using command takes. */
export function commonOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON config file (values below override it; environment overrides the file)')
    .addOption(new Option('--bus <kind>', 'message bus').choices(['embedded', 'kafka']))
    .option('--data-dir <dir>', 'data directory (default .swe-stream)')
    .option('--clickhouse-url <url>', 'ClickHouse server HTTP URL (default: embedded chDB under the data dir)')
    .option('--partitions <n>', 'partitions per topic when topics are created');
}


/** What `run` and `worker` take from their `--source` URIs before anything starts. */
export interface SourcePlan {
  /** the URIs with credentials removed: what sources, cursors, records, logs and summaries see */
  uris: string[];
  /** local repositories `git:` sources name (absolute): the only paths the mirror cache may clone */
  localPaths: string[];
  /** GITHUB_TOKEN for github.com, plus userinfo split off `git:` URLs; handed to git per command */
  credentials: GitCredentials;
}

/**
 * Split credentials off `git:` source URLs (`git:https://user:token@host/o/r.git` → `git:https://host/o/r.git`
 * and an in-memory credential for that URL) and list the local paths `git:` sources name. Only cli/ sees a
 * credential-bearing URI; a token never reaches a record, a cursor key, a mirror's config or a log.
 */
export function planSources(uris: readonly string[], env: NodeJS.ProcessEnv = process.env): SourcePlan {
  const credentials = GitCredentials.fromEnv(env);
  const localPaths: string[] = [];
  const clean = uris.map((uri) => {
    if (!uri.startsWith('git:')) return uri;
    const rest = uri.slice(4);
    const q = rest.indexOf('?');
    const location = q === -1 ? rest : rest.slice(0, q);
    const query = q === -1 ? '' : rest.slice(q);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !location.startsWith('file://')) {
      const split = splitUrlCredentials(location);
      if (split.username !== undefined || split.password !== undefined) credentials.add(split.url, split.username ?? '', split.password ?? '');
      return `git:${split.url}${query}`;
    }
    if (!/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.test(location)) localPaths.push(resolve(location.startsWith('file://') ? new URL(location).pathname : location));
    return uri;
  });
  return { uris: clean, localPaths, credentials };
}
