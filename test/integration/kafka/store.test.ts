/**
 * Keyed stores on Kafka (streams/store.ts): a compacted topic per namespace, read back by every process that
 * opens it. Two transports stand for two worker machines: they agree on first-writer-wins claims, see each
 * other's puts and deletes, and a store opened later reads the state from the bus alone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import kafkajs from 'kafkajs';
import { KafkaTransport } from '../../../streams/transports/kafka.js';
import { storeTopic } from '../../../streams/store.js';
import { BROKERS, uniq, waitFor } from './helpers.js';

const opened: KafkaTransport[] = [];
const transport = () => {
  const t = new KafkaTransport({ brokers: BROKERS });
  opened.push(t);
  return t;
};
afterAll(async () => {
  await Promise.all(opened.map((t) => t.close()));
});

describe('keyed store on Kafka', () => {
  it('creates a compacted topic and reads its state back in a new process', async () => {
    const ns = uniq('test.store');
    const a = await transport().openStore(ns);
    await a.put('k1', 'v1');
    await a.put('k2', 'v2');
    await a.put('k1', 'v1b');
    await a.delete('k2');
    expect(await a.get('k1')).toBe('v1b');
    expect(await a.get('k2')).toBeNull();

    const b = await transport().openStore(ns); // another machine: nothing but the bus
    expect(await b.get('k1')).toBe('v1b');
    expect(await b.get('k2')).toBeNull();

    const admin = new kafkajs.Kafka({ brokers: BROKERS, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    const cfg = await admin.describeConfigs({ resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: storeTopic(ns), configNames: ['cleanup.policy'] }], includeSynonyms: false });
    await admin.disconnect();
    expect(cfg.resources[0]!.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue).toBe('compact');
  });

  it('two processes agree on every first-writer-wins claim, even when they race', async () => {
    const ns = uniq('test.claims');
    const [a, b] = await Promise.all([transport().openStore(ns), transport().openStore(ns)]);
    const keys = Array.from({ length: 20 }, (_, i) => `hash-${i}`);
    // Both claim every key at once with their own value: exactly one value wins per key, and both say which.
    const [ra, rb] = await Promise.all([Promise.all(keys.map((k) => a.putIfAbsent(k, `a:${k}`))), Promise.all(keys.map((k) => b.putIfAbsent(k, `b:${k}`)))]);
    expect(ra).toEqual(rb);
    for (let i = 0; i < keys.length; i++) expect([`a:${keys[i]}`, `b:${keys[i]}`]).toContain(ra[i]);
    // A replay of the winner's claim is idempotent; a late claimant loses.
    expect(await a.putIfAbsent(keys[0]!, ra[0]!)).toBe(ra[0]);
    expect(await b.putIfAbsent(keys[0]!, 'late')).toBe(ra[0]);
    // A third process reading the topic from the start sees the same winners (the losers re-asserted them last).
    const c = await transport().openStore(ns);
    for (let i = 0; i < keys.length; i++) expect(await c.get(keys[i]!)).toBe(ra[i]);
  });

  it('a put by one process reaches a store another process has open', async () => {
    const ns = uniq('test.tail');
    const [a, b] = await Promise.all([transport().openStore(ns), transport().openStore(ns)]);
    await a.put('cursor', '42');
    await waitFor(async () => (await b.get('cursor')) === '42', 'the put to reach the other process');
  });

  it('produce(records, state) writes the state to the store after the records', async () => {
    const t = transport();
    const topic = uniq('t.state');
    await t.ensureTopics([{ name: topic, partitions: 1 }]);
    const ns = uniq('test.cursors');
    await t.produce([{ topic, key: 'k', value: Buffer.from('v') }], [{ namespace: ns, key: 'gharchive:x', value: 'line-7' }]);
    expect(await (await t.openStore(ns)).get('gharchive:x')).toBe('line-7');
    expect(await (await transport().openStore(ns)).get('gharchive:x')).toBe('line-7');
  });

  it('refuses a namespace that is not a plain name', async () => {
    await expect(transport().openStore('../etc')).rejects.toBeInstanceOf(RangeError);
  });
});
