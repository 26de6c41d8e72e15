/**
 * Lifting a stage's handler into an RxJS operator (streams/stage.ts), in virtual time with RxJS's
 * TestScheduler (marble diagrams): at most `concurrency` records in flight, exactly one outcome per input,
 * a throwing or erroring handler is that record's `failed` outcome and the stream goes on.
 */
import { describe, it, expect } from 'vitest';
import { TestScheduler } from 'rxjs/testing';
import { map, type Observable } from 'rxjs';
import { liftHandler } from '../../../streams/stage.js';
import { accept, type Envelope, type Outcome } from '../../../streams/types.js';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const env = (key: string): Envelope<string> => ({ key, value: key, origin: { topic: 't', partition: 0, offset: '0' }, attempt: 1, signal: new AbortController().signal });
/** An outcome envelope as a short marble value: `<key>:<kind>`. */
const show = (e: Envelope<Outcome<string>>) => `${e.key}:${e.value.kind}`;
const inputs = { a: env('a'), b: env('b'), c: env('c'), d: env('d') };

describe('a stage lifted into an operator (marble tests)', () => {
  it('keeps at most `concurrency` records in flight; the rest wait for a slot', () => {
    scheduler().run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const work = { a: cold('----x|'), b: cold('----x|'), c: cold('----x|'), d: cold('----x|') };
      const handle = (e: Envelope<string>): Observable<Outcome<string>> => work[e.key as keyof typeof work].pipe(map(() => accept(e.key)));
      const out = hot('(abcd)', inputs).pipe(liftHandler(handle, 2), map(show));
      expectObservable(out).toBe('----(ab)(cd)', { a: 'a:accepted', b: 'b:accepted', c: 'c:accepted', d: 'd:accepted' });
      // a and b start at once; c and d only when a and b have ended (frame 4).
      expectSubscriptions(work.a.subscriptions).toBe('^---!');
      expectSubscriptions(work.b.subscriptions).toBe('^---!');
      expectSubscriptions(work.c.subscriptions).toBe('----^---!');
      expectSubscriptions(work.d.subscriptions).toBe('----^---!');
    });
  });

  it('emits exactly one outcome per input: the first value of a chatty handler, `failed` for a silent one', () => {
    scheduler().run(({ hot, cold, expectObservable }) => {
      const work = { a: cold('-xy|'), b: cold('--|') };
      const handle = (e: Envelope<string>): Observable<Outcome<string>> => work[e.key as 'a' | 'b'].pipe(map((v) => accept(`${e.key}${v}`)));
      const out = hot('a-b', inputs).pipe(liftHandler(handle, 4), map((e) => (e.value.kind === 'accepted' ? `${e.key}:${e.value.value}` : `${e.key}:${e.value.kind}:${String(e.value.kind === 'failed' && e.value.retriable)}`)));
      expectObservable(out).toBe('-a--b', { a: 'a:ax', b: 'b:failed:false' });
    });
  });

  it('turns a throwing handler (synchronously or through the observable) into `failed` and goes on', () => {
    scheduler().run(({ hot, cold, expectObservable }) => {
      const handle = (e: Envelope<string>): Observable<Outcome<string>> => {
        if (e.key === 'a') throw new TypeError('handler bug');
        if (e.key === 'b') return cold('-#', undefined, new Error('sandbox unreachable'));
        return cold('-x|').pipe(map(() => accept(e.key)));
      };
      const lifted = hot('abc', inputs).pipe(liftHandler(handle, 1));
      expectObservable(lifted.pipe(map((e) => (e.value.kind === 'failed' ? `${e.key}:${e.value.error.name}:${e.value.retriable}` : show(e))))).toBe('a-bc', {
        // A TypeError is a programming error: not retriable. A plain Error is retriable.
        a: 'a:TypeError:false',
        b: 'b:Error:true',
        c: 'c:accepted',
      });
    });
  });
});
