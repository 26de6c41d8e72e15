/**
 * Clear exits of the real `swe-stream` command: one line and the right code, nothing created by a command
 * that refuses its arguments, no password from a service URL in what it prints.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'swe-stream-exits-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('exit codes and messages', () => {
  it('a bad --source exits 2 with one line, before the data directory exists', async () => {
    const dataDir = join(tmp, 'never');
    const r = await runCli(['run', '--until-idle', '--data-dir', dataDir, '--source', 'bogus:x'], { SWE_STREAM_LOG_LEVEL: 'error' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['swe-stream: source "bogus:x": unknown scheme "bogus" (gharchive, github, webhook, git)']);
    expect(existsSync(dataDir)).toBe(false);
    const bad = await runCli(['run', '--until-idle', '--data-dir', dataDir, '--source', 'git:/x?limit=zero'], { SWE_STREAM_LOG_LEVEL: 'error' });
    expect(bad.code).toBe(2);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('doctor exits 1 when a required part fails, and says how to fix it', async () => {
    const r = await runCli(['doctor', '--data-dir', join(tmp, 'doctor'), '--clickhouse-url', 'http://default:hunter2pass@127.0.0.1:1'], { SWE_STREAM_LOG_LEVEL: 'error' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^fail +clickhouse server +.*\n +fix: bash infra\/clickhouse\.sh start$/m);
    expect(r.stdout + r.stderr).not.toContain('hunter2pass');
  });

  it('a password in the registry URL is never printed, in the error or in the log', async () => {
    const url = 'http://admin:hunter2pass@127.0.0.1:1/apis/ccompat/v7';
    const r = await runCli(['run', '--bus', 'kafka', '--until-idle', '--stages', 'filter', '--no-sink', '--data-dir', join(tmp, 'reg')], { SWE_STREAM_REGISTRY_URL: url, SWE_STREAM_REGISTRY_AUTO_REGISTER: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^swe-stream: .*schema registry .*http:\/\/\*\*\*@127\.0\.0\.1:1/m);
    expect(r.stdout + r.stderr).not.toContain('hunter2pass');
    const d = await runCli(['doctor', '--bus', 'kafka', '--data-dir', join(tmp, 'reg-doctor'), '--json'], { SWE_STREAM_REGISTRY_URL: url, SWE_STREAM_LOG_LEVEL: 'error' });
    expect(d.code).toBe(1);
    expect(d.stdout + d.stderr).not.toContain('hunter2pass');
  });
});
