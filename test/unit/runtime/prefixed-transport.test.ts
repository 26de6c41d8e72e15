/**
 * Two pipelines with different prefixes on ONE embedded log (streams/transports/prefixed.ts): each stage
 * runtime reads, writes, commits and keeps store state only under its own prefix, sees logical names only, and
 * a store write tied to its input (`origin`) commits with that input's completion under the physical topic.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { PrefixedTransport } from '../../../streams/transports/prefixed.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import { StageRuntime } from '../../../streams/runtime.js';
import { readTopic } from '../../../streams/read.js';
import { accept } from '../../../streams/types.js';
import type { Stage } from '../../../streams/stage.js';
import type { KeyedStore } from '../../../streams/store.js';
import type { PullRequestEvent, StageOutcome } from '../../../schemas/types.gen.js';
import { prCatalog } from '../../../operators/pr/topology.js';
import { prEvent } from '../../helpers/records.js';
import { loadConfig, ConfigError } from '../../../cli/config.js';

const catalog = prCatalog();
catalog.register('rt.out', 'PullRequestEvent'); // the test's stage passes events through
const serde = new EmbeddedSerde({ catalog });
const TOPICS = { input: 'pr.events', output: 'rt.out', outcomes: 'stage.outcomes' };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A pass-through stage that remembers each PR in a store, tied to its input. */
function remembering(store: KeyedStore): Stage<PullRequestEvent, PullRequestEvent> {
  return {
    name: 'filter',
    handle: async (env) => {
      await store.put(env.value.pr_id, env.origin.topic, { origin: env.origin });
      return accept(env.value);
    },
  };
}

async function produceEvents(t: PrefixedTransport, numbers: number[]): Promise<void> {
  await t.ensureTopics(['pr.events', 'rt.out', 'stage.outcomes', 'pr.events.retry.filter', 'pr.events.dlq'].map((name) => ({ name, partitions: 2 })));
  const records = [];
  for (const n of numbers) {
    const enc = await serde.encode('pr.events', prEvent(n));
    records.push({ topic: 'pr.events', key: `acme/widgets#${n}`, value: enc.value, headers: enc.headers });
  }
  await t.produce(records);
}

async function committed(t: PrefixedTransport): Promise<number> {
  return (await t.groupOffsets('swe-stream.filter', ['pr.events'])).reduce((s, r) => s + Number(r.offset), 0);
}

describe('PrefixedTransport', () => {
  it('keeps two pipelines on one log apart: topics, groups, offsets and stores', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prefixed-'));
    dirs.push(dir);
    const log = new EmbeddedTransport({ path: join(dir, 'log.db') });
    const a = new PrefixedTransport(log, 'soak-a.');
    const b = new PrefixedTransport(log, 'soak-b.');
    await produceEvents(a, [1, 2, 3]);
    await produceEvents(b, [4, 5]);
    const stores = { a: await a.openStore('filter.patch-seen'), b: await b.openStore('filter.patch-seen') };
    const rts = [
      new StageRuntime({ stage: remembering(stores.a), transport: a, serde, concurrency: 4, topics: TOPICS }),
      new StageRuntime({ stage: remembering(stores.b), transport: b, serde, concurrency: 4, topics: TOPICS }),
    ];
    for (const rt of rts) await rt.start();
    for (let i = 0; i < 500 && ((await committed(a)) < 3 || (await committed(b)) < 2); i++) await new Promise((r) => setTimeout(r, 10));
    for (const rt of rts) await rt.stop();

    const outcomesA = await readTopic<StageOutcome>(a, serde, 'stage.outcomes');
    const outcomesB = await readTopic<StageOutcome>(b, serde, 'stage.outcomes');
    expect(outcomesA.map((o) => o.kind)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(outcomesA.map((o) => o.key).sort()).toEqual(['acme/widgets#1', 'acme/widgets#2', 'acme/widgets#3']);
    expect(outcomesB.map((o) => o.key).sort()).toEqual(['acme/widgets#4', 'acme/widgets#5']);
    expect(new Set(outcomesA.map((o) => o.input_topic))).toEqual(new Set(['pr.events'])); // logical names inside
    expect((await readTopic<PullRequestEvent>(a, serde, 'rt.out')).map((e) => e.number).sort()).toEqual([1, 2, 3]);
    // The log itself holds physical names only.
    expect((await log.topicOffsets('soak-a.pr.events')).reduce((s, p) => s + Number(p.high), 0)).toBe(3);
    expect(log.listTopics().map((t) => t.name).filter((n) => !n.startsWith('soak-'))).toEqual([]);
    expect(await a.listGroups()).toEqual(['swe-stream.filter']);
    expect((await log.listGroups()).sort()).toEqual(['soak-a.swe-stream.filter', 'soak-b.swe-stream.filter']);
    // Stores: each prefix sees its own writes, made with the input's completion (origin mapped to the physical topic).
    expect(await stores.a.get('acme/widgets#1')).toBe('pr.events');
    expect(await stores.a.get('acme/widgets#4')).toBeNull();
    expect(await stores.b.get('acme/widgets#4')).toBe('pr.events');
    expect(stores.a.namespace).toBe('filter.patch-seen');
    await log.close();
  });

  it('refuses a prefix that cannot be part of a topic or store name', () => {
    const log = {} as EmbeddedTransport;
    expect(() => new PrefixedTransport(log, 'Bad Prefix')).toThrow(RangeError);
    expect(() => new PrefixedTransport(log, '')).toThrow(RangeError);
  });

  it('is configured by kafka.topicPrefix or SWE_STREAM_KAFKA_PREFIX, checked before anything starts', () => {
    expect(loadConfig({ env: { SWE_STREAM_KAFKA_PREFIX: 'soak-1.' } }).kafka.topicPrefix).toBe('soak-1.');
    expect(loadConfig({ env: { SWE_STREAM_KAFKA_BROKERS: 'h:1' } }).kafka).toMatchObject({ brokers: ['h:1'] });
    expect(loadConfig({ env: {} }).kafka.topicPrefix).toBeUndefined();
    expect(() => loadConfig({ env: { SWE_STREAM_KAFKA_PREFIX: 'Soak 1' } })).toThrow(ConfigError);
  });
});
