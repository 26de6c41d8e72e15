/**
 * `swe-stream export --format scale-swe|swe-bench --out FILE.jsonl|FILE.parquet [--since TIME]`: the
 * released dataset rows (connectors/dataset/export.ts). Exit codes: 0 written, 2 usage error (unknown format
 * — the message lists the formats —, unsupported extension, bad --since).
 */
import type { Command } from 'commander';
import { openClickHouse } from '../../connectors/sinks/connection.js';
import { checkExportOptions, exportDataset, ExportUsageError, EXPORT_FORMATS } from '../../connectors/dataset/export.js';
import { write, type AnalyticsContext, type CommandIo } from '../../connectors/analytics/context.js';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'export' });

/** Options of {@link runExport}. */
export interface ExportCommandOptions extends AnalyticsContext, CommandIo {
  format: string;
  out: string;
  since?: string;
}

/**
 * Export and print one summary line (`exported N scale-swe rows to /abs/path.parquet`). Returns the exit
 * code: 0, or 2 for a usage error (message on stderr). @throws ClickHouseStoreError from the engines
 */
export async function runExport(opts: ExportCommandOptions): Promise<number> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  try {
    checkExportOptions(opts); // before touching ClickHouse: a typo costs nothing
  } catch (err) {
    if (err instanceof ExportUsageError) {
      await write(stderr, `swe-stream export: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const ch = await openClickHouse({ url: opts.clickhouseUrl, dataDir: opts.dataDir, database: opts.database });
  try {
    const r = await exportDataset(ch, { format: opts.format, out: opts.out, since: opts.since, dataDir: opts.dataDir });
    log.info({ format: r.format, kind: r.kind, rows: r.rows, path: r.path }, 'dataset exported');
    await write(stdout, `exported ${r.rows} ${r.format} rows to ${r.path}\n`);
    return 0;
  } finally {
    await ch.close();
  }
}

/** Add `export` to a commander program; the action sets process.exitCode. */
export function register(program: Command, ctx: () => Promise<AnalyticsContext>): void {
  program
    .command('export')
    .description('write the released dataset rows as JSONL or Parquet')
    .requiredOption('--format <format>', `row format: ${EXPORT_FORMATS.join(' | ')}`)
    .requiredOption('--out <file>', 'output file, .jsonl or .parquet')
    .option('--since <time>', 'only PRs created at or after this ISO 8601 date/time')
    .action(async (o: { format: string; out: string; since?: string }) => {
      process.exitCode = await runExport({ ...(await ctx()), format: o.format, out: o.out, since: o.since });
    });
}
