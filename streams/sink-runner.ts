/**
 * Feeds a sink (ClickHouse) from topics as one consumer-group member: decode, push, flush, then commit the
 * highest contiguous offset per partition — a commit never covers a row that is not yet durable in the
 * sink. Sink inserts are idempotent (deterministic ids, ReplacingMergeTree, dedup tokens), so a redelivery
 * after a crash changes nothing. A record that does not decode is dead-lettered to `<topic>.dlq`.
 */
import type { Transport, GroupConsumer, ConsumedRecord, TopicPartition } from './transport.js';
import type { Serde } from './serde.js';
import type { DeadLetter } from '../schemas/types.gen.js';
import { logger } from './log.js';

/** What a sink offers the runner. `push` may buffer; `flush` resolves when everything pushed is durable. */
export interface Sink {
  push(topic: string, record: unknown): void | Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface SinkRunnerOptions {
  transport: Transport;
  serde: Serde;
  sink: Sink;
  topics: readonly string[];
  groupId?: string;
  /** Flush at least this often while records arrive (ms). Default 1000. */
  flushMs?: number;
  /** Flush when this many records are pending. Default 5000. */
  maxPending?: number;
}

const log = logger({ component: 'sink-runner' });

/** Runs the sink until stopped. */
export class SinkRunner {
  private consumer?: GroupConsumer;
  private pending: ConsumedRecord[] = [];
  private chain: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private readonly assigned = new Set<string>();
  private fatal?: Error;
  private onDeath!: (e: Error) => void;
  /** Resolves with the error that stopped this runner; never rejects. */
  readonly died: Promise<Error> = new Promise((r) => (this.onDeath = r));
  readonly counts = { rows: 0, deadLettered: 0 };

  constructor(private readonly o: SinkRunnerOptions) {}

  get groupId(): string {
    return this.o.groupId ?? 'swe-stream.sink';
  }
  get error(): Error | undefined {
    return this.fatal;
  }
  inFlight(): number {
    return this.pending.length;
  }

  async start(): Promise<void> {
    this.consumer = this.o.transport.consumer({ groupId: this.groupId, topics: [...this.o.topics] });
    await this.consumer.start({
      onRecords: (recs) => {
        this.pending.push(...recs);
        if (this.pending.length >= (this.o.maxPending ?? 5000)) void this.flush();
        else this.timer ??= setTimeout(() => void this.flush(), this.o.flushMs ?? 1000);
      },
      onAssigned: (tps) => tps.forEach((tp) => this.assigned.add(`${tp.topic}\u0000${tp.partition}`)),
      onRevoked: (tps) => {
        for (const tp of tps) this.assigned.delete(`${tp.topic}\u0000${tp.partition}`);
        this.pending = this.pending.filter((r) => this.assigned.has(`${r.topic}\u0000${r.partition}`));
      },
    });
  }

  /** Push and flush everything received so far, then commit. Serialised: one flush at a time. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const recs = this.pending;
    this.pending = [];
    if (recs.length === 0) return this.chain;
    this.chain = this.chain.then(() => this.write(recs)).catch((e: unknown) => {
      if (this.fatal) return;
      this.fatal = e instanceof Error ? e : new Error(String(e));
      this.onDeath(this.fatal);
      log.error({ err: this.fatal.message }, 'sink failed; offsets not committed, records will be redelivered');
    });
    return this.chain;
  }

  private async write(recs: ConsumedRecord[]): Promise<void> {
    const next = new Map<string, { tp: TopicPartition; offset: bigint }>();
    const dead = [];
    for (const r of recs) {
      try {
        if (!r.value) throw new Error('record has no value');
        await this.o.sink.push(r.topic, await this.o.serde.decode(r.topic, r.value, r.headers));
        this.counts.rows++;
      } catch (e) {
        const x = e as Error;
        log.warn({ topic: r.topic, partition: r.partition, offset: r.offset, err: x.message }, 'record refused by the sink; dead-lettered');
        const dl: DeadLetter = {
          stage: 'sink', key: r.key, original_topic: r.topic, original_partition: r.partition, original_offset: r.offset,
          attempts: 1, error_class: x.name, error_message: x.message.slice(0, 10_000), reason: 'decode-error', value: r.value, ts_ms: Date.now(),
        };
        const enc = await this.o.serde.encode(`${r.topic}.dlq`, dl);
        dead.push({ topic: `${r.topic}.dlq`, key: r.key ?? '', value: enc.value, headers: enc.headers });
      }
      const k = `${r.topic}\u0000${r.partition}`;
      const off = BigInt(r.offset) + 1n;
      if ((next.get(k)?.offset ?? -1n) < off) next.set(k, { tp: { topic: r.topic, partition: r.partition }, offset: off });
    }
    await this.o.sink.flush();
    if (dead.length) {
      await this.o.transport.produce(dead);
      this.counts.deadLettered += dead.length;
    }
    for (const { tp, offset } of next.values()) await this.consumer!.commit(tp, offset.toString());
  }

  async stop(): Promise<void> {
    await this.flush();
    await this.chain;
    await this.consumer?.stop();
  }
}
