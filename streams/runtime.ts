/**
 * The stage runtime (ARCHITECTURE.md §3–§4): consume → decode → operator → encode → produce → commit, for
 * one stage as one consumer-group member, on any {@link Transport}.
 *
 * What it guarantees:
 * - Bounded intake: at most `window` records per partition are admitted (not yet committed); when a
 *   partition's window is full it is paused at the transport and resumed when it drains. RxJS has no
 *   backpressure, so the bound lives here, at the source, not in `mergeMap`'s buffer.
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
 */
import { Subject, type Subscription } from 'rxjs';
import { createHash } from 'node:crypto';
import type { Transport, GroupConsumer, ConsumedRecord, ProduceRecord, TopicPartition, Headers } from './transport.js';
import { TransportError } from './transport.js';
import type { Serde } from './serde.js';
import type { Envelope, Outcome, OutcomeMeta } from './types.js';
import { fromStage, type Stage } from './stage.js';
import { TOPOLOGY, retryTopic, dlqTopic, type StageName } from './topics.js';
import type { StageOutcome, DeadLetter } from '../schemas/types.gen.js';
import { logger } from './log.js';

/** Header names the runtime writes on retry records. */
export const H = {
  attempt: 'swe-attempt',
  due: 'swe-due-ms',
  originTopic: 'swe-origin-topic',
  originPartition: 'swe-origin-partition',
  originOffset: 'swe-origin-offset',
  lastError: 'swe-last-error',
} as const;

/** Optional observer for metrics and progress (streams/metrics.ts implements it). Durations in ms. */
export interface RuntimeObserver {
  received?(stage: string, n: number): void;
  outcome?(stage: string, kind: StageOutcome['kind'], reason: string | null, durationMs: number): void;
  retried?(stage: string): void;
  deadLettered?(stage: string, reason: string): void;
  inFlight?(stage: string, n: number): void;
}

export interface StageRuntimeOptions<I, O> {
  stage: Stage<I, O>;
  transport: Transport;
  serde: Serde;
  /** Records processed at once by this member (RxJS mergeMap concurrency). Default 1. */
  concurrency?: number;
  /** Admitted, not yet committed records per partition. Default max(16, 4 × concurrency). */
  window?: number;
  /** Attempts before dead-lettering a retriable failure. Default 3. */
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
  /** Override the topology's topics (benchmarks, custom pipelines); topics must be known to streams/topics.ts. */
  topics?: { input: string; output: string };
}

type EntryStatus = 'queued' | 'running' | 'completing' | 'durable';

interface Entry {
  record: ConsumedRecord;
  offset: bigint;
  status: EntryStatus;
  /** the partition's controller: work is aborted per partition (revocation) or all at once (shutdown) */
  ac: AbortController;
  startedAt: number;
  timer?: NodeJS.Timeout;
}

interface PartitionState {
  tp: TopicPartition;
  ready: boolean;
  committed: bigint;
  requested: bigint;
  processed: Set<string>;
  admitted: Entry[];
  byOffset: Map<string, Entry>;
  buffer: ConsumedRecord[];
  paused: boolean;
  ac: AbortController;
}

const defaultBackoff = (attempt: number) => {
  const base = Math.min(2000 * 2 ** (attempt - 1), 300_000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
};

const tpKey = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;

/** Runs one stage as one consumer-group member. */
export class StageRuntime<I, O> {
  readonly name: StageName;
  private readonly o: Required<Omit<StageRuntimeOptions<I, O>, 'observer' | 'topics' | 'sessionTimeoutMs'>> & Pick<StageRuntimeOptions<I, O>, 'observer' | 'topics' | 'sessionTimeoutMs'>;
  private consumer?: GroupConsumer;
  private readonly parts = new Map<string, PartitionState>();
  private readonly input$ = new Subject<Envelope<I>>();
  private sub?: Subscription;
  private stopping = false;
  private readonly pendingIo = new Set<Promise<unknown>>();
  private fatal?: Error;
  private readonly log;
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
      maxAttempts: opts.maxAttempts ?? 3,
      backoffMs: opts.backoffMs ?? defaultBackoff,
      groupId: opts.groupId ?? `swe-stream.${opts.stage.name}`,
      observer: opts.observer,
      topics: opts.topics,
      sessionTimeoutMs: opts.sessionTimeoutMs,
      now: opts.now ?? Date.now,
    };
    this.name = opts.stage.name;
    this.log = logger({ component: 'runtime', stage: this.name });
  }

  get inputTopic(): string {
    return this.o.topics?.input ?? TOPOLOGY[this.name].input;
  }
  get outputTopic(): string {
    return this.o.topics?.output ?? TOPOLOGY[this.name].output;
  }
  get groupId(): string {
    return this.o.groupId;
  }
  /** The stage's retry topic (derived from the input topic when the topology is overridden). */
  get retryTopicName(): string {
    return this.o.topics ? `${this.o.topics.input}.retry.${this.name}` : retryTopic(this.name);
  }
  get dlqTopicName(): string {
    return this.o.topics ? `${this.o.topics.input}.dlq` : dlqTopic(this.name);
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

  /** Join the group and start processing. @throws TransportError when the bus is unreachable. */
  async start(): Promise<void> {
    this.sub = this.input$
      .pipe(fromStage(this.o.stage, this.o.concurrency))
      .subscribe({
        next: (env) => this.track(this.onOutcome(env)),
        error: (e: unknown) => this.die(e instanceof Error ? e : new Error(String(e))),
      });
    this.consumer = this.o.transport.consumer({ groupId: this.o.groupId, topics: this.topics, sessionTimeoutMs: this.o.sessionTimeoutMs });
    await this.consumer.start({
      onRecords: (recs) => this.onRecords(recs),
      onAssigned: (tps) => tps.forEach((tp) => this.assign(tp)),
      onRevoked: (tps) => tps.forEach((tp) => this.revoke(tp)),
    });
  }

  private track<T>(p: Promise<T>): void {
    this.pendingIo.add(p);
    p.catch((e: unknown) => this.die(e instanceof Error ? e : new Error(String(e)))).finally(() => this.pendingIo.delete(p));
  }

  private die(e: Error): void {
    if (this.fatal) return;
    this.fatal = e;
    this.log.error({ err: e.message }, 'stage runtime stopped: outputs could not be written');
    void this.stop(0);
  }

  private state(tp: TopicPartition): PartitionState {
    const k = tpKey(tp);
    let s = this.parts.get(k);
    if (!s) {
      s = { tp: { ...tp }, ready: false, committed: 0n, requested: 0n, processed: new Set(), admitted: [], byOffset: new Map(), buffer: [], paused: false, ac: new AbortController() };
      this.parts.set(k, s);
      const st = s;
      this.track(
        (async () => {
          const committed = BigInt(await this.consumer!.committed(tp));
          const processed = await this.consumer!.processedAbove(tp, committed.toString());
          if (this.parts.get(k) !== st) return; // revoked meanwhile
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
    this.counts.revoked++;
    for (const e of s.admitted) clearTimeout(e.timer);
    s.ac.abort(new Error('partition revoked'));
    this.log.info({ topic: tp.topic, partition: tp.partition, aborted: s.admitted.filter((e) => e.status !== 'durable').length }, 'partition revoked');
  }

  private onRecords(recs: ConsumedRecord[]): void {
    if (this.stopping) return;
    this.counts.received += recs.length;
    this.o.observer?.received?.(this.name, recs.length);
    const touched = new Set<PartitionState>();
    for (const r of recs) {
      const s = this.state(r);
      s.buffer.push(r);
      touched.add(s);
    }
    for (const s of touched) this.pump(s);
  }

  /** Admit buffered records into the window; pause/resume the partition at the transport. */
  private pump(s: PartitionState): void {
    if (!s.ready || this.stopping) return;
    let i = 0;
    while (i < s.buffer.length && s.admitted.length < this.o.window) {
      const r = s.buffer[i++]!;
      const off = BigInt(r.offset);
      if (off < s.committed || s.byOffset.has(r.offset)) {
        this.counts.skipped++;
        continue; // redelivery of something already committed or admitted
      }
      const e: Entry = { record: r, offset: off, status: 'queued', ac: s.ac, startedAt: this.o.now() };
      s.admitted.push(e);
      s.byOffset.set(r.offset, e);
      if (s.processed.has(r.offset)) {
        e.status = 'durable'; // processed before a crash: its outputs are already in the log
        this.counts.skipped++;
        continue;
      }
      this.dispatch(s, e);
    }
    s.buffer.splice(0, i);
    if (s.buffer.length > 0 && !s.paused) {
      s.paused = true;
      this.consumer!.pause([s.tp]);
    } else if (s.buffer.length === 0 && s.paused && s.admitted.length < this.o.window) {
      s.paused = false;
      this.consumer!.resume([s.tp]);
    }
    this.o.observer?.inFlight?.(this.name, this.inFlight());
    this.advance(s);
  }

  private dispatch(s: PartitionState, e: Entry): void {
    const r = e.record;
    const attempt = Number(r.headers[H.attempt] ?? '1');
    if (r.value === null) {
      this.track(this.finish(s, e, this.deadLetter(e, attempt, { name: 'EmptyRecord', message: 'record has no value' }, 'decode-error')));
      return;
    }
    const value = r.value;
    this.track(
      (async () => {
        let decoded: unknown;
        try {
          decoded = await this.o.serde.decode(r.topic, value, r.headers);
        } catch (err) {
          const x = err as Error & { retriable?: boolean };
          const error = { name: x.name || 'DecodeError', message: x.message };
          // An unreachable registry is an outage, not a bad record: retry it like any transient failure.
          if (x.retriable === true && attempt < this.o.maxAttempts) {
            this.counts.retried++;
            this.o.observer?.retried?.(this.name);
            await this.finish(s, e, Promise.resolve([this.retryRecord(e, attempt, error)]));
          } else await this.finish(s, e, this.deadLetter(e, attempt, error, x.retriable ? 'max-attempts' : 'decode-error'));
          return;
        }
        const env: Envelope<I> = {
          key: r.key ?? '',
          value: decoded as I,
          origin: { topic: r.topic, partition: r.partition, offset: r.offset },
          attempt,
          signal: e.ac.signal,
        };
        const due = Number(r.headers[H.due] ?? '0');
        const wait = due - this.o.now();
        e.status = 'running';
        if (wait > 0) {
          // A due-time retry holds its window slot until due; nothing sleeps inside a handler.
          e.timer = setTimeout(() => {
            if (!e.ac.signal.aborted && !this.stopping) {
              e.startedAt = this.o.now();
              this.input$.next(env);
            }
          }, wait);
        } else this.input$.next(env);
      })(),
    );
  }

  private async onOutcome(env: Envelope<Outcome<O>>): Promise<void> {
    const s = this.parts.get(tpKey(env.origin));
    const e = s?.byOffset.get(env.origin.offset);
    if (!s || !e || e.ac.signal.aborted || e.status !== 'running') return; // revoked or shutting down: the next owner redoes it
    const out = env.value;
    const durationMs = this.o.now() - e.startedAt;
    let outputs: ProduceRecord[];
    if (out.kind === 'accepted') {
      try {
        const values = out.values ?? [out.value];
        outputs = [];
        for (const v of values) {
          const enc = await this.o.serde.encode(this.outputTopic, v);
          outputs.push({ topic: this.outputTopic, key: env.key, value: enc.value, headers: enc.headers });
        }
        outputs.push(await this.outcomeRecord(e, env.attempt, { kind: 'accepted', output_topic: this.outputTopic }, out.meta, durationMs));
        this.counts.accepted++;
      } catch (err) {
        // A stage that emits a record its own schema rejects is a bug: dead-letter, never retry.
        const x = err as Error;
        outputs = await this.deadLetter(e, env.attempt, { name: x.name, message: `output does not encode: ${x.message}` }, 'not-retriable', out.meta, durationMs);
      }
    } else if (out.kind === 'rejected') {
      outputs = [await this.outcomeRecord(e, env.attempt, { kind: 'rejected', reason: out.reason, detail: out.detail ?? null }, out.meta, durationMs)];
      this.counts.rejected++;
    } else if (out.retriable && env.attempt < this.o.maxAttempts) {
      outputs = [this.retryRecord(e, env.attempt, out.error)];
      this.counts.retried++;
      this.o.observer?.retried?.(this.name);
    } else {
      outputs = await this.deadLetter(e, env.attempt, out.error, out.retriable ? 'max-attempts' : 'not-retriable', out.meta, durationMs);
    }
    const o = out.kind === 'failed' && out.retriable && env.attempt < this.o.maxAttempts ? null : out;
    if (o) this.o.observer?.outcome?.(this.name, o.kind, o.kind === 'rejected' ? o.reason : o.kind === 'failed' ? o.error.name : null, durationMs);
    await this.finish(s, e, Promise.resolve(outputs));
  }

  /** Original coordinates of a record (retry records carry them in headers). */
  private origin(e: Entry): { topic: string; partition: number; offset: string } {
    const h = e.record.headers;
    if (h[H.originTopic]) return { topic: h[H.originTopic]!, partition: Number(h[H.originPartition]), offset: h[H.originOffset]! };
    return { topic: e.record.topic, partition: e.record.partition, offset: e.record.offset };
  }

  private outcomeId(e: Entry): string {
    // Deterministic: stage + key + input bytes, so a replay or a redelivery yields the same id.
    const h = createHash('sha256').update(this.name).update('\0').update(e.record.key ?? '').update('\0');
    if (e.record.value) h.update(e.record.value);
    return h.digest('hex');
  }

  private async outcomeRecord(
    e: Entry,
    attempts: number,
    o: Partial<StageOutcome> & { kind: StageOutcome['kind'] },
    meta: OutcomeMeta | undefined,
    durationMs: number,
  ): Promise<ProduceRecord> {
    const org = this.origin(e);
    const rec: StageOutcome = {
      outcome_id: this.outcomeId(e),
      stage: this.name,
      key: e.record.key ?? '',
      kind: o.kind,
      reason: o.reason ?? null,
      detail: o.detail ?? null,
      error_class: o.error_class ?? null,
      retriable: o.retriable ?? null,
      attempts,
      input_topic: org.topic,
      input_partition: org.partition,
      input_offset: org.offset,
      output_topic: o.output_topic ?? null,
      ts_ms: this.o.now(),
      duration_ms: Math.max(0, Math.round(durationMs)),
      repo: meta?.repo ?? null,
      language: meta?.language ?? null,
      method: meta?.method ?? null,
      model: meta?.model ?? null,
      cache_hit: meta?.cacheHit ?? null,
      tokens_in: meta?.tokensIn ?? 0,
      tokens_out: meta?.tokensOut ?? 0,
      cost_usd: meta?.costUsd ?? 0,
    };
    const enc = await this.o.serde.encode('stage.outcomes', rec);
    return { topic: 'stage.outcomes', key: rec.key, value: enc.value, headers: enc.headers };
  }

  private retryRecord(e: Entry, attempt: number, error: { name: string; message: string }): ProduceRecord {
    const org = this.origin(e);
    const headers: Headers = {
      ...e.record.headers,
      [H.attempt]: String(attempt + 1),
      [H.due]: String(this.o.now() + this.o.backoffMs(attempt)),
      [H.originTopic]: org.topic,
      [H.originPartition]: String(org.partition),
      [H.originOffset]: org.offset,
      [H.lastError]: `${error.name}: ${error.message}`.slice(0, 1000),
    };
    return { topic: this.retryTopicName, key: e.record.key ?? '', value: e.record.value!, headers };
  }

  private async deadLetter(
    e: Entry,
    attempts: number,
    error: { name: string; message: string },
    reason: string,
    meta?: OutcomeMeta,
    durationMs = 0,
  ): Promise<ProduceRecord[]> {
    const org = this.origin(e);
    const dl: DeadLetter = {
      stage: this.name,
      key: e.record.key,
      original_topic: org.topic,
      original_partition: org.partition,
      original_offset: org.offset,
      attempts,
      error_class: error.name,
      error_message: error.message.slice(0, 10_000),
      reason,
      value: e.record.value,
      ts_ms: this.o.now(),
    };
    const enc = await this.o.serde.encode(this.dlqTopicName, dl);
    this.counts.failed++;
    this.counts.deadLettered++;
    this.o.observer?.deadLettered?.(this.name, reason);
    if (reason === 'decode-error') this.o.observer?.outcome?.(this.name, 'failed', error.name, durationMs);
    return [
      { topic: this.dlqTopicName, key: e.record.key ?? '', value: enc.value, headers: enc.headers },
      await this.outcomeRecord(e, attempts, { kind: 'failed', reason, detail: error.message.slice(0, 2000), error_class: error.name, retriable: reason === 'max-attempts' }, meta, durationMs),
    ];
  }

  /** Write an entry's outputs (retrying transient transport errors), then advance the partition's watermark. */
  private async finish(s: PartitionState, e: Entry, outputsP: Promise<ProduceRecord[]>): Promise<void> {
    const outputs = await outputsP;
    if (e.ac.signal.aborted || this.parts.get(tpKey(s.tp)) !== s) return;
    e.status = 'completing';
    // Commit along with the outputs when everything before this record is already durable.
    // Durable entries at the head are popped at once by advance(), so "everything before is durable" is "e is the head".
    let commit: bigint | undefined;
    if (s.admitted[0] === e) {
      let j = 1;
      while (j < s.admitted.length && s.admitted[j]!.status === 'durable') j++;
      commit = j < s.admitted.length ? s.admitted[j]!.offset : s.admitted[s.admitted.length - 1]!.offset + 1n;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const ok = await this.consumer!.complete({ input: { ...s.tp, offset: e.record.offset }, outputs, commit: commit?.toString() });
        if (!ok) return;
        break;
      } catch (err) {
        if (!(err instanceof TransportError && err.retriable) || attempt >= 5) throw err;
        this.log.warn({ err: (err as Error).message, attempt }, 'writing outputs failed; retrying');
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
    e.status = 'durable';
    if (commit !== undefined && commit > s.requested) s.requested = commit;
    this.advance(s);
    this.pump(s);
  }

  /** Pop durable entries off the head; commit the new low watermark when it passed what was requested. */
  private advance(s: PartitionState): void {
    let moved = false;
    while (s.admitted.length && s.admitted[0]!.status === 'durable') {
      const e = s.admitted.shift()!;
      s.byOffset.delete(e.record.offset);
      s.committed = e.offset + 1n;
      moved = true;
    }
    if (moved && s.committed > s.requested) {
      s.requested = s.committed;
      const off = s.committed.toString();
      this.track(this.consumer!.commit(s.tp, off));
    }
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
    this.sub?.unsubscribe();
    await this.consumer?.stop();
    await this.o.stage.close?.();
  }
}
