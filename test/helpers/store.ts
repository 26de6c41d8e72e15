/**
 * A real keyed store for tests that drive a stage directly: the embedded log's store (streams/store.ts) in
 * a temporary data directory — the same code the pipeline runs, never a stand-in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedTransport } from '../../streams/transports/embedded.js';
import type { KeyedStore } from '../../streams/store.js';

/** Open `namespace` on a fresh embedded log; `close()` closes the log and removes its directory. */
export async function tempStore(namespace: string): Promise<KeyedStore & { close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'swe-test-store-'));
  const t = new EmbeddedTransport({ path: join(dir, 'log.db') });
  const store = await t.openStore(namespace);
  return Object.assign(Object.create(store) as KeyedStore, {
    close: async () => {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  }) as KeyedStore & { close(): Promise<void> };
}
