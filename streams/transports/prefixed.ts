/**
 * A transport whose every name carries a prefix: topics, consumer groups and store namespaces. Several
 * pipelines (a soak run beside a clean run, two tenants, a test beside production) then share one broker
 * without reading, committing or claiming anything of each other — the pipeline and its topology still
 * speak of `pr.events` and `swe-stream.filter`; only the broker sees `<prefix>pr.events`.
 *
 * Names are mapped at the boundary and nowhere else: records handed to a consumer's handlers carry the
 * logical topic again, completions and commits are mapped back to the physical one. A store of namespace
 * `ns` is the inner transport's store `<prefix>ns` (on Kafka the compacted topic `store.<prefix>ns`); a
 * write tied to an input record (`opts.origin`) is tied to that record's physical topic. Serde subjects stay
 * logical (`pr.events-value`): the schemas are the same for every prefix.
 */
import type { Completion, ConsumedRecord, ConsumerHandlers, ConsumerOptions, GroupConsumer, PartitionOffsets, ProduceRecord, TopicPartition, TopicSpec, Transport } from '../transport.js';
import { checkNamespace, type KeyedStore, type StoreWrite, type StoreWriteOptions } from '../store.js';

/** What a prefix may hold: it becomes part of topic names, group ids and store namespaces. */
export const TOPIC_PREFIX = /^[a-z0-9][a-z0-9._-]{0,60}$/;

export class PrefixedTransport implements Transport {
  readonly kind: Transport['kind'];
  readonly maxRecordBytes?: number;

  /** @throws RangeError for a prefix that does not match {@link TOPIC_PREFIX} */
  constructor(readonly inner: Transport, readonly prefix: string) {
    if (!TOPIC_PREFIX.test(prefix)) throw new RangeError(`topic prefix ${JSON.stringify(prefix)} must match ${TOPIC_PREFIX.source}`);
    this.kind = inner.kind;
    this.maxRecordBytes = inner.maxRecordBytes;
  }

  /** The broker's name of a logical topic or group. */
  phys(name: string): string {
    return this.prefix + name;
  }

  /** The logical name of a physical topic or group (names without the prefix are returned as they are). */
  logical(name: string): string {
    return name.startsWith(this.prefix) ? name.slice(this.prefix.length) : name;
  }

  physRecord<R extends ProduceRecord>(r: R): R {
    return { ...r, topic: this.phys(r.topic) };
  }

  physTp<T extends TopicPartition>(tp: T): T {
    return { ...tp, topic: this.phys(tp.topic) };
  }

  logicalTp<T extends TopicPartition>(tp: T): T {
    return { ...tp, topic: this.logical(tp.topic) };
  }

  /** Records come fresh from the inner transport: the topic is rewritten in place (no copy per record). */
  logicalRecords(records: ConsumedRecord[]): ConsumedRecord[] {
    for (const r of records) r.topic = this.logical(r.topic);
    return records;
  }

  physStoreWrite(w: StoreWrite): StoreWrite {
    return { ...w, namespace: checkNamespace(this.phys(w.namespace)) };
  }

  physStoreOpts(opts: StoreWriteOptions | undefined): StoreWriteOptions | undefined {
    return opts?.origin ? { ...opts, origin: { ...opts.origin, topic: this.phys(opts.origin.topic) } } : opts;
  }

  ensureTopics(specs: TopicSpec[]): Promise<void> {
    return this.inner.ensureTopics(specs.map((s) => ({ ...s, name: this.phys(s.name) })));
  }

  produce(records: ProduceRecord[], state?: StoreWrite[]): Promise<void> {
    return this.inner.produce(records.map((r) => this.physRecord(r)), state?.map((w) => this.physStoreWrite(w)));
  }

  async openStore(namespace: string): Promise<KeyedStore> {
    checkNamespace(namespace);
    return new PrefixedStore(this, namespace, await this.inner.openStore(checkNamespace(this.phys(namespace))));
  }

  consumer(opts: ConsumerOptions): GroupConsumer {
    return new PrefixedConsumer(this, this.inner.consumer({ ...opts, groupId: this.phys(opts.groupId), topics: opts.topics.map((t) => this.phys(t)) }));
  }

  topicOffsets(topic: string): Promise<PartitionOffsets[]> {
    return this.inner.topicOffsets(this.phys(topic));
  }

  async groupOffsets(groupId: string, topics: string[]): Promise<Array<TopicPartition & { offset: string }>> {
    const rows = await this.inner.groupOffsets(this.phys(groupId), topics.map((t) => this.phys(t)));
    return rows.map((r) => this.logicalTp(r));
  }

  /** Only this prefix's groups, by their logical names. */
  async listGroups(): Promise<string[]> {
    return (await this.inner.listGroups()).filter((g) => g.startsWith(this.prefix)).map((g) => this.logical(g));
  }

  async read(topic: string, partition: number, fromOffset: string, max: number): Promise<ConsumedRecord[]> {
    return this.logicalRecords(await this.inner.read(this.phys(topic), partition, fromOffset, max));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

class PrefixedConsumer implements GroupConsumer {
  constructor(private readonly t: PrefixedTransport, private readonly inner: GroupConsumer) {}

  start(handlers: ConsumerHandlers): Promise<void> {
    const t = this.t;
    return this.inner.start({
      onRecords: (records) => handlers.onRecords(t.logicalRecords(records)),
      onAssigned: handlers.onAssigned && ((ps) => handlers.onAssigned!(ps.map((p) => t.logicalTp(p)))),
      onRevoked: handlers.onRevoked && ((ps) => handlers.onRevoked!(ps.map((p) => t.logicalTp(p)))),
    });
  }

  pause(partitions: TopicPartition[]): void {
    this.inner.pause(partitions.map((p) => this.t.physTp(p)));
  }

  resume(partitions: TopicPartition[]): void {
    this.inner.resume(partitions.map((p) => this.t.physTp(p)));
  }

  private physCompletion(c: Completion): Completion {
    return { ...c, input: this.t.physTp(c.input), outputs: c.outputs.map((r) => this.t.physRecord(r)) };
  }

  complete(c: Completion): Promise<boolean> {
    return this.inner.complete(this.physCompletion(c));
  }

  get completeMany(): ((cs: Completion[]) => Promise<boolean[]>) | undefined {
    const many = this.inner.completeMany?.bind(this.inner);
    return many && ((cs) => many(cs.map((c) => this.physCompletion(c))));
  }

  commit(tp: TopicPartition, offset: string): Promise<boolean> {
    return this.inner.commit(this.t.physTp(tp), offset);
  }

  processedAbove(tp: TopicPartition, committed: string): Promise<Set<string>> {
    return this.inner.processedAbove(this.t.physTp(tp), committed);
  }

  committed(tp: TopicPartition): Promise<string> {
    return this.inner.committed(this.t.physTp(tp));
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }
}

class PrefixedStore implements KeyedStore {
  constructor(private readonly t: PrefixedTransport, readonly namespace: string, private readonly inner: KeyedStore) {}

  get(key: string): Promise<string | null> {
    return this.inner.get(key);
  }

  put(key: string, value: string, opts?: StoreWriteOptions): Promise<void> {
    return this.inner.put(key, value, this.t.physStoreOpts(opts));
  }

  delete(key: string, opts?: StoreWriteOptions): Promise<void> {
    return this.inner.delete(key, this.t.physStoreOpts(opts));
  }

  putIfAbsent(key: string, value: string, opts?: StoreWriteOptions): Promise<string> {
    return this.inner.putIfAbsent(key, value, this.t.physStoreOpts(opts));
  }
}
