/**
 * The stage runtime (ARCHITECTURE.md §3–§4): consume → decode → operator → encode → produce → commit, for
 * one stage as one consumer-group member, on any {@link Transport}.
 *
 * What it guarantees:
 * - Bounded intake: at most `window` records per partition are admitted (not yet committed); when a
 *   partition's window is full it is paused at the transport and resumed when it drains. The bound lives
 *   here, at the source; the handler slots (`concurrency`) only queue what the window admitted.
 * - The poll loop never waits for a stage: transports only hand records over, so minutes-long work never
 *   runs inside kafkajs callbacks (kafkajs has no background heartbeat).
 * - Commits are the contiguous low watermark + 1, sent only after every earlier record's outputs are durable.
 * - On rebalance, work of revoked partitions is aborted (AbortSignal) and its completions dropped.
 * - Redeliveries are deduped: offsets below the committed offset, offsets already admitted, and offsets the
 *   transport reports as processed (durable marks on the embedded log).
 * - Retries are due-time records on the stage's retry topic (`<input>.retry.<stage>`), never sleeps in a
 *   handler; after `maxAttempts` (or a non-retriable failure, or bytes that do not decode) a DeadLetter record
 *   goes to `<input>.dlq` with the original topic/partition/offset, attempts and error class.
 * - Exactly one StageOutcome per input record (a retry is not an end; its final attempt writes the outcome),
 *   keyed by a deterministic outcome_id so a replay changes nothing downstream.
 *
 * How it stays cheap per record (bench/stream): with a serde that has `decodeSync`/`encodeSync` (the embedded
 * one) a record costs no promise of the runtime's own — only the stage's `handle` promise; outcomes of one
 * macrotask are handed to the transport as ONE batch (`GroupConsumer.completeMany`: one SQLite transaction,
 * or one coalesced Kafka produce), with a commit per partition riding along when the batch moves the low
 * watermark, so in-order batches need no processed marks and no separate commit. Serdes without the sync half
 * (the registry serde) take one promise per decode and per record's encodes; transports without
 * `completeMany` get one `complete` per record and commits through `commit`.
 */
import type { Transport, GroupConsumer, Completion, ConsumedRecord, ProduceRecord, TopicPartition, Headers } from './transport.js';
import { TransportError } from './transport.js';
import { newPartition, commitWithBatch, popDurable, type Entry, type PartitionState } from './runtime/window.js';
import { H, deadLetterRecord, oversizeError, outcomeRecord, retryRecord, type ErrorInfo } from './runtime/records.js';
import type { Serde } from './serde.js';
import type { Envelope, Outcome, OutcomeMeta } from './types.js';
import { fail } from './types.js';
import type { Stage } from './stage.js';
import { retryTopicOf, dlqTopicOf, type StageWiring } from './topics.js';
import type { StageOutcome } from '../schemas/types.gen.js';
import { logger } from './log.js';
import type { ResourceCost, ResourceGate } from './admission.js';

export { H } from './runtime/records.js';

/** Optional observer for metrics and progress (streams/metrics.ts implements it). Durations in ms. */
export interface RuntimeObserver {
  received?(stage: string, n: number): void;
  outcome?(stage: string, kind: StageOutcome['kind'], reason: string | null, durationMs: number): void;
  retried?(stage: string): void;
  deadLettered?(stage: string, reason: string): void;
  inFlight?(stage: string, n: number): void;
  /** Records not yet committed by the stage's group (input + retry topics). */
  lag?(stage: string, n: number): void;
}

/** Attempts per record before its dead letter, unless configured (cli/config.ts `maxAttempts` uses this default). */
export const DEFAULT_MAX_ATTEMPTS = 3;

export interface StageRuntimeOptions<I, O> {
  stage: Stage<I, O>;
  transport: Transport;
  serde: Serde;
  /** Records processed at once by this member (handler slots). Default 1. */
  concurrency?: number;
  /** Admitted, not yet committed records per partition. Default max(16, 4 × concurrency). */
  window?: number;
  /** Attempts before dead-lettering a retriable failure. Default {@link DEFAULT_MAX_ATTEMPTS}. */
  maxAttempts?: number;
  /** Delay before attempt n+1 (ms), n ≥ 1. Default 2 s × 2^(n−1), ±20 % jitter, at most 5 min. */
  backoffMs?: (attempt: number) => number;
  /** Consumer group. Default `swe-stream.<stage>`. */
  groupId?: string;
  observer?: RuntimeObserver;
  /** Time source (ms since epoch), for tests. */
  now?: () => number;
  /** Kafka session timeout (ms) of this member. The poll loop never waits on a stage, so long work does not need a long timeout. */
  sessionTimeoutMs?: number;
  /** The topics this stage reads and writes (from the topology the composition root hands in), and where its outcomes go. */
  topics: StageWiring & { outcomes: string };
  /**
   * Admission by free machine resources (./admission.ts): each record's handler starts only once `cost` is
   * admitted by the shared gate, and releases it when the handler settles. `concurrency` stays the upper bound.
   */
  admission?: { gate: ResourceGate; cost: ResourceCost };
}

/** Serdes that can work without a promise per record (EmbeddedSerde). Detected by duck typing; optional. */
interface SyncSerde {
  encodeSync(topic: string, value: unknown): { value: Buffer; headers?: Headers };
  decodeSync(topic: string, value: Buffer, headers: Headers): unknown;
}

/** An output to encode: topic, key and the value under the topic's schema. */
interface EncodeJob {
  topic: string;
  key: string;
  value: unknown;
  /** headers added to the serde's own */
  headers?: Headers;
}

type MaybePromise<T> = T | Promise<T>;
const isPromise = <T>(x: MaybePromise<T>): x is Promise<T> => typeof (x as { then?: unknown } | null)?.then === 'function';

const defaultBackoff = (attempt: number) => {
  const base = Math.min(2000 * 2 ** (attempt - 1), 300_000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
};

const tpKey = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;


/** Runs one stage as one consumer-group member. */
export class StageRuntime<I, O> {
  readonly name: string;
  private readonly o: Required<Omit<StageRuntimeOptions<I, O>, 'observer' | 'topics' | 'sessionTimeoutMs' | 'admission'>> & Pick<StageRuntimeOptions<I, O>, 'observer' | 'topics' | 'sessionTimeoutMs' | 'admission'>;
  private consumer?: GroupConsumer;
  private readonly parts = new Map<string, PartitionState>();
  /** Handlers running now (at most `concurrency`), and envelopes waiting for a slot, in arrival order. */
  private active = 0;
  private waiting: Array<[Entry, Envelope<I>]> = [];
  private waitingHead = 0;
  /** Set at the end of stop(): outcomes that still arrive are dropped (the next owner redoes their records). */
  private closed = false;
  private stopping = false;
  private readonly pendingIo = new Set<Promise<unknown>>();
  private fatal?: Error;
  private onDeath!: (e: Error) => void;
  /** Resolves with the error that stopped this runtime (outputs that could not be written); never rejects. */
  readonly died: Promise<Error> = new Promise((r) => (this.onDeath = r));
  private readonly log;
  /** The serde's synchronous half, when it has one: decode and encode then cost no promise per record. */
  private readonly sync?: SyncSerde;
  /** Entries whose outputs are ready, waiting for the next completion batch (flushed once per macrotask). */
  private ready: Entry[] = [];
  private flushScheduled = false;
  private batchSeq = 0;
  /** `<stage>\0`, the prefix of every outcome id's hashed bytes. */
  private readonly idPrefix: Buffer;
  /** Totals since start, for status and tests. */
  readonly counts = { received: 0, accepted: 0, rejected: 0, failed: 0, retried: 0, deadLettered: 0, skipped: 0, revoked: 0 };

  constructor(opts: StageRuntimeOptions<I, O>) {
    const concurrency = opts.concurrency ?? 1;
    this.o = {
      stage: opts.stage,
      transport: opts.transport,
      serde: opts.serde,
      concurrency,
      window: opts.window ?? Math.max(16, 4 * concurrency),
      maxAttempts: opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      backoffMs: opts.backoffMs ?? defaultBackoff,
      groupId: opts.groupId ?? `swe-stream.${opts.stage.name}`,
      observer: opts.observer,
      topics: opts.topics,
      sessionTimeoutMs: opts.sessionTimeoutMs,
      admission: opts.admission,
      now: opts.now ?? Date.now,
    };
    this.name = opts.stage.name;
    this.log = logger({ component: 'runtime', stage: this.name });
    const sz = opts.serde as Partial<SyncSerde>;
    if (typeof sz.encodeSync === 'function' && typeof sz.decodeSync === 'function') this.sync = sz as SyncSerde;
    this.idPrefix = Buffer.from(`${this.name}\u0000`, 'utf8');
  }

  get inputTopic(): string {
    return this.o.topics.input;
  }
  get outputTopic(): string {
    return this.o.topics.output;
  }
  get groupId(): string {
    return this.o.groupId;
  }
  /** The stage's due-time retry topic, `<input>.retry.<stage>`. */
  get retryTopicName(): string {
    return retryTopicOf(this.o.topics.input, this.name);
  }
  /** The dead-letter topic of its input, `<input>.dlq`. */
  get dlqTopicName(): string {
    return dlqTopicOf(this.o.topics.input);
  }
  /** Topics this member consumes: the stage input and its retry topic. */
  get topics(): string[] {
    return [this.inputTopic, this.retryTopicName];
  }

  /** Records admitted or buffered and not yet committed. */
  inFlight(): number {
    let n = 0;
    for (const p of this.parts.values()) n += p.admitted.length + p.buffer.length;
    return n;
  }

  /** The error that stopped this runtime, if any (outputs that could not be written). */
  get error(): Error | undefined {
    return this.fatal;
  }

  /**
   * Hand an envelope to the stage, or queue it until one of the `concurrency` slots is free (the work RxJS
   * `mergeMap` did, without an observable, a subscriber and two promises per record). Exactly one outcome per
   * envelope: a throw (synchronous or not) becomes `failed`, retriable as `isRetriable` judges (streams/types.ts),
   * the same contract as `fromStage` in streams/stage.ts.
   */
  private submit(e: Entry, env: Envelope<I>): void {
    if (this.active >= this.o.concurrency) {
      this.waiting.push([e, env]);
      return;
    }
    this.active++;
    this.startHandler(e, env);
  }

  /**
   * Run the handler for one envelope. Its start time is stamped on the entry when the handler really starts,
   * so outcome durations measure the stage's own work, not the wait for a slot or for machine resources from
   * the admission gate.
   */
  private startHandler(e: Entry, env: Envelope<I>): void {
    let p: Promise<Outcome<O>>;
    const admission = this.o.admission;
    if (admission) {
      p = (async () => {
        const release = await admission.gate.acquire(admission.cost, env.signal);
        try {
          e.startedAt = this.o.now();
          return await this.o.stage.handle(env);
        } finally {
          release();
        }
      })();
    } else {
      e.startedAt = this.o.now();
      try {
        const r = this.o.stage.handle(env);
        p = isPromise(r) ? r : Promise.resolve(r);
      } catch (err) {
        p = Promise.resolve(fail<O>(err));
      }
    }
    p.then(
      (out) => this.handlerDone(e, env, out),
      (err: unknown) => this.handlerDone(e, env, fail<O>(err)),
    );
  }

  /** A handler settled: take its outcome, then start the next waiting envelope in its slot. */
  private handlerDone(e: Entry, env: Envelope<I>, out: Outcome<O>): void {
    if (this.closed) return;
    // Never throw out of here (it would be an unhandled rejection, outside any handler).
    try {
      this.onOutcome(e, env, out);
    } catch (err) {
      this.die(err instanceof Error ? err : new Error(String(err)));
    }
    if (this.waitingHead < this.waiting.length) {
      const [ne, nenv] = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead++] = undefined as unknown as [Entry, Envelope<I>];
      if (this.waitingHead === this.waiting.length) {
        this.waiting = [];
        this.waitingHead = 0;
      } else if (this.waitingHead >= 1024 && this.waitingHead * 2 >= this.waiting.length) {
        this.waiting = this.waiting.slice(this.waitingHead);
        this.waitingHead = 0;
      }
      this.startHandler(ne, nenv);
    } else this.active--;
  }

  /** Join the group and start processing. @throws TransportError when the bus is unreachable. */
  async start(): Promise<void> {
    this.consumer = this.o.transport.consumer({ groupId: this.o.groupId, topics: this.topics, sessionTimeoutMs: this.o.sessionTimeoutMs });
    await this.consumer.start({
      onRecords: (recs) => this.onRecords(recs),
      onAssigned: (tps) => tps.forEach((tp) => this.assign(tp)),
      onRevoked: (tps) => tps.forEach((tp) => this.revoke(tp)),
    });
  }

  /** Partitions (of the input and retry topics) this member holds now: 0 until the group assigns it some. */
  get assignedPartitions(): number {
    return this.parts.size;
  }

  /** Keep a promise until it settles (stop() waits for these); a rejection is fatal. Used per batch, not per record. */
  private track<T>(p: Promise<T>): void {
    this.pendingIo.add(p);
    p.catch((e: unknown) => this.die(e instanceof Error ? e : new Error(String(e)))).finally(() => this.pendingIo.delete(p));
  }

  private die(e: Error): void {
    if (this.fatal) return;
    this.fatal = e;
    this.log.error({ err: e.message }, 'stage runtime stopped: outputs could not be written');
    this.onDeath(e);
    void this.stop(0);
  }

  private state(tp: TopicPartition): PartitionState {
    const k = tpKey(tp);
    let s = this.parts.get(k);
    if (!s) {
      s = newPartition(tp, k);
      this.parts.set(k, s);
      const st = s;
      this.track(
        (async () => {
          const committed = BigInt(await this.consumer!.committed(tp));
          const processed = await this.consumer!.processedAbove(tp, committed.toString());
          if (st.revoked) return; // revoked meanwhile
          st.committed = committed;
          st.requested = committed;
          st.processed = processed;
          st.ready = true;
          this.pump(st);
        })(),
      );
    }
    return s;
  }

  private assign(tp: TopicPartition): void {
    this.state(tp);
  }

  private revoke(tp: TopicPartition): void {
    const k = tpKey(tp);
    const s = this.parts.get(k);
    if (!s) return;
    this.parts.delete(k);
    s.revoked = true;
    this.counts.revoked++;
    for (const e of s.admitted) clearTimeout(e.timer);
    s.ac.abort(new Error('partition revoked'));
    this.log.info({ topic: tp.topic, partition: tp.partition, aborted: s.admitted.filter((e) => e.status !== 'durable').length }, 'partition revoked');
  }

  private onRecords(recs: ConsumedRecord[]): void {
    if (this.stopping) return;
    this.counts.received += recs.length;
    this.o.observer?.received?.(this.name, recs.length);
    // Transports hand over one partition per call in practice: skip the Set for that case.
    let last: PartitionState | undefined;
    let touched: Set<PartitionState> | undefined;
    for (const r of recs) {
      const s = last && last.tp.partition === r.partition && last.tp.topic === r.topic ? last : this.state(r);
      s.buffer.push(r);
      if (s !== last) {
        if (last) (touched ??= new Set([last])).add(s);
        last = s;
      }
    }
    if (touched) for (const s of touched) this.pump(s);
    else if (last) this.pump(last);
  }

  /** Admit buffered records into the window; pause/resume the partition at the transport. */
  private pump(s: PartitionState): void {
    if (!s.ready || this.stopping || s.revoked) return;
    let i = 0;
    while (i < s.buffer.length && s.admitted.length < this.o.window) {
      const r = s.buffer[i++]!;
      const off = BigInt(r.offset);
      if (off < s.committed || s.byOffset.has(r.offset)) {
        this.counts.skipped++;
        continue; // redelivery of something already committed or admitted
      }
      const e: Entry = { record: r, offset: off, status: 'queued', part: s, ac: s.ac, startedAt: this.o.now(), batch: 0, attempt: 1 };
      s.admitted.push(e);
      s.byOffset.set(r.offset, e);
      if (s.processed.size > 0 && s.processed.has(r.offset)) {
        e.status = 'durable'; // processed before a crash: its outputs are already in the log
        this.counts.skipped++;
        continue;
      }
      this.dispatch(e);
    }
    if (i > 0) s.buffer.splice(0, i);
    if (s.buffer.length > 0 && !s.paused) {
      s.paused = true;
      this.consumer!.pause([s.tp]);
    } else if (s.buffer.length === 0 && s.paused && s.admitted.length < this.o.window) {
      s.paused = false;
      this.consumer!.resume([s.tp]);
    }
    if (this.o.observer?.inFlight) this.o.observer.inFlight(this.name, this.inFlight());
    this.advance(s);
  }

  /** Decode (synchronously when the serde can) and hand the envelope to the stage; undecodable bytes are dead-lettered. */
  private dispatch(e: Entry): void {
    const r = e.record;
    const a = r.headers[H.attempt];
    const attempt = a === undefined ? 1 : Number(a);
    e.attempt = attempt;
    if (r.value === null) {
      this.settle(e, () => this.deadLetter(e, { attempts: attempt, error: { name: 'EmptyRecord', message: 'record has no value' }, reason: 'decode-error' }));
      return;
    }
    if (this.sync) {
      let decoded: unknown;
      try {
        decoded = this.sync.decodeSync(r.topic, r.value, r.headers);
      } catch (err) {
        this.settle(e, () => this.decodeFailed(e, attempt, err));
        return;
      }
      this.run(e, decoded as I, attempt);
      return;
    }
    this.o.serde.decode(r.topic, r.value, r.headers).then(
      (decoded) => this.run(e, decoded as I, attempt),
      (err: unknown) => this.settle(e, () => this.decodeFailed(e, attempt, err)),
    ).catch((err: unknown) => this.die(err instanceof Error ? err : new Error(String(err))));
  }

  /** Bytes that did not decode: an unreachable registry is retried like any transient failure, anything else is dead-lettered. */
  private decodeFailed(e: Entry, attempt: number, err: unknown): MaybePromise<ProduceRecord[]> {
    const x = err as Error & { retriable?: boolean };
    const error = { name: x.name || 'DecodeError', message: x.message };
    // An unreachable registry is an outage, not a bad record: retry it like any transient failure.
    if (x.retriable === true && attempt < this.o.maxAttempts) {
      this.counts.retried++;
      e.counted = 'retried';
      this.o.observer?.retried?.(this.name);
      return [this.retryRecord(e, attempt, error)];
    }
    return this.deadLetter(e, { attempts: attempt, error, reason: x.retriable ? 'max-attempts' : 'decode-error' });
  }

  private run(e: Entry, value: I, attempt: number): void {
    if (e.ac.signal.aborted || this.stopping) return; // revoked or shutting down: the next owner redoes it
    const r = e.record;
    const env: Envelope<I> = {
      key: r.key ?? '',
      value,
      origin: { topic: r.topic, partition: r.partition, offset: r.offset },
      attempt,
      signal: e.ac.signal,
    };
    e.status = 'running';
    const d = r.headers[H.due];
    const wait = d === undefined ? 0 : Number(d) - this.o.now();
    if (wait > 0) {
      // A due-time retry holds its window slot until due; nothing sleeps inside a handler.
      e.timer = setTimeout(() => {
        if (!e.ac.signal.aborted && !this.stopping) {
          e.startedAt = this.o.now();
          this.submit(e, env);
        }
      }, wait);
    } else this.submit(e, env);
  }

  /** The stage's outcome for one envelope → its output records (encoded), queued for the next completion batch. */
  private onOutcome(e: Entry, env: Envelope<I>, out: Outcome<O>): void {
    if (e.part.revoked || e.ac.signal.aborted || e.status !== 'running') return; // revoked or shutting down: the next owner redoes it
    const durationMs = this.o.now() - e.startedAt;
    e.meta = out.meta;
    e.durationMs = durationMs;
    let outputs: MaybePromise<ProduceRecord[]>;
    try {
      outputs = this.outputsOf(e, env, out, durationMs);
    } catch (err) {
      this.die(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.settleOutputs(e, outputs);
    const o = out.kind === 'failed' && out.retriable && env.attempt < this.o.maxAttempts ? null : out;
    if (o && !e.replaced && this.o.observer?.outcome) this.o.observer.outcome(this.name, o.kind, o.kind === 'rejected' ? o.reason : o.kind === 'failed' ? o.error.name : null, durationMs);
  }

  /** The output records of a stage's outcome (encoded), counted. A method, not a closure per record. */
  private outputsOf(e: Entry, env: Envelope<I>, out: Outcome<O>, durationMs: number): MaybePromise<ProduceRecord[]> {
    if (out.kind === 'accepted') {
      const jobs: EncodeJob[] = [];
      if (out.values) for (const v of out.values) jobs.push({ topic: this.outputTopic, key: env.key, value: v });
      else jobs.push({ topic: this.outputTopic, key: env.key, value: out.value });
      jobs.push(this.outcomeJob(e, { kind: 'accepted', output_topic: this.outputTopic }, { attempts: env.attempt, meta: out.meta, durationMs }));
      let recs: MaybePromise<ProduceRecord[]>;
      try {
        recs = this.encodeAll(jobs);
      } catch (err) {
        return this.notEncodable(e, env, out, durationMs, err);
      }
      if (isPromise(recs)) {
        return recs.then(
          (r) => {
            this.counts.accepted++;
            e.counted = 'accepted';
            return r;
          },
          (err: unknown) => this.notEncodable(e, env, out, durationMs, err),
        );
      }
      this.counts.accepted++;
      e.counted = 'accepted';
      return recs;
    }
    if (out.kind === 'rejected') {
      this.counts.rejected++;
      e.counted = 'rejected';
      return this.encodeAll([this.outcomeJob(e, { kind: 'rejected', reason: out.reason, detail: out.detail ?? null }, { attempts: env.attempt, meta: out.meta, durationMs })]);
    }
    if (out.retriable && env.attempt < this.o.maxAttempts) {
      this.counts.retried++;
      e.counted = 'retried';
      this.o.observer?.retried?.(this.name);
      return [this.retryRecord(e, env.attempt, out.error)];
    }
    return this.deadLetter(e, { attempts: env.attempt, error: out.error, reason: out.retriable ? 'max-attempts' : 'not-retriable', meta: out.meta, durationMs });
  }

  /** A stage that emits a record its own schema rejects is a bug: dead-letter, never retry. */
  private notEncodable(e: Entry, env: Envelope<I>, out: Outcome<O>, durationMs: number, err: unknown): MaybePromise<ProduceRecord[]> {
    const x = err as Error;
    return this.deadLetter(e, { attempts: env.attempt, error: { name: x.name, message: `output does not encode: ${x.message}` }, reason: 'not-retriable', meta: out.meta, durationMs });
  }

  /** Encode jobs into records: synchronously (throws) with a sync serde, else one promise (rejects). */
  private encodeAll(jobs: EncodeJob[]): MaybePromise<ProduceRecord[]> {
    if (this.sync) {
      const out = new Array<ProduceRecord>(jobs.length);
      for (let i = 0; i < jobs.length; i++) {
        const j = jobs[i]!;
        const enc = this.sync.encodeSync(j.topic, j.value);
        out[i] = { topic: j.topic, key: j.key, value: enc.value, headers: j.headers ? { ...enc.headers, ...j.headers } : enc.headers };
      }
      return out;
    }
    return Promise.all(jobs.map((j) => this.o.serde.encode(j.topic, j.value))).then((encs) =>
      encs.map((enc, i) => ({ topic: jobs[i]!.topic, key: jobs[i]!.key, value: enc.value, headers: jobs[i]!.headers ? { ...enc.headers, ...jobs[i]!.headers } : enc.headers })),
    );
  }

  /**
   * Compute an entry's outputs (sync or async) and queue them; a failure to build them (e.g. a dead letter
   * that does not encode) is fatal, as a failed write is.
   */
  private settle(e: Entry, build: () => MaybePromise<ProduceRecord[]>): void {
    // Work in progress (stop() waits for it), also for records that never reach the stage (decode failures).
    e.status = 'running';
    let outputs: MaybePromise<ProduceRecord[]>;
    try {
      outputs = build();
    } catch (err) {
      this.die(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.settleOutputs(e, outputs);
  }

  /** Queue an entry's outputs once they are built (now, or when their promise resolves; a rejection is fatal). */
  private settleOutputs(e: Entry, outputs: MaybePromise<ProduceRecord[]>): void {
    if (isPromise(outputs)) outputs.then((o) => this.enqueue(e, o), (err: unknown) => this.die(err instanceof Error ? err : new Error(String(err))));
    else this.enqueue(e, outputs);
  }

  /** Queue an entry's outputs for the next completion batch (one per macrotask, so every outcome of this tick joins it). */
  private enqueue(e: Entry, outputs: ProduceRecord[]): void {
    if (e.ac.signal.aborted || e.part.revoked) return;
    const tooBig = e.deadLettered ? undefined : oversizeError(outputs, this.o.transport.maxRecordBytes);
    if (tooBig) {
      // One oversize output is that record's failure, never a refused batch and a dead stage.
      this.uncount(e);
      this.settle(e, () => this.deadLetter(e, { attempts: e.attempt, error: tooBig, reason: 'record-too-large', meta: e.meta, durationMs: e.durationMs }));
      return;
    }
    e.status = 'completing';
    e.outputs = outputs;
    this.ready.push(e);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushCompletions());
    }
  }

  /** Take back the count an entry's outcome was tallied under (its outputs are being replaced by a dead letter). */
  private uncount(e: Entry): void {
    e.replaced = true;
    if (e.counted) this.counts[e.counted]--;
    e.counted = undefined;
  }

  /**
   * Hand every ready entry to the transport in one batch. Per partition, the batch carries a commit when it
   * moves the low watermark: the offset of the first admitted entry that is neither durable already nor in
   * this batch. It is written with the batch (embedded: same transaction, so no processed marks for the
   * covered offsets; Kafka: sent after the batch's outputs are acknowledged).
   */
  private flushCompletions(): void {
    this.flushScheduled = false;
    const all = this.ready;
    this.ready = [];
    const batch = all.filter((e) => !e.ac.signal.aborted && !e.part.revoked && e.status === 'completing');
    if (batch.length === 0) return;
    const seq = ++this.batchSeq;
    const lastOf = new Map<PartitionState, number>();
    const completions = new Array<Completion>(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      e.batch = seq;
      // A ConsumedRecord is a TopicPartition & { offset }: no copy per record.
      completions[i] = { input: e.record, outputs: e.outputs! };
      e.outputs = undefined;
      lastOf.set(e.part, i);
    }
    const commits: Array<[PartitionState, bigint, number]> = [];
    if (this.consumer!.completeMany) {
      for (const [s, i] of lastOf) {
        const commit = commitWithBatch(s, seq);
        if (commit > s.requested) {
          completions[i]!.commit = commit.toString();
          commits.push([s, commit, i]);
        }
      }
    }
    this.track(this.write(batch, completions, commits, [...lastOf.keys()]));
  }

  /** Write a batch (retrying transient transport errors), then mark it durable and advance the watermarks. */
  private async write(batch: Entry[], completions: Completion[], commits: Array<[PartitionState, bigint, number]>, parts: PartitionState[]): Promise<void> {
    let ok: boolean[];
    try {
      ok = await this.completeRetrying(completions);
    } catch (err) {
      if (!(err instanceof TransportError && err.refused)) throw err;
      this.log.warn({ err: err.message, records: completions.length }, 'the bus refused a batch; writing its records one by one');
      ok = await this.completeIsolated(batch, completions);
    }
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      // Aborted by shutdown after reaching the transport still counts: the final watermark commits it.
      if (ok[i] && !e.part.revoked) e.status = 'durable';
    }
    for (const [s, commit, i] of commits) if (ok[i] && commit > s.requested) s.requested = commit;
    for (const s of parts) {
      if (s.revoked) continue;
      this.advance(s);
      this.pump(s);
    }
  }

  /** Hand completions to the transport, retrying transient transport errors (5 attempts, 400 ms doubling). @throws TransportError otherwise */
  private async completeRetrying(completions: Completion[]): Promise<boolean[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const c = this.consumer!;
        // Without completeMany: one complete() per record, and the commit follows through advance().
        return c.completeMany ? await c.completeMany(completions) : await Promise.all(completions.map((x) => c.complete(x)));
      } catch (err) {
        if (!(err instanceof TransportError && err.retriable) || attempt >= 5) throw err;
        this.log.warn({ err: (err as Error).message, attempt }, 'writing outputs failed; retrying');
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  /**
   * After the bus refused a batch: each completion alone, in order (so a commit still never precedes an earlier
   * record's outputs); one whose outputs are refused gets a dead letter instead. A refused dead letter is fatal.
   */
  private async completeIsolated(batch: Entry[], completions: Completion[]): Promise<boolean[]> {
    const ok = new Array<boolean>(completions.length);
    for (let i = 0; i < completions.length; i++) {
      const e = batch[i]!;
      try {
        ok[i] = (await this.completeRetrying([completions[i]!]))[0]!;
      } catch (err) {
        if (!(err instanceof TransportError && err.refused) || e.deadLettered) throw err;
        this.uncount(e);
        const outputs = await this.deadLetter(e, { attempts: e.attempt, error: { name: 'RecordRefused', message: err.message }, reason: 'record-refused', meta: e.meta, durationMs: e.durationMs });
        ok[i] = (await this.completeRetrying([{ ...completions[i]!, outputs }]))[0]!;
      }
    }
    return ok;
  }

  /** The StageOutcome of an entry as an encode job. */
  private outcomeJob(e: Entry, end: Partial<StageOutcome> & { kind: StageOutcome['kind'] }, acct: { attempts: number; meta?: OutcomeMeta; durationMs: number }): EncodeJob {
    const value = outcomeRecord({ stage: this.name, idPrefix: this.idPrefix, record: e.record, end, ...acct, nowMs: this.o.now() });
    return { topic: this.o.topics.outcomes, key: value.key, value };
  }

  private retryRecord(e: Entry, attempt: number, error: ErrorInfo): ProduceRecord {
    return retryRecord({ record: e.record, topic: this.retryTopicName, attempt, dueMs: this.o.now() + this.o.backoffMs(attempt), error });
  }

  /** The DeadLetter record (original coordinates, attempts, error class) and the failed StageOutcome, encoded; counted and observed. */
  private deadLetter(e: Entry, end: { attempts: number; error: ErrorInfo; reason: string; meta?: OutcomeMeta; durationMs?: number }): MaybePromise<ProduceRecord[]> {
    const { attempts, error, reason } = end;
    const durationMs = end.durationMs ?? 0;
    const dl = deadLetterRecord({ stage: this.name, record: e.record, attempts, error, reason, nowMs: this.o.now(), maxRecordBytes: this.o.transport.maxRecordBytes });
    e.deadLettered = true;
    this.counts.failed++;
    this.counts.deadLettered++;
    this.o.observer?.deadLettered?.(this.name, reason);
    if (reason === 'decode-error' || reason.startsWith('record-')) this.o.observer?.outcome?.(this.name, 'failed', error.name, durationMs);
    const failed = { kind: 'failed', reason, detail: error.message.slice(0, 2000), error_class: error.name, retriable: reason === 'max-attempts' } as const;
    return this.encodeAll([
      { topic: this.dlqTopicName, key: e.record.key ?? '', value: dl.value, headers: dl.headers },
      this.outcomeJob(e, failed, { attempts, meta: end.meta, durationMs }),
    ]);
  }

  /** Pop durable entries off the head; commit the new low watermark when it passed what was requested. */
  private advance(s: PartitionState): void {
    const commit = popDurable(s);
    if (commit !== undefined) this.track(this.consumer!.commit(s.tp, commit.toString()));
  }


  /**
   * Graceful stop: no new intake, in-flight work gets until `deadlineMs` to finish, the rest is aborted
   * (redelivered to the next owner), the final watermark is committed, the member leaves the group.
   */
  async stop(deadlineMs = 30_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const s of this.parts.values()) s.buffer = [];
    const until = Date.now() + deadlineMs;
    while (Date.now() < until && [...this.parts.values()].some((s) => s.admitted.some((e) => e.status === 'running' || e.status === 'completing'))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // Whatever has not reached the transport by the deadline is aborted and redelivered to the next owner;
    // completions already handed to the transport still finish.
    for (const s of this.parts.values()) {
      for (const e of s.admitted) clearTimeout(e.timer);
      s.ac.abort(new Error('shutdown'));
    }
    while (this.pendingIo.size) await Promise.allSettled([...this.pendingIo]);
    this.closed = true;
    this.waiting = [];
    this.waitingHead = 0;
    await this.consumer?.stop();
    await this.o.stage.close?.();
  }
}
