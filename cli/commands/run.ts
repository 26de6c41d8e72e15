/**
 * `swe-stream run` (all stages in one process) and `swe-stream worker` (one stage, the sink or the sources
 * as one consumer-group member — start several, on one machine or many, to scale out on Kafka).
 */
import type { Command } from 'commander';
import { Pipeline } from '../../streams/pipeline.js';
import { openSource } from '../../connectors/sources/index.js';
import { PR_EVENTS_TARGET, type Source } from '../../connectors/sources/types.js';
import type { Config } from '../config.js';
import { STAGE_NAMES, type StageName } from '../../streams/topics.js';
import { log } from '../../streams/log.js';
import { openBus } from '../bus.js';
import { Deps, buildStage } from '../compose.js';
import { openSink } from '../sink.js';
import { metricsObserver, startLiveOutput } from '../live.js';
import { commonOptions, configFrom, parseStages, type CommonFlags } from '../common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function openSources(cfg: Config, deps: Deps): Source[] {
  try {
    return cfg.sources.map((uri) =>
      openSource(uri, { dataDir: cfg.dataDir, mirrors: deps.mirrors, githubToken: process.env.GITHUB_TOKEN, webhookSecret: process.env.SWE_STREAM_WEBHOOK_SECRET }),
    );
  } catch (e) {
    process.stderr.write(`swe-stream: ${(e as Error).message}\n`);
    process.exit(2);
  }
}

interface RunFlags extends CommonFlags {
  source: string[];
  stages?: string;
  untilIdle?: boolean;
  sink?: boolean;
}

/** Run a pipeline until idle (or forever), stopping cleanly on SIGINT/SIGTERM. Prints a funnel summary. */
async function runPipeline(cfg: Config, stageNames: StageName[], opts: { untilIdle: boolean; sink: boolean }): Promise<void> {
  const bus = await openBus(cfg, { exclusive: true });
  const deps = new Deps(cfg);
  const stages = [];
  for (const name of stageNames) stages.push({ stage: await buildStage(name, deps), concurrency: cfg.concurrency[name] });
  const sources = openSources(cfg, deps);
  const sink = opts.sink ? await openSink(cfg) : undefined;
  const pipeline = new Pipeline({
    transport: bus.transport,
    serde: bus.serde,
    partitions: cfg.partitions,
    stages,
    sources,
    sourceTarget: PR_EVENTS_TARGET,
    follow: !opts.untilIdle,
    sink,
    maxAttempts: cfg.maxAttempts,
    observer: metricsObserver(),
  });
  const live = await startLiveOutput(cfg, pipeline);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: intake closed, finishing in-flight work');
    await pipeline.stop();
    await live.stop();
    await bus.transport.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  const started = Date.now();
  await pipeline.start();
  pipeline.watchLag();
  if (!opts.untilIdle) {
    // Runs until a signal — or until a source fails (a webhook that cannot bind its port, a missing archive
    // file): intake is then dead, and running on would look healthy while taking nothing in.
    void pipeline.sourcesSettled().then(async () => {
      const err = pipeline.error() as Error | undefined;
      if (!err || stopping) return;
      stopping = true;
      process.stderr.write(`swe-stream: ${err.message}\n`);
      await pipeline.stop();
      await live.stop();
      await bus.transport.close();
      process.exit(1);
    });
    return;
  }
  try {
    await pipeline.waitIdle();
  } finally {
    stopping = true;
    await pipeline.stop();
    await live.stop();
    await bus.transport.close();
  }
  const summary = {
    seconds: Math.round((Date.now() - started) / 100) / 10,
    sources: pipeline.sourceStats,
    stages: pipeline.runtimes.map((r) => ({ stage: r.name, ...r.counts })),
    sink: pipeline.sink?.counts,
  };
  // Docker and HTTP keep-alive agents would hold the process open: the job is done, leave.
  process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(0));
}

export function registerRun(program: Command): void {
  commonOptions(
    program
      .command('run')
      .description('run the pipeline: sources → filter → env-build → test-create → verify → statement → distill, plus the analytics sink')
      .option('--source <uri>', 'event source (repeatable): gharchive:<file|url|glob>, github:<owner>/<repo>, webhook:<host>:<port>, git:<path|url>[?prs=&since=&limit=]', collect, [])
      .option('--stages <list>', `comma-separated subset of ${STAGE_NAMES.join(',')}`)
      .option('--until-idle', 'exit when the sources are exhausted and every topic is drained')
      .option('--no-sink', 'do not run the ClickHouse sink in this process')
      .option('--metrics-port <port>', 'serve Prometheus metrics on this port'),
  ).action(async (flags: RunFlags) => {
    const cfg = configFrom(flags, { sources: flags.source.length ? flags.source : undefined, stages: parseStages(flags.stages) });
    if (cfg.sources.length === 0 && flags.untilIdle) log.warn('no --source given: only records already in the topics are processed');
    await runPipeline(cfg, cfg.stages, { untilIdle: !!flags.untilIdle, sink: flags.sink !== false });
  });

  commonOptions(
    program
      .command('worker')
      .description('run one stage (or the sink, or the sources) as one consumer-group member; start several to scale out')
      .requiredOption('--stage <name>', `one of ${STAGE_NAMES.join(', ')}, sink, sources`)
      .option('--source <uri>', 'event source for --stage sources (repeatable)', collect, [])
      .option('--concurrency <n>', 'records processed at once by this member')
      .option('--until-idle', 'exit when this member has nothing left to do')
      .option('--metrics-port <port>', 'serve Prometheus metrics on this port'),
  ).action(async (flags: RunFlags & { stage: string; concurrency?: string }) => {
    const isStage = (STAGE_NAMES as readonly string[]).includes(flags.stage);
    if (!isStage && flags.stage !== 'sink' && flags.stage !== 'sources') {
      process.stderr.write(`swe-stream: unknown --stage ${flags.stage}; one of ${STAGE_NAMES.join(', ')}, sink, sources\n`);
      process.exit(2);
    }
    const extra: Record<string, unknown> = { sources: flags.stage === 'sources' ? flags.source : [] };
    if (isStage && flags.concurrency) extra.concurrency = { [flags.stage]: Number(flags.concurrency) };
    const cfg = configFrom(flags, extra);
    await runPipeline(cfg, isStage ? [flags.stage as StageName] : [], { untilIdle: !!flags.untilIdle, sink: flags.stage === 'sink' });
  });
}
