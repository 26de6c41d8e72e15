/**
 * What the analytics commands (report, export, query) need from the CLI's resolved configuration.
 * The composition root (cli/) builds it from the resolved configuration: `dataDir`, `clickhouse.url`,
 * `clickhouse.database`.
 */
import type { Writable } from 'node:stream';

/** Where the analytics tables are. */
export interface AnalyticsContext {
  /** Pipeline data directory; embedded chDB data lives in `<dataDir>/chdb`. */
  dataDir: string;
  /** ClickHouse server URL; absent → embedded chDB. */
  clickhouseUrl?: string;
  /** Database of the tables (default swe_stream). */
  database?: string;
}

/** Streams a command writes to (default process.stdout / process.stderr); tests pass their own. */
export interface CommandIo {
  stdout?: Writable;
  stderr?: Writable;
}

/** Write text to a stream and resolve once it is flushed to the OS (so exit codes never cut output short). */
export function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
