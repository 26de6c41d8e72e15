/**
 * `swe-stream query "SQL" [--json]`: ad-hoc read-only SQL over the analytics tables, unqualified table
 * names resolving to the configured database (tasks, stage_outcomes, trajectories). Output: a text table
 * (long cells cut at 60 characters) or, with `--json`, one JSON array of row objects.
 * Exit codes: 0 ok, 1 the engine refused the query (message on stderr), 2 not read-only (refused here).
 */
import type { Command } from 'commander';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { openClickHouse, toStoreError, ClickHouseStoreError, PinoClientLogger } from '../../connectors/sinks/connection.js';
import { assertReadOnly, ReadOnlyViolation } from '../../connectors/analytics/readonly.js';
import { table } from '../../connectors/analytics/render.js';
import { write, type AnalyticsContext, type CommandIo } from '../../connectors/analytics/context.js';

/** Options of {@link runQuery}. */
export interface QueryOptions extends AnalyticsContext, CommandIo {
  sql: string;
  json?: boolean;
}

const cell = (v: unknown): string => {
  const s = v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const one = s.replace(/\n/g, '\\n');
  return one.length > 60 ? `${one.slice(0, 59)}…` : one;
};

/**
 * Run one read-only query and print the rows. Returns the exit code (0, 1 engine error, 2 refused).
 * @throws ClickHouseStoreError when ClickHouse cannot be reached (retriable)
 */
export async function runQuery(opts: QueryOptions): Promise<number> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  let sql: string;
  try {
    sql = assertReadOnly(opts.sql);
  } catch (err) {
    if (err instanceof ReadOnlyViolation) {
      await write(stderr, `swe-stream query: refused: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const ch = await openClickHouse({ url: opts.clickhouseUrl, dataDir: opts.dataDir, database: opts.database });
  let rows: Array<Record<string, unknown>>;
  try {
    if (ch.backend === 'server') {
      // The HTTP `database` parameter sets the default database per client; readonly=1 makes the server refuse any write.
      const ro = createClient({ url: opts.clickhouseUrl, database: ch.database, log: { LoggerClass: PinoClientLogger, level: ClickHouseLogLevel.WARN }, clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
      try {
        rows = await (await ro.query({ query: sql, format: 'JSONEachRow', clickhouse_settings: { readonly: '1' } })).json<Record<string, unknown>>();
      } finally {
        await ro.close();
      }
    } else {
      // chDB ignores the client's database parameter; USE sets it for this (one-shot) session.
      await ch.command(`USE ${ch.database}`);
      rows = await ch.rows(sql);
    }
  } catch (err) {
    const e = err instanceof ClickHouseStoreError ? err : toStoreError(err, 'query failed');
    if (e.retriable) throw e;
    await write(stderr, `swe-stream query: ${e.message}\n`);
    return 1;
  } finally {
    await ch.close();
  }
  if (opts.json) {
    await write(stdout, `${JSON.stringify(rows)}\n`);
  } else {
    const headers = rows.length ? Object.keys(rows[0]!) : [];
    await write(stdout, rows.length ? `${table(headers, rows.map((r) => headers.map((h) => cell(r[h]))))}\n(${rows.length} rows)\n` : '(0 rows)\n');
  }
  return 0;
}

/** Add `query` to a commander program; the action sets process.exitCode. */
export function register(program: Command, ctx: () => Promise<AnalyticsContext>): void {
  program
    .command('query')
    .description('run read-only SQL (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) over tasks, stage_outcomes, trajectories')
    .argument('<sql>', 'the query')
    .option('--json', 'print a JSON array of rows')
    .action(async (sqlText: string, o: { json?: boolean }) => {
      process.exitCode = await runQuery({ ...(await ctx()), sql: sqlText, json: o.json });
    });
}
