/**
 * The stage contract (ARCHITECTURE.md §3). A stage is an RxJS operator from input envelopes to outcome
 * envelopes; the runtime (streams/runtime.ts) owns concurrency, the in-flight window, retries, the
 * dead-letter topic, commits, metrics and shutdown. Model: Redpanda Connect's `Process(ctx, msg) →
 * (batch, error)` with errors as data.
 *
 * Operators never learn which transport carried a record: `origin` is opaque bookkeeping they may log.
 */
import type { OperatorFunction } from 'rxjs';

/** Where a record came from: topic, partition and offset (a decimal string; Kafka offsets are int64). */
export interface Origin {
  topic: string;
  partition: number;
  offset: string;
}

/** One input record handed to a stage. `attempt` starts at 1; `signal` aborts when the partition is revoked or on shutdown. */
export interface Envelope<T> {
  key: string;
  value: T;
  origin: Origin;
  attempt: number;
  signal: AbortSignal;
}

/**
 * Accounting a stage may attach to any outcome; the runtime copies it into the StageOutcome record
 * (durations are measured by the runtime itself).
 */
export interface OutcomeMeta {
  repo?: string;
  language?: string;
  /** rules | agent | harness | skipped */
  method?: string;
  model?: string;
  cacheHit?: boolean;
  tokensIn?: number;
  tokensOut?: number;
  costUsd?: number;
}

/** The three ends of processing one record. `rejected` is a normal, counted end with a reason code. */
export type Outcome<O> =
  | { kind: 'accepted'; value: O; meta?: OutcomeMeta; /** emit more than one output record (e.g. K trajectories) */ values?: O[] }
  | { kind: 'rejected'; reason: string; detail?: string; meta?: OutcomeMeta }
  | { kind: 'failed'; error: { name: string; message: string }; retriable: boolean; meta?: OutcomeMeta };

/** A stage: envelopes in, exactly one outcome envelope out per input envelope (same key/origin/attempt/signal). */
export type StageOperator<I, O> = OperatorFunction<Envelope<I>, Envelope<Outcome<O>>>;

/**
 * Whether trying again may help: the one rule every part uses (the runtime, stages, agents).
 * - Programming errors — `TypeError`, `RangeError`, `ReferenceError`, `SyntaxError` — are never retriable:
 *   the same input meets the same bug. One exception: undici's `fetch()` reports a network failure as
 *   `TypeError('fetch failed')` with the socket error as `cause` (Node ≥ 18); that is an outage.
 * - An error with a boolean `retriable` (StageError, TransportError, SerdeError, SandboxError, LlmError)
 *   says so itself.
 * - Anything else (an unknown library error) is retriable: an outage is worth another try, bounded by the
 *   runtime's max attempts.
 * Source of the rule: ARCHITECTURE.md §4 ("Retries").
 */
export function isRetriable(err: unknown): boolean {
  if (err instanceof TypeError) return err.message === 'fetch failed' && err.cause !== undefined;
  if (err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError) return false;
  const r = (err as { retriable?: unknown } | null | undefined)?.retriable;
  return typeof r === 'boolean' ? r : true;
}

/**
 * An error that says whether trying again may help. Stages throw (or return `failed`) with this;
 * anything else thrown is judged by {@link isRetriable}.
 */
export class StageError extends Error {
  readonly retriable: boolean;
  constructor(message: string, opts: { retriable: boolean; name?: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.retriable = opts.retriable;
    this.name = opts.name ?? 'StageError';
  }
}

/** Shorthand constructors, so operators read as what they decide. */
export const accept = <O>(value: O, meta?: OutcomeMeta): Outcome<O> => ({ kind: 'accepted', value, meta });
export const reject = <O = never>(reason: string, detail?: string, meta?: OutcomeMeta): Outcome<O> => ({ kind: 'rejected', reason, detail, meta });
export const fail = <O = never>(error: unknown, retriable?: boolean, meta?: OutcomeMeta): Outcome<O> => {
  const e = error instanceof Error ? error : new Error(String(error));
  const r = retriable ?? isRetriable(error);
  return { kind: 'failed', error: { name: e.name, message: e.message }, retriable: r, meta };
};
