/**
 * The `swe-stream` command. Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage
 * (reported before anything starts), 130 interrupted before the pipeline could stop cleanly.
 *
 *   swe-stream run --source URI … [--until-idle]     all stages in one process (embedded by default)
 *   swe-stream worker --stage NAME --bus kafka        one stage as one consumer-group member
 *   swe-stream status [--json]                        end offsets per topic; committed offsets and lag per group
 *   swe-stream doctor                                 every part a run needs, and how to fix what is missing
 *   swe-stream schemas register                       the deploy step: the topics' Avro schemas into the registry
 *   swe-stream report | export | query | evaluate     analytics, the dataset, grading predictions
 */
import { Command, CommanderError } from 'commander';
import { log, redact } from '../streams/log.js';
import { registerRun } from './commands/run.js';
import { registerStatus } from './commands/status.js';
import { registerDoctor } from './commands/doctor.js';
import { registerExtra } from './commands/extra.js';
import { registerSchemasCommand } from './commands/schemas.js';

/** A reader that stopped early (`swe-stream query … | head`) closed the pipe: the output is over, not the program's work. */
const isEpipe = (e: unknown): boolean => (e as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
process.stdout.on('error', (e) => {
  if (isEpipe(e)) process.exit(0);
  process.stderr.write(`swe-stream: cannot write output: ${e.message}\n`);
  process.exit(1);
});

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
registerSchemasCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  if (isEpipe(e) || isEpipe((e as Error).cause)) process.exit(0);
  const err = e as Error & { retriable?: boolean };
  // Messages may carry a URL with a password (a registry or ClickHouse URL): never printed as given.
  log.error({ err: err.message, name: err.name }, 'swe-stream failed');
  process.stderr.write(`swe-stream: ${redact(err.message)}\n`);
  process.exit(1);
}
