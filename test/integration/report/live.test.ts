/**
 * `report` and `query` while an embedded `swe-stream run` holds the chDB directory: the running process answers
 * them (connectors/analytics/endpoint.ts); after it stops they open chDB themselves. Real processes, real chDB.
 * Also: `query` stays read-only through the running process, prints no terminal escape, and a reader that
 * closes the pipe early (`| head`) ends it quietly with exit 0.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRepo, type GeneratedRepo } from '../../helpers/git-repos.js';
import { ROOT, runCli } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

const tmp = mkdtempSync(join(tmpdir(), 'swe-stream-live-'));
let run: ChildProcess | undefined;
let repo: GeneratedRepo | undefined;
afterAll(async () => {
  if (run && run.exitCode === null) run.kill('SIGKILL');
  await repo?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

// The embedded default (chDB under the data dir), whatever server the test environment points at.
const quiet = { SWE_STREAM_LOG_LEVEL: 'error', SWE_STREAM_CLICKHOUSE_URL: '' };

describe('analytics while an embedded run holds chDB', () => {
  it('report and query are answered by the running process, read-only; afterwards chDB is opened directly', async () => {
    repo = await createRepo({ language: 'python' });
    const dataDir = join(tmp, 'data');
    // Follow mode: the run keeps going (and keeps chDB) after the repository's PRs are processed.
    run = spawn(process.execPath, [join(ROOT, 'bin/swe-stream.js'), 'run', '--stages', 'filter', '--data-dir', dataDir, '--source', `git:${repo.path}`], { cwd: ROOT, env: { ...process.env, ...quiet, SWE_STREAM_CLICKHOUSE_URL: '', SWE_STREAM_OFFLINE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    run.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const endpointFile = join(dataDir, 'analytics-endpoint.json');
    await waitFor(() => existsSync(endpointFile) || run!.exitCode !== null, 'the run to announce its analytics endpoint', 120_000, 100).catch((e: Error) => {
      throw new Error(`${e.message}; the run's stderr: ${err.slice(-2000)}`);
    });
    expect(run.exitCode, err).toBeNull();
    let report: { stages: Array<{ stage: string; inputs: number }> } | undefined;
    await waitFor(async () => {
      const r = await runCli(['report', '--json', '--data-dir', dataDir], quiet);
      if (r.code !== 0) throw new Error(`report exited ${r.code}: ${r.stderr}`);
      report = JSON.parse(r.stdout) as typeof report;
      return report!.stages.find((s) => s.stage === 'filter')!.inputs === repo!.prs.length;
    }, 'every PR counted by a report from the running process', 240_000, 1000);
    expect(run.exitCode).toBeNull(); // still running, still holding chDB

    const q = await runCli(['query', '--json', '--data-dir', dataDir, 'SELECT count() AS c FROM stage_outcomes FINAL'], quiet);
    expect(q.code, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout)).toEqual([{ c: repo.prs.length }]);
    const esc = await runCli(['query', '--data-dir', dataDir, "SELECT concat('a', char(27), '[2J', unhex('C29B')) AS s"], quiet);
    expect(esc.code, esc.stderr).toBe(0);
    expect(esc.stdout).toContain('a\\x1b[2J\\x9b');
    expect(esc.stdout).not.toMatch(/[\x1b\u009b]/);
    const file = await runCli(['query', '--data-dir', dataDir, "SELECT * FROM file('/etc/passwd', 'LineAsString')"], quiet);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/refused: read-only: file\(\)/);
    expect(file.stdout).not.toContain('root:');

    const exited = new Promise<number | null>((r) => run!.on('exit', (c) => r(c)));
    run.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(endpointFile)).toBe(false);
    const after = await runCli(['report', '--json', '--data-dir', dataDir], quiet);
    expect(after.code, after.stderr).toBe(0);
    expect((JSON.parse(after.stdout) as NonNullable<typeof report>).stages.find((s) => s.stage === 'filter')!.inputs).toBe(repo.prs.length);
  });

  it('query … | head: the closed pipe ends the command with exit 0 and no stack', async () => {
    const dataDir = join(tmp, 'pipe');
    const child = spawn(process.execPath, [join(ROOT, 'bin/swe-stream.js'), 'query', '--data-dir', dataDir, 'SELECT number FROM numbers(300000)'], { cwd: ROOT, env: { ...process.env, ...quiet }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy()); // what `head` does after its first lines
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(stderr).not.toMatch(/EPIPE|at .*\(node:/);
    expect(code).toBe(0);
  });
});
