/**
 * Serde: record values ↔ bytes, per topic, by the topic's record type (streams/topics.ts).
 * Embedded: plain Avro binary plus a `swe-schema` header carrying the writer schema's fingerprint
 * (SHA-256 of the Avro parsing canonical form), resolved against schemas/ and schemas/history/.
 * Kafka: Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro binary) through a
 * Confluent-compatible schema registry, subject naming TOPIC (`<topic>-value`) — streams/serde-registry.ts.
 */
import type { Headers } from './transport.js';

export interface Serde {
  /** @throws SerdeError (retriable=false) when the value does not match the topic's schema */
  encode(topic: string, value: unknown): Promise<{ value: Buffer; headers?: Headers }>;
  /** @throws SerdeError (retriable=false) when the bytes do not decode: the runtime dead-letters the record */
  decode(topic: string, value: Buffer, headers: Headers): Promise<unknown>;
}

export class SerdeError extends Error {
  constructor(message: string, readonly retriable: boolean, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'SerdeError';
  }
}
