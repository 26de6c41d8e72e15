/**
 * The Kafka transport's produce rides out a bus that does not answer (bench/soak: a broker restart made every
 * produce fail after kafkajs' ~6 s client retries, and the filter stage and the source runner died with it):
 * the batch is sent again with backoff until `outageBudgetMs`, records queued meanwhile go after it, a refused
 * record is not retried; commits are held the same way. The kafkajs producer and consumer are replaced by
 * scripted ones; the clock is vitest's.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { KafkaTransport } from '../../../streams/transports/kafka.js';
import { TransportError } from '../../../streams/transport.js';

/** What kafkajs throws once its client-level retries against a stopped broker are used up. */
const refusedConnection = () => Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false });

/** What the consumer's commitOffsets throws meanwhile: kafkajs' outer retrier bails out with the connection error wrapped. */
const wrappedRefusedConnection = () => {
  const inner = refusedConnection();
  return Object.assign(new Error(inner.message), { name: 'KafkaJSNonRetriableError', retriable: false, originalError: inner });
};

/** A transport whose producer fails the first `failures` requests with `error`, then acknowledges; `sent` lists the topics of each acknowledged request. */
function scripted(failures: number, error: () => Error, opts: { outageBudgetMs?: number } = {}) {
  const t = new KafkaTransport({ brokers: ['127.0.0.1:1'], outageBudgetMs: opts.outageBudgetMs });
  const sent: string[][] = [];
  let calls = 0;
  const inner = t as unknown as { connecting: Promise<void>; producer: { sendBatch(b: { topicMessages: Array<{ topic: string }> }): Promise<void> } };
  inner.connecting = Promise.resolve();
  inner.producer = {
    sendBatch: async (b) => {
      if (++calls <= failures) throw error();
      sent.push(b.topicMessages.map((m) => m.topic));
    },
  };
  return { t, sent, calls: () => calls };
}

const rec = (topic: string) => ({ topic, key: 'k', value: Buffer.from('v') });

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Kafka produce during a broker outage', () => {
  it('sends a batch again until the broker is back, then the records queued meanwhile', async () => {
    const { t, sent, calls } = scripted(12, refusedConnection); // ~43 s of failures: a broker restart
    let first = false;
    let second = false;
    void t.produce([rec('a')]).then(() => (first = true));
    await vi.advanceTimersByTimeAsync(5_000);
    void t.produce([rec('b')]).then(() => (second = true));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(first).toBe(false); // still held, not failed
    await vi.advanceTimersByTimeAsync(30_000);
    expect([first, second]).toEqual([true, true]);
    expect(calls()).toBe(14);
    expect(sent).toEqual([['a'], ['b']]);
  });

  it('gives up with a retriable error once the outage outlasts the budget', async () => {
    const { t, calls } = scripted(Infinity, refusedConnection, { outageBudgetMs: 20_000 });
    const p = t.produce([rec('a')]);
    const settled = p.then(() => undefined, (e: unknown) => e);
    await vi.advanceTimersByTimeAsync(19_000);
    expect(calls()).toBeGreaterThan(5);
    await vi.advanceTimersByTimeAsync(10_000);
    const err = (await settled) as TransportError;
    expect(err).toBeInstanceOf(TransportError);
    expect(err.retriable).toBe(true);
    expect(err.message).toMatch(/ECONNREFUSED.*did not answer for 2\d s/);
  });

  it('does not send again what the broker refused', async () => {
    const tooLarge = () => Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE', retriable: false });
    const { t, calls } = scripted(Infinity, tooLarge);
    const err = await t.produce([rec('a')]).then(() => undefined, (e: unknown) => e as TransportError);
    expect(err?.refused).toBe(true);
    expect(calls()).toBe(1);
  });

  it('holds commits while the broker is away and sends them once it is back', async () => {
    const t = new KafkaTransport({ brokers: ['127.0.0.1:1'], outageBudgetMs: 60_000 });
    const member = t.consumer({ groupId: 'g', topics: ['pr.events'] });
    const committed: string[] = [];
    let calls = 0;
    Object.assign(member as object, {
      running: true,
      assigned: new Map([['pr.events\u00000', { topic: 'pr.events', partition: 0 }]]),
      consumer: {
        commitOffsets: async (offsets: Array<{ offset: string }>) => {
          if (++calls <= 10) throw wrappedRefusedConnection();
          committed.push(...offsets.map((o) => o.offset));
        },
      },
    });
    let ok: boolean | undefined;
    void member.commit({ topic: 'pr.events', partition: 0 }, '5').then((r) => (ok = r));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ok).toBeUndefined(); // held, not failed
    void member.commit({ topic: 'pr.events', partition: 0 }, '7');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(ok).toBe(true);
    expect(committed).toEqual(['7']); // coalesced: the highest offset once the broker answers
  });

  it('holds commits while kafkajs restarts a crashed consumer, until it has joined again', async () => {
    const t = new KafkaTransport({ brokers: ['127.0.0.1:1'] });
    const member = t.consumer({ groupId: 'g', topics: ['pr.events'] });
    const committed: string[] = [];
    let restarting = true;
    const tp = { topic: 'pr.events', partition: 0 };
    Object.assign(member as object, {
      running: true,
      assigned: new Map([['pr.events\u00000', tp]]),
      consumer: {
        commitOffsets: async (offsets: Array<{ offset: string }>) => {
          if (restarting) throw Object.assign(new Error('Consumer group was not initialized, consumer#run must be called first'), { name: 'KafkaJSNonRetriableError', retriable: false });
          committed.push(...offsets.map((o) => o.offset));
        },
      },
    });
    let ok: boolean | undefined;
    void member.commit(tp, '5').then((r) => (ok = r));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ok).toBeUndefined();
    restarting = false;
    (member as unknown as { onJoin(a: Record<string, number[]>): void }).onJoin({ 'pr.events': [0] }); // kafkajs' GROUP_JOIN after the restart
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ok).toBe(true);
    expect(committed).toEqual(['5']);
  });
});
