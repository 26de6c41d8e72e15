/**
 * The commander registrations of report / export / query: option parsing and exit codes as the lead's
 * cli/main.ts will use them (process.exitCode is set by each action).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register as registerReport } from '../../../cli/commands/report.js';
import { register as registerExport } from '../../../cli/commands/export.js';
import { register as registerQuery } from '../../../cli/commands/query.js';

const dataDir = mkdtempSync(join(tmpdir(), 'swe-stream-cli-'));
const database = `t_cli_${process.pid}`;

function program(): Command {
  const p = new Command().exitOverride();
  const ctx = async () => ({ dataDir, database });
  registerReport(p, ctx);
  registerExport(p, ctx);
  registerQuery(p, ctx);
  return p;
}

afterEach(() => {
  process.exitCode = undefined;
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('analytics commands under commander', () => {
  it('export with an unknown format exits 2; a known one exits 0', async () => {
    await program().parseAsync(['export', '--format', 'alpaca', '--out', join(dataDir, 'a.jsonl')], { from: 'user' });
    expect(process.exitCode).toBe(2);
    process.exitCode = undefined;
    await program().parseAsync(['export', '--format', 'swe-bench', '--out', join(dataDir, 'b.jsonl')], { from: 'user' });
    expect(process.exitCode).toBe(0);
    expect(readFileSync(join(dataDir, 'b.jsonl'), 'utf8')).toBe('');
  });

  it('query refuses a write with exit 2 and answers a read with exit 0', async () => {
    await program().parseAsync(['query', 'DROP TABLE tasks'], { from: 'user' });
    expect(process.exitCode).toBe(2);
    process.exitCode = undefined;
    await program().parseAsync(['query', 'SELECT count() AS c FROM tasks', '--json'], { from: 'user' });
    expect(process.exitCode).toBe(0);
  });

  it('report --html writes the page', async () => {
    const html = join(dataDir, 'r.html');
    await program().parseAsync(['report', '--json', '--html', html], { from: 'user' });
    expect(process.exitCode).toBe(0);
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>/);
    rmSync(html);
  });
});
