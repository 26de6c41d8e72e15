/**
 * Feeds a sink (ClickHouse) from topics as one consumer-group member, under the stage runtime's rules
 * (ARCHITECTURE.md §4):
 * - Bounded intake: at most `window` records per partition are held (received and not yet committed); a full
 *   partition is paused at the transport and resumed once a commit drains it.
 * - Decode, push, flush, then commit the highest contiguous offset per partition — a commit never covers a row
 *   that is not durable in the sink. Sink inserts are idempotent (deterministic ids, ReplacingMergeTree, dedup
 *   tokens), so a redelivery after a crash or a rebalance changes nothing.
 * - Retries: a retriable failure (registry unreachable while decoding, ClickHouse down while flushing, a
 *   transient bus error writing dead letters) is retried with backoff, the records held uncommitted, for up to
 *   `retryBudgetMs`; after that the runner dies, so the process exits and a supervisor restarts it. An outage
 *   never dead-letters a row. Only a record that genuinely does not decode (`decode-error`) or that the sink
 *   refuses (`invalid-record`) goes to `<topic>.dlq`, with its original coordinates.
 * - A non-retriable sink failure (the server refused a whole batch: a dropped table, a schema mismatch) is fatal.
 */
import type { Transport, GroupConsumer, ConsumedRecord, TopicPartition, ProduceRecord } from './transport.js';
import type { Serde } from './serde.js';
import type { DeadLetter } from '../schemas/types.gen.js';
import { logger } from './log.js';

/** What a sink offers the runner. `push` may buffer; `flush` resolves when everything pushed is durable. */
export interface Sink {
  /** @throws an error with `retriable: true` for a transient failure; any other error refuses the record */
  push(topic: string, record: unknown): void | Promise<void>;
  /** @throws an error with `retriable: true` for a transient failure (the sink keeps the rows); any other is fatal */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface SinkRunnerOptions {
  transport: Transport;
  serde: Serde;
  sink: Sink;
  topics: readonly string[];
  /** Consumer group. Default `swe-stream.sink`. */
  groupId?: string;
  /** Flush at least this often while records arrive (ms). Default 1000. */
  flushMs?: number;
  /** Flush when this many records were pushed since the last flush. Default 5000. */
  maxPending?: number;
  /** Records held per partition (received, not committed) before the partition is paused. Default 2 × maxPending. */
  window?: number;
  /** How long retriable failures are retried before the runner dies (ms). Default 600,000. */
  retryBudgetMs?: number;
  /** Delay before retry n ≥ 1 (ms). Default 500 × 2^(n−1), at most 30,000. */
  backoffMs?: (attempt: number) => number;
}

/** One partition: records received and not pushed (`queue`), and how far pushed records reach (`next`). */
interface Part {
  tp: TopicPartition;
  queue: ConsumedRecord[];
  /** records pushed or dead-lettered, not yet committed */
  done: number;
  /** offset after the last record pushed or dead-lettered (the commit to send at the next flush) */
  next?: bigint;
  paused: boolean;
}

const log = logger({ component: 'sink-runner' });
const tpKey = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;
const isRetriable = (e: unknown) => (e as { retriable?: unknown } | null)?.retriable === true;
const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));

/** A decode or push failure that says "try again later", carried out of {@link SinkRunner.pushPart}. */
class Blocked {
  constructor(readonly error: Error) {}
}

/** Runs the sink until stopped. */
export class SinkRunner {
  private consumer?: GroupConsumer;
  private readonly parts = new Map<string, Part>();
  private dead: ProduceRecord[] = [];
  private pushed = 0;
  private chain: Promise<void> = Promise.resolve();
  private flushTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  /** First failure of the current run of retriable failures (ms since epoch), and how many so far. */
  private failing?: { since: number; attempts: number };
  private stopping = false;
  private fatal?: Error;
  private onDeath!: (e: Error) => void;
  /** Resolves with the error that stopped this runner; never rejects. */
  readonly died: Promise<Error> = new Promise((r) => (this.onDeath = r));
  readonly counts = { rows: 0, deadLettered: 0, retries: 0 };

  constructor(private readonly o: SinkRunnerOptions) {}

  get groupId(): string {
    return this.o.groupId ?? 'swe-stream.sink';
  }
  get error(): Error | undefined {
    return this.fatal;
  }
  private get maxPending(): number {
    return this.o.maxPending ?? 5000;
  }
  private get window(): number {
    return this.o.window ?? 2 * this.maxPending;
  }

  /** Records held: received and not yet committed. */
  inFlight(): number {
    let n = 0;
    for (const p of this.parts.values()) n += p.queue.length + p.done;
    return n;
  }

  /** Join the group. @throws TransportError when the bus is unreachable */
  async start(): Promise<void> {
    this.consumer = this.o.transport.consumer({ groupId: this.groupId, topics: [...this.o.topics] });
    await this.consumer.start({
      onRecords: (recs) => this.onRecords(recs),
      onAssigned: (tps) => tps.forEach((tp) => this.parts.set(tpKey(tp), { tp: { topic: tp.topic, partition: tp.partition }, queue: [], done: 0, paused: false })),
      // Whatever was held for a revoked partition is redelivered to its next owner; pushed rows are idempotent.
      onRevoked: (tps) => tps.forEach((tp) => this.parts.delete(tpKey(tp))),
    });
  }

  private onRecords(recs: ConsumedRecord[]): void {
    if (this.stopping || this.fatal) return;
    for (const r of recs) {
      const p = this.parts.get(tpKey(r));
      if (!p) continue; // not (or no longer) ours
      p.queue.push(r);
      if (!p.paused && p.queue.length + p.done >= this.window) {
        p.paused = true;
        this.consumer!.pause([p.tp]);
      }
    }
    this.kick(false);
  }

  /** Run one step (push what is queued; flush and commit when due or forced) after the running one. */
  private kick(force: boolean): Promise<void> {
    this.chain = this.chain.then(() => this.step(force)).catch((e: unknown) => this.die(asError(e)));
    return this.chain;
  }

  private async step(force: boolean): Promise<void> {
    if (this.fatal || this.retryTimer) return;
    const blocked = await this.pushQueued();
    if (blocked) return this.retryLater(blocked.error);
    if (force || this.pushed >= this.maxPending) await this.flushAndCommit();
    else if (this.pushed > 0 || this.dead.length > 0) this.flushTimer ??= setTimeout(() => void this.kick(true), this.o.flushMs ?? 1000);
  }

  /** Decode and push every queued record, partition by partition; stop at the first retriable failure. */
  private async pushQueued(): Promise<Blocked | undefined> {
    for (const p of this.parts.values()) {
      while (p.queue.length > 0) {
        const r = p.queue[0]!;
        const res = await this.pushOne(r);
        if (res instanceof Blocked) return res;
        p.queue.shift();
        p.done++;
        p.next = BigInt(r.offset) + 1n;
      }
    }
    return undefined;
  }

  /** One record into the sink, or into the dead letters when it does not decode or the sink refuses it. */
  private async pushOne(r: ConsumedRecord): Promise<Blocked | undefined> {
    let value: unknown;
    try {
      if (!r.value) throw Object.assign(new Error('record has no value'), { name: 'EmptyRecord' });
      value = await this.o.serde.decode(r.topic, r.value, r.headers);
    } catch (e) {
      if (isRetriable(e)) return new Blocked(asError(e));
      return this.deadLetter(r, asError(e), 'decode-error');
    }
    try {
      await this.o.sink.push(r.topic, value);
    } catch (e) {
      if (isRetriable(e)) return new Blocked(asError(e));
      return this.deadLetter(r, asError(e), 'invalid-record');
    }
    this.pushed++;
    this.counts.rows++;
    this.failing = undefined;
    return undefined;
  }

  private async deadLetter(r: ConsumedRecord, x: Error, reason: string): Promise<undefined> {
    log.warn({ topic: r.topic, partition: r.partition, offset: r.offset, reason, err: x.message }, 'record dead-lettered by the sink');
    const dl: DeadLetter = {
      stage: 'sink', key: r.key, original_topic: r.topic, original_partition: r.partition, original_offset: r.offset,
      attempts: 1, error_class: x.name, error_message: x.message.slice(0, 10_000), reason, value: r.value, ts_ms: Date.now(),
    };
    const enc = await this.o.serde.encode(`${r.topic}.dlq`, dl);
    this.dead.push({ topic: `${r.topic}.dlq`, key: r.key ?? '', value: enc.value, headers: enc.headers });
    return undefined;
  }

  /** Make pushed rows durable, write the dead letters, then commit each partition and resume drained ones. */
  private async flushAndCommit(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    try {
      await this.o.sink.flush();
      if (this.dead.length > 0) await this.o.transport.produce(this.dead);
    } catch (e) {
      if (!isRetriable(e)) throw e;
      return this.retryLater(asError(e));
    }
    this.counts.deadLettered += this.dead.length;
    this.dead = [];
    this.pushed = 0;
    this.failing = undefined;
    for (const p of this.parts.values()) {
      if (p.next === undefined || p.done === 0) continue;
      p.done = 0;
      await this.consumer!.commit(p.tp, p.next.toString());
      if (p.paused && p.queue.length < this.window) {
        p.paused = false;
        this.consumer!.resume([p.tp]);
      }
    }
  }

  /** A retriable failure: hold everything uncommitted and try again after a backoff — or die once the budget is spent. */
  private retryLater(e: Error): void {
    const now = Date.now();
    this.failing ??= { since: now, attempts: 0 };
    const attempt = ++this.failing.attempts;
    const budget = this.o.retryBudgetMs ?? 600_000;
    if (now - this.failing.since >= budget) return this.die(new Error(`sink kept failing for ${Math.round((now - this.failing.since) / 1000)} s: ${e.message}`, { cause: e }));
    const delay = (this.o.backoffMs ?? ((n: number) => Math.min(500 * 2 ** (n - 1), 30_000)))(attempt);
    this.counts.retries++;
    log.warn({ err: e.message, attempt, delayMs: delay }, 'sink failure is retriable; records held uncommitted, retrying');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.kick(true);
    }, delay);
  }

  private die(e: Error): void {
    if (this.fatal) return;
    this.fatal = e;
    clearTimeout(this.flushTimer);
    clearTimeout(this.retryTimer);
    log.error({ err: e.message }, 'sink failed; offsets not committed, records will be redelivered');
    this.onDeath(e);
  }

  /**
   * Push, flush and commit everything received so far. Never rejects: a retriable failure leaves the records
   * held (retried on its own schedule), anything else stops the runner ({@link died}).
   */
  flush(): Promise<void> {
    return this.kick(true);
  }

  /** Flush what can be flushed, then leave the group; held records are redelivered to the next member. */
  async stop(): Promise<void> {
    await this.flush();
    this.stopping = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.retryTimer);
    await this.chain;
    await this.consumer?.stop();
  }
}
