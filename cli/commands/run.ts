/**
 * `swe-stream run` (all stages in one process) and `swe-stream worker` (one stage, the sink or the sources
 * as one consumer-group member — start several, on one machine or many, to scale out on Kafka).
 */
import type { Command } from 'commander';
import { Pipeline, type RunnerFailure } from '../../streams/pipeline.js';
import { openSource } from '../../connectors/sources/index.js';
import { PR_EVENTS_TARGET, type Source } from '../../connectors/sources/types.js';
import type { Config } from '../config.js';
import { PR_TOPOLOGY, STAGE_NAMES, type StageName } from '../../operators/pr/topology.js';
import { log, redact, redactValue } from '../../streams/log.js';
import { openBus } from '../bus.js';
import { Deps, buildStage } from '../compose.js';
import { openSink } from '../sink.js';
import { metricsObserver, startLiveOutput } from '../live.js';
import { commonOptions, configFrom, parseStages, planSources, type CommonFlags } from '../common.js';
import { parseDuration, scheduleRevalidation } from './living.js';
import { ResourceGate, type ResourceCost } from '../../streams/admission.js';

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

/**
 * The admission of each stage: env-build and verify share one {@link ResourceGate} (their sandboxes are what
 * loads the machine); the other stages are cheap and run at their concurrency.
 */
function admissionFor(cfg: Config): (stage: StageName) => { gate: ResourceGate; cost: ResourceCost } | undefined {
  if (!cfg.admission.enabled) return () => undefined;
  const gate = new ResourceGate({ cpus: cfg.admission.cpus, memoryBytes: cfg.admission.memoryBytes });
  return (stage) => (stage === 'env-build' || stage === 'verify' ? { gate, cost: cfg.admission.cost[stage] } : undefined);
}

interface RunFlags extends CommonFlags {
  source: string[];
  stages?: string;
  untilIdle?: boolean;
  sink?: boolean;
  revalidateEvery?: string;
}

/** How a run ended: idle (every source exhausted, every topic drained), a signal, or a runner's fatal error. */
type RunEnd = { kind: 'idle' } | { kind: 'signal'; signal: NodeJS.Signals } | { kind: 'fatal'; failure: RunnerFailure };

/** Exit status of an interrupted run, by the shell's convention 128 + signal number (SIGINT 130, SIGTERM 143). */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** The first SIGINT or SIGTERM (listened for from the call on, so a signal during start-up is not missed). */
function firstSignal(): Promise<RunEnd> {
  return new Promise((r) => {
    process.once('SIGINT', () => r({ kind: 'signal', signal: 'SIGINT' }));
    process.once('SIGTERM', () => r({ kind: 'signal', signal: 'SIGTERM' }));
  });
}

/** The first of: a signal, a runner's fatal error, and (with --until-idle) idleness. Call after `pipeline.start()`. */
function firstEnd(pipeline: Pipeline, signal: Promise<RunEnd>, untilIdle: boolean): Promise<RunEnd> {
  const ends: Array<Promise<RunEnd>> = [signal, pipeline.fatal.then((failure): RunEnd => ({ kind: 'fatal', failure }))];
  if (untilIdle) {
    const idle = pipeline.waitIdle().then(
      (): RunEnd => ({ kind: 'idle' }),
      (error: unknown): RunEnd => ({ kind: 'fatal', failure: { runner: 'idle check', error: error instanceof Error ? error : new Error(String(error)) } }),
    );
    ends.push(idle);
  }
  return Promise.race(ends);
}

/** The one stderr line of a failure: a source's error names its source already; other runners are named. */
function failureLine(f: RunnerFailure): string {
  return f.runner.startsWith('source ') ? f.error.message : `${f.runner} stopped: ${f.error.message}`;
}

/**
 * The summary line of a run (until-idle, or interrupted): what each source, stage and the sink did, and how
 * many records were left unprocessed (lag summed over the run's consumer groups; null when the bus could not
 * tell).
 */
async function summarise(pipeline: Pipeline, started: number, end: RunEnd): Promise<{ line: Record<string, unknown>; unfinished: boolean }> {
  const remaining = await pipeline.remaining().catch(() => null);
  const line: Record<string, unknown> = {
    seconds: Math.round((Date.now() - started) / 100) / 10,
    sources: pipeline.sourceStats,
    stages: pipeline.runtimes.map((r) => ({ stage: r.name, ...r.counts })),
    sink: pipeline.sink?.counts,
  };
  if (end.kind !== 'idle') Object.assign(line, { stopped: end.kind === 'signal' ? end.signal : `${end.failure.runner}: ${end.failure.error.message}`, remaining });
  return { line, unfinished: remaining !== 0 || !pipeline.sourcesFinished() };
}

/**
 * Run a pipeline until idle (or forever) and exit. Exit status: 0 when idle, or when a signal stops a follow
 * run; 1 with the cause on stderr when any runner died (in follow mode too, so a supervisor restarts the
 * worker); 130/143 when SIGINT/SIGTERM stopped an --until-idle run with records left (the summary says how many).
 */
async function runPipeline(raw: Config, stageNames: StageName[], opts: { untilIdle: boolean; sink: boolean }): Promise<never> {
  // Sources are opened first: a bad `--source` exits 2 before the data directory or the bus is touched.
  const plan = planSources(raw.sources);
  const cfg: Config = { ...raw, sources: plan.uris, mirrors: { ...raw.mirrors, localPaths: [...raw.mirrors.localPaths, ...plan.localPaths] } };
  // The bus opens after the sources are checked; stateful stages reach its stores only once it is open.
  let bus: Awaited<ReturnType<typeof openBus>> | undefined;
  const deps = new Deps(cfg, (ns) => bus!.transport.openStore(ns), { credentials: plan.credentials });
  const sources = openSources(cfg, deps);
  bus = await openBus(cfg, { exclusive: true });
  const stages = [];
  const admission = admissionFor(cfg);
  for (const name of stageNames) stages.push({ stage: await buildStage(name, deps), concurrency: cfg.concurrency[name], admission: admission(name) });
  const sink = opts.sink ? await openSink(cfg) : undefined;
  const pipeline = new Pipeline({
    transport: bus.transport,
    serde: bus.serde,
    partitions: cfg.partitions,
    topology: PR_TOPOLOGY,
    stages,
    sources,
    sourceTarget: PR_EVENTS_TARGET,
    follow: !opts.untilIdle,
    sink,
    maxAttempts: cfg.maxAttempts,
    observer: metricsObserver(),
  });
  const live = await startLiveOutput(cfg, pipeline);
  const started = Date.now();
  const signal = firstSignal();
  await pipeline.start();
  pipeline.watchLag();
  let end = await firstEnd(pipeline, signal, opts.untilIdle);
  if (end.kind === 'signal') log.info({ signal: end.signal }, 'stopping: intake closed, finishing in-flight work');
  if (end.kind === 'fatal') {
    const failure = end.failure;
    log.error({ runner: failure.runner, err: failure.error.message }, 'a runner died; stopping');
    // A broken bus can hold the graceful stop for minutes; the cause is known, so leave within a minute.
    setTimeout(() => {
      process.stderr.write(`swe-stream: ${redact(failureLine(failure))} (graceful stop timed out)\n`);
      process.exit(1);
    }, 60_000).unref();
  }
  // A runner that fails while stopping (the sink's last flush) is a failure of the run, reported like a death.
  const stopFailure = await pipeline.stop().then(
    () => undefined,
    (error: unknown): RunnerFailure => ({ runner: 'stop', error: error instanceof Error ? error : new Error(String(error)) }),
  );
  if (stopFailure && end.kind !== 'fatal') end = { kind: 'fatal', failure: stopFailure };
  await live.stop();
  const summary = opts.untilIdle ? await summarise(pipeline, started, end) : undefined;
  await bus.transport.close();
  let code = 0;
  if (end.kind === 'fatal') {
    process.stderr.write(`swe-stream: ${redact(failureLine(end.failure))}\n`);
    code = 1;
  } else if (end.kind === 'signal' && summary?.unfinished) code = SIGNAL_EXIT[end.signal] ?? 1;
  // Docker and HTTP keep-alive agents would hold the process open: the job is done, leave.
  if (!summary) process.exit(code);
  process.stdout.write(JSON.stringify(redactValue(summary.line)) + '\n', () => process.exit(code));
  return new Promise<never>(() => undefined);
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
      .option('--metrics-port <port>', 'serve Prometheus metrics on this port')
      .option('--revalidate-every <duration>', 're-validate released tasks on this schedule (e.g. 7d, 12h; needs a ClickHouse server: chDB is held by the sink)'),
  ).action(async (flags: RunFlags) => {
    const cfg = configFrom(flags, { sources: flags.source.length ? flags.source : undefined, stages: parseStages(flags.stages) });
    if (cfg.sources.length === 0 && flags.untilIdle) log.warn('no --source given: only records already in the topics are processed');
    if (flags.revalidateEvery !== undefined) {
      const every = parseDuration(flags.revalidateEvery);
      if (every === null || every <= 0) {
        process.stderr.write(`swe-stream: --revalidate-every ${JSON.stringify(flags.revalidateEvery)} is not a duration (e.g. 7d, 12h, 30m)\n`);
        process.exit(2);
      }
      if (!cfg.clickhouse.url) {
        process.stderr.write('swe-stream: --revalidate-every needs a ClickHouse server (--clickhouse-url): embedded chDB has one writer, the sink\n');
        process.exit(2);
      }
      scheduleRevalidation(cfg, every);
    }
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
