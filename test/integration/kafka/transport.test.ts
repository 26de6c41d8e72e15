/**
 * KafkaTransport against the real broker: topics, produce/read, a group member with pause/resume and
 * commits, a rebalance between two members (revoked partitions' completions and commits are dropped),
 * and a clear error for an unreachable broker. Keyed stores: test/integration/kafka/store.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaTransport } from '../../../streams/transports/kafka.js';
import { partitionFor, TransportError, type ConsumedRecord, type GroupConsumer, type TopicPartition } from '../../../streams/transport.js';
import { BROKERS, uniq, waitFor } from './helpers.js';

let t: KafkaTransport;

beforeAll(async () => {
  t = new KafkaTransport({ brokers: BROKERS });
  await t.connect();
});
afterAll(async () => {
  await t?.close();
});

const rec = (topic: string, key: string, text: string, partition?: number) => ({
  topic,
  key,
  value: Buffer.from(text),
  headers: { 'x-test': text },
  ...(partition === undefined ? {} : { partition }),
});
const tpStr = (tp: TopicPartition) => `${tp.topic}:${tp.partition}`;

describe('topics and produce', () => {
  it('creates topics with the configured partitions and leaves existing ones alone', async () => {
    const a = uniq('t.topics');
    await t.ensureTopics([{ name: a, partitions: 3 }]);
    expect((await t.topicOffsets(a)).map((p) => p.partition)).toEqual([0, 1, 2]);
    await t.ensureTopics([{ name: a, partitions: 5 }]); // exists: untouched
    expect(await t.topicOffsets(a)).toHaveLength(3);
  });

  it('produces by key hash (same partition as partitionFor) and reads records back with keys, headers, offsets', async () => {
    const topic = uniq('t.produce');
    await t.ensureTopics([{ name: topic, partitions: 3 }]);
    const keys = Array.from({ length: 30 }, (_, i) => `octo/repo#${i}`);
    // Many concurrent produce() calls: coalesced into few requests, all acknowledged.
    await Promise.all(keys.map((k) => t.produce([rec(topic, k, `v-${k}`)])));
    const offsets = await t.topicOffsets(topic);
    expect(offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0)).toBe(30);
    const all: ConsumedRecord[] = [];
    for (const p of offsets) all.push(...(await t.read(topic, p.partition, '0', 100)));
    expect(all).toHaveLength(30);
    for (const r of all) {
      expect(r.partition).toBe(partitionFor(r.key!, 3));
      expect(r.value!.toString()).toBe(`v-${r.key}`);
      expect(r.headers['x-test']).toBe(`v-${r.key}`);
    }
    // Offset order per partition, and a bounded range read.
    const p0 = all.filter((r) => r.partition === offsets[0]!.partition);
    expect(p0.map((r) => r.offset)).toEqual(p0.map((_, i) => String(i)));
    const part = offsets.find((p) => Number(p.high) >= 3)!;
    const range = await t.read(topic, part.partition, '1', 2);
    expect(range.map((r) => r.offset)).toEqual(['1', '2']);
    expect(await t.read(topic, part.partition, part.high, 10)).toEqual([]);
  });

  it('read() starts at the earliest available offset and rejects an unknown partition', async () => {
    const topic = uniq('t.read');
    await t.ensureTopics([{ name: topic, partitions: 1 }]);
    await t.produce(Array.from({ length: 5 }, (_, i) => rec(topic, 'k', `r${i}`)));
    const admin = t.kafka.admin();
    await admin.connect();
    await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs' deleteTopicRecords needs the metadata cached
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '2' }] });
    await admin.disconnect();
    expect(await t.topicOffsets(topic)).toEqual([{ partition: 0, low: '2', high: '5' }]);
    expect((await t.read(topic, 0, '0', 10)).map((r) => r.offset)).toEqual(['2', '3', '4']);
    await expect(t.read(topic, 3, '0', 10)).rejects.toBeInstanceOf(TransportError);
  });
});

/** A started member that records what it is told. */
async function member(topics: string[], groupId: string, onRecords?: (rs: ConsumedRecord[], c: GroupConsumer) => void) {
  const seen: ConsumedRecord[] = [];
  const assigned: TopicPartition[][] = [];
  const revoked: TopicPartition[][] = [];
  const c = t.consumer({ groupId, topics });
  await c.start({
    onRecords: (rs) => {
      seen.push(...rs);
      onRecords?.(rs, c);
    },
    onAssigned: (ps) => assigned.push(ps),
    onRevoked: (ps) => revoked.push(ps),
  });
  return { c, seen, assigned, revoked };
}

describe('consumer group member', () => {
  it('delivers records, completes outputs, commits, and resumes from the commit after a restart', async () => {
    const input = uniq('t.in');
    const output = uniq('t.out');
    const group = uniq('g.member');
    await t.ensureTopics([{ name: input, partitions: 2 }, { name: output, partitions: 1 }]);
    await t.produce(Array.from({ length: 20 }, (_, i) => rec(input, `k${i}`, `r${i}`)));

    const m = await member([input], group);
    expect(m.assigned.flat().map(tpStr).sort()).toEqual([`${input}:0`, `${input}:1`]);
    await waitFor(() => m.seen.length >= 20, '20 records');
    expect(m.seen).toHaveLength(20);

    // Complete every record (outputs to the output topic) and commit each partition's next offset.
    for (const r of m.seen) {
      expect(await m.c.complete({ input: r, outputs: [rec(output, r.key!, `out-${r.value}`)] })).toBe(true);
    }
    const next = new Map<number, string>();
    for (const r of m.seen) next.set(r.partition, String(BigInt(r.offset) + 1n));
    const results = await Promise.all([...next].map(([partition, off]) => m.c.commit({ topic: input, partition }, off)));
    expect(results.every(Boolean)).toBe(true);
    for (const [partition, off] of next) expect(await m.c.committed({ topic: input, partition })).toBe(off);
    expect((await t.groupOffsets(group, [input])).sort((a, b) => a.partition - b.partition)).toEqual(
      [...next].sort(([a], [b]) => a - b).map(([partition, offset]) => ({ topic: input, partition, offset })),
    );
    expect(await t.listGroups()).toContain(group);
    expect((await t.read(output, 0, '0', 100)).map((r) => r.value!.toString()).sort()).toEqual(m.seen.map((r) => `out-${r.value}`).sort());
    expect(await m.c.processedAbove({ topic: input, partition: 0 }, '0')).toEqual(new Set());
    await m.c.stop();
    await m.c.stop(); // idempotent
    expect(await m.c.commit({ topic: input, partition: 0 }, '1')).toBe(false); // stopped: dropped

    // A new member of the same group starts at the committed offsets: only new records arrive.
    await t.produce([rec(input, 'late', 'late')]);
    const m2 = await member([input], group);
    await waitFor(() => m2.seen.length >= 1, 'the late record');
    expect(m2.seen.map((r) => r.value!.toString())).toEqual(['late']);
    await m2.c.stop();
  });

  it('pause stops delivery of a partition while others flow; resume delivers the held records', async () => {
    const topic = uniq('t.pause');
    await t.ensureTopics([{ name: topic, partitions: 2 }]);
    const m = await member([topic], uniq('g.pause'));
    await t.produce([rec(topic, 'a', 'first-p0', 0)]);
    await waitFor(() => m.seen.length === 1, 'first record on p0');
    m.c.pause([{ topic, partition: 0 }]);
    // Produced to p0 BEFORE p1: if p0 were still fetched, its record would come in the same or an earlier fetch.
    await t.produce([rec(topic, 'a', 'held-p0', 0)]);
    await t.produce([rec(topic, 'b', 'flows-p1', 1)]);
    await waitFor(() => m.seen.some((r) => r.partition === 1), 'the p1 record');
    await waitFor(() => m.seen.filter((r) => r.partition === 1).length >= 1, 'another fetch cycle');
    expect(m.seen.map((r) => r.value!.toString())).toEqual(['first-p0', 'flows-p1']);
    m.c.resume([{ topic, partition: 0 }]);
    await waitFor(() => m.seen.length === 3, 'the held p0 record after resume');
    expect(m.seen[2]!.value!.toString()).toBe('held-p0');
    await m.c.stop();
  });

  it('rebalance: a second member joins, the first gets onRevoked, and its completions/commits for revoked partitions are dropped', async () => {
    const topic = uniq('t.rebalance');
    const out = uniq('t.rebalance-out');
    const group = uniq('g.rebalance');
    await t.ensureTopics([{ name: topic, partitions: 4 }, { name: out, partitions: 1 }]);
    await t.produce(Array.from({ length: 40 }, (_, i) => rec(topic, `key-${i}`, `v${i}`)));

    const a = await member([topic], group);
    expect(a.assigned.flat()).toHaveLength(4);
    await waitFor(() => a.seen.length >= 40, 'A reads all 40');
    // A commits offset 1 on every partition (it "processed" the first record of each).
    expect((await Promise.all([0, 1, 2, 3].map((p) => a.c.commit({ topic, partition: p }, '1'))))).toEqual([true, true, true, true]);

    const b = await member([topic], group);
    await waitFor(() => a.revoked.length > 0, "A's onRevoked", 60_000);
    const revoked = a.revoked.flat();
    const bOwns = b.assigned.flat();
    expect(revoked.map(tpStr).sort()).toEqual(bOwns.map(tpStr).sort());
    expect(bOwns.length).toBe(2);
    const kept = [0, 1, 2, 3].filter((p) => !revoked.some((r) => r.partition === p));

    // A's work on a revoked partition: completion and commit are dropped; nothing reaches the broker.
    const stale = a.seen.find((r) => r.partition === revoked[0]!.partition)!;
    expect(await a.c.complete({ input: stale, outputs: [rec(out, 'stale', 'must-not-appear')] })).toBe(false);
    expect(await a.c.commit({ topic, partition: revoked[0]!.partition }, '10')).toBe(false);
    // B reads its partitions from the committed offset 1 and commits; A's kept partitions still commit.
    await waitFor(() => b.seen.length > 0 && bOwns.every((tp) => b.seen.some((r) => r.partition === tp.partition)), 'B reads its partitions');
    expect(b.seen.every((r) => BigInt(r.offset) >= 1n)).toBe(true);
    expect(await a.c.commit({ topic, partition: kept[0]! }, '2')).toBe(true);
    expect(await b.c.commit(bOwns[0]!, '3')).toBe(true);
    const offsets = new Map((await t.groupOffsets(group, [topic])).map((o) => [o.partition, o.offset]));
    expect(offsets.get(revoked[0]!.partition)).toBe(bOwns[0]!.partition === revoked[0]!.partition ? '3' : '1');
    expect(offsets.get(kept[0]!)).toBe('2');
    expect(await t.topicOffsets(out)).toEqual([{ partition: 0, low: '0', high: '0' }]);

    // B leaves: A gets its partitions back (onAssigned again) and can commit them.
    await b.c.stop();
    await waitFor(() => a.assigned.length >= 2, "A's second onAssigned", 60_000);
    expect(a.assigned.at(-1)!.map(tpStr).sort()).toEqual(revoked.map(tpStr).sort());
    expect(await a.c.commit(revoked[0]!, '4')).toBe(true);
    await a.c.stop();
  });
});

describe('unreachable broker', () => {
  it('fails quickly with a TransportError naming the brokers tried', async () => {
    const dead = new KafkaTransport({ brokers: ['127.0.0.1:1'] });
    const started = Date.now();
    const err = await dead.ensureTopics([{ name: 'x', partitions: 1 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).message).toContain('127.0.0.1:1');
    expect((err as TransportError).retriable).toBe(true);
    expect(Date.now() - started).toBeLessThan(15_000);
    const err2 = await dead.consumer({ groupId: 'g', topics: ['x'] }).start({ onRecords: () => undefined }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(TransportError);
    expect((err2 as TransportError).message).toContain('127.0.0.1:1');
    await dead.close();
  }, 40_000);
});
