/**
 * Opens the ClickHouse sink for a configuration: a server when `clickhouse.url` is set, else embedded chDB
 * under the data dir. With chDB this process then holds the chDB directory, so it also answers `report` and
 * `query` of other processes (connectors/analytics/endpoint.ts) until the sink closes.
 */
import type { Config } from './config.js';
import type { Sink } from '../streams/sink-runner.js';
import { ClickHouseSink } from '../connectors/sinks/clickhouse.js';
import { startAnalyticsEndpoint } from '../connectors/analytics/endpoint.js';

/** @throws ClickHouseStoreError when the server does not answer or the DDL cannot be applied; Error when the endpoint cannot bind. */
export async function openSink(cfg: Config): Promise<Sink> {
  const sink = await ClickHouseSink.open({ url: cfg.clickhouse.url, dataDir: cfg.dataDir, database: cfg.clickhouse.database });
  if (cfg.clickhouse.url) return sink;
  const endpoint = await startAnalyticsEndpoint(sink.ch, cfg.dataDir).catch(async (err: unknown) => {
    await sink.close();
    throw err;
  });
  const close = sink.close.bind(sink);
  sink.close = async () => {
    await endpoint.close();
    await close();
  };
  return sink;
}
