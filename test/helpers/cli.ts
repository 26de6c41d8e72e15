/** Running the real `swe-stream` command (bin/swe-stream.js) as a child process in tests. */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

/** The project root (where bin/swe-stream.js is). */
export const ROOT = resolve(import.meta.dirname, '../..');

/** What a finished command left: exit code (null when killed), stdout and stderr text. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `swe-stream <args>` to completion. `env` is merged over the test's environment; GITHUB_TOKEN is
 * removed so a developer's token never changes what a test sees. SWE_STREAM_LOG_LEVEL defaults to debug.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((res, rej) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, SWE_STREAM_LOG_LEVEL: 'debug', ...env };
    delete childEnv.GITHUB_TOKEN;
    const child = spawn(process.execPath, [join(ROOT, 'bin/swe-stream.js'), ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', rej);
    child.on('exit', (code) => res({ code, stdout, stderr }));
  });
}
