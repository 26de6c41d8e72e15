/**
 * The topic catalog and the topology: which record type each topic carries and which stage reads and
 * writes which topic (ARCHITECTURE.md §1). Retry topics carry the original bytes of their base topic;
 * dead-letter topics carry DeadLetter records.
 */
import type { RecordTypeName } from '../schemas/index.js';

/** Main topics and their record types. */
export const TOPICS = {
  'pr.events': 'PullRequestEvent',
  'pr.candidates': 'PrCandidate',
  'env.ready': 'EnvironmentReady',
  'tests.ready': 'TestsReady',
  'tasks.verified': 'TaskVerified',
  'tasks.stated': 'TaskStated',
  trajectories: 'Trajectory',
  'stage.outcomes': 'StageOutcome',
} as const satisfies Record<string, RecordTypeName>;
export type TopicName = keyof typeof TOPICS;

/** The six stages in pipeline order. */
export const STAGE_NAMES = ['filter', 'env-build', 'test-create', 'verify', 'statement', 'distill'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** Which topic each stage consumes and produces (Kafka Streams-style named topology). */
export const TOPOLOGY: Record<StageName, { input: TopicName; output: TopicName }> = {
  filter: { input: 'pr.events', output: 'pr.candidates' },
  'env-build': { input: 'pr.candidates', output: 'env.ready' },
  'test-create': { input: 'env.ready', output: 'tests.ready' },
  verify: { input: 'tests.ready', output: 'tasks.verified' },
  statement: { input: 'tasks.verified', output: 'tasks.stated' },
  distill: { input: 'tasks.stated', output: 'trajectories' },
};

/** Due-time retry topic of a stage's input (one per stage, so one stage's retries never re-run another's). */
export const retryTopic = (stage: StageName): string => `${TOPOLOGY[stage].input}.retry.${stage}`;
/** Dead-letter topic of a stage's input. */
export const dlqTopic = (stage: StageName): string => `${TOPOLOGY[stage].input}.dlq`;

const extraTopics = new Map<string, RecordTypeName>();

/** Declare an extra topic and its record type (benchmarks, tests, custom topologies). */
export function registerTopic(name: string, type: RecordTypeName): void {
  extraTopics.set(name, type);
}

/** Record type carried by any topic name, including retry and dead-letter topics. @throws Error for an unknown topic. */
export function recordTypeOf(topic: string): RecordTypeName {
  if (topic.endsWith('.dlq')) return 'DeadLetter';
  const base = topic.replace(/\.retry\.[a-z-]+$/, '');
  const t = (TOPICS as Record<string, RecordTypeName>)[base] ?? extraTopics.get(base);
  if (!t) throw new Error(`unknown topic ${topic}`);
  return t;
}

/** Topics the analytics sink consumes (each with its own `.dlq` for records it cannot decode). */
export const SINK_TOPICS = ['stage.outcomes', 'tasks.verified', 'tasks.stated', 'trajectories'] as const;

/** Every topic the full pipeline uses. */
export function allTopics(): string[] {
  const out = new Set<string>(Object.keys(TOPICS));
  for (const s of STAGE_NAMES) {
    out.add(retryTopic(s));
    out.add(dlqTopic(s));
  }
  for (const t of SINK_TOPICS) out.add(`${t}.dlq`);
  return [...out];
}
