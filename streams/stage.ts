/**
 * What an operator file exports: a named handler from one input envelope to one outcome. The runtime
 * (streams/runtime.ts) runs it in `concurrency` slots with errors caught per record, so a stage never sees
 * concurrency, retries, commits or the transport; {@link fromStage} lifts the same handler into an RxJS
 * {@link StageOperator} (mergeMap) with the same contract, for composing stages as observables.
 */
import { catchError, defaultIfEmpty, defer, isObservable, map, mergeMap, of, take, type Observable, type ObservableInput } from 'rxjs';
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

/** What a handler may return for one envelope: the stage contract's promise, or an observable (tests in virtual time, streaming handlers). */
export type HandlerResult<O> = Promise<Outcome<O>> | Observable<Outcome<O>>;

/**
 * One record through a handler, never failing: a throw (synchronous or not) or an error of the observable
 * becomes a `failed` outcome; of an observable only the first value counts, and one that completes empty is a
 * non-retriable `failed` (a handler bug). The outcome envelope keeps the input's key, origin, attempt and signal.
 */
function outcomeOf<I, O>(handle: (env: Envelope<I>) => HandlerResult<O>, env: Envelope<I>): ObservableInput<Envelope<Outcome<O>>> {
  let r: HandlerResult<O>;
  try {
    r = handle(env);
  } catch (err) {
    return of({ ...env, value: fail<O>(err) }); // synchronous, as the throw was
  }
  if (isObservable(r)) {
    return r.pipe(
      take(1),
      defaultIfEmpty(fail<O>(new Error('the handler completed without an outcome'), false)),
      map((value): Envelope<Outcome<O>> => ({ ...env, value })),
      catchError((err: unknown) => of<Envelope<Outcome<O>>>({ ...env, value: fail<O>(err) })),
    );
  }
  return Promise.resolve(r).then(
    (value): Envelope<Outcome<O>> => ({ ...env, value }),
    (err: unknown): Envelope<Outcome<O>> => ({ ...env, value: fail<O>(err) }),
  );
}

/**
 * Lift a handler into an operator with at most `concurrency` records in flight (RxJS `mergeMap`; the runtime
 * bounds what reaches it, since mergeMap buffers overflow without bound). Exactly one outcome per input; one
 * record's failure never errors the stream: the inner observable catches it into a `failed` outcome. For a
 * promise the inner observable is `defer` over one promise that already maps and catches (rather than
 * `defer(from(p)).pipe(catchError, map)`): same semantics — `handle` runs at subscription, once per
 * subscription — with one observable and subscriber per record instead of four.
 */
export function liftHandler<I, O>(handle: (env: Envelope<I>) => HandlerResult<O>, concurrency: number): StageOperator<I, O> {
  return mergeMap((env: Envelope<I>) => defer(() => outcomeOf(handle, env)), concurrency);
}

/** Lift a stage into an operator with at most `concurrency` records in flight; see {@link liftHandler}. */
export function fromStage<I, O>(stage: Stage<I, O>, concurrency: number): StageOperator<I, O> {
  return liftHandler((env: Envelope<I>) => stage.handle(env), concurrency);
}
