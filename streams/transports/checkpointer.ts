/**
 * WAL checkpoints of the embedded log on a worker thread, so the thread that writes records never copies
 * pages from the write-ahead log into the database file.
 *
 * In WAL mode SQLite appends each commit to the `-wal` file; a checkpoint copies those pages back into the
 * database (SQLite docs, "Write-Ahead Logging", §3 "Checkpointing"). By default the committing connection runs
 * it itself every 1,000 pages, on the event loop: with 16 KiB pages that is a 16 MiB copy every ~8,000 records
 * and ~20 % of the CPU of bench/stream's passthrough. Here a second connection on a worker thread runs
 * `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs` (passive: it never blocks the writer nor waits for it),
 * and the writer keeps its own automatic checkpoint only as a backstop at `backstopPages`, so the `-wal` file
 * stays bounded even if this thread falls behind or dies. Durability is unchanged: the checkpoint only moves
 * committed pages; a crash at any point leaves SQLite's usual WAL recovery.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { logger } from '../log.js';

const log = logger({ component: 'embedded-log' });

/** How often the worker checkpoints (ms). */
const INTERVAL_MS = 100;
/** The writer's own automatic checkpoint while the worker runs: 8,192 pages (128 MiB at 16 KiB pages). */
const BACKSTOP_PAGES = 8192;

/** The worker, as CommonJS source: it needs nothing but better-sqlite3, resolved by the main thread. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 0');
const tick = () => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); }
  catch (e) { if (e.code !== 'SQLITE_BUSY' && e.code !== 'SQLITE_LOCKED') parentPort.postMessage({ error: String(e.message) }); }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); tick(); db.close(); parentPort.close(); });
`;

/** A running checkpoint thread for one SQLite file in WAL mode. */
export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  /**
   * Start checkpointing `path` (the file `db` has open) and lower `db`'s automatic checkpoint to a backstop.
   * @throws Error when the worker thread cannot be created (the caller keeps the writer's own checkpoints).
   */
  constructor(db: Database.Database, path: string, intervalMs = INTERVAL_MS) {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, sqlite, intervalMs } });
    this.worker.unref();
    this.exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    // A failure of the worker is logged, never fatal: the writer's backstop checkpoints still bound the WAL.
    this.worker.on('message', (m: { error?: string }) => log.warn({ path, err: m.error }, 'WAL checkpoint failed on the checkpoint thread'));
    this.worker.on('error', (e) => log.warn({ path, err: e.message }, 'WAL checkpoint thread died; the writer checkpoints every 8,192 pages'));
    db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  }

  /** Run a last checkpoint, close the worker's connection and wait for the thread to end (at once if it died). */
  async stop(): Promise<void> {
    this.worker.ref(); // else a process with nothing else to do would end before the thread does
    this.worker.postMessage('stop');
    await this.exited;
  }
}
