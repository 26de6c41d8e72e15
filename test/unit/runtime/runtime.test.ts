/**
 * The stage runtime on the in-memory transport with a test clock (vitest's fake timers: setTimeout,
 * setImmediate, Date), replaying what a real bus does at the worst moment: completions out of order (the
 * commit waits for the low watermark), a revocation in the middle of a batch (the revoked work is aborted
 * and nothing of it is written), a due-time retry (not run before it is due), the shutdown deadline (work
 * still running is aborted, nothing committed past it), and an oversize output (dead-lettered, the stage
 * goes on).
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { StageRuntime } from '../../../streams/runtime.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import { accept, fail, type Envelope, type Outcome } from '../../../streams/types.js';
import type { Stage } from '../../../streams/stage.js';
import type { DeadLetter, PullRequestEvent, StageOutcome } from '../../../schemas/types.gen.js';
import { prCatalog } from '../../../operators/pr/topology.js';
import { prEvent } from '../../helpers/records.js';
import { MemoryTransport, type MemoryConsumer } from '../../helpers/memory-transport.js';

const catalog = prCatalog();
catalog.register('rt.out', 'PullRequestEvent'); // the test's stages pass events through
const serde = new EmbeddedSerde({ catalog });
const IN = 'pr.events';
const TOPICS = { input: IN, output: 'rt.out', outcomes: 'stage.outcomes' };

/** A stage whose every record waits until the test settles it. */
function controlled() {
  const pending = new Map<number, { env: Envelope<PullRequestEvent>; settle: (o: Outcome<PullRequestEvent>) => void }>();
  const stage: Stage<PullRequestEvent, PullRequestEvent> = {
    name: 'filter',
    handle: (env) => new Promise((settle) => pending.set(env.value.number, { env, settle })),
  };
  return { stage, pending };
}

async function setup(stage: Stage<PullRequestEvent, PullRequestEvent>, opts: { n: number; maxRecordBytes?: number; backoffMs?: () => number }) {
  const bus = new MemoryTransport({ maxRecordBytes: opts.maxRecordBytes });
  for (let i = 1; i <= opts.n; i++) {
    const enc = await serde.encode(IN, prEvent(i));
    bus.append([{ topic: IN, key: `k${i}`, value: enc.value, headers: enc.headers, partition: 0 }]);
  }
  const rt = new StageRuntime({ stage, transport: bus, serde, concurrency: 8, topics: TOPICS, backoffMs: opts.backoffMs, now: () => Date.now() });
  await rt.start();
  const member = bus.consumers[0] as MemoryConsumer;
  member.assign([{ topic: IN, partition: 0 }, { topic: `${IN}.retry.filter`, partition: 0 }]);
  await tick();
  return { bus, rt, member, committed: () => bus.commits.get(`swe-stream.filter|${IN}:0`) };
}

/** Let promises and due timers run (the runtime batches completions per macrotask). */
const tick = (ms = 1) => vi.advanceTimersByTimeAsync(ms);
const outcomes = (bus: MemoryTransport) => bus.records('stage.outcomes').map((r) => serde.decodeSync('stage.outcomes', r.value!, r.headers) as StageOutcome);

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('stage runtime (in-memory transport, test clock)', () => {
  it('writes completions as they come but commits only the contiguous low watermark', async () => {
    const { stage, pending } = controlled();
    const { bus, member, committed } = await setup(stage, { n: 3 });
    member.deliver();
    await tick();
    expect([...pending.keys()]).toEqual([1, 2, 3]);
    pending.get(3)!.settle(accept(pending.get(3)!.env.value));
    pending.get(2)!.settle(accept(pending.get(2)!.env.value));
    await tick();
    expect(outcomes(bus).map((o) => o.key)).toEqual(['k3', 'k2']);
    expect(committed()).toBeUndefined(); // offset 0 is still running
    pending.get(1)!.settle(accept(pending.get(1)!.env.value));
    await tick();
    expect(committed()).toBe('3');
  });

  it('aborts the work of a partition revoked mid-batch and writes nothing of it', async () => {
    const { stage, pending } = controlled();
    const { bus, rt, member, committed } = await setup(stage, { n: 2 });
    member.deliver();
    await tick();
    pending.get(1)!.settle(accept(pending.get(1)!.env.value));
    await tick();
    expect(committed()).toBe('1');
    member.revoke([{ topic: IN, partition: 0 }]);
    expect(pending.get(2)!.env.signal.aborted).toBe(true);
    pending.get(2)!.settle(accept(pending.get(2)!.env.value)); // the handler ignored the abort
    await tick();
    expect(outcomes(bus).map((o) => o.key)).toEqual(['k1']);
    expect(bus.records(TOPICS.output)).toHaveLength(1);
    expect(committed()).toBe('1');
    expect(rt.counts.revoked).toBe(1);
  });

  it('runs a retry only when it is due', async () => {
    let calls = 0;
    const stage: Stage<PullRequestEvent, PullRequestEvent> = {
      name: 'filter',
      handle: async (env) => (++calls === 1 ? fail(new Error('registry briefly unreachable'), true) : accept(env.value)),
    };
    const { bus, member, committed } = await setup(stage, { n: 1, backoffMs: () => 60_000 });
    member.deliver();
    await tick();
    expect(bus.records(`${IN}.retry.filter`)).toHaveLength(1);
    expect(committed()).toBe('1'); // the retry record carries the work on
    member.deliver(); // the retry record arrives at once; it waits in its window slot
    await tick(59_000);
    expect(calls).toBe(1);
    await tick(1_000);
    expect(calls).toBe(2);
    expect(outcomes(bus)).toMatchObject([{ key: 'k1', kind: 'accepted', attempts: 2, input_topic: IN, input_offset: '0' }]);
  });

  it('aborts work still running at the shutdown deadline and commits nothing past it', async () => {
    const { stage, pending } = controlled();
    const { bus, rt, member, committed } = await setup(stage, { n: 2 });
    member.deliver();
    await tick();
    pending.get(1)!.settle(accept(pending.get(1)!.env.value));
    await tick();
    let stopped = false;
    const stop = rt.stop(5_000).then(() => (stopped = true));
    await tick(4_000);
    expect(stopped).toBe(false);
    expect(pending.get(2)!.env.signal.aborted).toBe(false);
    await tick(1_100);
    await stop;
    expect(pending.get(2)!.env.signal.aborted).toBe(true);
    expect(committed()).toBe('1');
    expect(outcomes(bus)).toHaveLength(1);
  });

  it('dead-letters an output over the record limit and goes on', async () => {
    const stage: Stage<PullRequestEvent, PullRequestEvent> = {
      name: 'filter',
      handle: async (env) => accept(env.value.number === 1 ? { ...env.value, body: 'x'.repeat(5_000) } : env.value),
    };
    const { bus, rt, member, committed } = await setup(stage, { n: 2, maxRecordBytes: 2_000 });
    member.deliver();
    await tick();
    expect(committed()).toBe('2');
    expect(outcomes(bus).map((o) => [o.key, o.kind, o.reason])).toEqual([['k1', 'failed', 'record-too-large'], ['k2', 'accepted', null]]);
    const dl = bus.records(`${IN}.dlq`).map((r) => serde.decodeSync(`${IN}.dlq`, r.value!, r.headers) as DeadLetter);
    expect(dl).toMatchObject([{ key: 'k1', original_topic: IN, original_offset: '0', reason: 'record-too-large', error_class: 'RecordTooLarge' }]);
    expect(rt.counts).toMatchObject({ accepted: 1, failed: 1, deadLettered: 1 });
    expect(rt.error).toBeUndefined();
  });

  it('runs at most `concurrency` handlers at once, in arrival order, and turns a throw into a failed outcome', async () => {
    const { stage, pending } = controlled();
    const handle = stage.handle;
    // 11 throws synchronously, 12 rejects: both are that record's failed outcome, never a dead stage.
    stage.handle = (env) => {
      if (env.value.number === 11) throw new TypeError('sync bug');
      if (env.value.number === 12) return Promise.reject(new RangeError('async bug'));
      return handle(env);
    };
    const { bus, rt, member, committed } = await setup(stage, { n: 12 });
    member.deliver();
    await tick();
    expect([...pending.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]); // concurrency 8
    pending.get(2)!.settle(accept(pending.get(2)!.env.value));
    await tick();
    expect([...pending.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]); // the freed slot takes the next in order
    for (const k of [1, 3, 4, 5, 6, 7, 8, 9]) {
      pending.get(k)!.settle(accept(pending.get(k)!.env.value));
      await tick();
    }
    expect([...pending.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    pending.get(10)!.settle(accept(pending.get(10)!.env.value));
    await tick();
    expect(committed()).toBe('12');
    const ends = outcomes(bus).map((o) => [o.key, o.kind, o.error_class]);
    expect(ends).toHaveLength(12);
    expect(ends).toContainEqual(['k11', 'failed', 'TypeError']);
    expect(ends).toContainEqual(['k12', 'failed', 'RangeError']);
    expect(rt.counts).toMatchObject({ accepted: 10, failed: 2, deadLettered: 2 });
    expect(rt.error).toBeUndefined();
  });
});
