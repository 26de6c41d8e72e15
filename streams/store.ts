/**
 * Keyed state stores on the bus (ARCHITECTURE.md §2, §4): state that must survive a move to another machine
 * — the filter's duplicate-patch memory, source cursors, distill's finished attempts — lives in the bus, never
 * on a worker's disk. One small interface, two implementations, provided by the transport
 * ({@link import('./transport.js').Transport.openStore}) and handed to stages by the composition root:
 *
 * - Embedded log: a `store` table in the log's SQLite file. A write made for an input record (`origin`) is
 *   committed in the SAME transaction as that record's outputs and processed mark, so a `kill -9` can never
 *   keep one without the other; until then it is visible to reads in this process only.
 * - Kafka: one compacted topic per store (`store.<namespace>`, cleanup.policy=compact), as Kafka Streams'
 *   changelog topics and Kafka Connect's offset topic do. Every process reads the topic from the beginning
 *   on open and keeps tailing it, so two workers on two machines see each other's writes. Writes are
 *   produced before the record's outputs (at-least-once: a replay may write again; values are idempotent).
 *
 * Keys and values are strings (UTF-8). Namespaces are lower-case names: `[a-z0-9][a-z0-9._-]*`.
 */
import type { Origin } from './types.js';

/** Options of a write. */
export interface StoreWriteOptions {
  /**
   * The input record whose handling makes this write (`Envelope.origin`). Embedded: the write becomes durable
   * in the same transaction as that record's completion. Without it the write is durable when the promise resolves.
   */
  origin?: Origin;
}

/** A keyed store of one namespace. Every method may throw TransportError (retriable as it says). */
export interface KeyedStore {
  readonly namespace: string;
  /** The value of `key`, or null. Sees this process's own writes at once (read-your-writes). */
  get(key: string): Promise<string | null>;
  /** Set `key` (last writer wins). */
  put(key: string, value: string, opts?: StoreWriteOptions): Promise<void>;
  /** Remove `key` (a tombstone on Kafka). */
  delete(key: string, opts?: StoreWriteOptions): Promise<void>;
  /**
   * First writer wins: sets `key` to `value` unless it holds a value already, and returns the value that
   * holds it (=== `value` when this call won, or when the same value was claimed before: replays are
   * idempotent). All processes agree on the winner: embedded, one SQLite writer; Kafka, the claim that comes
   * first in the key's partition of the store topic (each claimant waits until its own claim has come back
   * through the log before it answers).
   */
  putIfAbsent(key: string, value: string, opts?: StoreWriteOptions): Promise<string>;
}

/** One write to a store, as carried by `Transport.produce(records, state)` (value null = delete). */
export interface StoreWrite {
  namespace: string;
  key: string;
  value: string | null;
}

/** What the composition root hands to the parts that keep state: a store per namespace (opened once, cached). */
export type StoreFactory = (namespace: string) => Promise<KeyedStore>;

const NAMESPACE = /^[a-z0-9][a-z0-9._-]{0,100}$/;

/** @throws RangeError for a namespace that is not `[a-z0-9][a-z0-9._-]*` (at most 101 characters) */
export function checkNamespace(namespace: string): string {
  if (!NAMESPACE.test(namespace)) throw new RangeError(`store namespace ${JSON.stringify(namespace)} must match ${NAMESPACE.source}`);
  return namespace;
}

/** The Kafka topic of a store (compacted). */
export const storeTopic = (namespace: string): string => `store.${checkNamespace(namespace)}`;

/** Store namespaces used by the engine itself. */
export const STORE = {
  /** source URI → the last cursor made durable (streams/source-runner.ts) */
  sourceCursors: 'source-cursors',
} as const;
