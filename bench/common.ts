/** What the stream benchmarks share: replaying real PR events at volume, and waiting on committed offsets. */
import type { Transport, ProduceRecord } from '../streams/transport.js';
import type { Serde } from '../streams/serde.js';
import type { PullRequestEvent } from '../schemas/types.gen.js';

/**
 * The i-th of `events` repeated without end: repetition r renumbers PR k as k + r × stride, so PR ids stay
 * distinct and `number` (an Avro int) stays below 2^31 for up to `max` records (a stride of 1,000,000
 * overflowed after ~787,000 records).
 * @throws Error when `max` records would overflow the PR numbers
 */
export function repeater(events: PullRequestEvent[], max: number): (i: number) => PullRequestEvent {
  const stride = Math.max(...events.map((e) => e.number)) + 1;
  if (Math.ceil(max / events.length) * stride >= 2 ** 31) throw new Error(`--records ${max} would overflow PR numbers (Avro int)`);
  return (i) => {
    const base = events[i % events.length]!;
    const rep = Math.floor(i / events.length);
    const number = base.number + rep * stride;
    return rep === 0 ? base : { ...base, number, pr_id: `${base.repo}#${number}` };
  };
}

/** Produce `n` PullRequestEvent records into `topic` by repeating `events` ({@link repeater}), 5,000 per batch. */
export async function preloadEvents(t: Transport, serde: Serde, topic: string, events: PullRequestEvent[], n: number): Promise<void> {
  const nth = repeater(events, n);
  let batch: ProduceRecord[] = [];
  for (let i = 0; i < n; i++) {
    const ev = nth(i);
    const enc = await serde.encode(topic, ev);
    batch.push({ topic, key: ev.pr_id, value: enc.value, headers: enc.headers });
    if (batch.length === 5000) {
      await t.produce(batch);
      batch = [];
    }
  }
  if (batch.length) await t.produce(batch);
}

/** Sum over partitions of a group's committed offsets on a topic (records consumed, when the topic started empty). */
export async function committedTotal(t: Transport, group: string, topic: string): Promise<bigint> {
  let sum = 0n;
  for (const c of await t.groupOffsets(group, [topic])) sum += BigInt(c.offset);
  return sum;
}
