/**
 * The PR pipeline's topology (ARCHITECTURE.md §1) as a value the composition root hands to the engine:
 * topics and their record types, the six stages in pipeline order with the topic each reads and writes, the
 * outcomes topic and the analytics sink's topics. It lives with the PR knowledge shared by the stages'
 * composition (cli/) and the connectors (sources write `pr.events`, the sink and the analytics read the rest);
 * the engine (streams/) knows none of these names.
 */
import type { RecordTypeName } from '../../schemas/index.js';
import type * as R from '../../schemas/types.gen.js';
import type { Stage } from '../../streams/stage.js';
import { TopicCatalog, topicsOf, type Topology } from '../../streams/topics.js';

/** Record type (TypeScript) carried by each main topic. */
export interface PrTopicTypes {
  'pr.events': R.PullRequestEvent;
  'pr.candidates': R.PrCandidate;
  'env.ready': R.EnvironmentReady;
  'tests.ready': R.TestsReady;
  'tasks.verified': R.TaskVerified;
  'tasks.stated': R.TaskStated;
  trajectories: R.Trajectory;
  'stage.outcomes': R.StageOutcome;
}
export type PrTopic = keyof PrTopicTypes;

/** Record type (Avro schema name) carried by each main topic. */
export const PR_TOPICS = {
  'pr.events': 'PullRequestEvent',
  'pr.candidates': 'PrCandidate',
  'env.ready': 'EnvironmentReady',
  'tests.ready': 'TestsReady',
  'tasks.verified': 'TaskVerified',
  'tasks.stated': 'TaskStated',
  trajectories: 'Trajectory',
  'stage.outcomes': 'StageOutcome',
} as const satisfies Record<PrTopic, RecordTypeName>;

/** The six stages in pipeline order. */
export const STAGE_NAMES = ['filter', 'env-build', 'test-create', 'verify', 'statement', 'distill'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** Which topic each stage consumes and produces. */
export const PR_STAGES = {
  filter: { input: 'pr.events', output: 'pr.candidates' },
  'env-build': { input: 'pr.candidates', output: 'env.ready' },
  'test-create': { input: 'env.ready', output: 'tests.ready' },
  verify: { input: 'tests.ready', output: 'tasks.verified' },
  statement: { input: 'tasks.verified', output: 'tasks.stated' },
  distill: { input: 'tasks.stated', output: 'trajectories' },
} as const satisfies Record<StageName, { input: PrTopic; output: PrTopic }>;

/** The stage type a stage name must have: its input and output record types, read off its topics. */
export type PrStage<S extends StageName> = Stage<PrTopicTypes[(typeof PR_STAGES)[S]['input']], PrTopicTypes[(typeof PR_STAGES)[S]['output']]>;

/** Topics the analytics sink consumes. */
export const SINK_TOPICS = ['stage.outcomes', 'tasks.verified', 'tasks.stated', 'trajectories', 'pr.events'] as const satisfies readonly PrTopic[];

/** The PR pipeline as one value. */
export const PR_TOPOLOGY: Topology = { topics: PR_TOPICS, stages: PR_STAGES, outcomes: 'stage.outcomes', sinkTopics: SINK_TOPICS };

/** Every topic of the PR pipeline, derived ones included. */
export const allTopics = (): string[] => topicsOf(PR_TOPOLOGY);

/** A fresh catalog of the PR topics for a serde (mutable: tests and benchmarks register their own topics on it). */
export const prCatalog = (): TopicCatalog => new TopicCatalog(PR_TOPICS);
