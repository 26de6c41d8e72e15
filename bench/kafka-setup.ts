/**
 * Kafka side of the benchmarks: a transport on the broker (SWE_STREAM_KAFKA_BROKERS, default
 * 127.0.0.1:9092) and the registry serde (SWE_STREAM_REGISTRY_URL), with the benchmark's own topics deleted
 * first so every run starts from empty topics. Only `bench.*` topics are ever deleted: the pipeline's topics
 * (stage.outcomes above all) may hold a real run's records on the same broker.
 */
import { Kafka, logLevel } from 'kafkajs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaTransport, defaultBrokers } from '../streams/transports/kafka.js';
import { RegistrySerde, defaultRegistryUrl } from '../streams/serde-registry.js';
import type { Transport } from '../streams/transport.js';
import type { Serde } from '../streams/serde.js';
import type { TopicCatalog } from '../streams/topics.js';

/**
 * @param topics base topics of the benchmark; their retry/dlq companions are deleted too.
 * @param catalog record types of the benchmark's topics, for the serde
 */
export async function openKafkaBench(topics: string[], catalog: TopicCatalog): Promise<{ t: Transport; serde: Serde }> {
  const brokers = defaultBrokers();
  const admin = new Kafka({ brokers, clientId: 'swe-stream-bench', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  const drop = [...topics, ...topics.flatMap((t) => [`${t}.dlq`, `${t}.retry.filter`])].filter((t) => existing.has(t));
  if (drop.length) await admin.deleteTopics({ topics: drop, timeout: 30_000 });
  // Deletion is asynchronous on the broker: wait until the names are gone before they are created again.
  for (let i = 0; i < 100; i++) {
    const now = new Set(await admin.listTopics());
    if (!drop.some((t) => now.has(t))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await admin.disconnect();
  const t = new KafkaTransport({ brokers });
  return { t, serde: new RegistrySerde({ url: defaultRegistryUrl(), autoRegisterSchemas: true, catalog }) };
}
