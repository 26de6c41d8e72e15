/**
 * chDB holds its data directory per process: a second process (report while run writes) gets a clear,
 * retriable error, and can open the directory once the first process has ended.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../../../connectors/sinks/connection.js';

const HOLDER = `
const { createClient } = require('@clickhouse/client');
const { createChdbConnection } = require('chdb/connection');
(async () => {
  const c = createClient({ connection: createChdbConnection({ path: process.argv[1] }) });
  await (await c.query({ query: 'SELECT 1', format: 'JSONEachRow' })).json();
  process.stdout.write('ready\\n');
  process.stdin.resume();
  process.stdin.on('end', async () => { await c.close(); process.exit(0); });
})();
`;

describe('chDB data directory in use by another process', () => {
  it('is reported as CHDB_LOCKED (retriable) and opens after the other process ends', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'swe-stream-lock-'));
    const child = spawn(process.execPath, ['-e', HOLDER, join(dataDir, 'chdb')], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [first] = (await once(child.stdout!, 'data')) as [Buffer];
      expect(first.toString()).toBe('ready\n');
      const err = await openClickHouse({ dataDir }).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ name: 'ClickHouseStoreError', code: 'CHDB_LOCKED', retriable: true });
      expect((err as Error).message).toMatch(/in use by another process/);
      child.stdin!.end();
      await once(child, 'exit');
      const ch = await openClickHouse({ dataDir });
      expect(ch.backend).toBe('chdb');
      await ch.close();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
