/**
 * `swe-stream report [--json] [--html FILE]`: the funnel, yield, categories, durations, cache and cost
 * figures of connectors/analytics/views.ts — as text tables (default), as one JSON document (`--json`,
 * shape {@link Report}), and/or as a self-contained HTML page with charts (`--html FILE`).
 */
import type { Command } from 'commander';
import { writeFileSync, renameSync } from 'node:fs';
import { resolve } from 'node:path';
import { openClickHouse } from '../../connectors/sinks/connection.js';
import { buildReport, type Report } from '../../connectors/analytics/views.js';
import { renderText, safeJson } from '../../connectors/analytics/render.js';
import { findAnalyticsEndpoint } from '../../connectors/analytics/endpoint.js';
import { renderHtml } from '../../connectors/analytics/html.js';
import { write, type AnalyticsContext, type CommandIo } from '../../connectors/analytics/context.js';

/** Options of {@link runReport}. */
export interface ReportOptions extends AnalyticsContext, CommandIo {
  /** Print the report as JSON instead of tables. */
  json?: boolean;
  /** Also write the HTML page to this path (written to a temp file and renamed, so never half a page). */
  html?: string;
}

/**
 * Build the report and print it (from the running `run` that holds chDB, when there is one). Returns the
 * process exit code (0).
 * @throws ClickHouseStoreError when ClickHouse cannot be reached or a query fails (retriable per the error)
 */
export async function runReport(opts: ReportOptions): Promise<number> {
  const stdout = opts.stdout ?? process.stdout;
  // While a run holds the chDB directory, that process answers (connectors/analytics/endpoint.ts).
  const served = opts.clickhouseUrl ? undefined : findAnalyticsEndpoint(opts.dataDir);
  let report: Report;
  if (served) report = await served.report();
  else {
    const ch = await openClickHouse({ url: opts.clickhouseUrl, dataDir: opts.dataDir, database: opts.database });
    try {
      report = await buildReport(ch);
    } finally {
      await ch.close();
    }
  }
  if (opts.html) {
    const path = resolve(opts.html);
    writeFileSync(`${path}.tmp`, renderHtml(report));
    renameSync(`${path}.tmp`, path);
  }
  await write(stdout, opts.json ? `${safeJson(report)}\n` : renderText(report));
  if (opts.html && !opts.json) await write(stdout, `HTML report written to ${resolve(opts.html)}\n`);
  return 0;
}

/**
 * Add `report` to a commander program. `ctx` resolves the configured data dir / ClickHouse target when
 * the command runs. The action sets process.exitCode.
 */
export function register(program: Command, ctx: () => Promise<AnalyticsContext>): void {
  program
    .command('report')
    .description('funnel, yield, categories, durations, cache and cost from the analytics tables')
    .option('--json', 'print JSON instead of tables')
    .option('--html <file>', 'also write a self-contained HTML page with charts')
    .action(async (o: { json?: boolean; html?: string }) => {
      process.exitCode = await runReport({ ...(await ctx()), json: o.json, html: o.html });
    });
}
