/**
 * The transport contract: topics with partitions, a producer, and consumer-group members, implemented by
 * the embedded durable log (streams/transports/embedded.ts, SQLite) and by Kafka (streams/transports/kafka.ts,
 * kafkajs). The stage runtime (streams/runtime.ts) only talks to this interface.
 *
 * Offsets are decimal strings (Kafka offsets are int64). A committed offset is, as in Kafka, the offset of
 * the NEXT record to read (low watermark + 1).
 */

import type { KeyedStore, StoreWrite } from './store.js';

/** Record headers: string → string (UTF-8). */
export type Headers = Record<string, string>;

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A record as consumed. `value` is null for a tombstone or a record whose bytes were lost. Timestamps in ms since epoch. */
export interface ConsumedRecord extends TopicPartition {
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Headers;
  timestamp: number;
}

/** A record to produce. Without `partition`, the partition is chosen by key hash (murmur2 on Kafka, same function embedded). */
export interface ProduceRecord {
  topic: string;
  key: string;
  /** null = a tombstone (compacted store topics only) */
  value: Buffer | null;
  headers?: Headers;
  partition?: number;
}

export interface TopicSpec {
  name: string;
  partitions: number;
}

/** Per-partition offsets of a topic: earliest available and end (next offset to be written). */
export interface PartitionOffsets {
  partition: number;
  low: string;
  high: string;
}

export interface ConsumerOptions {
  groupId: string;
  topics: string[];
  /** Kafka session timeout (ms); the runtime never blocks the poll loop, so the default suffices. */
  sessionTimeoutMs?: number;
  /** Max records handed over per poll (embedded). */
  maxBatch?: number;
}

/** What a consumer group member tells the runtime. All callbacks are synchronous and must return fast. */
export interface ConsumerHandlers {
  /** Records in offset order per partition. Called only for partitions not paused (a few already fetched may still arrive; the runtime buffers them). */
  onRecords(records: ConsumedRecord[]): void;
  /** Partitions newly assigned to this member. */
  onAssigned?(partitions: TopicPartition[]): void;
  /** Partitions taken away (rebalance). The runtime aborts their work; commits for them after this are dropped by the transport. */
  onRevoked?(partitions: TopicPartition[]): void;
}

/** The result of processing one input record: its output records (output topic, stage outcome, retry or dead letter). */
export interface Completion {
  input: TopicPartition & { offset: string };
  outputs: ProduceRecord[];
  /**
   * Optional commit of the input's partition (next offset to read), given by the runtime only when every
   * earlier record of the partition is already durably complete. Embedded: same transaction as the outputs;
   * Kafka: sent after the outputs are acknowledged.
   */
  commit?: string;
}

/** One member of a consumer group. */
export interface GroupConsumer {
  /** Join the group and start delivering records; resolves once running. @throws TransportError when the bus is unreachable. */
  start(handlers: ConsumerHandlers): Promise<void>;
  pause(partitions: TopicPartition[]): void;
  resume(partitions: TopicPartition[]): void;
  /**
   * Make one input's outputs durable and mark it processed.
   * Embedded: the outputs and a durable processed mark in ONE transaction (exactly-once inside the log).
   * Kafka: produce the outputs (acks=all, idempotent producer) — at-least-once; sinks dedupe by id.
   * Resolves false (nothing written) when the partition was revoked from this member.
   */
  complete(c: Completion): Promise<boolean>;
  /**
   * Optional batch form of {@link complete}, used by the runtime when present: one call (and one promise) per
   * batch instead of per record. Resolves one flag per completion, in order — false when nothing of it was
   * written because its partition was revoked (or its commit was dropped by a revocation).
   * Embedded: every output, mark and commit of the batch in ONE transaction (a commit in the batch makes the
   * marks of the offsets it covers unnecessary). Kafka: the outputs of the batch produced together (acks=all),
   * then the commits sent once they are acknowledged.
   * @throws TransportError as {@link complete} does; nothing is reported written then (the runtime retries the batch)
   */
  completeMany?(cs: Completion[]): Promise<boolean[]>;
  /**
   * Commit `offset` (the next offset to read) for a partition. The runtime only commits offsets whose
   * every earlier record's completion has resolved (the contiguous low watermark + 1).
   * Resolves false when the partition was revoked from this member.
   */
  commit(tp: TopicPartition, offset: string): Promise<boolean>;
  /**
   * Offsets above the committed offset already processed by this group (durable marks on the embedded log;
   * empty on Kafka). The runtime skips them on redelivery.
   */
  processedAbove(tp: TopicPartition, committed: string): Promise<Set<string>>;
  /** Committed offset of a partition for this group ('0' when none). */
  committed(tp: TopicPartition): Promise<string>;
  /** Leave the group. Idempotent. */
  stop(): Promise<void>;
}

/** A bus: embedded durable log or Kafka. */
export interface Transport {
  readonly kind: 'embedded' | 'kafka';
  /**
   * Largest record the bus accepts, in bytes as measured by {@link recordBytes}; absent = no limit. Kafka:
   * the broker's `message.max.bytes` (default 1,048,588) less the record batch overhead. The runtime checks its
   * outputs against it, so one oversize output is that record's `failed` outcome, not a refused batch.
   */
  readonly maxRecordBytes?: number;
  /** Create missing topics with the given partition counts (existing ones are left as they are). */
  ensureTopics(specs: TopicSpec[]): Promise<void>;
  /**
   * Durable once resolved. `state` are keyed-store writes (streams/store.ts) made durable with the records:
   * embedded, in the same transaction (a source's cursor can neither run ahead of nor lag behind its events);
   * Kafka, produced to the stores' compacted topics once the records are acknowledged (a crash in between
   * repeats events, never loses them).
   */
  produce(records: ProduceRecord[], state?: StoreWrite[]): Promise<void>;
  /**
   * The keyed store of `namespace` (streams/store.ts), opened once per transport and cached: embedded, a
   * table of the log; Kafka, the compacted topic `store.<namespace>`, read to its end before this resolves.
   * @throws RangeError for a bad namespace; TransportError when the bus cannot be reached
   */
  openStore(namespace: string): Promise<KeyedStore>;
  consumer(opts: ConsumerOptions): GroupConsumer;
  topicOffsets(topic: string): Promise<PartitionOffsets[]>;
  /** Committed offsets of a group for the given topics; partitions without a commit are absent. */
  groupOffsets(groupId: string, topics: string[]): Promise<Array<TopicPartition & { offset: string }>>;
  /** Known consumer groups (for `status`). */
  listGroups(): Promise<string[]>;
  /** Read a range of records without a group (tests, export, status). */
  read(topic: string, partition: number, fromOffset: string, max: number): Promise<ConsumedRecord[]>;
  close(): Promise<void>;
}

/**
 * Transport failure; `retriable` is true for timeouts and unreachable peers. `refused` is true when the bus
 * refused the records themselves (Kafka MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_RECORD, or a record
 * over {@link Transport.maxRecordBytes}): never retriable, and other records may still go through, so the
 * caller isolates the guilty record instead of stopping.
 */
export class TransportError extends Error {
  readonly refused: boolean;
  constructor(message: string, readonly retriable: boolean, opts?: { cause?: unknown; refused?: boolean }) {
    super(message, opts);
    this.name = 'TransportError';
    this.refused = opts?.refused === true;
  }
}

/**
 * Upper bound of a record's size inside a Kafka v2 record batch (Kafka protocol, "Record"), in bytes: value,
 * key (UTF-8: ≤ 3 bytes per UTF-16 unit), headers, plus 32 bytes for the length/attributes/timestamp/offset
 * varints and header counts. The one measure of {@link Transport.maxRecordBytes}.
 */
export function recordBytes(r: ProduceRecord): number {
  let n = 32 + (r.value?.length ?? 0) + 3 * r.key.length;
  if (r.headers) for (const k in r.headers) n += 10 + 3 * (k.length + r.headers[k]!.length);
  return n;
}

let scratch = new Uint8Array(256);

/**
 * Kafka's default partitioner (murmur2 of the key, positive, modulo partitions), so embedded and Kafka
 * place a key on the same partition. Source: Kafka `Utils.murmur2` / kafkajs `partitioners/default/murmur2`.
 */
export function partitionFor(key: string, partitions: number): number {
  // ASCII keys (the usual PR ids) are hashed from a reused scratch array: no Buffer per call.
  let length = key.length;
  let data: Uint8Array;
  let ascii = true;
  for (let i = 0; i < length; i++) {
    if (key.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    if (scratch.length < length) scratch = new Uint8Array(Math.max(length, 2 * scratch.length));
    for (let i = 0; i < length; i++) scratch[i] = key.charCodeAt(i);
    data = scratch;
  } else {
    data = Buffer.from(key, 'utf8');
    length = data.length;
  }
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = seed ^ length;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = (data[i4]! & 0xff) + ((data[i4 + 1]! & 0xff) << 8) + ((data[i4 + 2]! & 0xff) << 16) + ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const left = length & 3;
  const base = length4 << 2;
  if (left === 3) h ^= (data[base + 2]! & 0xff) << 16;
  if (left >= 2) h ^= (data[base + 1]! & 0xff) << 8;
  if (left >= 1) {
    h ^= data[base]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return (h & 0x7fffffff) % partitions;
}
