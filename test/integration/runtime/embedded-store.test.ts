/**
 * Keyed stores on the embedded log (streams/store.ts): a write made for an input record is committed in the
 * same transaction as that record's completion — visible to this process at once, durable only with it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EmbeddedTransport } from '../../../streams/transports/embedded.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

async function open() {
  const dir = mkdtempSync(join(tmpdir(), 'swe-store-'));
  dirs.push(dir);
  const path = join(dir, 'log.db');
  const t = new EmbeddedTransport({ path, pollMs: 5 });
  await t.ensureTopics([{ name: 'in', partitions: 1 }, { name: 'out', partitions: 1 }]);
  return { t, path };
}

describe('keyed store on the embedded log', () => {
  it('put, delete, putIfAbsent (first writer wins), durable across a reopen', async () => {
    const { t, path } = await open();
    const s = await t.openStore('filter.patch-seen');
    await s.put('a', '1');
    expect(await s.putIfAbsent('h', 'pr-1')).toBe('pr-1');
    expect(await s.putIfAbsent('h', 'pr-2')).toBe('pr-1');
    await s.put('gone', 'x');
    await s.delete('gone');
    await t.close();
    const again = new EmbeddedTransport({ path });
    const s2 = await again.openStore('filter.patch-seen');
    expect(await s2.get('a')).toBe('1');
    expect(await s2.get('h')).toBe('pr-1');
    expect(await s2.get('gone')).toBeNull();
    expect(await (await again.openStore('other')).get('a')).toBeNull();
    await again.close();
  });

  it("a write for an input record is durable only in the transaction of that record's completion", async () => {
    const { t, path } = await open();
    await t.produce([{ topic: 'in', key: 'k', value: Buffer.from('x') }]);
    const s = await t.openStore('claims');
    const c = t.consumer({ groupId: 'g', topics: ['in'] });
    await c.start({ onRecords: () => undefined });
    const origin = { topic: 'in', partition: 0, offset: '0' };
    expect(await s.putIfAbsent('h', 'pr-1', { origin })).toBe('pr-1');
    expect(await s.get('h')).toBe('pr-1'); // read-your-writes in this process
    expect(await s.putIfAbsent('h', 'pr-2', { origin: { ...origin, offset: '1' } })).toBe('pr-1');
    const peek = () => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare("SELECT v FROM store WHERE ns = 'claims' AND k = 'h'").pluck().get() ?? null;
      } finally {
        db.close();
      }
    };
    await t.produce([{ topic: 'out', key: 'unrelated', value: Buffer.from('y') }]);
    expect(peek()).toBeNull(); // another transaction does not carry it
    await c.complete({ input: origin, outputs: [{ topic: 'out', key: 'k', value: Buffer.from('z') }], commit: '1' });
    expect(peek()).toBe('pr-1');
    await c.stop();
    await t.close();
  });

  it('moves source cursors of an older log (state table) into the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swe-store-'));
    dirs.push(dir);
    const path = join(dir, 'log.db');
    const db = new Database(path);
    db.exec("CREATE TABLE state (k TEXT PRIMARY KEY, v TEXT NOT NULL); INSERT INTO state VALUES ('source-cursor:git:/r', 'abc')");
    db.close();
    const t = new EmbeddedTransport({ path });
    expect(await (await t.openStore('source-cursors')).get('git:/r')).toBe('abc');
    await t.close();
  });
});
