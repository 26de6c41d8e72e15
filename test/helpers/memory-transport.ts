/**
 * An in-memory {@link Transport} for unit tests of the runners (stage runtime, sink runner): topics are
 * arrays, the test decides when records are delivered, which partitions are assigned or revoked, and whether
 * a completion or produce fails. It keeps what a real bus would make visible — produced records, commits,
 * pause/resume calls — so tests assert on them. It follows the contract of streams/transport.ts (committed
 * offset = next offset to read; completions of revoked partitions resolve false), nothing more.
 */
import {
  TransportError,
  partitionFor,
  type Completion,
  type ConsumedRecord,
  type ConsumerHandlers,
  type ConsumerOptions,
  type GroupConsumer,
  type PartitionOffsets,
  type ProduceRecord,
  type TopicPartition,
  type TopicSpec,
  type Transport,
} from '../../streams/transport.js';
import type { KeyedStore } from '../../streams/store.js';

const tpKey = (tp: TopicPartition) => `${tp.topic}:${tp.partition}`;

/** A consumer-group member driven by the test. */
export class MemoryConsumer implements GroupConsumer {
  handlers?: ConsumerHandlers;
  readonly assigned = new Set<string>();
  readonly paused = new Set<string>();
  /** pause/resume calls in order, as `pause topic:p` / `resume topic:p` */
  readonly calls: string[] = [];
  /** Per partition: the next offset this member will deliver. */
  private readonly position = new Map<string, bigint>();
  stopped = false;

  constructor(readonly bus: MemoryTransport, readonly opts: ConsumerOptions) {}

  async start(handlers: ConsumerHandlers): Promise<void> {
    this.handlers = handlers;
  }

  /** Assign partitions (a rebalance handing them to this member); delivery starts at the group's commit. */
  assign(tps: TopicPartition[]): void {
    for (const tp of tps) {
      this.assigned.add(tpKey(tp));
      this.position.set(tpKey(tp), BigInt(this.bus.commits.get(`${this.opts.groupId}|${tpKey(tp)}`) ?? '0'));
    }
    this.handlers!.onAssigned?.(tps);
  }

  /** Revoke partitions (a rebalance taking them away). */
  revoke(tps: TopicPartition[]): void {
    for (const tp of tps) this.assigned.delete(tpKey(tp));
    this.handlers!.onRevoked?.(tps);
  }

  /** Deliver up to `max` records of every assigned, unpaused partition (what a poll would return). */
  deliver(max = Infinity): number {
    let n = 0;
    for (const k of this.assigned) {
      if (this.paused.has(k)) continue;
      const [topic, p] = [k.slice(0, k.lastIndexOf(':')), Number(k.slice(k.lastIndexOf(':') + 1))];
      const log = this.bus.log(topic, p);
      const from = Number(this.position.get(k) ?? 0n);
      const recs = log.slice(from, from + Math.min(max, log.length));
      if (recs.length === 0) continue;
      this.position.set(k, BigInt(from + recs.length));
      n += recs.length;
      this.handlers!.onRecords(recs);
    }
    return n;
  }

  pause(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      this.paused.add(tpKey(tp));
      this.calls.push(`pause ${tpKey(tp)}`);
    }
  }

  resume(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      this.paused.delete(tpKey(tp));
      this.calls.push(`resume ${tpKey(tp)}`);
    }
  }

  async complete(c: Completion): Promise<boolean> {
    return (await this.completeMany([c]))[0]!;
  }

  async completeMany(cs: Completion[]): Promise<boolean[]> {
    await this.bus.gate();
    const ok = cs.map((c) => !this.stopped && this.assigned.has(tpKey(c.input)));
    this.bus.append(cs.filter((_, i) => ok[i]).flatMap((c) => c.outputs));
    this.bus.completions.push(...cs.filter((_, i) => ok[i]));
    cs.forEach((c, i) => ok[i] && c.commit !== undefined && this.bus.commit(this.opts.groupId, c.input, c.commit));
    return ok;
  }

  async commit(tp: TopicPartition, offset: string): Promise<boolean> {
    if (this.stopped || !this.assigned.has(tpKey(tp))) return false;
    this.bus.commit(this.opts.groupId, tp, offset);
    return true;
  }

  async processedAbove(): Promise<Set<string>> {
    return new Set();
  }

  async committed(tp: TopicPartition): Promise<string> {
    return this.bus.commits.get(`${this.opts.groupId}|${tpKey(tp)}`) ?? '0';
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }
}

/** Topics as arrays of records; see the module comment. */
export class MemoryTransport implements Transport {
  readonly kind = 'embedded' as const;
  readonly maxRecordBytes?: number;
  private readonly topics = new Map<string, ConsumedRecord[][]>();
  /** `<group>|<topic>:<partition>` → committed offset */
  readonly commits = new Map<string, string>();
  /** Every commit in order, as `<topic>:<partition>@<offset>` */
  readonly commitLog: string[] = [];
  readonly completions: Completion[] = [];
  readonly consumers: MemoryConsumer[] = [];
  /** Errors the next produce/complete calls throw, first in first out. */
  readonly failures: Error[] = [];
  /** When set, produce/complete calls wait for it (a slow bus); replace to release. */
  hold?: Promise<void>;

  constructor(opts: { maxRecordBytes?: number } = {}) {
    this.maxRecordBytes = opts.maxRecordBytes;
  }

  /** The partition's records (created empty on first use). */
  log(topic: string, partition: number): ConsumedRecord[] {
    let t = this.topics.get(topic);
    if (!t) this.topics.set(topic, (t = []));
    return (t[partition] ??= []);
  }

  /** Every record produced to a topic, all partitions. */
  records(topic: string): ConsumedRecord[] {
    return (this.topics.get(topic) ?? []).flat();
  }

  /** @internal */
  async gate(): Promise<void> {
    if (this.hold) await this.hold;
    const f = this.failures.shift();
    if (f) throw f;
  }

  /** @internal */
  commit(group: string, tp: TopicPartition, offset: string): void {
    this.commits.set(`${group}|${tpKey(tp)}`, offset);
    this.commitLog.push(`${tpKey(tp)}@${offset}`);
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    for (const s of specs) for (let p = 0; p < s.partitions; p++) this.log(s.name, p);
  }

  /** Append records (after the gate: a held or failing bus); see {@link append}. */
  async produce(records: ProduceRecord[]): Promise<void> {
    await this.gate();
    this.append(records);
  }

  /** @internal Append records; the partition is the record's, else key hash over the topic's partitions (at least 1). */
  append(records: ProduceRecord[]): void {
    for (const r of records) {
      if (this.maxRecordBytes !== undefined && (r.value?.length ?? 0) > this.maxRecordBytes) throw new TransportError(`record for ${r.topic} too large`, false, { refused: true });
    }
    for (const r of records) {
      const n = Math.max(1, this.topics.get(r.topic)?.length ?? 1);
      const partition = r.partition ?? partitionFor(r.key, n);
      const log = this.log(r.topic, partition);
      log.push({ topic: r.topic, partition, offset: String(log.length), key: r.key, value: r.value, headers: r.headers ?? {}, timestamp: 0 });
    }
  }

  /** Runner unit tests need no keyed store: refused, so a test that reaches one fails loudly. */
  async openStore(namespace: string): Promise<KeyedStore> {
    throw new TransportError(`the memory transport keeps no keyed stores (asked for ${namespace})`, false);
  }

  consumer(opts: ConsumerOptions): GroupConsumer {
    const c = new MemoryConsumer(this, opts);
    this.consumers.push(c);
    return c;
  }

  async topicOffsets(topic: string): Promise<PartitionOffsets[]> {
    return (this.topics.get(topic) ?? []).map((l, partition) => ({ partition, low: '0', high: String(l.length) }));
  }

  async groupOffsets(groupId: string, topics: string[]): Promise<Array<TopicPartition & { offset: string }>> {
    const out: Array<TopicPartition & { offset: string }> = [];
    for (const [k, offset] of this.commits) {
      const [g, tp] = k.split('|') as [string, string];
      const topic = tp.slice(0, tp.lastIndexOf(':'));
      if (g === groupId && topics.includes(topic)) out.push({ topic, partition: Number(tp.slice(tp.lastIndexOf(':') + 1)), offset });
    }
    return out;
  }

  async listGroups(): Promise<string[]> {
    return [...new Set([...this.commits.keys()].map((k) => k.split('|')[0]!))];
  }

  async read(topic: string, partition: number, fromOffset: string, max: number): Promise<ConsumedRecord[]> {
    return this.log(topic, partition).slice(Number(fromOffset), Number(fromOffset) + max);
  }

  async close(): Promise<void> {}
}
