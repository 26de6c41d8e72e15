/**
 * Registers the analytics and dataset commands (report, export, query — connectors/analytics) and
 * `evaluate` (grading predictions on our tasks, SWE-bench style), each with the common options.
 */
import type { Command } from 'commander';
import { register as registerReport } from './report.js';
import { register as registerExport } from './export.js';
import { register as registerQuery } from './query.js';
import type { AnalyticsContext } from '../../connectors/analytics/context.js';
import type { Config } from '../config.js';
import { commonOptions, configFrom, type CommonFlags } from '../common.js';
import { openBus } from '../bus.js';
import { Deps } from '../compose.js';
import { evaluatePredictionsFile } from '../../operators/harness/evaluate.js';
import type { TaskStated } from '../../schemas/types.gen.js';
import { readTopic } from '../../streams/read.js';


/** The analytics target of a resolved configuration. */
function analyticsContextFrom(cfg: Config): AnalyticsContext {
  return { dataDir: cfg.dataDir, clickhouseUrl: cfg.clickhouse.url, database: cfg.clickhouse.database };
}

export function registerExtra(program: Command): void {
  for (const reg of [registerReport, registerExport, registerQuery]) {
    let cmd: Command | undefined;
    reg(program, async () => analyticsContextFrom(configFrom(cmd!.opts() as CommonFlags)));
    cmd = program.commands[program.commands.length - 1]!;
    commonOptions(cmd);
  }

  commonOptions(
    program
      .command('evaluate')
      .description("grade a model's patches on our tasks (SWE-bench predictions: JSONL or JSON of {instance_id, model_patch}); prints a JSON report")
      .requiredOption('--predictions <file>', 'predictions file')
      .option('--concurrency <n>', 'instances graded at once', '1'),
  ).action(async (flags: CommonFlags & { predictions: string; concurrency: string }) => {
    const cfg = configFrom(flags);
    const { transport, serde } = await openBus(cfg);
    let rows: TaskStated[];
    try {
      rows = await readTopic<TaskStated>(transport, serde, 'tasks.stated');
    } finally {
      await transport.close();
    }
    const report = await evaluatePredictionsFile(flags.predictions, rows, { sandboxes: new Deps(cfg).sandboxes, concurrency: Number(flags.concurrency) });
    process.stdout.write(JSON.stringify(report) + '\n');
  });
}
