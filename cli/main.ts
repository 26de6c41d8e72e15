/**
 * The `swe-stream` command. Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage
 * (reported before anything starts), 130 interrupted before the pipeline could stop cleanly.
 *
 *   swe-stream run --source URI … [--until-idle]     all stages in one process (embedded by default)
 *   swe-stream worker --stage NAME --bus kafka        one stage as one consumer-group member
 *   swe-stream status [--json]                        end offsets per topic; committed offsets and lag per group
 *   swe-stream doctor                                 every part a run needs, and how to fix what is missing
 *   swe-stream report | export | query | evaluate     analytics, the dataset, grading predictions
 */
import { Command, Option, CommanderError } from 'commander';
import { loadConfig, ConfigError, type Config } from '../streams/config.js';
import { STAGE_NAMES, type StageName } from '../streams/topics.js';
import { log } from '../streams/log.js';
import { registerRun } from './commands/run.js';
import { registerStatus } from './commands/status.js';
import { registerDoctor } from './commands/doctor.js';
import { registerExtra } from './commands/extra.js';

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

const program = new Command();
program
  .name('swe-stream')
  .description('Turns GitHub pull-request events into verified, executable software-engineering task instances.')
  .showHelpAfterError()
  .exitOverride();

registerRun(program);
registerStatus(program);
registerDoctor(program);
registerExtra(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  const err = e as Error & { retriable?: boolean };
  log.error({ err: err.message, name: err.name }, 'swe-stream failed');
  process.stderr.write(`swe-stream: ${err.message}\n`);
  process.exit(1);
}
