/** Opens the ClickHouse sink for a configuration: a server when `clickhouse.url` is set, else embedded chDB under the data dir. */
import type { Config } from './config.js';
import type { Sink } from '../streams/sink-runner.js';
import { ClickHouseSink } from '../connectors/sinks/clickhouse.js';

/** @throws ClickHouseStoreError when the server does not answer or the DDL cannot be applied. */
export async function openSink(cfg: Config): Promise<Sink> {
  return ClickHouseSink.open({ url: cfg.clickhouse.url, dataDir: cfg.dataDir, database: cfg.clickhouse.database });
}
