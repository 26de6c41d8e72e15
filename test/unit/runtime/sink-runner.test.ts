/**
 * The sink runner under the runtime's rules (issue 13 fault 4): bounded per-partition intake with
 * pause/resume, commits only after a flush, a registry outage or a ClickHouse outage retried (records held,
 * nothing dead-lettered), only genuinely undecodable bytes dead-lettered, a refused batch or a spent retry
 * budget fatal. On the in-memory transport and the real embedded serde; the sink is a recording sink whose
 * failures the test scripts.
 */
import { describe, it, expect } from 'vitest';
import { SinkRunner, type Sink } from '../../../streams/sink-runner.js';
import { EmbeddedSerde } from '../../../streams/serde-embedded.js';
import { SerdeError, type Serde } from '../../../streams/serde.js';
import type { Headers } from '../../../streams/transport.js';
import type { DeadLetter } from '../../../schemas/types.gen.js';
import { MemoryTransport, type MemoryConsumer } from '../../helpers/memory-transport.js';
import { waitFor } from '../../helpers/wait.js';
import { prCatalog } from '../../../operators/pr/topology.js';

const TOPIC = 'stage.outcomes';
const embedded = new EmbeddedSerde({ catalog: prCatalog() });

/** The embedded serde, whose next `failDecodes` decodes throw a retriable SerdeError (an unreachable registry). */
class FlakySerde implements Serde {
  failDecodes = 0;
  encode(topic: string, value: unknown) {
    return embedded.encode(topic, value);
  }
  decode(topic: string, value: Buffer, headers: Headers) {
    if (this.failDecodes > 0) {
      this.failDecodes--;
      return Promise.reject(new SerdeError('schema registry at http://registry unreachable', true));
    }
    return embedded.decode(topic, value, headers);
  }
}

/** Rows kept in memory; `flushErrors` are thrown by the next flushes, first in first out. */
class RecordingSink implements Sink {
  rows: unknown[] = [];
  durable: unknown[] = [];
  flushErrors: Error[] = [];
  push(_topic: string, record: unknown) {
    this.rows.push(record);
  }
  async flush() {
    const e = this.flushErrors.shift();
    if (e) throw e;
    this.durable.push(...this.rows.splice(0));
  }
  async close() {}
}

function outcome(n: number) {
  return {
    outcome_id: `o${n}`, stage: 'filter', key: `acme/widgets#${n}`, kind: 'rejected', reason: 'not-merged', detail: null, error_class: null,
    retriable: null, attempts: 1, input_topic: 'pr.events', input_partition: 0, input_offset: String(n), output_topic: null, ts_ms: 1,
    duration_ms: 1, repo: null, language: null, method: null, model: null, cache_hit: null, tokens_in: 0, tokens_out: 0, cost_usd: 0,
  };
}

async function setup(opts: { n: number; window?: number; retryBudgetMs?: number; poison?: number[] }) {
  const bus = new MemoryTransport();
  for (let i = 0; i < opts.n; i++) {
    const value = opts.poison?.includes(i) ? Buffer.from('not avro') : (await embedded.encode(TOPIC, outcome(i))).value;
    const headers = opts.poison?.includes(i) ? {} : (await embedded.encode(TOPIC, outcome(i))).headers;
    bus.append([{ topic: TOPIC, key: `k${i}`, value, headers, partition: 0 }]);
  }
  const serde = new FlakySerde();
  const sink = new RecordingSink();
  const runner = new SinkRunner({ transport: bus, serde, sink, topics: [TOPIC], window: opts.window, flushMs: 60_000, maxPending: 1000, backoffMs: () => 5, retryBudgetMs: opts.retryBudgetMs });
  await runner.start();
  const member = bus.consumers[0] as MemoryConsumer;
  member.assign([{ topic: TOPIC, partition: 0 }]);
  return { bus, serde, sink, runner, member, committed: () => bus.commits.get(`swe-stream.sink|${TOPIC}:0`) };
}

describe('sink runner', () => {
  it('holds at most a window per partition: pauses when full, commits after the flush, then resumes', async () => {
    const { runner, member, sink, committed } = await setup({ n: 10, window: 4 });
    member.deliver(10);
    expect(member.calls).toEqual([`pause ${TOPIC}:0`]);
    expect(runner.inFlight()).toBe(10);
    await runner.flush();
    expect(sink.durable).toHaveLength(10);
    expect(committed()).toBe('10');
    expect(member.calls).toEqual([`pause ${TOPIC}:0`, `resume ${TOPIC}:0`]);
    expect(runner.inFlight()).toBe(0);
  });

  it('retries a registry outage instead of dead-lettering the rows', async () => {
    const { runner, member, sink, serde, bus, committed } = await setup({ n: 3 });
    serde.failDecodes = 4;
    member.deliver();
    await waitFor(() => committed() === '3', 'the three rows committed after the outage', 5_000);
    expect(sink.durable).toHaveLength(3);
    expect(bus.records(`${TOPIC}.dlq`)).toHaveLength(0);
    expect(runner.counts).toMatchObject({ rows: 3, deadLettered: 0, retries: 4 });
    expect(runner.error).toBeUndefined();
  });

  it('dead-letters only bytes that do not decode, with their coordinates, and commits past them', async () => {
    const { runner, member, sink, bus, committed } = await setup({ n: 3, poison: [1] });
    member.deliver();
    await runner.flush();
    expect(committed()).toBe('3');
    expect(sink.durable).toHaveLength(2);
    const dl = bus.records(`${TOPIC}.dlq`).map((r) => embedded.decodeSync(`${TOPIC}.dlq`, r.value!, r.headers) as DeadLetter);
    expect(dl).toMatchObject([{ stage: 'sink', key: 'k1', original_topic: TOPIC, original_partition: 0, original_offset: '1', reason: 'decode-error' }]);
  });

  it('holds the commit while the sink is down (retriable flush failure) and commits once it is back', async () => {
    const { runner, member, sink, committed } = await setup({ n: 2 });
    sink.flushErrors.push(Object.assign(new Error('ECONNREFUSED'), { retriable: true }), Object.assign(new Error('ECONNREFUSED'), { retriable: true }));
    member.deliver();
    await runner.flush();
    expect(committed()).toBeUndefined();
    await waitFor(() => committed() === '2', 'the commit once the sink is back', 5_000);
    expect(runner.error).toBeUndefined();
  });

  it('dies on a batch the sink refuses (non-retriable), committing nothing', async () => {
    const { runner, member, sink, committed } = await setup({ n: 2 });
    sink.flushErrors.push(Object.assign(new Error("Table swe.stage_outcomes doesn't exist"), { retriable: false }));
    member.deliver();
    await runner.flush();
    expect((await runner.died).message).toMatch(/doesn't exist/);
    expect(committed()).toBeUndefined();
  });

  it('dies once retriable failures outlast the retry budget', async () => {
    const { runner, member, serde, committed } = await setup({ n: 1, retryBudgetMs: 30 });
    serde.failDecodes = 1_000_000;
    member.deliver();
    expect((await runner.died).message).toMatch(/sink kept failing for .* registry at http:\/\/registry unreachable/);
    expect(committed()).toBeUndefined();
  });
});
