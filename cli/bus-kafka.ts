/**
 * Kafka bus: kafkajs transport + Confluent-wire-format serde through the schema registry. The schemas
 * are registered at deploy (`swe-stream schemas register`, cli/commands/schemas.ts); with
 * `registry.autoRegister` (development and tests: SWE_STREAM_REGISTRY_AUTO_REGISTER=1) they are registered
 * (compatibility FULL_TRANSITIVE) at start instead.
 */
import { join } from 'node:path';
import type { Config } from './config.js';
import { KafkaTransport } from '../streams/transports/kafka.js';
import { RegistrySerde, registerSchemas } from '../streams/serde-registry.js';
import { allTopics, prCatalog } from '../operators/pr/topology.js';
import type { Bus } from './bus.js';
import { PrefixedTransport } from '../streams/transports/prefixed.js';

/** @throws TransportError naming the brokers, or an Error naming the registry URL, when either does not answer. */
export async function openKafkaBus(cfg: Config): Promise<Bus> {
  const transport = new KafkaTransport({
    brokers: cfg.kafka.brokers,
    clientId: cfg.kafka.clientId,
    replicationFactor: cfg.kafka.replicationFactor,
  });
  if (cfg.registry.autoRegister) {
    try {
      await registerSchemas(cfg.registry.url, allTopics(), { catalog: prCatalog() });
    } catch (e) {
      await transport.close();
      throw new Error(`schema registry at ${cfg.registry.url} did not accept the schemas: ${(e as Error).message}`, { cause: e });
    }
  }
  return { transport: cfg.kafka.topicPrefix ? new PrefixedTransport(transport, cfg.kafka.topicPrefix) : transport, serde: new RegistrySerde({ url: cfg.registry.url, catalog: prCatalog() }) };
}
