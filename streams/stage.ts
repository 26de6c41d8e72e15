/**
 * What an operator file exports: a named handler from one input envelope to one outcome. The runtime
 * lifts it into an RxJS {@link StageOperator} (mergeMap with the stage's concurrency, errors caught per
 * record inside the inner observable, retried work wrapped in `defer`), so a stage never sees
 * concurrency, retries, commits or the transport.
 */
import { defer, mergeMap } from 'rxjs';
import type { Envelope, Outcome, StageOperator } from './types.js';
import { fail } from './types.js';

/** A stage: `handle` resolves to exactly one outcome. Throwing is allowed and becomes `failed`, retriable as `isRetriable` (streams/types.ts) judges. */
export interface Stage<I, O> {
  /** The stage's name in the topology: its consumer group (`swe-stream.<name>`), retry topic and outcome records. */
  name: string;
  handle(env: Envelope<I>): Promise<Outcome<O>>;
  /** Release resources (containers, clients) at shutdown. */
  close?(): Promise<void>;
}

/**
 * One record through the stage, as a promise that never rejects: a throw (synchronous or not) becomes a
 * `failed` outcome. The outcome envelope keeps the input's key, origin, attempt and signal.
 */
function outcomeOf<I, O>(stage: Stage<I, O>, env: Envelope<I>): Promise<Envelope<Outcome<O>>> {
  let p: Promise<Outcome<O>>;
  try {
    p = Promise.resolve(stage.handle(env));
  } catch (err) {
    return Promise.resolve({ ...env, value: fail<O>(err) });
  }
  return p.then(
    (value): Envelope<Outcome<O>> => ({ ...env, value }),
    (err: unknown): Envelope<Outcome<O>> => ({ ...env, value: fail<O>(err) }),
  );
}

/**
 * Lift a stage into an operator with at most `concurrency` records in flight.
 * One record's failure never errors the stream: the inner observable catches it into a `failed` outcome.
 * The inner observable is `defer` over one promise that already maps and catches (rather than
 * `defer(from(p)).pipe(catchError, map)`): same semantics — `handle` runs at subscription, once per
 * subscription — with one observable and subscriber per record instead of four.
 */
export function fromStage<I, O>(stage: Stage<I, O>, concurrency: number): StageOperator<I, O> {
  return mergeMap((env: Envelope<I>) => defer(() => outcomeOf(stage, env)), concurrency);
}
