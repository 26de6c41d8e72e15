/**
 * Topologies as values (Kafka Streams' named topology): which record type each topic carries and which stage
 * reads and writes which topic. The engine knows no pipeline of its own — the composition root hands one in
 * (the PR pipeline's is operators/pr/topology.ts). Derived topics follow one rule everywhere: a stage's
 * due-time retries go to `<input>.retry.<stage>` (carrying the original bytes of `<input>`), dead letters to
 * `<input>.dlq` (DeadLetter records).
 */
import type { RecordTypeName } from '../schemas/index.js';

/** The topics one stage reads and writes. */
export interface StageWiring {
  input: string;
  output: string;
}

/** A pipeline: topics with their record types, stage wiring, the outcomes topic and the topics a sink reads. */
export interface Topology {
  /** Main topics → record type (retry and dead-letter topics are derived). */
  topics: Readonly<Record<string, RecordTypeName>>;
  /** Stage name → the topics it reads and writes; every name in `topics`. */
  stages: Readonly<Record<string, StageWiring>>;
  /** Where every stage writes one StageOutcome per input. */
  outcomes: string;
  /** Topics the analytics sink consumes (each with its own `.dlq`). */
  sinkTopics: readonly string[];
}

/** Due-time retry topic of a stage (one per stage, so one stage's retries never re-run another's). */
export const retryTopicOf = (input: string, stage: string): string => `${input}.retry.${stage}`;
/** Dead-letter topic of an input topic. */
export const dlqTopicOf = (input: string): string => `${input}.dlq`;

/** Every topic a topology uses: main topics, each stage's retry and dead-letter topics, the sink's dead-letter topics. */
export function topicsOf(t: Topology): string[] {
  const out = new Set<string>(Object.keys(t.topics));
  for (const [stage, w] of Object.entries(t.stages)) {
    out.add(retryTopicOf(w.input, stage));
    out.add(dlqTopicOf(w.input));
  }
  for (const s of t.sinkTopics) out.add(dlqTopicOf(s));
  return [...out];
}

/**
 * Topic name → record type for serdes: the topology's main topics, anything added with {@link register}
 * (benchmarks, tests), `<topic>.dlq` → DeadLetter and `<topic>.retry.<stage>` → the type of `<topic>`.
 */
export class TopicCatalog {
  private readonly types: Map<string, RecordTypeName>;

  constructor(topics: Readonly<Record<string, RecordTypeName>>) {
    this.types = new Map(Object.entries(topics));
  }

  /** Declare one more topic (a custom pipeline, a benchmark's or test's own topics). */
  register(topic: string, type: RecordTypeName): void {
    this.types.set(topic, type);
  }

  /** @throws Error naming the topic when it is not in the catalog */
  recordTypeOf(topic: string): RecordTypeName {
    if (topic.endsWith('.dlq')) return 'DeadLetter';
    const t = this.types.get(topic.replace(/\.retry\.[a-z0-9-]+$/, ''));
    if (!t) throw new Error(`unknown topic ${topic}`);
    return t;
  }
}
