/**
 * Where the bus's services are when nothing is configured: the ports infra/ starts them on. One place, read by
 * the Kafka transport, the registry serde and the configuration's defaults (cli/config.ts), and free of their
 * client libraries so that loading the configuration does not load kafkajs.
 */

/** Kafka bootstrap brokers, `host:port` (127.0.0.1, never `localhost`: Node may resolve it to ::1). */
export const DEFAULT_BROKERS: readonly string[] = Object.freeze(['127.0.0.1:9092']);

/** Schema registry base URL: Apicurio's Confluent-compatible API (infra/registry.sh). */
export const DEFAULT_REGISTRY_URL = 'http://127.0.0.1:8081/apis/ccompat/v7';
