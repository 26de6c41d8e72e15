/**
 * Drives one {@link Source} into its target topic: events are encoded and produced in batches keyed by
 * the target's key function, the source cursor is written with each batch to the keyed store `source-cursors`
 * on the bus (streams/store.ts: one transaction with the records on the embedded log, so a crash between
 * produce and cursor save can neither lose nor repeat an event; on Kafka a compacted topic written after the
 * records, so a worker moved to another machine resumes where the last one stopped), `ack()`s are called once their
 * record is durable (the webhook answers 202 only then), malformed items are dead-lettered to
 * the target's dead-letter topic with their origin (`file:line`), and other event types are counted.
 */
import type { Source, SourceItem, SourceTarget } from './source.js';
import type { Transport, ProduceRecord } from './transport.js';
import type { Serde } from './serde.js';
import type { DeadLetter } from '../schemas/types.gen.js';
import { STORE, type StoreWrite } from './store.js';
import { logger } from './log.js';

/** Counts of one source run. */
export interface SourceStats {
  uri: string;
  events: number;
  skipped: Record<string, number>;
  bad: Record<string, number>;
  done: boolean;
}

export interface SourceRunOptions {
  signal: AbortSignal;
  follow: boolean;
  /** Records per produce. Default 500. */
  batchSize?: number;
  /** Longest an event waits in a partial batch (ms). Default 200. */
  lingerMs?: number;
}

const log = logger({ component: 'source-runner' });

/**
 * Run a source until it is exhausted (follow=false) or the signal aborts.
 * @throws TransportError / SerdeError when records cannot be written (the caller stops the job).
 */
export async function runSource<T>(source: Source<T>, transport: Transport, serde: Serde, opts: SourceRunOptions & { target: SourceTarget<T> }, stats?: SourceStats): Promise<SourceStats> {
  const st: SourceStats = stats ?? { uri: source.uri, events: 0, skipped: {}, bad: {}, done: false };
  const batchSize = opts.batchSize ?? 500;
  const linger = opts.lingerMs ?? 200;
  const key = source.uri;
  const cursor = (await (await transport.openStore(STORE.sourceCursors)).get(key)) ?? undefined;
  let batch: ProduceRecord[] = [];
  let acks: Array<() => void> = [];
  let lastCursor: string | undefined;
  let chain: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let failure: unknown;

  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (batch.length === 0 && lastCursor === undefined) return chain;
    const recs = batch;
    const a = acks;
    const state: StoreWrite[] | undefined = lastCursor !== undefined ? [{ namespace: STORE.sourceCursors, key, value: lastCursor }] : undefined;
    batch = [];
    acks = [];
    lastCursor = undefined;
    chain = chain.then(async () => {
      await transport.produce(recs, state);
      for (const f of a) f();
    });
    chain.catch((e: unknown) => {
      failure ??= e;
    });
    return chain;
  };

  const { topic, dlqTopic, keyOf } = opts.target;
  const add = async (item: SourceItem<T>) => {
    if (item.kind === 'event') {
      const enc = await serde.encode(topic, item.event);
      batch.push({ topic, key: keyOf(item.event), value: enc.value, headers: enc.headers });
      if (item.ack) acks.push(item.ack);
      st.events++;
    } else if (item.kind === 'skipped') {
      st.skipped[item.reason] = (st.skipped[item.reason] ?? 0) + (item.count ?? 1);
    } else {
      st.bad[item.reason] = (st.bad[item.reason] ?? 0) + 1;
      log.warn({ source: source.uri, origin: item.origin, reason: item.reason, detail: item.detail.slice(0, 300) }, 'bad input dead-lettered');
      const dl: DeadLetter = {
        stage: 'source',
        key: null,
        original_topic: source.uri,
        original_partition: -1,
        original_offset: item.origin,
        attempts: 1,
        error_class: 'BadInput',
        error_message: `${item.reason}: ${item.detail}`.slice(0, 10_000),
        reason: item.reason,
        value: item.raw ?? null,
        ts_ms: Date.now(),
      };
      const enc = await serde.encode(dlqTopic, dl);
      batch.push({ topic: dlqTopic, key: item.origin, value: enc.value, headers: enc.headers });
    }
    if (item.cursor !== undefined) lastCursor = item.cursor;
  };

  try {
    for await (const item of source.items({ signal: opts.signal, follow: opts.follow, cursor })) {
      if (failure) throw failure;
      await add(item);
      if (batch.length >= batchSize || (item.kind === 'event' && item.ack)) await flush();
      else if (!timer) timer = setTimeout(() => void flush(), linger);
    }
    await flush();
    if (failure) throw failure;
    st.done = true;
  } finally {
    clearTimeout(timer);
  }
  log.info({ source: source.uri, events: st.events, skipped: st.skipped, bad: st.bad }, 'source finished');
  return st;
}
