/**
 * The records the stage runtime writes besides a stage's outputs (ARCHITECTURE.md §4): one StageOutcome per
 * input, due-time retry records and DeadLetter records — pure functions of the input record, the stage's
 * outcome and the clock, so the loop (streams/runtime.ts) only decides WHICH to write.
 */
import * as nodeCrypto from 'node:crypto';
import type { ConsumedRecord, Headers, ProduceRecord } from '../transport.js';
import { recordBytes } from '../transport.js';
import type { OutcomeMeta, Origin } from '../types.js';
import type { StageOutcome, DeadLetter } from '../../schemas/types.gen.js';

/** Header names the runtime writes on retry and dead-letter records. */
export const H = {
  attempt: 'swe-attempt',
  due: 'swe-due-ms',
  originTopic: 'swe-origin-topic',
  originPartition: 'swe-origin-partition',
  originOffset: 'swe-origin-offset',
  lastError: 'swe-last-error',
  /** on a dead letter whose value was cut to fit the bus: the original value's length in bytes */
  truncatedFrom: 'swe-value-truncated-from',
} as const;

/** An error as outcome and dead-letter records carry it. */
export interface ErrorInfo {
  name: string;
  message: string;
}

/** One-shot SHA-256 (Node ≥ 20.12 has `crypto.hash`, ~10× cheaper than a Hash object for small inputs). */
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: Buffer, enc: 'hex') => string }).hash;

/** Original coordinates of a record: its own, or those a retry record carries in its headers. */
export function originOf(r: ConsumedRecord): Origin {
  const h = r.headers;
  if (h[H.originTopic]) return { topic: h[H.originTopic]!, partition: Number(h[H.originPartition]), offset: h[H.originOffset]! };
  return { topic: r.topic, partition: r.partition, offset: r.offset };
}

/**
 * Deterministic outcome id: hex SHA-256 of `<stage>\0<key>\0<input bytes>` (`prefix` = `<stage>\0` as bytes),
 * so a replay or a redelivery yields the same id. Hashed in one shot — same bytes, same ids as a streamed Hash.
 */
export function outcomeIdOf(prefix: Buffer, r: ConsumedRecord): string {
  const key = r.key ?? '';
  const value = r.value;
  const kb = Buffer.byteLength(key, 'utf8');
  const buf = Buffer.allocUnsafe(prefix.length + kb + 1 + (value ? value.length : 0));
  prefix.copy(buf, 0);
  buf.write(key, prefix.length, 'utf8');
  buf[prefix.length + kb] = 0;
  if (value) value.copy(buf, prefix.length + kb + 1);
  return oneShotHash ? oneShotHash('sha256', buf, 'hex') : nodeCrypto.createHash('sha256').update(buf).digest('hex');
}

/** What one StageOutcome says about an input: the end, its attempts, accounting and the time (ms since epoch). */
export interface OutcomeFacts {
  stage: string;
  idPrefix: Buffer;
  record: ConsumedRecord;
  attempts: number;
  end: Partial<StageOutcome> & { kind: StageOutcome['kind'] };
  meta?: OutcomeMeta;
  durationMs: number;
  nowMs: number;
}

/** The StageOutcome record of one input (keyed by the input's key). */
export function outcomeRecord(f: OutcomeFacts): StageOutcome {
  const org = originOf(f.record);
  const m = f.meta;
  return {
    outcome_id: outcomeIdOf(f.idPrefix, f.record),
    stage: f.stage,
    key: f.record.key ?? '',
    kind: f.end.kind,
    reason: f.end.reason ?? null,
    detail: f.end.detail ?? null,
    error_class: f.end.error_class ?? null,
    retriable: f.end.retriable ?? null,
    attempts: f.attempts,
    input_topic: org.topic,
    input_partition: org.partition,
    input_offset: org.offset,
    output_topic: f.end.output_topic ?? null,
    ts_ms: f.nowMs,
    duration_ms: Math.max(0, Math.round(f.durationMs)),
    repo: m?.repo ?? null,
    language: m?.language ?? null,
    method: m?.method ?? null,
    model: m?.model ?? null,
    cache_hit: m?.cacheHit ?? null,
    tokens_in: m?.tokensIn ?? 0,
    tokens_out: m?.tokensOut ?? 0,
    cost_usd: m?.costUsd ?? 0,
  };
}

/**
 * The retry record of a failed attempt: the input's bytes again, on `topic`, due at `dueMs` (ms since epoch),
 * with the next attempt number, the original coordinates and the last error in headers.
 */
export function retryRecord(o: { record: ConsumedRecord; topic: string; attempt: number; dueMs: number; error: ErrorInfo }): ProduceRecord {
  const org = originOf(o.record);
  const headers: Headers = {
    ...o.record.headers,
    [H.attempt]: String(o.attempt + 1),
    [H.due]: String(o.dueMs),
    [H.originTopic]: org.topic,
    [H.originPartition]: String(org.partition),
    [H.originOffset]: org.offset,
    [H.lastError]: `${o.error.name}: ${o.error.message}`.slice(0, 1000),
  };
  return { topic: o.topic, key: o.record.key ?? '', value: o.record.value!, headers };
}

/**
 * The DeadLetter record of an input (original coordinates, attempts, error class) and the header saying its
 * value was cut: a dead letter carries the input's bytes whole unless they would push it over the bus's record
 * limit (`maxRecordBytes`); then their head, leaving room for the error message (≤ 10,000 chars, 3 bytes each)
 * and the other fields (4 KiB), and it says so in `error_message` and the `swe-value-truncated-from` header.
 */
export function deadLetterRecord(o: { stage: string; record: ConsumedRecord; attempts: number; error: ErrorInfo; reason: string; nowMs: number; maxRecordBytes?: number }): { value: DeadLetter; headers?: Headers } {
  const org = originOf(o.record);
  const value = o.record.value;
  const room = o.maxRecordBytes === undefined ? Infinity : o.maxRecordBytes - 34_000;
  const kept = value && value.length > room ? value.subarray(0, Math.max(0, room)) : value;
  const cut = kept && value && kept.length < value.length;
  const dl: DeadLetter = {
    stage: o.stage,
    key: o.record.key,
    original_topic: org.topic,
    original_partition: org.partition,
    original_offset: org.offset,
    attempts: o.attempts,
    error_class: o.error.name,
    error_message: o.error.message.slice(0, 10_000) + (cut ? ` [value truncated from ${value.length} to ${kept.length} bytes to fit the bus]` : ''),
    reason: o.reason,
    value: kept,
    ts_ms: o.nowMs,
  };
  return { value: dl, headers: cut ? { [H.truncatedFrom]: String(value.length) } : undefined };
}

/** The first record over the bus's limit (bytes, {@link recordBytes}) as an error to dead-letter with; undefined when all fit or there is no limit. */
export function oversizeError(outputs: ProduceRecord[], maxRecordBytes: number | undefined): ErrorInfo | undefined {
  if (maxRecordBytes === undefined) return undefined;
  for (const r of outputs) {
    const size = recordBytes(r);
    if (size > maxRecordBytes) return { name: 'RecordTooLarge', message: `output record for ${r.topic} is ${size} bytes; the bus accepts at most ${maxRecordBytes}` };
  }
  return undefined;
}
