/**
 * One process running any subset of the pipeline: source runners, stage runtimes and the sink runner on
 * one transport, with idle detection for `--until-idle` and a graceful stop. Knows stages only as
 * {@link Stage} objects and topics only through the {@link Topology} the composition root (cli/) hands in.
 */
import type { Transport } from './transport.js';
import type { Serde } from './serde.js';
import type { Stage } from './stage.js';
import type { Source, SourceTarget } from './source.js';
import { StageRuntime, type RuntimeObserver, type StageRuntimeOptions } from './runtime.js';
import { SinkRunner, type Sink } from './sink-runner.js';
import { runSource, type SourceStats } from './source-runner.js';
import { topicsOf, type Topology } from './topics.js';
import { logger } from './log.js';

export interface PipelineOptions {
  transport: Transport;
  serde: Serde;
  partitions: number;
  /** Topics, their record types and each stage's input and output; every stage below must be in it. */
  topology: Topology;
  /** Stages with their concurrency (each typed against its topics by the composition root). */
  /** Stages with their concurrency and, optionally, their admission by free machine resources. */
  stages: Array<{ stage: Stage<unknown, unknown>; concurrency: number; admission?: StageRuntimeOptions<unknown, unknown>['admission'] }>;
  sources: Source<any>[];
  /** Where the sources write (topic, dead-letter topic, key of an event). */
  sourceTarget: SourceTarget<any>;
  /** Keep sources open (webhook, polling) instead of stopping when exhausted. */
  follow: boolean;
  sink?: Sink;
  maxAttempts?: number;
  backoffMs?: (attempt: number) => number;
  observer?: RuntimeObserver;
}

const log = logger({ component: 'pipeline' });

/** Which runner stopped the pipeline, and why. */
export interface RunnerFailure {
  /** `stage <name>`, `sink` or `source <uri>` */
  runner: string;
  error: Error;
}

/** A running pipeline. */
export class Pipeline {
  readonly runtimes: StageRuntime<any, any>[];
  readonly sink?: SinkRunner;
  readonly sourceStats: SourceStats[] = [];
  private readonly ac = new AbortController();
  private sourcesDone!: Promise<void>;
  private sourceError?: unknown;
  private onFatal!: (f: RunnerFailure) => void;
  /**
   * Resolves with the first fatal error of any runner (a stage runtime, the sink runner, a source); never
   * rejects. A process that runs until a signal must watch it and exit non-zero: a dead runner never
   * processes again, and a supervisor only restarts a process that exits.
   */
  readonly fatal: Promise<RunnerFailure> = new Promise((r) => (this.onFatal = r));

  constructor(private readonly o: PipelineOptions) {
    this.runtimes = o.stages.map((s) => {
      const wiring = o.topology.stages[s.stage.name];
      if (!wiring) throw new Error(`stage ${s.stage.name} is not in the topology (${Object.keys(o.topology.stages).join(', ')})`);
      const topics = { ...wiring, outcomes: o.topology.outcomes };
      return new StageRuntime({ stage: s.stage, transport: o.transport, serde: o.serde, concurrency: s.concurrency, admission: s.admission, maxAttempts: o.maxAttempts, backoffMs: o.backoffMs, observer: o.observer, topics });
    });
    if (o.sink) this.sink = new SinkRunner({ transport: o.transport, serde: o.serde, sink: o.sink, topics: o.topology.sinkTopics });
    for (const rt of this.runtimes) void rt.died.then((error) => this.onFatal({ runner: `stage ${rt.name}`, error }));
    void this.sink?.died.then((error) => this.onFatal({ runner: 'sink', error }));
  }

  /** Create topics, start stage members and the sink, then start the sources. */
  async start(): Promise<void> {
    await this.o.transport.ensureTopics(topicsOf(this.o.topology).map((name) => ({ name, partitions: this.o.partitions })));
    for (const rt of this.runtimes) await rt.start();
    await this.sink?.start();
    this.sourcesDone = Promise.all(
      this.o.sources.map(async (src) => {
        const st: SourceStats = { uri: src.uri, events: 0, skipped: {}, bad: {}, done: false };
        this.sourceStats.push(st);
        try {
          await runSource(src, this.o.transport, this.o.serde, { signal: this.ac.signal, follow: this.o.follow, target: this.o.sourceTarget }, st);
        } catch (e) {
          if (!this.ac.signal.aborted) {
            this.sourceError ??= e;
            log.error({ source: src.uri, err: (e as Error).message }, 'source failed');
            this.onFatal({ runner: `source ${src.uri}`, error: e instanceof Error ? e : new Error(String(e)) });
          }
        }
      }),
    ).then(() => undefined);
  }

  /** The first fatal error of a source, stage or the sink. */
  error(): unknown {
    return this.sourceError ?? this.runtimes.find((r) => r.error)?.error ?? this.sink?.error;
  }

  /**
   * True when every group's committed offsets equal the end offsets of the topics it reads and nothing is
   * in flight. Cheap on the embedded log; a few admin requests on Kafka.
   */
  async drained(): Promise<boolean> {
    let idle = true;
    for (const [name, g] of this.groups()) {
      let lag: number;
      try {
        lag = await this.lagOf(g.group, g.topics);
      } catch (e) {
        // Offsets unavailable for a moment (leader election, topic just created): not idle, ask again later.
        if ((e as { retriable?: boolean }).retriable !== true) throw e;
        log.warn({ group: g.group, err: (e as Error).message }, 'lag unavailable; checking again');
        return false;
      }
      this.o.observer?.lag?.(name, lag);
      if (g.inFlight > 0 || lag > 0) idle = false;
    }
    return idle;
  }

  private groups(): Array<[string, { group: string; topics: readonly string[]; inFlight: number }]> {
    const out: Array<[string, { group: string; topics: readonly string[]; inFlight: number }]> = this.runtimes.map((r) => [r.name, { group: r.groupId, topics: r.topics, inFlight: r.inFlight() }]);
    if (this.sink) out.push(['sink', { group: this.sink.groupId, topics: this.o.topology.sinkTopics, inFlight: this.sink.inFlight() }]);
    return out;
  }

  /** Records of `topics` not yet committed by `group` (end offset − committed offset, summed over partitions). */
  private async lagOf(group: string, topics: readonly string[]): Promise<number> {
    const committed = await this.o.transport.groupOffsets(group, [...topics]);
    let lag = 0n;
    for (const topic of topics)
      for (const p of await this.o.transport.topicOffsets(topic)) {
        const c = BigInt(committed.find((x) => x.topic === topic && x.partition === p.partition)?.offset ?? p.low);
        if (BigInt(p.high) > c) lag += BigInt(p.high) - c;
      }
    return Number(lag);
  }

  /**
   * Records not yet processed: the lag of every group this pipeline runs, summed (records), plus nothing for
   * sources (see {@link sourcesFinished}). Call before closing the transport.
   * @throws TransportError when offsets cannot be read
   */
  async remaining(): Promise<number> {
    let n = 0;
    for (const [, g] of this.groups()) n += await this.lagOf(g.group, g.topics);
    return n;
  }

  /** True when every source ran to its end (false after a stop in the middle, or in follow mode). */
  sourcesFinished(): boolean {
    return this.sourceStats.length === this.o.sources.length && this.sourceStats.every((s) => s.done);
  }

  /** Refresh the lag figures every `ms` while running (for /metrics and the progress display). */
  watchLag(ms = 5000): void {
    if (!this.o.observer?.lag) return;
    const tick = async () => {
      if (this.ac.signal.aborted) return;
      await this.drained().catch(() => undefined);
      setTimeout(() => void tick(), ms).unref();
    };
    void tick();
  }

  /**
   * Resolve when the sources are exhausted and every topic is drained (checked twice in a row, so a record
   * produced between two checks is not missed). Rejects on the first fatal error.
   */
  async waitIdle(pollMs = 200): Promise<void> {
    await this.sourcesDone;
    let stable = 0;
    for (;;) {
      const err = this.error();
      if (err) throw err;
      if (await this.drained()) {
        if (++stable >= 2) break;
      } else stable = 0;
      await this.sink?.flush();
      await new Promise((r) => setTimeout(r, pollMs));
    }
    await this.sink?.flush();
  }

  /** Stop sources, then stages (finishing or aborting in-flight work within `deadlineMs`), then the sink. */
  async stop(deadlineMs = 30_000): Promise<void> {
    this.ac.abort();
    await this.sourcesDone?.catch(() => undefined);
    await Promise.all(this.runtimes.map((r) => r.stop(deadlineMs)));
    await this.sink?.stop();
    await this.o.sink?.close();
  }
}
