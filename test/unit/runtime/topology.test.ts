/**
 * The topology is a value handed to the engine (issue 13): the PR pipeline's topology chains its six stages
 * topic to topic, derived topics follow one rule, the catalog resolves retry and dead-letter topics, the
 * pipeline refuses a stage its topology does not name, and a stage typed against the wrong topics does not
 * compile (checked by `tsc`, which type-checks this file).
 */
import { describe, it, expect } from 'vitest';
import { PR_STAGES, PR_TOPICS, PR_TOPOLOGY, STAGE_NAMES, allTopics, prCatalog, type PrStage } from '../../../operators/pr/topology.js';
import { TopicCatalog, topicsOf, type Topology } from '../../../streams/topics.js';
import { Pipeline } from '../../../streams/pipeline.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import type { Stage } from '../../../streams/stage.js';
import { reject } from '../../../streams/types.js';
import type { PrCandidate, PullRequestEvent } from '../../../schemas/types.gen.js';
import { MemoryTransport } from '../../helpers/memory-transport.js';

describe('topology as a value', () => {
  it('chains the six PR stages topic to topic, every topic typed', () => {
    for (let i = 1; i < STAGE_NAMES.length; i++) expect(PR_STAGES[STAGE_NAMES[i]!].input).toBe(PR_STAGES[STAGE_NAMES[i - 1]!].output);
    for (const w of Object.values(PR_STAGES)) expect(Object.keys(PR_TOPICS)).toEqual(expect.arrayContaining([w.input, w.output]));
    expect(allTopics()).toEqual(expect.arrayContaining(['pr.events.retry.filter', 'pr.events.dlq', 'tasks.stated.retry.distill', 'stage.outcomes.dlq']));
  });

  it('derives retry and dead-letter topics of any topology, and resolves their record types', () => {
    const t: Topology = { topics: { a: 'PullRequestEvent', b: 'PrCandidate', o: 'StageOutcome' }, stages: { s1: { input: 'a', output: 'b' } }, outcomes: 'o', sinkTopics: ['o'] };
    expect(topicsOf(t).sort()).toEqual(['a', 'a.dlq', 'a.retry.s1', 'b', 'o', 'o.dlq']);
    const c = new TopicCatalog(t.topics);
    expect([c.recordTypeOf('a.retry.s1'), c.recordTypeOf('b.dlq'), c.recordTypeOf('b')]).toEqual(['PullRequestEvent', 'DeadLetter', 'PrCandidate']);
    expect(() => c.recordTypeOf('pr.events')).toThrow(/unknown topic pr.events/);
    expect(prCatalog().recordTypeOf('pr.events.retry.filter')).toBe('PullRequestEvent');
  });

  it('the pipeline refuses a stage its topology does not name', () => {
    const stage = { name: 'lint', handle: async () => reject('x') } as Stage<unknown, unknown>;
    const make = () =>
      new Pipeline({ transport: new MemoryTransport(), serde: new EmbeddedSerde({ catalog: prCatalog() }), partitions: 1, topology: PR_TOPOLOGY, stages: [{ stage, concurrency: 1 }], sources: [], sourceTarget: { topic: 'pr.events', dlqTopic: 'pr.events.dlq', keyOf: () => '' }, follow: false });
    expect(make).toThrow(/stage lint is not in the topology \(filter, env-build/);
  });

  it('types a stage by its topics', () => {
    const ok: PrStage<'filter'> = { name: 'filter', handle: async () => reject('not-merged') } satisfies Stage<PullRequestEvent, PrCandidate>;
    const wrongInput: Stage<PrCandidate, PrCandidate> = { name: 'filter', handle: async (env) => ({ kind: 'accepted', value: env.value }) };
    // @ts-expect-error a filter reads PullRequestEvent records from pr.events, not PrCandidate
    const bad: PrStage<'filter'> = { name: 'filter', handle: async (env: { value: PrCandidate }) => wrongInput.handle(env as never) };
    expect([ok.name, bad.name]).toEqual(['filter', 'filter']);
  });
});
