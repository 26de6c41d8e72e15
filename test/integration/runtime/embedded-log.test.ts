/**
 * The embedded log's storage: the records table layout (a rowid table with an index on topic, partition and
 * offset), the one-time migration of logs written with the earlier clustered layout, and WAL checkpoints run
 * on a worker thread (streams/transports/checkpointer.ts) instead of by the writer.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';
import { WalCheckpointer } from '../../../streams/transports/checkpointer.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'swe-log-'));
  dirs.push(dir);
  return join(dir, 'log.db');
}

async function readAll(t: EmbeddedTransport, topic: string): Promise<Array<{ offset: string; key: string | null; value: string }>> {
  const out: Array<{ offset: string; key: string | null; value: string }> = [];
  for (const p of await t.topicOffsets(topic)) {
    let from = BigInt(p.low);
    for (;;) {
      const recs = await t.read(topic, p.partition, from.toString(), 5000);
      if (recs.length === 0) break;
      for (const r of recs) out.push({ offset: r.offset, key: r.key ?? null, value: r.value!.toString() });
      from = BigInt(recs[recs.length - 1]!.offset) + 1n;
    }
  }
  return out;
}

describe('embedded log storage', () => {
  it('migrates a log written with the clustered (WITHOUT ROWID) records table, keeping offsets and appending after them', async () => {
    const path = tempPath();
    const old = new Database(path);
    old.exec(`CREATE TABLE topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
      CREATE TABLE records (topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
        key TEXT, value BLOB, headers TEXT, ts INTEGER NOT NULL, PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
      INSERT INTO topics VALUES ('t', 1);`);
    const ins = old.prepare('INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < 3; i++) ins.run('t', 0, i, `k${i}`, Buffer.from(`v${i}`), null, 1);
    old.close();

    const t = new EmbeddedTransport({ path });
    await t.produce([{ topic: 't', key: 'k3', value: Buffer.from('v3'), partition: 0 }]);
    expect(await readAll(t, 't')).toEqual([0, 1, 2, 3].map((i) => ({ offset: String(i), key: `k${i}`, value: `v${i}` })));
    await t.close();

    const db = new Database(path, { readonly: true });
    const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'records'").get() as { sql: string }).sql;
    const leftovers = db.prepare("SELECT name FROM sqlite_master WHERE name = 'records_clustered'").all();
    db.close();
    expect(sql).not.toMatch(/WITHOUT ROWID/i);
    expect(leftovers).toEqual([]);
  });

  it('the checkpoint thread copies committed pages into the database file while the writer does not checkpoint', async () => {
    const path = tempPath();
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE blobs (v BLOB)');
    const cp = new WalCheckpointer(db, path, 20);
    // ~6 MB in 4 KiB pages: under the writer's backstop (8,192 pages), so only the thread can move them.
    const ins = db.prepare('INSERT INTO blobs VALUES (?)');
    for (let i = 0; i < 30; i++) db.transaction(() => { for (let j = 0; j < 50; j++) ins.run(Buffer.alloc(4000, i)); })();
    await vi.waitFor(() => expect(statSync(path).size).toBeGreaterThan(5_000_000), { timeout: 20_000, interval: 50 });
    await cp.stop();
    expect((db.prepare('SELECT COUNT(*) AS n FROM blobs').get() as { n: number }).n).toBe(1500);
    db.close();
  });

  it('a log past the checkpoint threshold keeps every record across close and reopen', async () => {
    const path = tempPath();
    const t = new EmbeddedTransport({ path });
    await t.ensureTopics([{ name: 't', partitions: 2 }]);
    const n = 25_000;
    for (let i = 0; i < n; i += 1000) {
      await t.produce(Array.from({ length: 1000 }, (_, j) => ({ topic: 't', key: `k${i + j}`, value: Buffer.from(`v${i + j}`) })));
    }
    // The thread starts after the first flush past the threshold; one more write lands while it runs.
    await t.produce([{ topic: 't', key: 'last', value: Buffer.from('last') }]);
    await t.close();
    const again = new EmbeddedTransport({ path });
    const recs = await readAll(again, 't');
    await again.close();
    expect(recs).toHaveLength(n + 1);
    expect(new Set(recs.map((r) => r.key)).size).toBe(n + 1);
  });
});
