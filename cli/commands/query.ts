/**
 * `swe-stream query "SQL" [--json]`: ad-hoc read-only SQL over the analytics tables, unqualified table
 * names resolving to the configured database (tasks, stage_outcomes, trajectories). Output: a text table
 * (long cells cut at 60 characters, control characters escaped) or, with `--json`, one JSON array of row objects.
 * Exit codes: 0 ok, 1 the engine refused the query (message on stderr), 2 not read-only (refused here).
 */
import type { Command } from 'commander';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { openClickHouse, toStoreError, ClickHouseStoreError, PinoClientLogger } from '../../connectors/sinks/connection.js';
import { assertReadOnly, ReadOnlyViolation } from '../../connectors/analytics/readonly.js';
import { safeJson, safeText, table } from '../../connectors/analytics/render.js';
import { findAnalyticsEndpoint, tableFunctions } from '../../connectors/analytics/endpoint.js';
import { write, type AnalyticsContext, type CommandIo } from '../../connectors/analytics/context.js';

/** Options of {@link runQuery}. */
export interface QueryOptions extends AnalyticsContext, CommandIo {
  sql: string;
  json?: boolean;
}

const cell = (v: unknown): string => {
  const s = v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.length > 60 ? `${s.slice(0, 59)}…` : s;
};

/**
 * Run one read-only query and print the rows. Returns the exit code (0, 1 engine error, 2 refused).
 * Where the query runs: the ClickHouse server when configured; else, while a `run` holds the chDB directory,
 * that process (connectors/analytics/endpoint.ts); else chDB opened here, on a session set to readonly=1.
 * Values are printed so that no control character from event data reaches the terminal.
 * @throws ClickHouseStoreError when ClickHouse cannot be reached (retriable)
 */
export async function runQuery(opts: QueryOptions): Promise<number> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  let rows: Array<Record<string, unknown>>;
  try {
    const sql = assertReadOnly(opts.sql);
    rows = await execute(opts, sql);
  } catch (err) {
    if (err instanceof ReadOnlyViolation) {
      await write(stderr, `swe-stream query: refused: ${safeText(err.message)}\n`);
      return 2;
    }
    const e = err instanceof ClickHouseStoreError ? err : toStoreError(err, 'query failed');
    if (e.retriable) throw e;
    await write(stderr, `swe-stream query: ${safeText(e.message)}\n`);
    return 1;
  }
  if (opts.json) {
    await write(stdout, `${safeJson(rows)}\n`);
  } else {
    const headers = rows.length ? Object.keys(rows[0]!) : [];
    await write(stdout, rows.length ? `${table(headers, rows.map((r) => headers.map((h) => cell(r[h]))))}\n(${rows.length} rows)\n` : '(0 rows)\n');
  }
  return 0;
}

/** Run an accepted query where the tables are (see {@link runQuery}). @throws ReadOnlyViolation, ClickHouseStoreError */
async function execute(opts: QueryOptions, sql: string): Promise<Array<Record<string, unknown>>> {
  const served = opts.clickhouseUrl ? undefined : findAnalyticsEndpoint(opts.dataDir);
  if (served) return served.query(sql);
  const ch = await openClickHouse({ url: opts.clickhouseUrl, dataDir: opts.dataDir, database: opts.database });
  try {
    assertReadOnly(sql, await tableFunctions(ch));
    if (ch.backend === 'server') {
      // The HTTP `database` parameter sets the default database per client; readonly=1 makes the server refuse
      // any write, setting change or table function.
      const ro = createClient({ url: opts.clickhouseUrl, database: ch.database, log: { LoggerClass: PinoClientLogger, level: ClickHouseLogLevel.WARN }, clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
      try {
        return await (await ro.query({ query: sql, format: 'JSONEachRow', clickhouse_settings: { readonly: '1' } })).json<Record<string, unknown>>();
      } catch (err) {
        throw toStoreError(err, 'query failed');
      } finally {
        await ro.close();
      }
    }
    // chDB ignores the client's database parameter; USE sets it for this one-shot session, then the session
    // itself turns read-only (it serves nothing else: the process exits after this query).
    await ch.command(`USE ${ch.database}`);
    await ch.command('SET readonly = 1');
    return await ch.rows(sql);
  } finally {
    await ch.close();
  }
}

/** Add `query` to a commander program; the action sets process.exitCode. */
export function register(program: Command, ctx: () => Promise<AnalyticsContext>): void {
  program
    .command('query')
    .description('run read-only SQL (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) over tasks, stage_outcomes, trajectories, pr_events, revalidations, releases, task_images')
    .argument('<sql>', 'the query')
    .option('--json', 'print a JSON array of rows')
    .action(async (sqlText: string, o: { json?: boolean }) => {
      process.exitCode = await runQuery({ ...(await ctx()), sql: sqlText, json: o.json });
    });
}
