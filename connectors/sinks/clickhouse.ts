/**
 * The ClickHouse sink: stores stage.outcomes, tasks.verified, tasks.stated and trajectories records in
 * the tables of infra/clickhouse (ARCHITECTURE.md §4 "ClickHouse"). Interface: `push`, `flush`, `close`.
 * The lead's transport wiring pushes each consumed record, calls `flush()` and commits the input offsets
 * only after it resolved — so a crash before the flush replays the records, and the keyed tables absorb
 * the replay.
 *
 * What guarantees "nothing doubled":
 * - Reads are exact on every engine: tables are ReplacingMergeTree keyed by the record's deterministic id
 *   and all analytics read with FINAL or argMax(…, _version). This is the only guarantee on
 *   ClickHouse 18.16 (no insert_deduplication_token, no non-replicated block dedup there).
 * - Storage is not doubled either where the engine can: each batch gets a token (sha256 of its rows),
 *   kept across its retries and sent as `insert_deduplication_token`, and the tables get
 *   `non_replicated_deduplication_window` (infra/clickhouse/010_dedup_window.sql). chDB (26.x) and
 *   servers ≥ 22.2 then drop a retried batch that had in fact been written before the connection failed.
 *
 * What guarantees "nothing lost": a batch leaves the pending queue only after its insert returned; a
 * failed insert stays at the head of the queue and is retried with the same token (exponential backoff),
 * by the same flush until `retryBudgetMs` runs out, then by the next flush.
 */
import { createHash } from 'node:crypto';
import { openClickHouse, toStoreError, ClickHouseStoreError, type ClickHouse, type ClickHouseTarget } from './connection.js';
import { toRow, InvalidRecordError, type SinkRow, type SinkTable } from './rows.js';
import { sinkInvalid, sinkPending, sinkRetries, sinkRows } from '../../streams/metrics.js';
import { logger } from '../../streams/log.js';

export { InvalidRecordError } from './rows.js';
export { ClickHouseStoreError } from './connection.js';

const log = logger({ component: 'clickhouse-sink' });

/** Options of {@link ClickHouseSink.open}. Sizes in rows and bytes (UTF-16 length of the JSON row, an estimate), times in ms. */
export interface ClickHouseSinkOptions extends ClickHouseTarget {
  /** Cut a batch when a table's buffer holds this many rows (default 1000). */
  batchRows?: number;
  /** …or this many bytes of row JSON (default 8 MiB; task rows carry whole diffs). */
  batchBytes?: number;
  /** Flush buffered rows at least this often in the background (default 1000 ms; 0 = only on size or flush()). */
  flushIntervalMs?: number;
  /** First retry delay (default 100 ms), doubled per attempt up to `retryMaxDelayMs` (default 5000 ms). */
  retryInitialDelayMs?: number;
  retryMaxDelayMs?: number;
  /** How long one flush keeps retrying a failing batch before it rejects (default 60 000 ms). The batch is kept. */
  retryBudgetMs?: number;
  /** Clock for ingested_ms (default Date.now). */
  now?: () => number;
}

/** One batch in the pending queue: rows of one table and the dedup token that stays with it across retries. */
interface Batch {
  table: SinkTable;
  rows: Record<string, unknown>[];
  token: string;
  attempts: number;
}

/** Counters of one sink instance (rows, batches, retries since open). */
export interface SinkStats {
  pushed: number;
  invalid: number;
  insertedRows: number;
  insertedBatches: number;
  retries: number;
  /** Rows buffered or pending (not yet durable). */
  pendingRows: number;
}

const TABLES: SinkTable[] = ['stage_outcomes', 'tasks', 'trajectories', 'pr_events'];

/** Dedup token of a batch: sha256 over table and row JSON, so the same rows always carry the same token. */
export function batchToken(table: SinkTable, rows: readonly Record<string, unknown>[]): string {
  const h = createHash('sha256').update(table);
  for (const r of rows) h.update('\n').update(JSON.stringify(r));
  return h.digest('hex').slice(0, 40);
}

/**
 * Insert one batch once, with its token when the engine supports tokens.
 * Exposed for tests that check what a retried batch does. @throws ClickHouseStoreError
 */
export async function insertBatch(ch: ClickHouse, table: SinkTable, rows: readonly Record<string, unknown>[], token: string): Promise<void> {
  try {
    await ch.client.insert({
      table: `${ch.database}.${table}`,
      values: rows as Record<string, unknown>[],
      format: 'JSONEachRow',
      // The token is always sent where supported: chDB keeps settings on its session, so an insert
      // without one could inherit the previous batch's token and be dropped as a duplicate.
      clickhouse_settings: ch.capabilities.dedupToken ? { insert_deduplication_token: token, insert_deduplicate: 1 } : {},
    });
  } catch (err) {
    throw toStoreError(err, `insert into ${table} failed`);
  }
}

/** ClickHouse sink; see the module comment for the guarantees. Not safe to share across processes with chDB (one writer per data dir). */
export class ClickHouseSink {
  readonly ch: ClickHouse;
  private readonly opts: Required<Omit<ClickHouseSinkOptions, keyof ClickHouseTarget>>;
  /** Rows per table with their JSON size (bytes, UTF-16 units), measured once at push. */
  private readonly buffers = new Map<SinkTable, { rows: Array<{ row: Record<string, unknown>; size: number }>; bytes: number }>();
  private readonly pending: Batch[] = [];
  /** Serialises drains: one insert at a time keeps batch order and the queue head well defined. */
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters: SinkStats = { pushed: 0, invalid: 0, insertedRows: 0, insertedBatches: 0, retries: 0, pendingRows: 0 };

  private constructor(ch: ClickHouse, opts: ClickHouseSinkOptions) {
    this.ch = ch;
    this.opts = {
      batchRows: opts.batchRows ?? 1000,
      batchBytes: opts.batchBytes ?? 8 * 1024 * 1024,
      flushIntervalMs: opts.flushIntervalMs ?? 1000,
      retryInitialDelayMs: opts.retryInitialDelayMs ?? 100,
      retryMaxDelayMs: opts.retryMaxDelayMs ?? 5000,
      retryBudgetMs: opts.retryBudgetMs ?? 60_000,
      now: opts.now ?? Date.now,
    };
    for (const t of TABLES) this.buffers.set(t, { rows: [], bytes: 0 });
    if (this.opts.flushIntervalMs > 0) {
      this.timer = setInterval(() => this.background('interval'), this.opts.flushIntervalMs);
      this.timer.unref();
    }
  }

  /**
   * Open ClickHouse (chDB under `<dataDir>/chdb`, or the server at `url`), apply the DDL idempotently and
   * return a sink. @throws ClickHouseStoreError (retriable when the engine could not be reached)
   */
  static async open(opts: ClickHouseSinkOptions): Promise<ClickHouseSink> {
    const ch = await openClickHouse(opts);
    return new ClickHouseSink(ch, opts);
  }

  /**
   * Validate one record against its topic's Avro schema and buffer its row. Cuts a batch and starts a
   * background insert when the buffer reaches `batchRows`/`batchBytes`. Durable only after {@link flush}.
   * @throws InvalidRecordError (retriable = false) for a record that fails its schema or an unknown topic;
   *         nothing of that record is buffered, and earlier/later records are unaffected.
   * @throws Error when the sink is closed
   */
  push(topic: string, record: unknown): void {
    if (this.closed) throw Object.assign(new Error('ClickHouse sink is closed'), { retriable: false });
    let row: SinkRow;
    try {
      row = toRow(topic, record, this.opts.now());
    } catch (err) {
      if (err instanceof InvalidRecordError) {
        this.counters.invalid++;
        sinkInvalid.inc({ topic });
        log.warn({ topic, paths: err.paths }, err.message);
      }
      throw err;
    }
    this.counters.pushed++;
    const buf = this.buffers.get(row.table)!;
    const size = JSON.stringify(row.row).length;
    buf.rows.push({ row: row.row, size });
    buf.bytes += size;
    this.updatePending();
    if (buf.rows.length >= this.opts.batchRows || buf.bytes >= this.opts.batchBytes) this.background('size');
  }

  /**
   * Make every row pushed before this call durable: cut the buffers into batches and insert all pending
   * batches in order, retrying failures with the same dedup token for up to `retryBudgetMs`.
   * @param opts.retryBudgetMs override the sink's retry budget for this flush (ms)
   * @throws ClickHouseStoreError when a batch could not be inserted (retriable: the batch stays queued and
   *         the next flush retries it; non-retriable: the server refused the rows, e.g. a schema mismatch)
   */
  async flush(opts: { retryBudgetMs?: number } = {}): Promise<void> {
    this.cut();
    await this.drain(opts.retryBudgetMs ?? this.opts.retryBudgetMs);
  }

  /** Flush, stop the timer and close the connection. @throws what {@link flush} throws (the connection is closed anyway). */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.ch.close();
    }
  }

  /** Counters since open. */
  stats(): SinkStats {
    return { ...this.counters };
  }

  /** Cut every non-empty buffer into batches of at most batchRows rows / batchBytes bytes. */
  private cut(): void {
    for (const [table, buf] of this.buffers) {
      if (buf.rows.length === 0) continue;
      let rows: Record<string, unknown>[] = [];
      let bytes = 0;
      for (const { row: r, size } of buf.rows) {
        if (rows.length > 0 && (rows.length >= this.opts.batchRows || bytes + size > this.opts.batchBytes)) {
          this.pending.push({ table, rows, token: batchToken(table, rows), attempts: 0 });
          rows = [];
          bytes = 0;
        }
        rows.push(r);
        bytes += size;
      }
      if (rows.length) this.pending.push({ table, rows, token: batchToken(table, rows), attempts: 0 });
      buf.rows = [];
      buf.bytes = 0;
    }
  }

  /** Cut and drain without a caller; a failure is logged and kept for the next flush (the batch stays queued). */
  private background(why: string): void {
    if (this.closed) return;
    this.cut();
    if (this.pending.length === 0) return;
    this.drain().catch((err: unknown) => {
      // Already logged per batch; the batch stays queued and the caller's next flush() retries and reports it.
      log.warn({ why, err: String(err), retriable: (err as { retriable?: boolean }).retriable }, 'background ClickHouse flush failed; batch kept for the next flush');
    });
  }

  /** Insert pending batches in order, one drain at a time. */
  private drain(budgetMs = this.opts.retryBudgetMs): Promise<void> {
    const run = (): Promise<void> => this.sendAll(budgetMs);
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async sendAll(budgetMs: number): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending[0]!;
      await this.sendWithRetry(batch, budgetMs);
      this.pending.shift();
      this.counters.insertedRows += batch.rows.length;
      this.counters.insertedBatches++;
      sinkRows.inc({ table: batch.table }, batch.rows.length);
      this.updatePending();
    }
  }

  private async sendWithRetry(batch: Batch, budgetMs: number): Promise<void> {
    const started = Date.now();
    let delay = this.opts.retryInitialDelayMs;
    for (;;) {
      batch.attempts++;
      try {
        await insertBatch(this.ch, batch.table, batch.rows, batch.token);
        if (batch.attempts > 1) log.info({ table: batch.table, dedupToken: batch.token, attempts: batch.attempts }, 'batch inserted after retry');
        return;
      } catch (err) {
        const e = err instanceof ClickHouseStoreError ? err : toStoreError(err, 'insert failed');
        const elapsed = Date.now() - started;
        if (!e.retriable || elapsed + delay > budgetMs) {
          log.error({ table: batch.table, dedupToken: batch.token, attempts: batch.attempts, retriable: e.retriable, code: e.code, err: e.message }, 'batch not inserted; kept for the next flush');
          throw e;
        }
        this.counters.retries++;
        sinkRetries.inc({ table: batch.table });
        log.warn({ table: batch.table, dedupToken: batch.token, attempt: batch.attempts, delayMs: delay, code: e.code, err: e.message }, 'insert failed, retrying with the same dedup token');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, this.opts.retryMaxDelayMs);
      }
    }
  }

  private updatePending(): void {
    let n = 0;
    for (const b of this.buffers.values()) n += b.rows.length;
    for (const b of this.pending) n += b.rows.length;
    this.counters.pendingRows = n;
    sinkPending.set(n);
  }
}
