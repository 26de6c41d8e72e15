/**
 * Registers the analytics and dataset commands (report, export, query — connectors/analytics), the living
 * dataset's (release, revalidate, images — cli/commands/living.ts) and `evaluate` (grading predictions on
 * our tasks or on a release, SWE-bench style), each with the common options.
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
import { evaluatePredictionsFile, parsePredictions, type EvalRow } from '../../operators/harness/evaluate.js';
import { isRegistryRef, pullImage } from '../../operators/harness/task-image.js';
import { readReleaseRows } from '../../connectors/dataset/rows.js';
import { DockerSandboxFactory } from '../../operators/sandbox/docker.js';
import { registerLiving } from './living.js';
import { readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'evaluate' });

/**
 * Pull the registry images of the rows that have a prediction (by image_url). A row whose pull fails
 * keeps its reference: its evaluation then reports `error` with the engine's message.
 */
async function pullReleaseImages(rows: EvalRow[], docker: Docker, predictionsFile: string): Promise<EvalRow[]> {
  let wanted: Set<string>;
  try {
    wanted = new Set(parsePredictions(readFileSync(predictionsFile, 'utf8')).map((p) => p.instance_id));
  } catch {
    return rows; // the evaluation itself reports the unreadable predictions file
  }
  for (const r of rows) {
    if (!wanted.has(r.instance_id) || !isRegistryRef(r.verification.image_url)) continue;
    await pullImage(docker, r.verification.image_url).catch((e: unknown) => log.error({ instance: r.instance_id, err: (e as Error).message }, 'pull failed'));
  }
  return rows;
}
import type { TaskStated } from '../../schemas/types.gen.js';
import { readTopic } from '../../streams/read.js';


/** The analytics target of a resolved configuration. */
function analyticsContextFrom(cfg: Config): AnalyticsContext {
  return { dataDir: cfg.dataDir, clickhouseUrl: cfg.clickhouse.url, database: cfg.clickhouse.database };
}

export function registerExtra(program: Command): void {
  registerLiving(program);
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
      .option('--dataset <release>', 'grade on a release (its directory or swe-bench.jsonl) instead of this pipeline\'s tasks; needs only Docker and the registry in image_url')
      .option('--concurrency <n>', 'instances graded at once', '1'),
  ).action(async (flags: CommonFlags & { predictions: string; dataset?: string; concurrency: string }) => {
    const cfg = configFrom(flags);
    const deps = new Deps(cfg);
    let rows: (TaskStated | EvalRow)[];
    if (flags.dataset) {
      rows = await pullReleaseImages(readReleaseRows(flags.dataset), (deps.sandboxes as DockerSandboxFactory).docker, flags.predictions);
    } else {
      const { transport, serde } = await openBus(cfg);
      try {
        rows = await readTopic<TaskStated>(transport, serde, 'tasks.stated');
      } finally {
        await transport.close();
      }
    }
    const report = await evaluatePredictionsFile(flags.predictions, rows, { sandboxes: deps.sandboxes, concurrency: Number(flags.concurrency), timeoutMs: cfg.sandbox.testTimeoutMs });
    process.stdout.write(JSON.stringify(report) + '\n');
  });
}
