/**
 * Kafka transport (kafkajs 2.2.4) behind the project's {@link Transport} contract (streams/transport.ts).
 *
 * - Topics: `ensureTopics` creates missing topics with their partition count and a configurable replication
 *   factor (default 1, a one-node dev/test broker); existing topics are left as they are.
 * - Producer: idempotent (`idempotent: true`, acks = -1, one request in flight — kafkajs assigns sequence
 *   numbers per partition when it builds a request, so concurrent requests could reorder or be taken for
 *   duplicates). Calls to `produce` are coalesced: while one `sendBatch` is in flight the next calls queue,
 *   and the queue goes out as ONE `sendBatch` grouped by topic (group commit). That keeps the hot path at a few
 *   large requests instead of one request per record.
 * - Consumer-group members (`consumer()`): autoCommit off; `eachBatch` only converts the records, hands
 *   them to `handlers.onRecords` and returns — kafkajs has no background heartbeat (it heartbeats from its
 *   fetch loop), so minutes-long work NEVER runs inside its callbacks (ARCHITECTURE.md §4). Assignment is
 *   tracked from the GROUP_JOIN event; revoked = previous − new. Completions and commits for partitions no
 *   longer assigned are dropped (resolve false) and never sent (see {@link KafkaGroupConsumer.commit}).
 * - Kafka has no transaction between the outputs and the commit here: delivery is at-least-once and sinks
 *   dedupe by deterministic ids. `processedAbove` is always empty.
 * - Keyed stores (`openStore`, streams/store.ts): one compacted topic per namespace (`store.<namespace>`), read
 *   from the beginning by every process that opens it and tailed from then on (like a Kafka Streams
 *   GlobalKTable); `produce(records, state)` writes the state to those topics once the records are
 *   acknowledged (a crash repeats, never loses, events; sinks dedupe).
 *
 * Sources: Kafka protocol guide (OffsetCommit carries generation and member id, committed offset = next offset
 * to read), KIP-98 (idempotent producer: ≤ 5 in-flight requests, acks=all), kafkajs 2.2.4 docs and source
 * (consumer/runner.js, consumer/consumerGroup.js).
 */
import kafkajs from 'kafkajs';
import type { Admin, Consumer, EachBatchPayload, ICustomPartitioner, IHeaders, KafkaMessage, LogEntry, Message, Producer } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import type pino from 'pino';
import { DEFAULT_BROKERS } from '../endpoints.js';
import { checkNamespace, storeTopic, type KeyedStore, type StoreWrite, type StoreWriteOptions } from '../store.js';
import { logger as makeLogger } from '../log.js';
import {
  TransportError,
  partitionFor,
  recordBytes,
  type Completion,
  type ConsumedRecord,
  type ConsumerHandlers,
  type ConsumerOptions,
  type GroupConsumer,
  type Headers,
  type PartitionOffsets,
  type ProduceRecord,
  type TopicPartition,
  type TopicSpec,
  type Transport,
} from '../transport.js';

const { Kafka, logLevel, Partitioners } = kafkajs;
type KafkaClient = InstanceType<typeof Kafka>;

/** Options of {@link KafkaTransport}. All durations in milliseconds. */
export interface KafkaTransportOptions {
  /** `host:port` list. Default: env SWE_STREAM_KAFKA_BROKERS (comma-separated), else `127.0.0.1:9092`. */
  brokers?: string[];
  /** Client id sent to the broker (shows in broker logs and quotas). Default `swe-stream`. */
  clientId?: string;
  /** Replication factor of topics created by {@link KafkaTransport.ensureTopics}. Default 1. */
  replicationFactor?: number;
  /** TCP connect timeout per attempt. Default 1000. */
  connectionTimeoutMs?: number;
  /** Retries of connects and admin requests (exponential backoff from 250 ms, max 2 s): the default 5 fails an unreachable broker in ~6 s. */
  retries?: number;
  /** Partitions of a store topic created by {@link KafkaTransport.openStore}. Default 1 (stores are small; one partition keeps one order). */
  storePartitions?: number;
  /** How long a store may take to read its topic to the end when opened (ms). Default 60 000. */
  storeReadyTimeoutMs?: number;
  /**
   * Largest single record (bytes, see recordBytes) this transport sends; a larger one is refused before it
   * reaches the broker (TransportError with `refused`). Keep it under the broker's and topics'
   * `message.max.bytes` (default 1,048,588) less the record batch overhead (61 bytes). Default 1,000,000.
   */
  maxRecordBytes?: number;
  /** Longest wait for a topic's metadata (it exists and every partition has a leader) before a read or offsets request gives up. Default 30,000. */
  metadataWaitMs?: number;
  /** Max bytes of records (values, keys, headers, overhead; see recordBytes) per produce request; keeps every partition's record batch under the broker's 1 MiB `message.max.bytes`. Default 900_000. */
  maxRequestBytes?: number;
  /**
   * How long a produce rides out a bus that does not answer (connection refused or lost, no leader, request
   * timed out: retriable errors) before it rejects: the batch is sent again with backoff (250 ms doubling, at
   * most 5 s) while records queued meanwhile wait behind it. A broker restart takes tens of seconds; without
   * this, kafkajs' client-level retries (`retries`, ~6 s) made every produce during one fail, and the
   * runtime's and the source runner's callers died with it. Default 120,000.
   */
  outageBudgetMs?: number;
  /** Logger for this transport and the routed kafkajs logs. Default: a child of the process logger. */
  logger?: pino.Logger;
}

/** Default broker list: SWE_STREAM_KAFKA_BROKERS (comma-separated) or {@link DEFAULT_BROKERS}. */
export function defaultBrokers(): string[] {
  const env = process.env.SWE_STREAM_KAFKA_BROKERS;
  return env ? env.split(',').map((s) => s.trim()).filter(Boolean) : [...DEFAULT_BROKERS];
}

/** kafkajs error names/types that mean "the group is rebalancing or our generation is stale" (non-retriable in kafkajs). */
/** kafkajs error types that mean our metadata is stale: refresh and retry. */
/** Broker error types that refuse the records themselves: resending the same bytes cannot succeed. */
const REFUSED_RECORD_ERRORS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_REQUIRED_ACKS']);
const STALE_METADATA_ERRORS = new Set(['NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER', 'UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);
const REBALANCE_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

/** The protocol error type of a kafkajs error, following `cause` chains (retriers wrap the original). */
function errorType(err: unknown): string | undefined {
  for (let e = err as { type?: string; cause?: unknown; originalError?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (typeof e.type === 'string') return e.type;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return undefined;
}

/** Backoff before the n-th resend (1-based) while the bus is away: 250 ms doubling, at most 5 s. */
function outageDelayMs(attempt: number): number {
  return Math.min(5000, 250 * 2 ** Math.min(attempt - 1, 5));
}

/** The error a produce or commit ends with once the bus stayed away for the whole outage budget (retriable). */
function outageExpired(e: TransportError, failingMs: number, cause: unknown): TransportError {
  return new TransportError(`${e.message} (the bus did not answer for ${Math.round(failingMs / 1000)} s)`, true, { cause });
}

/**
 * Whether a kafkajs error is, or wraps, a lost or refused connection (retries exhausted against a broker that
 * is away). kafkajs wraps it in KafkaJSNonRetriableError (retriable: false) when an outer retrier bails out —
 * as the consumer's commitOffsets does while the broker restarts — so the `cause`/`originalError` chain is
 * followed; a broker that is away is transient whatever the wrapper says.
 */
function lostConnection(err: unknown): boolean {
  for (let e = err as { name?: string; cause?: unknown; originalError?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (e.name === 'KafkaJSNumberOfRetriesExceeded' || e.name === 'KafkaJSConnectionError') return true;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return false;
}

/** Map a kafkajs error to a TransportError (kafkajs marks retriable errors; unknown ones count as retriable, like kafkajs does). */
function toTransportError(what: string, err: unknown): TransportError {
  if (err instanceof TransportError) return err;
  const type = errorType(err);
  if (type && REFUSED_RECORD_ERRORS.has(type)) return new TransportError(`${what}: the broker refused the records (${type})`, false, { cause: err, refused: true });
  const e = err as { message?: string; retriable?: boolean; name?: string };
  const retriable = e?.retriable !== false || lostConnection(err);
  return new TransportError(`${what}: ${e?.message ?? String(err)}`, retriable, { cause: err });
}

/**
 * kafkajs warns whenever the idempotent producer has a finite retry budget. Ours is finite on purpose (about
 * two minutes, see the producer): after that, produce() rejects with a retriable TransportError and the caller
 * decides, instead of hanging forever on a dead broker. Idempotence still dedupes retries inside that budget.
 */
const NOISE_IDEMPOTENT_RETRIES = 'Limiting retries for the idempotent producer may invalidate EoS guarantees';

/**
 * A kafkajs logCreator that routes kafkajs logs into pino at warn and above (kafkajs is verbose at info).
 * Stack traces are dropped: every failure that matters surfaces as a TransportError from our own calls.
 */
function kafkajsLogCreator(log: pino.Logger) {
  return () =>
    ({ namespace, level, log: entry }: LogEntry): void => {
      const { message, stack: _stack, timestamp: _ts, logger: _l, ...extra } = entry as LogEntry['log'] & { stack?: string };
      const fields = { kafkajs: namespace, ...extra };
      if (message === NOISE_IDEMPOTENT_RETRIES || (namespace === 'Connection' && (message.startsWith('Response ') || message.startsWith('Connection error')))) {
        // Error responses (rebalancing, coordinator loading, …) are handled by kafkajs (retry, rejoin); when one
        // is not, it reaches us as a rejected call or a CRASH event and is logged there once. Connection errors
        // are repeated by BrokerPool's retry line.
        log.debug(fields, message);
      } else if (namespace === 'Runner' && message.startsWith('The group is rebalancing')) {
        log.info(fields, message); // routine: a member joined or left
      } else if (level === logLevel.ERROR || level === logLevel.WARN) {
        // kafkajs logs every failed connect attempt at ERROR; our own TransportError is the error.
        log.warn(fields, message);
      } else log.debug(fields, message);
    };
}

interface PendingProduce {
  records: ProduceRecord[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Headers of a consumed kafkajs message as UTF-8 strings (repeated headers: the last one wins). */
function toHeaders(h: IHeaders | undefined): Headers {
  const out: Headers = {};
  if (!h) return out;
  for (const k in h) {
    let v = h[k];
    if (Array.isArray(v)) v = v[v.length - 1];
    if (v !== undefined) out[k] = typeof v === 'string' ? v : v.toString('utf8');
  }
  return out;
}

function toRecord(topic: string, partition: number, m: KafkaMessage): ConsumedRecord {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ? m.key.toString('utf8') : null,
    value: m.value,
    headers: toHeaders(m.headers),
    timestamp: Number(m.timestamp),
  };
}

/**
 * kafkajs' DefaultPartitioner (explicit partition, else murmur2 of the key modulo the partition count, else
 * round robin), with string keys hashed by {@link partitionFor} — the same function (compared with kafkajs'
 * DefaultPartitioner on 200,000 random ASCII and non-ASCII keys and 1–12 partitions: no difference).
 */
const fastDefaultPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => {
    const { message, partitionMetadata } = args;
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (typeof message.key === 'string') return partitionFor(message.key, partitionMetadata.length);
    return fallback(args);
  };
};

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** Apache Kafka through kafkajs. Connects lazily on first use; {@link connect} checks reachability explicitly. */
export class KafkaTransport implements Transport {
  readonly kind = 'kafka' as const;
  readonly brokers: string[];
  readonly maxRecordBytes: number;
  private readonly metadataWaitMs: number;
  /** @internal see {@link KafkaTransportOptions.outageBudgetMs} */
  readonly outageBudgetMs: number;
  /** @internal shared with the group consumers */
  readonly kafka: KafkaClient;
  /** @internal */
  readonly log: pino.Logger;
  private readonly replicationFactor: number;
  private readonly maxRequestBytes: number;
  /** @internal */
  readonly storePartitions: number;
  /** @internal */
  readonly storeReadyTimeoutMs: number;
  private readonly stores = new Map<string, Promise<KafkaStore>>();
  private readonly admin: Admin;
  private readonly producer: Producer;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private readonly queue: PendingProduce[] = [];
  /** The running drain of {@link queue}, if any. */
  private flushing: Promise<void> | undefined;
  private readonly members = new Set<KafkaGroupConsumer>();

  constructor(opts: KafkaTransportOptions = {}) {
    this.brokers = opts.brokers ?? defaultBrokers();
    this.log = opts.logger ?? makeLogger({ component: 'kafka' });
    this.replicationFactor = opts.replicationFactor ?? 1;
    this.storePartitions = opts.storePartitions ?? 1;
    this.storeReadyTimeoutMs = opts.storeReadyTimeoutMs ?? 60_000;
    this.maxRequestBytes = opts.maxRequestBytes ?? 900_000;
    this.maxRecordBytes = opts.maxRecordBytes ?? 1_000_000;
    this.metadataWaitMs = opts.metadataWaitMs ?? 30_000;
    this.outageBudgetMs = opts.outageBudgetMs ?? 120_000;
    this.kafka = new Kafka({
      clientId: opts.clientId ?? 'swe-stream',
      brokers: this.brokers,
      connectionTimeout: opts.connectionTimeoutMs ?? 1000,
      requestTimeout: 30_000,
      retry: { initialRetryTime: 250, maxRetryTime: 2000, retries: opts.retries ?? 5 },
      logLevel: logLevel.WARN,
      logCreator: kafkajsLogCreator(this.log),
    });
    this.admin = this.kafka.admin();
    this.producer = this.kafka.producer({
      idempotent: true,
      // KIP-98 allows ≤ 5, but kafkajs builds sequence numbers per request; with our own coalescing one
      // request in flight is both safe and enough (each request carries every queued record).
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 250, maxRetryTime: 5000, retries: 30 },
      // The Java-compatible murmur2 partitioner, computed by transport.ts partitionFor (the embedded log's
      // function) for string keys: same partitions as kafkajs' DefaultPartitioner, without its per-message
      // Long arithmetic (a tenth of the producer's CPU in bench/stream).
      createPartitioner: fastDefaultPartitioner,
    });
  }

  /**
   * Connect the admin client and the idempotent producer. Idempotent; retried on the next call after a failure.
   * @throws TransportError (retriable) naming the brokers tried when none answers within the retry budget
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError('Kafka transport is closed', false));
    this.connecting ??= (async () => {
      try {
        await this.admin.connect();
        await this.producer.connect();
      } catch (err) {
        this.connecting = undefined;
        const reason = (err as Error).message ?? String(err);
        throw new TransportError(`Kafka unreachable: no broker answered at ${this.brokers.join(', ')} (${reason})`, true, { cause: err });
      }
    })();
    return this.connecting;
  }

  /** Create missing topics (partitions as given, replication factor from the options); existing topics are left alone. */
  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    await this.connect();
    try {
      const existing = new Set(await this.admin.listTopics());
      const missing = specs.filter((s) => !existing.has(s.name));
      if (missing.length === 0) return;
      await this.createAndWait(missing.map((s) => ({ topic: s.name, numPartitions: s.partitions, replicationFactor: this.replicationFactor })));
      this.log.info({ topics: missing.map((s) => `${s.name}(${s.partitions})`) }, 'topics created');
    } catch (err) {
      throw toTransportError(`creating topics ${specs.map((s) => s.name).join(', ')}`, err);
    }
  }

  /**
   * Create topics and wait until every partition has a leader in the broker's metadata. Workers started
   * together race to create the same topics: the loser's TOPIC_ALREADY_EXISTS, and the UNKNOWN_TOPIC_OR_PARTITION
   * that kafkajs's own leader wait can meet while the winner's topic propagates, both mean "created elsewhere,
   * not yet visible", so both go to the same metadata wait instead of failing the worker's start.
   * @throws TransportError (retriable) when the topics have no leader after `metadataWaitMs`
   */
  private async createAndWait(topics: Array<{ topic: string; numPartitions: number; replicationFactor: number; configEntries?: Array<{ name: string; value: string }> }>): Promise<void> {
    try {
      await this.admin.createTopics({ topics, waitForLeaders: false });
    } catch (err) {
      // kafkajs reports per-topic failures of one request as an aggregate (`errors`), a single one as itself.
      const parts = (err as { errors?: unknown[] }).errors ?? [err];
      if (!parts.every((e) => ['TOPIC_ALREADY_EXISTS', 'UNKNOWN_TOPIC_OR_PARTITION'].includes(errorType(e) ?? ''))) throw err;
    }
    await this.waitForMetadata(topics.map((t) => t.topic));
  }

  /**
   * Wait until the broker's metadata has every partition of `topics` with a leader (up to `metadataWaitMs`):
   * until then a first produce, fetch or offsets request of another client can meet UNKNOWN_TOPIC_OR_PARTITION.
   * @throws TransportError (retriable) naming the topics still without metadata
   */
  private async waitForMetadata(topics: string[]): Promise<void> {
    const until = Date.now() + this.metadataWaitMs;
    for (let attempt = 1; ; attempt++) {
      const meta = await this.admin.fetchTopicMetadata({ topics }).catch(() => ({ topics: [] }));
      const ready = new Set(meta.topics.filter((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)).map((t) => t.name));
      const waiting = topics.filter((t) => !ready.has(t));
      if (waiting.length === 0) return;
      if (Date.now() >= until) throw new TransportError(`topics ${waiting.join(', ')} have no leader after ${this.metadataWaitMs} ms`, true);
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * attempt)));
    }
  }

  /**
   * Produce records (acks=all, idempotent); resolves once every record is acknowledged by the broker.
   * `state`, when given, goes to the stores' compacted topics after the records are acknowledged.
   * @throws TransportError when the broker rejects the batch or stays unreachable
   */
  async produce(records: ProduceRecord[], state?: StoreWrite[]): Promise<void> {
    if (records.length > 0) await this.send1(records);
    if (state && state.length > 0) {
      const stores = await Promise.all(state.map((w) => this.openStore(w.namespace) as Promise<KafkaStore>));
      const recs = state.map((w, i) => stores[i]!.prepare(w.key, w.value));
      try {
        await this.send1(recs);
      } catch (err) {
        for (let i = 0; i < state.length; i++) stores[i]!.settle(recs[i]!, false);
        throw err;
      }
      for (let i = 0; i < state.length; i++) stores[i]!.settle(recs[i]!, true);
    }
  }

  /** @internal Queue records for the next coalesced request; resolves when they are acknowledged. */
  send1(records: ProduceRecord[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records, resolve, reject });
      this.kick();
    });
  }

  /**
   * The keyed store of `namespace` on its compacted topic `store.<namespace>` (created when missing with
   * cleanup.policy=compact), read to its end before this resolves. Cached per namespace.
   * @throws RangeError for a bad namespace; TransportError when the brokers do not answer or the topic is
   * not read to its end within `storeReadyTimeoutMs`
   */
  openStore(namespace: string): Promise<KeyedStore> {
    try {
      checkNamespace(namespace);
    } catch (err) {
      return Promise.reject(err);
    }
    let p = this.stores.get(namespace);
    if (!p) {
      const st = new KafkaStore(this, namespace);
      p = st.open().then(() => st);
      p.catch(() => this.stores.delete(namespace));
      this.stores.set(namespace, p);
    }
    return p;
  }

  /**
   * @internal Create a store topic when missing: compacted, and no record compacted away within 24 h of being
   * written (min.compaction.lag.ms), which bounds how long a first-writer-wins claim has to settle.
   */
  async ensureStoreTopic(topic: string): Promise<void> {
    await this.connect();
    try {
      if ((await this.admin.listTopics()).includes(topic)) return this.waitForMetadata([topic]);
      await this.createAndWait([{
        topic,
        numPartitions: this.storePartitions,
        replicationFactor: this.replicationFactor,
        configEntries: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'min.compaction.lag.ms', value: String(24 * 3600_000) },
        ],
      }]);
      this.log.info({ topic }, 'store topic created');
    } catch (err) {
      throw toTransportError(`creating store topic ${topic}`, err);
    }
  }

  /**
   * Drain the produce queue: everything queued goes out together, one request at a time. A batch that fails
   * with a retriable error is sent again until {@link outageBudgetMs} has passed since its first failure (the
   * idempotent producer dedupes a resend of what the broker did write within one producer session; across a
   * broker restart a resend may duplicate, which at-least-once allows).
   */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.refuseOversize(this.queue.splice(0));
      if (batch.length === 0) continue;
      let err: TransportError | undefined;
      for (let attempt = 1, since = 0; ; attempt++) {
        try {
          await this.connect();
          await this.send(batch);
          err = undefined;
          break;
        } catch (e) {
          err = toTransportError('producing records', e);
          if (this.closed || err.refused || !err.retriable) break;
          since ||= Date.now();
          if (Date.now() - since >= this.outageBudgetMs) {
            err = outageExpired(err, Date.now() - since, e);
            break;
          }
          const delay = outageDelayMs(attempt);
          if (attempt === 1 || attempt % 5 === 0) this.log.warn({ err: err.message, attempt, delayMs: delay, records: batch.reduce((n, p) => n + p.records.length, 0) }, 'produce failed; the bus may be restarting, sending again');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
      if (!err) for (const p of batch) p.resolve();
      // One caller's refused record must not fail the others coalesced with it: send each call alone.
      else if (err.refused && batch.length > 1) await this.sendEachAlone(batch);
      else for (const p of batch) p.reject(err);
    }
  }

  /** Reject, without sending, every queued call that holds a record over {@link maxRecordBytes}; the rest go on. */
  private refuseOversize(batch: PendingProduce[]): PendingProduce[] {
    return batch.filter((p) => {
      for (const r of p.records) {
        const size = recordBytes(r);
        if (size > this.maxRecordBytes) {
          p.reject(new TransportError(`record for ${r.topic} (key ${r.key.slice(0, 200)}) is ${size} bytes; the bus accepts at most ${this.maxRecordBytes}`, false, { refused: true }));
          return false;
        }
      }
      return true;
    });
  }

  /** After a refused coalesced request: each call as its own request, so only the guilty call is rejected (others may be sent twice: at-least-once). */
  private async sendEachAlone(batch: PendingProduce[]): Promise<void> {
    for (const p of batch) {
      try {
        await this.send([p]);
        p.resolve();
      } catch (err) {
        p.reject(toTransportError('producing records', err));
      }
    }
  }

  /** Start draining unless a drain runs; a record queued while the last drain was finishing starts the next. */
  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  /** One or more `sendBatch` requests, grouped by topic, each under `maxRequestBytes` of values. */
  private async send(batch: PendingProduce[]): Promise<void> {
    let byTopic = new Map<string, Message[]>();
    let bytes = 0;
    const sendNow = async () => {
      const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      byTopic = new Map();
      bytes = 0;
      await this.producer.sendBatch({ topicMessages, acks: -1 });
    };
    for (const p of batch) {
      for (const r of p.records) {
        const size = recordBytes(r);
        if (bytes > 0 && bytes + size > this.maxRequestBytes) await sendNow();
        let list = byTopic.get(r.topic);
        if (!list) byTopic.set(r.topic, (list = []));
        list.push(r); // a ProduceRecord is a kafkajs Message (kafkajs ignores `topic`): no copy per record
        bytes += size;
      }
    }
    if (bytes > 0) await sendNow();
  }

  /** A consumer-group member; nothing connects until {@link GroupConsumer.start}. */
  consumer(opts: ConsumerOptions): GroupConsumer {
    const c = new KafkaGroupConsumer(this, opts);
    this.members.add(c);
    return c;
  }

  /** @internal Delete a consumer group (a store's reader); failures are logged, not thrown. */
  async deleteGroup(groupId: string): Promise<void> {
    await this.admin.deleteGroups([groupId]).catch((err: unknown) => this.log.debug({ groupId, err: (err as Error).message }, 'deleting a reader group failed'));
  }

  /** @internal */
  forget(c: KafkaGroupConsumer): void {
    this.members.delete(c);
  }

  /**
   * Earliest and end offsets per partition (admin ListOffsets), once the topic's metadata is there: a topic
   * just created (here or by another process) is first unknown to the broker that answers, then leaderless.
   * @throws TransportError (retriable) naming the topic when it has no metadata within `metadataWaitMs`
   */
  async topicOffsets(topic: string): Promise<PartitionOffsets[]> {
    await this.connect();
    const until = Date.now() + this.metadataWaitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const rows = await this.admin.fetchTopicOffsets(topic);
        return rows.map((r) => ({ partition: r.partition, low: r.low, high: r.high })).sort((a, b) => a.partition - b.partition);
      } catch (err) {
        if (!(await this.awaitMetadata([topic], err, { until, attempt }))) throw toTransportError(`offsets of topic ${topic}`, err);
      }
    }
  }

  /**
   * After a request failed on `topics`: when the error says our metadata is stale or the topic is not there
   * yet (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE), refresh the topics'
   * metadata, wait a little (100 ms × attempt, at most 1 s) and say "ask again" — until `until` (ms since epoch).
   */
  private async awaitMetadata(topics: string[], err: unknown, at: { until: number; attempt: number }): Promise<boolean> {
    const type = errorType(err);
    if (!type || !STALE_METADATA_ERRORS.has(type) || Date.now() >= at.until) return false;
    await this.admin.fetchTopicMetadata({ topics }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, Math.min(1000, 100 * at.attempt)));
    return true;
  }

  /** Committed offsets of a group (admin OffsetFetch); partitions without a commit (-1) are absent. */
  async groupOffsets(groupId: string, topics: string[]): Promise<Array<TopicPartition & { offset: string }>> {
    await this.connect();
    const until = Date.now() + this.metadataWaitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.admin.fetchOffsets({ groupId, topics });
        return res.flatMap((t) => t.partitions.filter((p) => p.offset !== '-1').map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })));
      } catch (err) {
        // kafkajs asks for the topics' metadata first: a topic not there yet fails the same way as in topicOffsets.
        if (!(await this.awaitMetadata(topics, err, { until, attempt }))) throw toTransportError(`offsets of group ${groupId}`, err);
      }
    }
  }

  /** Known consumer groups (admin ListGroups). Readers made by {@link read} are deleted after use and do not show. */
  async listGroups(): Promise<string[]> {
    await this.connect();
    try {
      const { groups } = await this.admin.listGroups();
      return groups.map((g) => g.groupId).sort();
    } catch (err) {
      throw toTransportError('listing consumer groups', err);
    }
  }

  /**
   * Read up to `max` records of one partition from `fromOffset` (clamped to the earliest available), up to
   * the end offset seen at the call. kafkajs has no manual assignment, so this joins a throwaway group of one
   * member, seeks, reads, leaves and deletes the group. For tests, export and status — not a hot path.
   * @throws TransportError for an unknown partition or when the records do not arrive within 30 s
   */
  async read(topic: string, partition: number, fromOffset: string, max: number): Promise<ConsumedRecord[]> {
    const offsets = await this.topicOffsets(topic);
    const po = offsets.find((p) => p.partition === partition);
    if (!po) throw new TransportError(`topic ${topic} has no partition ${partition}`, false);
    const low = BigInt(po.low);
    const start = BigInt(fromOffset) > low ? BigInt(fromOffset) : low;
    const high = BigInt(po.high);
    const end = start + BigInt(max) < high ? start + BigInt(max) : high;
    if (max <= 0 || start >= end) return [];

    const groupId = `swe-stream-read-${randomUUID()}`;
    const consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
    const out: ConsumedRecord[] = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const done = new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new TransportError(`reading ${topic}[${partition}] from ${start}: timed out after 30 s`, true)), 30_000);
        void consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }: EachBatchPayload) => {
            if (batch.partition !== partition) return;
            for (const m of batch.messages) {
              const o = BigInt(m.offset);
              if (o >= start && o < end) out.push(toRecord(topic, partition, m));
            }
            // lastOffset counts control records too, so gaps (transactions, compaction) cannot stall us.
            if (BigInt(batch.lastOffset()) + 1n >= end) resolve();
          },
        }).catch(reject);
      });
      await Promise.race([joined, done]);
      consumer.pause(offsets.filter((p) => p.partition !== partition).map((p) => ({ topic, partitions: [p.partition] })));
      consumer.seek({ topic, partition, offset: String(start) });
      await done;
      return out;
    } catch (err) {
      throw toTransportError(`reading ${topic}[${partition}]`, err);
    } finally {
      clearTimeout(timer);
      await consumer.disconnect().catch(() => undefined);
      await this.admin.deleteGroups([groupId]).catch(() => undefined);
    }
  }

  /** Stop every group member made by this transport, then disconnect. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.members].map((m) => m.stop()));
    await Promise.allSettled([...this.stores.values()].map((p) => p.then((st) => st.close())));
    while (this.flushing) await this.flushing; // let queued produces finish
    this.closed = true;
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
  }
}

interface PendingCommit {
  offset: bigint;
  waiters: Array<(ok: boolean) => void>;
  fail: Array<(err: unknown) => void>;
}

/**
 * One member of a consumer group on Kafka. See the module comment for the rules it follows.
 * Commits are coalesced per partition (highest offset wins) and sent in one OffsetCommit per macrotask.
 */
export class KafkaGroupConsumer implements GroupConsumer {
  private consumer: Consumer | undefined;
  private handlers: ConsumerHandlers | undefined;
  /** Partitions assigned at the last GROUP_JOIN, by tpKey. */
  private assigned = new Map<string, TopicPartition>();
  private running = false;
  private stopping: Promise<void> | undefined;
  private readonly pendingCommits = new Map<string, PendingCommit & TopicPartition>();
  private commitScheduled = false;
  /** When commits started failing retriably (0: they do not), and how often they were sent again since. */
  private commitFailingSince = 0;
  private commitRetries = 0;
  private committing = false;
  /** Resolvers waiting for the next GROUP_JOIN (commits that failed because of a rebalance). */
  private joinWaiters: Array<() => void> = [];
  private readonly log: pino.Logger;

  constructor(private readonly transport: KafkaTransport, private readonly opts: ConsumerOptions) {
    this.log = transport.log.child({ group: opts.groupId });
  }

  /**
   * Connect, subscribe (new groups start at the earliest offset), join the group and start delivering.
   * Resolves after the first join. @throws TransportError naming the brokers when Kafka is unreachable
   */
  async start(handlers: ConsumerHandlers): Promise<void> {
    if (this.consumer) throw new TransportError(`consumer of group ${this.opts.groupId} already started`, false);
    this.handlers = handlers;
    await this.transport.connect();
    const sessionTimeout = this.opts.sessionTimeoutMs ?? 30_000;
    const consumer = this.transport.kafka.consumer({
      groupId: this.opts.groupId,
      sessionTimeout,
      heartbeatInterval: Math.max(500, Math.floor(sessionTimeout / 10)),
      // The fetch long-poll, and how long the fetch loop sleeps when every partition is paused. A resumed
      // partition is fetched only when the running poll returns, and that poll often waits the full time on
      // idle partitions (the retry topic), so this bounds the stall after each resume: 100 ms (500 left the
      // loop idle ~12 % of the time in bench/stream, 100 ~6 %) at the price of ≤ 10 empty fetches/s when idle.
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onJoin(e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) => {
      const { error, restart } = e.payload;
      this.log.error({ err: error?.message, restart }, restart ? 'consumer crashed; kafkajs restarts it (a new GROUP_JOIN follows)' : 'consumer crashed and stopped');
      if (!restart) {
        // Dead member: nothing it holds can be committed any more; tell the runtime so it aborts the work.
        const all = [...this.assigned.values()];
        this.assigned = new Map();
        this.running = false;
        if (all.length > 0) this.handlers?.onRevoked?.(all);
        // Commits waiting for a join that will not come: requeue drops them (false).
        const waiters = this.joinWaiters;
        this.joinWaiters = [];
        for (const w of waiters) w();
      }
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: this.opts.topics, fromBeginning: true });
      this.running = true;
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: (p) => this.onBatch(p),
      });
    } catch (err) {
      this.running = false;
      this.consumer = undefined;
      await consumer.disconnect().catch(() => undefined);
      throw toTransportError(`starting consumer group ${this.opts.groupId} on ${this.transport.brokers.join(', ')}`, err);
    }
  }

  /** kafkajs eachBatch: hand the records over and return at once (the fetch loop is the heartbeat). */
  private async onBatch({ batch, heartbeat }: EachBatchPayload): Promise<void> {
    const { topic, partition, messages } = batch;
    if (messages.length > 0 && this.assigned.has(tpKey(topic, partition))) {
      const records = new Array<ConsumedRecord>(messages.length);
      for (let i = 0; i < messages.length; i++) records[i] = toRecord(topic, partition, messages[i]!);
      this.handlers!.onRecords(records);
    }
    await heartbeat();
  }

  /** GROUP_JOIN: diff the new assignment against the previous one; resume new partitions (kafkajs keeps pause state across generations). */
  private onJoin(memberAssignment: Record<string, number[]>): void {
    const next = new Map<string, TopicPartition>();
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      for (const partition of partitions) next.set(tpKey(topic, partition), { topic, partition });
    }
    const revoked = [...this.assigned].filter(([k]) => !next.has(k)).map(([, tp]) => tp);
    const added = [...next].filter(([k]) => !this.assigned.has(k)).map(([, tp]) => tp);
    this.assigned = next;
    this.log.info({ assigned: [...next.keys()].map((k) => k.replace('\u0000', ':')), revoked: revoked.length, added: added.length }, 'group joined');
    // Commits queued for revoked partitions are never sent.
    for (const [k, pc] of this.pendingCommits) {
      if (!next.has(k)) {
        this.pendingCommits.delete(k);
        for (const w of pc.waiters) w(false);
      }
    }
    if (added.length > 0) this.resume(added);
    if (revoked.length > 0) this.handlers?.onRevoked?.(revoked);
    if (added.length > 0) this.handlers?.onAssigned?.(added);
    const waiters = this.joinWaiters;
    this.joinWaiters = [];
    for (const w of waiters) w();
  }

  /** Partitions currently assigned to this member (as of the last GROUP_JOIN). */
  assignment(): TopicPartition[] {
    return [...this.assigned.values()];
  }

  private byTopic(partitions: TopicPartition[]): Array<{ topic: string; partitions: number[] }> {
    const m = new Map<string, number[]>();
    for (const { topic, partition } of partitions) {
      let l = m.get(topic);
      if (!l) m.set(topic, (l = []));
      l.push(partition);
    }
    return [...m].map(([topic, ps]) => ({ topic, partitions: ps }));
  }

  /** Stop fetching these partitions (records already fetched may still arrive once). */
  pause(partitions: TopicPartition[]): void {
    if (!this.consumer || partitions.length === 0) return;
    try {
      this.consumer.pause(this.byTopic(partitions));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'pause ignored'); // consumer not running (stopping)
    }
  }

  /** Fetch these partitions again. */
  resume(partitions: TopicPartition[]): void {
    if (!this.consumer || partitions.length === 0) return;
    try {
      this.consumer.resume(this.byTopic(partitions));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'resume ignored');
    }
  }

  /**
   * Produce the completion's outputs (acks=all, idempotent), then commit `c.commit` when given. Resolves false,
   * writing nothing, when the input's partition is not assigned to this member any more (or the commit was
   * dropped by a revocation). @throws TransportError when producing fails
   */
  async complete(c: Completion): Promise<boolean> {
    if (!this.running || !this.assigned.has(tpKey(c.input.topic, c.input.partition))) return false;
    if (c.outputs.length > 0) await this.transport.produce(c.outputs);
    // The commit rides along only after the outputs are acknowledged (at-least-once, never at-most-once).
    if (c.commit !== undefined) return this.commit(c.input, c.commit);
    return true;
  }

  /**
   * Batch form of {@link complete}: the outputs of every completion whose partition is assigned go out in ONE
   * produce (coalesced into as few requests as the size limit allows), then the completions' commits — never
   * before the outputs are acknowledged (at-least-once). Per completion: false when its partition was not
   * assigned at the call (nothing of it written) or its commit was dropped by a revocation.
   * @throws TransportError when producing fails (commits are not sent then)
   */
  async completeMany(cs: Completion[]): Promise<boolean[]> {
    const ok = new Array<boolean>(cs.length);
    const records: ProduceRecord[] = [];
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      ok[i] = this.running && this.assigned.has(tpKey(c.input.topic, c.input.partition));
      if (ok[i]) for (const r of c.outputs) records.push(r);
    }
    if (records.length > 0) await this.transport.produce(records);
    const commits: Array<Promise<void>> = [];
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      if (ok[i] && c.commit !== undefined) commits.push(this.commit(c.input, c.commit).then((r) => void (ok[i] = r)));
    }
    if (commits.length > 0) await Promise.all(commits);
    return ok;
  }

  /**
   * Commit `offset` (next offset to read) for a partition through the group's consumer.
   * Coalesced: all commits of one macrotask go out in one OffsetCommit, highest offset per partition.
   * Never sent for a partition revoked from this member: the assignment is checked in the same synchronous
   * step in which kafkajs captures the generation id, so either the commit carries the old generation (the
   * broker rejects it: ILLEGAL_GENERATION) or our assignment is already the new one. A commit rejected by a
   * rebalance waits for the next GROUP_JOIN and is sent again if the partition is still ours.
   * Resolves false when the partition is (or becomes) revoked, or the member stops first.
   * @throws TransportError when the broker rejects the commit for another reason
   */
  commit(tp: TopicPartition, offset: string): Promise<boolean> {
    const key = tpKey(tp.topic, tp.partition);
    if (!this.running || !this.assigned.has(key)) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      const o = BigInt(offset);
      const pc = this.pendingCommits.get(key);
      if (pc) {
        if (o > pc.offset) pc.offset = o;
        pc.waiters.push(resolve);
        pc.fail.push(reject);
      } else {
        this.pendingCommits.set(key, { topic: tp.topic, partition: tp.partition, offset: o, waiters: [resolve], fail: [reject] });
      }
      this.scheduleCommit();
    });
  }

  private scheduleCommit(): void {
    if (this.commitScheduled || this.committing) return;
    this.commitScheduled = true;
    // A macrotask: kafkajs swaps its generation and emits GROUP_JOIN within one microtask chain, so at this
    // point both or neither happened (see commit()).
    setImmediate(() => {
      this.commitScheduled = false;
      void this.sendCommits();
    });
  }

  private async sendCommits(): Promise<void> {
    if (this.pendingCommits.size === 0 || !this.consumer) return;
    const batch = [...this.pendingCommits.values()];
    this.pendingCommits.clear();
    const live = batch.filter((pc) => this.running && this.assigned.has(tpKey(pc.topic, pc.partition)));
    for (const pc of batch) if (!live.includes(pc)) for (const w of pc.waiters) w(false);
    if (live.length === 0) return;
    this.committing = true;
    try {
      // Synchronous up to the point where kafkajs reads generation/member id: no await before this call.
      await this.consumer.commitOffsets(live.map((pc) => ({ topic: pc.topic, partition: pc.partition, offset: pc.offset.toString() })));
      // kafkajs silently skips commits when its runner is not running (stopping): report those as dropped.
      const ok = this.running;
      for (const pc of live) for (const w of pc.waiters) w(ok);
      this.commitFailingSince = 0;
      this.commitRetries = 0;
    } catch (err) {
      const type = errorType(err);
      // kafkajs between a crash and its restart (a broker restart) has no group to commit through ("Consumer
      // group was not initialized"): like a rebalance, the commits wait for the next join.
      const restarting = /Consumer group was not initialized/.test((err as Error)?.message ?? '');
      if (((type && REBALANCE_ERRORS.has(type)) || restarting) && this.running) {
        this.log.info({ error: type ?? (err as Error).message, partitions: live.length }, 'commit hit a rebalance; retrying after the next join');
        await new Promise<void>((r) => this.joinWaiters.push(r));
        for (const pc of live) this.requeue(pc);
      } else if (!this.running) {
        for (const pc of live) for (const w of pc.waiters) w(false);
      } else {
        const e = toTransportError(`committing offsets of group ${this.opts.groupId}`, err);
        // The broker is away (a restart): hold the commits and send them again, as produce does, for up to
        // the transport's outage budget; the consumer rejoins meanwhile and a partition lost on the way drops
        // its commit (requeue). Without this a broker restart stopped the stage (bench/soak).
        this.commitFailingSince ||= Date.now();
        const failing = Date.now() - this.commitFailingSince;
        if (e.retriable && !e.refused && failing < this.transport.outageBudgetMs) {
          const delay = outageDelayMs(++this.commitRetries);
          if (this.commitRetries === 1 || this.commitRetries % 5 === 0) this.log.warn({ err: e.message, attempt: this.commitRetries, delayMs: delay }, 'commit failed; the bus may be restarting, committing again');
          await new Promise((r) => setTimeout(r, delay));
          for (const pc of live) this.requeue(pc);
        } else {
          const out = failing >= this.transport.outageBudgetMs ? outageExpired(e, failing, err) : e;
          this.commitFailingSince = 0;
          this.commitRetries = 0;
          for (const pc of live) for (const f of pc.fail) f(out);
        }
      }
    } finally {
      this.committing = false;
      if (this.pendingCommits.size > 0) this.scheduleCommit();
    }
  }

  /** Put a commit back after a rebalance; dropped (false) if the partition went away. */
  private requeue(pc: PendingCommit & TopicPartition): void {
    const key = tpKey(pc.topic, pc.partition);
    if (!this.running || !this.assigned.has(key)) {
      for (const w of pc.waiters) w(false);
      return;
    }
    const cur = this.pendingCommits.get(key);
    if (!cur) this.pendingCommits.set(key, pc);
    else {
      if (pc.offset > cur.offset) cur.offset = pc.offset;
      cur.waiters.push(...pc.waiters);
      cur.fail.push(...pc.fail);
    }
  }

  /** Kafka keeps no per-record processed marks: always empty (the runtime dedupes in memory). */
  async processedAbove(_tp: TopicPartition, _committed: string): Promise<Set<string>> {
    return new Set();
  }

  /** Committed offset of a partition for this group ('0' when none). */
  async committed(tp: TopicPartition): Promise<string> {
    const rows = await this.transport.groupOffsets(this.opts.groupId, [tp.topic]);
    return rows.find((r) => r.topic === tp.topic && r.partition === tp.partition)?.offset ?? '0';
  }

  /** Leave the group (pending commits are dropped: they resolve false). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.running = false;
      for (const [, pc] of this.pendingCommits) for (const w of pc.waiters) w(false);
      this.pendingCommits.clear();
      const waiters = this.joinWaiters;
      this.joinWaiters = [];
      for (const w of waiters) w();
      try {
        await this.consumer?.disconnect();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'leaving the group failed');
      }
      this.transport.forget(this);
    })();
    return this.stopping;
  }
}

/** Headers of store records: a first-writer-wins claim and its nonce (so the claimant finds its own record). */
const STORE_OP = 'swe-store-op';
const STORE_NONCE = 'swe-store-nonce';

/**
 * A keyed store on a compacted topic (streams/store.ts). The view is every record of the topic applied in log
 * order: a plain record sets its key, a tombstone deletes it, a claim sets its key only when the key holds
 * nothing yet. Every process applies the same log in the same order, so all agree on every claim's winner.
 * A claimant waits until its own claim comes back through its reader (it has then seen every earlier record
 * of the key's partition); a loser appends the winner's value, so compaction, which keeps the last record of
 * a key, keeps the winner (within min.compaction.lag.ms, 24 h, of the claim).
 */
class KafkaStore implements KeyedStore {
  readonly topic: string;
  private readonly view = new Map<string, string>();
  private readonly claims = new Map<string, { resolve: (v: string) => void; reject: (e: unknown) => void }>();
  /** Per key, the nonce of this process's latest write the reader has not applied yet. */
  private readonly pendingLocal = new Map<string, string>();
  private consumer: Consumer | undefined;
  private readonly groupId: string;
  private closed = false;

  constructor(private readonly t: KafkaTransport, readonly namespace: string) {
    this.topic = storeTopic(namespace);
    this.groupId = `swe-stream.store-reader.${namespace}.${randomUUID()}`;
  }

  /** Create the topic if needed, start the reader and wait until it has read up to the end offsets seen now. */
  async open(): Promise<void> {
    await this.t.ensureStoreTopic(this.topic);
    const ends = await this.t.topicOffsets(this.topic);
    const behind = new Map<number, bigint>();
    for (const p of ends) if (BigInt(p.high) > BigInt(p.low)) behind.set(p.partition, BigInt(p.high));
    let caughtUp!: () => void;
    const ready = new Promise<void>((r) => (caughtUp = r));
    if (behind.size === 0) caughtUp();
    const consumer = this.t.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
    this.consumer = consumer;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }: EachBatchPayload) => {
          for (const m of batch.messages) this.apply(m);
          const end = behind.get(batch.partition);
          if (end !== undefined && BigInt(batch.lastOffset()) + 1n >= end) {
            behind.delete(batch.partition);
            if (behind.size === 0) caughtUp();
          }
        },
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TransportError(`store ${this.topic} was not read to its end within ${this.t.storeReadyTimeoutMs} ms`, true)), this.t.storeReadyTimeoutMs);
      });
      await Promise.race([ready, timeout]).finally(() => clearTimeout(timer));
    } catch (err) {
      await this.close();
      throw toTransportError(`opening store ${this.topic}`, err);
    }
  }

  /** Apply one record of the topic to the view (see the class comment). */
  private apply(m: KafkaMessage): void {
    if (!m.key) return;
    const key = m.key.toString('utf8');
    const h = m.headers ?? {};
    const nonce = h[STORE_NONCE]?.toString();
    const mine = this.pendingLocal.get(key);
    // A write of this process not yet read back is newer than anything before it in the log: keep it.
    if (mine === undefined || mine === nonce) {
      if (mine !== undefined) this.pendingLocal.delete(key);
      const op = h[STORE_OP]?.toString();
      if (m.value === null) this.view.delete(key);
      else if (op !== 'claim' || !this.view.has(key)) this.view.set(key, m.value.toString('utf8'));
    }
    if (nonce !== undefined) {
      const w = this.claims.get(nonce);
      if (w) {
        this.claims.delete(nonce);
        w.resolve(this.view.get(key)!);
      }
    }
  }

  /** @internal A plain record of this store (value null = tombstone), tagged so the reader knows it as this process's write. */
  prepare(key: string, value: string | null): ProduceRecord {
    const nonce = randomUUID();
    this.pendingLocal.set(key, nonce);
    return { topic: this.topic, key, value: value === null ? null : Buffer.from(value, 'utf8'), headers: { [STORE_NONCE]: nonce } };
  }

  /** @internal After the broker answered a prepared write: on success it is visible at once (read-your-writes). */
  settle(r: ProduceRecord, acked: boolean): void {
    const nonce = r.headers![STORE_NONCE];
    if (this.pendingLocal.get(r.key) !== nonce) return; // the reader has already applied it (or a newer write of ours)
    if (!acked) this.pendingLocal.delete(r.key);
    else if (r.value === null) this.view.delete(r.key);
    else this.view.set(r.key, r.value.toString('utf8'));
  }

  private async write(key: string, value: string | null): Promise<void> {
    const r = this.prepare(key, value);
    try {
      await this.t.send1([r]);
    } catch (err) {
      this.settle(r, false);
      throw err;
    }
    this.settle(r, true);
  }

  async get(key: string): Promise<string | null> {
    return this.view.get(key) ?? null;
  }

  /** Produced at once (acks=all); `origin` is not needed on Kafka: the write precedes the record's outputs. */
  async put(key: string, value: string, _opts?: StoreWriteOptions): Promise<void> {
    await this.write(key, value);
  }

  async delete(key: string, _opts?: StoreWriteOptions): Promise<void> {
    await this.write(key, null);
  }

  /**
   * First writer in the log wins (see the class comment). Waits for its own claim to come back through the
   * reader: about one fetch round trip (≤ 100 ms long-poll) after the produce.
   * @throws TransportError (retriable) when the claim does not come back within storeReadyTimeoutMs
   */
  async putIfAbsent(key: string, value: string, _opts?: StoreWriteOptions): Promise<string> {
    const known = this.view.get(key);
    if (known !== undefined) return known;
    if (this.closed) throw new TransportError(`store ${this.topic} is closed`, false);
    const nonce = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<string>((resolve, reject) => {
      this.claims.set(nonce, { resolve, reject });
      timer = setTimeout(() => {
        this.claims.delete(nonce);
        reject(new TransportError(`claim of ${key} in store ${this.topic} did not come back within ${this.t.storeReadyTimeoutMs} ms`, true));
      }, this.t.storeReadyTimeoutMs);
    });
    try {
      await this.t.send1([{ topic: this.topic, key, value: Buffer.from(value, 'utf8'), headers: { [STORE_OP]: 'claim', [STORE_NONCE]: nonce } }]);
      const winner = await back;
      if (winner !== value) await this.write(key, winner);
      return winner;
    } catch (err) {
      this.claims.delete(nonce);
      back.catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop the reader and delete its group. Pending claims fail (retriable). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.claims.values()) w.reject(new TransportError(`store ${this.topic} closed`, true));
    this.claims.clear();
    await this.consumer?.disconnect().catch(() => undefined);
    await this.t.deleteGroup(this.groupId);
  }
}
