/**
 * The stage runtime on the real Kafka broker and the real schema registry (started by infra/test.sh):
 * a rebalance in the middle loses and duplicates nothing at the sink; a handler longer than the session
 * timeout causes no rebalance; a poison record lands in the dead-letter topic with its origin; an output over
 * the record limit (checked by the runtime, or refused by the broker itself) is that record's `failed` outcome
 * and a dead letter while the stage goes on.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaTransport } from '../../../streams/transports/kafka.js';
import { RegistrySerde } from '../../../streams/serde-registry.js';
import { StageRuntime } from '../../../streams/runtime.js';
import { prCatalog } from '../../../operators/pr/topology.js';
import type { Stage } from '../../../streams/stage.js';
import { accept, reject } from '../../../streams/types.js';
import type { PullRequestEvent, StageOutcome, DeadLetter } from '../../../schemas/types.gen.js';
import { waitFor } from '../../helpers/wait.js';
import { readTopic } from '../../../streams/read.js';
import { prEvent } from '../../helpers/records.js';

const brokers = (process.env.SWE_STREAM_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const registry = process.env.SWE_STREAM_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';

let t: KafkaTransport;
const catalog = prCatalog();
const serde = new RegistrySerde({ url: registry, autoRegisterSchemas: true, catalog });

/** Fresh topics per test, so runs never see each other's records. */
async function topics(partitions: number) {
  const id = randomUUID().slice(0, 8);
  const input = `rt-${id}.in`;
  const output = `rt-${id}.out`;
  for (const n of [input, output]) catalog.register(n, 'PullRequestEvent');
  const all = [input, output, `${input}.retry.filter`, `${input}.dlq`, 'stage.outcomes'];
  await t.ensureTopics(all.map((name) => ({ name, partitions })));
  return { input, output, id };
}

/** A topic's records (decoded), keeping those whose key passes `filter`. */
async function readTopicOf<T>(topic: string, filter: (key: string | null) => boolean = () => true): Promise<T[]> {
  const all = await readTopic<T & { key?: string | null; pr_id?: string }>(t, serde, topic);
  return all.filter((r) => filter(r.key ?? r.pr_id ?? null));
}

async function produceEvents(topic: string, prefix: string, n: number) {
  const recs = [];
  for (let i = 1; i <= n; i++) {
    const ev = prEvent(i, { pr_id: `${prefix}/repo#${i}`, repo: `${prefix}/repo` });
    recs.push({ topic, key: ev.pr_id, ...(await serde.encode(topic, ev)) });
  }
  await t.produce(recs);
}

beforeAll(async () => {
  t = new KafkaTransport({ brokers });
});
afterAll(async () => {
  await t?.close();
});

describe('stage runtime on Kafka', () => {
  it('loses and duplicates nothing across a rebalance between two group members', async () => {
    const { input, output, id } = await topics(4);
    const N = 300;
    await produceEvents(input, id, N);
    const calls = new Map<string, number>();
    const mkStage = (): Stage<PullRequestEvent, PullRequestEvent> => ({
      name: 'filter',
      async handle(env) {
        calls.set(env.key, (calls.get(env.key) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 50)); // stands for real work, so the rebalance lands mid-stream; not synchronisation
        return env.value.merged ? accept(env.value) : reject('not-merged');
      },
    });
    const group = `g-${id}`;
    const a = new StageRuntime({ stage: mkStage(), transport: t, serde, concurrency: 2, groupId: group, topics: { input, output, outcomes: 'stage.outcomes' } });
    await a.start();
    await waitFor(() => a.counts.accepted + a.counts.rejected >= 30, 'member A to process 30 records', 60_000);
    const b = new StageRuntime({ stage: mkStage(), transport: t, serde, concurrency: 2, groupId: group, topics: { input, output, outcomes: 'stage.outcomes' } });
    await b.start();
    await waitFor(() => a.counts.revoked > 0, 'the rebalance to revoke partitions from A', 60_000);
    await waitFor(async () => {
      const c = await t.groupOffsets(group, [input]);
      const ends = await t.topicOffsets(input);
      return ends.every((e) => c.find((x) => x.partition === e.partition)?.offset === e.high);
    }, 'every input offset committed', 120_000);
    await Promise.all([a.stop(), b.stop()]);
    expect(b.counts.accepted + b.counts.rejected).toBeGreaterThan(0);
    const mine = (k: string | null) => !!k && k.startsWith(`${id}/`);
    const outcomes = await readTopicOf<StageOutcome>('stage.outcomes', mine);
    // At-least-once on Kafka: a redelivered record may produce its outcome twice, always with the same id;
    // the sink keys rows by outcome_id, so what the sink holds is the set of distinct ids.
    const distinct = new Map(outcomes.map((o) => [o.outcome_id, o]));
    expect(distinct.size).toBe(N);
    expect(new Set([...distinct.values()].map((o) => o.key)).size).toBe(N);
    const accepted = [...distinct.values()].filter((o) => o.kind === 'accepted').length;
    expect(accepted).toBe(N / 2);
    const outs = await readTopicOf<PullRequestEvent>(output, mine);
    expect(new Set(outs.map((o) => o.pr_id)).size).toBe(N / 2);
  });

  it('runs a handler longer than the session timeout without a rebalance', async () => {
    const { input, output, id } = await topics(1);
    await produceEvents(input, id, 3);
    let calls = 0;
    const stage: Stage<PullRequestEvent, PullRequestEvent> = {
      name: 'filter',
      async handle(env) {
        calls++;
        if (env.value.number === 1) await new Promise((r) => setTimeout(r, 9_000)); // > the 6 s session timeout
        return reject('no-tests');
      },
    };
    const rt = new StageRuntime({ stage, transport: t, serde, groupId: `g-${id}`, topics: { input, output, outcomes: 'stage.outcomes' }, sessionTimeoutMs: 6_000 });
    await rt.start();
    await waitFor(() => rt.counts.rejected === 3, 'three outcomes', 60_000);
    await rt.stop();
    expect(calls).toBe(3);
    expect(rt.counts.revoked).toBe(0);
  });

  it('dead-letters a poison record with its origin and goes on', async () => {
    const { input, output, id } = await topics(1);
    await t.produce([{ topic: input, key: `${id}/poison`, value: Buffer.from('definitely not confluent avro') }]);
    await produceEvents(input, id, 2);
    const stage: Stage<PullRequestEvent, PullRequestEvent> = { name: 'filter', handle: async () => reject('no-tests') };
    const rt = new StageRuntime({ stage, transport: t, serde, groupId: `g-${id}`, topics: { input, output, outcomes: 'stage.outcomes' } });
    await rt.start();
    await waitFor(() => rt.counts.rejected === 2 && rt.counts.deadLettered === 1, 'two outcomes and one dead letter', 60_000);
    await rt.stop();
    const dlq = await readTopicOf<DeadLetter>(`${input}.dlq`);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ stage: 'filter', key: `${id}/poison`, original_topic: input, original_partition: 0, original_offset: '0', reason: 'decode-error' });
    expect(dlq[0]!.value!.toString()).toBe('definitely not confluent avro');
  });

  /** A stage that blows one PR (number 2) up to `bytes` of body and passes the others through. */
  const bloating = (bytes: number): Stage<PullRequestEvent, PullRequestEvent> => ({
    name: 'filter',
    handle: async (env) => accept(env.value.number === 2 ? { ...env.value, body: 'x'.repeat(bytes) } : env.value),
  });

  async function expectDeadLettered(id: string, input: string, output: string, reason: string) {
    const mine = (k: string | null) => !!k && k.startsWith(`${id}/`);
    const outcomes = await readTopicOf<StageOutcome>('stage.outcomes', mine);
    const failed = [...new Map(outcomes.filter((o) => o.kind === 'failed').map((o) => [o.outcome_id, o])).values()];
    expect(failed.map((o) => [o.key, o.reason])).toEqual([[`${id}/repo#2`, reason]]);
    expect(new Set(outcomes.filter((o) => o.kind === 'accepted').map((o) => o.key))).toEqual(new Set([1, 3, 4].map((n) => `${id}/repo#${n}`)));
    const dlq = await readTopicOf<DeadLetter>(`${input}.dlq`, mine);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ stage: 'filter', key: `${id}/repo#2`, original_topic: input, reason });
    const original = await t.read(input, 0, dlq[0]!.original_offset, 1);
    expect(dlq[0]!.value!.equals(original[0]!.value!)).toBe(true); // the input's bytes, whole
    // At-least-once: after a refused batch its other records are written one by one, maybe a second time.
    const outs = await readTopicOf<PullRequestEvent>(output, mine);
    expect([...new Set(outs.map((o) => o.number))].sort()).toEqual([1, 3, 4]);
  }

  it('dead-letters an output over the record limit and goes on', async () => {
    const { input, output, id } = await topics(1);
    await produceEvents(input, id, 4);
    const rt = new StageRuntime({ stage: bloating(1_500_000), transport: t, serde, groupId: `g-${id}`, topics: { input, output, outcomes: 'stage.outcomes' } });
    await rt.start();
    await waitFor(() => rt.counts.accepted === 3 && rt.counts.deadLettered === 1, 'three accepted and one dead letter', 60_000);
    await waitFor(async () => (await t.groupOffsets(`g-${id}`, [input]))[0]?.offset === '4', 'the input committed', 60_000);
    await rt.stop();
    expect(rt.error).toBeUndefined();
    expect(rt.counts).toMatchObject({ accepted: 3, failed: 1, deadLettered: 1 });
    await expectDeadLettered(id, input, output, 'record-too-large');
  });

  it('dead-letters an output the broker refuses (MESSAGE_TOO_LARGE) and goes on', async () => {
    const { input, output, id } = await topics(1);
    await produceEvents(input, id, 4);
    // A transport that believes in a larger limit than the broker's 1 MiB: the broker itself refuses.
    const lax = new KafkaTransport({ brokers, maxRecordBytes: 10_000_000 });
    try {
      const rt = new StageRuntime({ stage: bloating(1_500_000), transport: lax, serde, groupId: `g-${id}`, topics: { input, output, outcomes: 'stage.outcomes' } });
      await rt.start();
      await waitFor(() => rt.counts.accepted === 3 && rt.counts.deadLettered === 1, 'three accepted and one dead letter', 60_000);
      await waitFor(async () => (await lax.groupOffsets(`g-${id}`, [input]))[0]?.offset === '4', 'the input committed', 60_000);
      await rt.stop();
      expect(rt.error).toBeUndefined();
    } finally {
      await lax.close();
    }
    await expectDeadLettered(id, input, output, 'record-refused');
  });

  it('waits for the metadata of a topic created after the first read', async () => {
    const topic = `rt-${randomUUID().slice(0, 8)}.late`;
    // kafkajs' own retries off, so what is tested is the transport's wait for metadata (30 s by default).
    const reader = new KafkaTransport({ brokers, retries: 0 });
    try {
      const offsets = reader.topicOffsets(topic);
      // Created by another client seconds later, as a worker does while a status or test process polls.
      await new Promise((r) => setTimeout(r, 3000)); // the stimulus (a late topic), not synchronisation
      await t.ensureTopics([{ name: topic, partitions: 2 }]);
      expect((await offsets).map((p) => [p.partition, p.high])).toEqual([[0, '0'], [1, '0']]);
    } finally {
      await reader.close();
    }
  });
});
