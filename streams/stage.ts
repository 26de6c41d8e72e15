/**
 * What an operator file exports: a named handler from one input envelope to one outcome. The runtime
 * lifts it into an RxJS {@link StageOperator} (mergeMap with the stage's concurrency, errors caught per
 * record inside the inner observable, retried work wrapped in `defer`), so a stage never sees
 * concurrency, retries, commits or the transport.
 */
import { defer, from, mergeMap, map, catchError, of } from 'rxjs';
import type { Envelope, Outcome, StageOperator } from './types.js';
import { fail } from './types.js';
import type { StageName } from './topics.js';

/** A stage: `handle` resolves to exactly one outcome. Throwing is allowed and becomes `failed` (retriable unless the error says otherwise). */
export interface Stage<I, O> {
  name: StageName;
  handle(env: Envelope<I>): Promise<Outcome<O>>;
  /** Release resources (containers, clients) at shutdown. */
  close?(): Promise<void>;
}

/**
 * Lift a stage into an operator with at most `concurrency` records in flight.
 * One record's failure never errors the stream: the inner observable catches it into a `failed` outcome.
 */
export function fromStage<I, O>(stage: Stage<I, O>, concurrency: number): StageOperator<I, O> {
  return mergeMap(
    (env: Envelope<I>) =>
      defer(() => from(stage.handle(env))).pipe(
        catchError((err: unknown) => of(fail<O>(err))),
        map((outcome): Envelope<Outcome<O>> => ({ ...env, value: outcome })),
      ),
    concurrency,
  );
}
