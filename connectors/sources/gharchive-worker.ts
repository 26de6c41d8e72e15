/**
 * Worker-thread side of the GH Archive pool (./gharchive-pool.ts): scans the files it is sent, one at a
 * time, with the same code as the in-thread reader (./gharchive-scan.ts via scanStream), and posts the
 * items in batches. Messages in: `{id, scan: ScanOptions}`. Messages out: `{id, items: SourceItem[]}`
 * (0..n), then `{id, end: true}` or `{id, openError: {message, status?, code?}}` or `{id, error: message}`.
 */
import { parentPort } from 'node:worker_threads';
import type { SourceItem } from './types.js';
import type { ScanOptions } from './gharchive-scan.js';
import { ArchiveOpenError, openLocation, scanStream } from './gharchive-scan.js';

/** Items per message: large enough that posting costs little per item, small enough to stream. */
const BATCH = 2048;

async function scan(id: number, o: ScanOptions): Promise<void> {
  const port = parentPort!;
  const signal = new AbortController().signal;
  let input;
  try {
    input = await openLocation(o.loc, signal);
  } catch (err) {
    const e = err as ArchiveOpenError;
    port.postMessage({ id, openError: { message: e.message, status: e.status, code: e.code } });
    return;
  }
  let batch: SourceItem[] = [];
  for await (const it of scanStream(input, o, signal)) {
    batch.push(it);
    if (batch.length >= BATCH) {
      port.postMessage({ id, items: batch });
      batch = [];
    }
  }
  if (batch.length) port.postMessage({ id, items: batch });
  port.postMessage({ id, end: true });
}

parentPort!.on('message', (m: { id: number; scan: ScanOptions }) => {
  scan(m.id, m.scan).catch((err: unknown) => parentPort!.postMessage({ id: m.id, error: (err as Error).message ?? String(err) }));
});
