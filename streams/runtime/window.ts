/**
 * The stage runtime's in-flight window (ARCHITECTURE.md §4): per partition, the records admitted and not yet
 * committed, in offset order, each with its status; the commit is the contiguous low watermark + 1 — the
 * offset of the first admitted record that is not durable yet. Pure bookkeeping: no transport, no clock.
 */
import type { ConsumedRecord, ProduceRecord, TopicPartition } from '../transport.js';
import type { OutcomeMeta } from '../types.js';

export type EntryStatus = 'queued' | 'running' | 'completing' | 'durable';

/** One admitted record. */
export interface Entry {
  record: ConsumedRecord;
  offset: bigint;
  status: EntryStatus;
  part: PartitionState;
  /** the partition's controller: work is aborted per partition (revocation) or all at once (shutdown) */
  ac: AbortController;
  startedAt: number;
  /** outputs waiting for the next completion batch (status 'completing') */
  outputs?: ProduceRecord[];
  /** number of the completion batch that carries this entry's outputs */
  batch: number;
  timer?: NodeJS.Timeout;
  /** the attempt this entry runs (1 = first delivery) */
  attempt: number;
  /** which count its outcome was tallied under, so a refused output can move it to `failed` */
  counted?: 'accepted' | 'rejected' | 'retried';
  /** set once its outputs are a dead letter: a dead letter that is refused too is fatal */
  deadLettered?: boolean;
  /** set when its outputs were replaced by a dead letter because the bus would refuse them */
  replaced?: boolean;
  /** accounting of the stage's outcome, copied into a dead letter that replaces refused outputs */
  meta?: OutcomeMeta;
  durationMs?: number;
}

/** One partition's window. Offsets are Kafka's (the committed offset is the next one to read). */
export interface PartitionState {
  tp: TopicPartition;
  key: string;
  ready: boolean;
  /** set when the partition is revoked (or the runtime dies): nothing of it may be written or committed any more */
  revoked: boolean;
  committed: bigint;
  requested: bigint;
  processed: Set<string>;
  admitted: Entry[];
  byOffset: Map<string, Entry>;
  buffer: ConsumedRecord[];
  paused: boolean;
  ac: AbortController;
}

/** A fresh, not yet ready window of a partition (`ready` once its committed offset is known). */
export function newPartition(tp: TopicPartition, key: string): PartitionState {
  return {
    tp: { topic: tp.topic, partition: tp.partition },
    key,
    ready: false,
    revoked: false,
    committed: 0n,
    requested: 0n,
    processed: new Set(),
    admitted: [],
    byOffset: new Map(),
    buffer: [],
    paused: false,
    ac: new AbortController(),
  };
}

/**
 * The commit (next offset to read) once completion batch `seq` is durable: the offset of the first admitted
 * entry that is neither durable already nor in that batch, or past the last one. Call with a non-empty window.
 */
export function commitWithBatch(s: PartitionState, seq: number): bigint {
  const adm = s.admitted;
  let j = 0;
  while (j < adm.length && (adm[j]!.status === 'durable' || adm[j]!.batch === seq)) j++;
  return j < adm.length ? adm[j]!.offset : adm[adm.length - 1]!.offset + 1n;
}

/**
 * Pop the durable entries off the head of the window and move the committed offset past them.
 * @returns the offset to commit when it passed what was already requested (and records it as requested), else undefined
 */
export function popDurable(s: PartitionState): bigint | undefined {
  let n = 0;
  const adm = s.admitted;
  while (n < adm.length && adm[n]!.status === 'durable') {
    s.byOffset.delete(adm[n]!.record.offset);
    n++;
  }
  if (n === 0) return undefined;
  s.committed = adm[n - 1]!.offset + 1n;
  adm.splice(0, n);
  if (s.committed <= s.requested) return undefined;
  s.requested = s.committed;
  return s.committed;
}
