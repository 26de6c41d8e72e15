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
import { stabilityByRepo, type RepoStability } from '../../connectors/dataset/store.js';

/** Re-validation stability per repository (`revalidations` table) as a text table; empty when none ran. */
export function renderStability(rows: RepoStability[]): string {
  if (!rows.length) return '';
  const lines = rows.map((r) => `${r.repo.padEnd(40)} ${String(r.tasks).padStart(6)} ${String(r.validated - r.retired).padStart(7)} ${String(r.retired).padStart(8)} ${String(r.infra_failures).padStart(6)}  ${new Date(r.last_ms).toISOString()}`);
  return ['', 'Re-validation stability per repository (released tasks re-run from their images)', `${'repository'.padEnd(40)} ${'tasks'.padStart(6)} ${'stable'.padStart(7)} ${'retired'.padStart(8)} ${'infra'.padStart(6)}  last`, ...lines, ''].join('\n');
}

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
  // Stability comes from this dataset's own tables; a running process's endpoint serves the report only.
  let stability: RepoStability[] = [];
  if (served) report = await served.report();
  else {
    const ch = await openClickHouse({ url: opts.clickhouseUrl, dataDir: opts.dataDir, database: opts.database });
    try {
      report = await buildReport(ch);
      stability = await stabilityByRepo(ch);
    } finally {
      await ch.close();
    }
  }
  if (opts.html) {
    const path = resolve(opts.html);
    writeFileSync(`${path}.tmp`, renderHtml(report));
    renameSync(`${path}.tmp`, path);
  }
  await write(stdout, opts.json ? `${safeJson({ ...report, stability })}\n` : renderText(report) + renderStability(stability));
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
