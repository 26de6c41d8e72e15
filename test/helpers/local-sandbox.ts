/**
 * A LOCAL-PROCESS sandbox for fast tests: implements the Sandbox interface (operators/sandbox/types.ts) over a
 * temporary directory on the host with child_process. It isolates nothing — no container, no network cut, no
 * limits — and exists only so agent-loop tests run in milliseconds. Production and the Docker-path tests use
 * operators/sandbox/docker.ts.
 *
 * Paths: absolute sandbox paths are mapped under the temp root (`/testbed/x` → `<root>/testbed/x`); commands run
 * with `cwd` mapped the same way and `$ROOT` set to the temp root.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SandboxError, type ExecOptions, type ExecResult, type Sandbox } from '../../operators/sandbox/types.js';

/** The Sandbox interface plus the host paths behind it (tests inspect files directly). */
export interface LocalSandbox extends Sandbox {
  /** host directory standing for the sandbox's `/` */
  readonly root: string;
  /** host path of a sandbox path */
  hostPath(p: string): string;
}

/** Create a local-process sandbox rooted in a fresh temp directory; `workdir` (sandbox path) is created. */
export async function createLocalSandbox(workdir = '/testbed'): Promise<LocalSandbox> {
  const root = await mkdtemp(join(tmpdir(), 'swe-stream-localsb-'));
  const hostPath = (p: string) => join(root, p.startsWith('/') ? p : join(workdir, p));
  await mkdir(hostPath(workdir), { recursive: true });
  let destroyed = false;
  return {
    id: `local-${root.split('-').pop()}`,
    root,
    hostPath,
    exec(script: string, opts: ExecOptions): Promise<ExecResult> {
      if (destroyed) return Promise.reject(new SandboxError('sandbox destroyed', false));
      const started = Date.now();
      const max = opts.maxOutputBytes ?? 1 << 20;
      return new Promise((resolve, reject) => {
        const child = spawn('bash', ['-c', script], {
          cwd: hostPath(opts.cwd ?? workdir),
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, ROOT: root, ...(opts.env ?? {}) },
          detached: true, // own process group, so the timeout kills the whole tree
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        let truncated = false;
        const add = (cur: string, chunk: Buffer) => {
          const next = cur + chunk.toString('utf8');
          if (next.length > max) { truncated = true; return next.slice(-max); }
          return next;
        };
        child.stdout.on('data', (c: Buffer) => { stdout = add(stdout, c); });
        child.stderr.on('data', (c: Buffer) => { stderr = add(stderr, c); });
        let timedOut = false;
        const kill = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } };
        const timer = setTimeout(() => { timedOut = true; kill(); }, opts.timeoutMs);
        const onAbort = () => kill();
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        child.on('error', (e) => { clearTimeout(timer); reject(new SandboxError(`spawn failed: ${e.message}`, true, { cause: e })); });
        child.on('close', (code) => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          resolve({ exitCode: timedOut ? 124 : code ?? 137, stdout, stderr, durationMs: Date.now() - started, timedOut, truncated });
        });
      });
    },
    async writeFile(p: string, content: string | Buffer, mode?: number) {
      const hp = hostPath(p);
      await mkdir(dirname(hp), { recursive: true });
      await writeFile(hp, content, mode !== undefined ? { mode } : undefined);
    },
    async readFile(p: string) {
      try {
        return await readFile(hostPath(p));
      } catch (e) {
        throw new SandboxError(`cannot read ${p}: ${(e as Error).message}`, false, { cause: e });
      }
    },
    async disconnectNetwork() { /* nothing to cut: a local process */ },
    async commit(): Promise<{ ref: string; imageId: string }> {
      throw new SandboxError('a local-process sandbox cannot be committed', false);
    },
    async destroy() {
      destroyed = true;
      await rm(root, { recursive: true, force: true });
    },
  };
}
