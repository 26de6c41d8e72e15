/**
 * ClickHouse sink against real engines: chDB in process and a ClickHouse server (the shared one at
 * SWE_STREAM_CLICKHOUSE_URL when it answers, else a private Debian clickhouse-server 18.16 on a free port).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseSink, InvalidRecordError, insertBatch, batchToken } from '../../../connectors/sinks/clickhouse.js';
import { outcomeRow } from '../../../connectors/sinks/rows.js';
import { openClickHouse, type ClickHouse } from '../../../connectors/sinks/connection.js';
import { outcome, verified, stated, trajectory } from './fixtures.js';
import { LossyProxy, PrivateServer, clickHouseTargets, haveServerBinary } from './server.js';

const targets = clickHouseTargets('sink');
const dataDir = targets.dataDir;

const uniqueDb = (tag: string): string => `t_sink_${tag}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;

async function count(ch: ClickHouse, table: string, final: boolean): Promise<number> {
  const r = await ch.rows<{ c: number }>(`SELECT count() AS c FROM ${ch.database}.${table}${final ? ' FINAL' : ''}`);
  return Number(r[0]!.c);
}

const backends = [
  { name: 'chdb', target: () => ({ dataDir }) },
  { name: 'server', target: () => ({ url: targets.url()! }) },
] as const;

describe.each(backends)('ClickHouseSink on $name', ({ name, target }) => {
  it('stores every record once, latest outcome and the stated task win, whatever the order', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    const database = uniqueDb(name);
    const sink = await ClickHouseSink.open({ ...target(), database, flushIntervalMs: 0, batchRows: 3 });
    try {
      const v1 = verified('acme/widgets', 1);
      const v2 = verified('acme/widgets', 2);
      // stated arrives before its verified record (different topics, different consumers)
      sink.push('tasks.stated', stated(v1, 'API Mismatch'));
      sink.push('tasks.verified', v2);
      sink.push('stage.outcomes', outcome({ stage: 'filter', key: 'acme/widgets#1', kind: 'failed', attempts: 1, ts_ms: 1000 }));
      sink.push('stage.outcomes', outcome({ stage: 'filter', key: 'acme/widgets#2', kind: 'accepted' }));
      await sink.flush();
      sink.push('tasks.verified', v1); // late replay must not erase the statement
      sink.push('stage.outcomes', outcome({ stage: 'filter', key: 'acme/widgets#1', kind: 'accepted', attempts: 2, ts_ms: 2000 }));
      sink.push('stage.outcomes', outcome({ stage: 'filter', key: 'acme/widgets#2', kind: 'accepted' })); // exact duplicate
      sink.push('trajectories', trajectory(v1.instance_id, 1));
      sink.push('trajectories', trajectory(v1.instance_id, 1));
      await sink.flush();
      const ch = sink.ch;
      expect(await count(ch, 'stage_outcomes', true)).toBe(2);
      expect(await count(ch, 'tasks', true)).toBe(2);
      expect(await count(ch, 'trajectories', true)).toBe(1);
      const o = await ch.rows<{ kind: string; attempts: number }>(`SELECT kind, attempts FROM ${database}.stage_outcomes FINAL WHERE outcome_id = 'filter:acme/widgets#1'`);
      expect(o).toEqual([{ kind: 'accepted', attempts: 2 }]);
      const t = (await ch.rows<{ has_statement: number; category: string; FAIL_TO_PASS: string[]; record_json: string }>(
        `SELECT has_statement, category, FAIL_TO_PASS, record_json FROM ${database}.tasks FINAL WHERE instance_id = '${v1.instance_id}'`,
      )).map((r) => ({ has_statement: r.has_statement, category: r.category, FAIL_TO_PASS: r.FAIL_TO_PASS, body: JSON.parse(r.record_json).candidate.body as string }));
      expect(t).toEqual([{ has_statement: 1, category: 'API Mismatch', FAIL_TO_PASS: v1.verification.FAIL_TO_PASS, body: v1.candidate.body }]);
      expect(sink.stats()).toMatchObject({ pushed: 9, invalid: 0, pendingRows: 0 });
    } finally {
      await sink.close();
    }
  });

  it('refuses a malformed record with the bad fields named and keeps the rest of the batch', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    const database = uniqueDb(name);
    const sink = await ClickHouseSink.open({ ...target(), database, flushIntervalMs: 0 });
    try {
      sink.push('stage.outcomes', outcome({ stage: 'verify', key: 'a/b#1', kind: 'accepted' }));
      const bad = { ...outcome({ stage: 'verify', key: 'a/b#2', kind: 'accepted' }) } as Record<string, unknown>;
      delete bad.outcome_id;
      bad.ts_ms = 'yesterday';
      let err: unknown;
      try { sink.push('stage.outcomes', bad); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(InvalidRecordError);
      expect((err as InvalidRecordError).retriable).toBe(false);
      expect((err as InvalidRecordError).paths).toEqual(expect.arrayContaining(['outcome_id', 'ts_ms']));
      expect(() => sink.push('env.ready', {})).toThrow(/does not store topic env\.ready/);
      sink.push('stage.outcomes', outcome({ stage: 'verify', key: 'a/b#3', kind: 'rejected', reason: 'no-f2p' }));
      await sink.flush();
      expect(await count(sink.ch, 'stage_outcomes', true)).toBe(2);
      expect(sink.stats().invalid).toBe(2);
    } finally {
      await sink.close();
    }
  });

  it('applies the DDL idempotently', async (ctx) => {
    if (name === 'server' && !targets.url()) ctx.skip();
    const database = uniqueDb(name);
    const a = await openClickHouse({ ...target(), database });
    await a.close();
    const b = await openClickHouse({ ...target(), database });
    try {
      const tables = await b.rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`);
      expect(tables.map((t) => t.name)).toEqual(['pr_events', 'releases', 'revalidations', 'stage_outcomes', 'task_images', 'tasks', 'trajectories']);
    } finally {
      await b.close();
    }
  });
});

describe('dedup tokens', () => {
  it('chDB drops a retried batch carrying the same token (storage not doubled), a new token inserts', async () => {
    const ch = await openClickHouse({ dataDir, database: uniqueDb('tok') });
    try {
      expect(ch.capabilities).toMatchObject({ dedupToken: true, nonReplicatedDedup: true, parquet: true });
      const rows = [1, 2, 3].map((i) => outcomeRow(outcome({ stage: 'filter', key: `x/y#${i}`, kind: 'accepted' }), 1).row);
      const token = batchToken('stage_outcomes', rows);
      await insertBatch(ch, 'stage_outcomes', rows, token);
      await insertBatch(ch, 'stage_outcomes', rows, token); // the retry of a batch whose first answer was lost
      expect(await count(ch, 'stage_outcomes', false)).toBe(3);
      await insertBatch(ch, 'stage_outcomes', rows, `${token}-other`);
      expect(await count(ch, 'stage_outcomes', false)).toBe(6);
      expect(await count(ch, 'stage_outcomes', true)).toBe(3);
    } finally {
      await ch.close();
    }
  });

  it('the 18.16 server has no token: a doubled insert is doubled in storage but exact through FINAL', async (ctx) => {
    if (!targets.url()) ctx.skip();
    const ch = await openClickHouse({ url: targets.url()!, database: uniqueDb('tok18') });
    try {
      if (ch.capabilities.dedupToken) ctx.skip(); // a newer server: covered by the chDB case
      const rows = [1, 2].map((i) => outcomeRow(outcome({ stage: 'filter', key: `x/y#${i}`, kind: 'accepted' }), 1).row);
      const token = batchToken('stage_outcomes', rows);
      await insertBatch(ch, 'stage_outcomes', rows, token);
      await insertBatch(ch, 'stage_outcomes', rows, token);
      expect(await count(ch, 'stage_outcomes', false)).toBe(4);
      expect(await count(ch, 'stage_outcomes', true)).toBe(2);
    } finally {
      await ch.close();
    }
  });
});

describe.skipIf(!haveServerBinary() && !process.env.CI)('a server that goes away mid-run', () => {
  it('keeps failed batches, retries them with the same token, loses and doubles nothing', async () => {
    const server = new PrivateServer();
    await server.start();
    const database = uniqueDb('outage');
    const sink = await ClickHouseSink.open({ url: server.url, database, flushIntervalMs: 0, retryInitialDelayMs: 20, retryMaxDelayMs: 200, requestTimeoutMs: 2000 });
    try {
      for (let i = 0; i < 5; i++) sink.push('stage.outcomes', outcome({ stage: 'filter', key: `o/r#${i}`, kind: 'accepted' }));
      await sink.flush();

      await server.stop();
      for (let i = 5; i < 10; i++) sink.push('stage.outcomes', outcome({ stage: 'filter', key: `o/r#${i}`, kind: 'accepted' }));
      sink.push('tasks.verified', verified('o/r', 7));
      // Budget exhausted while the server is down: the flush says so, retriable, and keeps the rows.
      const err = await sink.flush({ retryBudgetMs: 300 }).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ name: 'ClickHouseStoreError', retriable: true });
      expect(sink.stats().pendingRows).toBe(6);
      expect(sink.stats().retries).toBeGreaterThan(0);

      // Server comes back while a flush is retrying: the same batches go in once.
      for (let i = 10; i < 12; i++) sink.push('stage.outcomes', outcome({ stage: 'filter', key: `o/r#${i}`, kind: 'accepted' }));
      const retriesBefore = sink.stats().retries;
      const flushed = sink.flush({ retryBudgetMs: 60_000 });
      await server.start();
      await flushed;
      expect(sink.stats().retries).toBeGreaterThan(retriesBefore);
      expect(sink.stats().pendingRows).toBe(0);
      expect(await count(sink.ch, 'stage_outcomes', true)).toBe(12);
      expect(await count(sink.ch, 'stage_outcomes', false)).toBe(12);
      expect(await count(sink.ch, 'tasks', true)).toBe(1);
    } finally {
      await sink.close().catch(() => undefined);
      await server.dispose();
    }
  });
});

describe.skipIf(!haveServerBinary() && !process.env.CI)('an insert whose answer is lost', () => {
  it('is retried with the same token; reads stay exact (18.16 keeps the second copy until a merge, FINAL hides it)', async () => {
    const server = new PrivateServer();
    await server.start();
    const proxy = new LossyProxy(server.httpPort, 'query=INSERT', 1);
    await proxy.start();
    const database = uniqueDb('lost');
    const sink = await ClickHouseSink.open({ url: proxy.url, database, flushIntervalMs: 0, retryInitialDelayMs: 10 });
    try {
      await sink.ch.command('SYSTEM STOP MERGES'); // private server: a background merge must not hide the stored copy
      for (let i = 0; i < 4; i++) sink.push('stage.outcomes', outcome({ stage: 'verify', key: `l/r#${i}`, kind: 'accepted' }));
      await sink.flush();
      expect(proxy.dropped).toBe(1);
      expect(sink.stats()).toMatchObject({ retries: 1, insertedBatches: 1, insertedRows: 4, pendingRows: 0 });
      expect(await count(sink.ch, 'stage_outcomes', true)).toBe(4);
      // Without insert_deduplication_token (18.16) the retried block is stored twice; with it, once.
      expect(await count(sink.ch, 'stage_outcomes', false)).toBe(sink.ch.capabilities.dedupToken ? 4 : 8);
    } finally {
      await sink.close();
      await proxy.stop();
      await server.dispose();
    }
  });
});
