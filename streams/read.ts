/** Reading a whole topic without a consumer group (CLI commands, tests). */
import type { Transport } from './transport.js';
import type { Serde } from './serde.js';

/** Every record of a topic, decoded (all partitions, from the earliest offset). */
export async function readTopic<T>(transport: Transport, serde: Serde, topic: string): Promise<T[]> {
  const out: T[] = [];
  for (const p of await transport.topicOffsets(topic)) {
    let from = BigInt(p.low);
    while (from < BigInt(p.high)) {
      const recs = await transport.read(topic, p.partition, from.toString(), 1000);
      if (recs.length === 0) break;
      for (const r of recs) if (r.value) out.push((await serde.decode(topic, r.value, r.headers)) as T);
      from = BigInt(recs[recs.length - 1]!.offset) + 1n;
    }
  }
  return out;
}

