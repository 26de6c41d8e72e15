/** Reading a whole topic without a consumer group (CLI commands, tests). */
import type { Transport } from './transport.js';
import type { Serde } from './serde.js';

/**
 * Every record of a topic, decoded (all partitions, from the earliest offset). `opts.key`, when given, keeps
 * only records whose key it accepts, tested before decoding: a shared topic can hold records of other runs whose
 * schema ids the registry no longer knows (an in-memory registry restarted over a broker that kept its log).
 * @throws SerdeError when a kept record cannot be decoded
 */
export async function readTopic<T>(transport: Transport, serde: Serde, topic: string, opts: { key?: (key: string | null) => boolean } = {}): Promise<T[]> {
  const out: T[] = [];
  for (const p of await transport.topicOffsets(topic)) {
    let from = BigInt(p.low);
    while (from < BigInt(p.high)) {
      const recs = await transport.read(topic, p.partition, from.toString(), 1000);
      if (recs.length === 0) break;
      for (const r of recs) if (r.value && (!opts.key || opts.key(r.key ?? null))) out.push((await serde.decode(topic, r.value, r.headers)) as T);
      from = BigInt(recs[recs.length - 1]!.offset) + 1n;
    }
  }
  return out;
}

