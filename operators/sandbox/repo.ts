/**
 * Put one commit of a repository into a sandbox as a git work tree, without giving the sandbox any
 * access to the host: on the host, a temporary bare repository fetches only that commit (`--depth=1`,
 * so no later history and no other refs come along), its object store travels into the container as a
 * tar file (Sandbox.writeFile), and inside the container `git fetch` from it and `git checkout -f` the
 * commit. Calling it again on a sandbox whose workdir already holds a repository adds the new commit's
 * objects and moves the work tree there — untracked and ignored paths (node_modules, *.egg-info) stay,
 * which is how an environment image built for one PR serves the next (operators/harness/runs.ts
 * prepareCheckout expects the parent commit in the workdir's object store).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { Sandbox } from './types.js';
import { SandboxError } from './types.js';

/** Hard limits, ms. */
const HOST_GIT_TIMEOUT_MS = 300_000;
const SANDBOX_GIT_TIMEOUT_MS = 300_000;

function run(cmd: string, args: string[], opts: { cwd?: string; signal?: AbortSignal }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    const t = setTimeout(() => p.kill('SIGKILL'), HOST_GIT_TIMEOUT_MS);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(new SandboxError(`${cmd} ${args[0]}: ${e.message}`, true, { cause: e }));
    });
    p.on('close', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(Buffer.concat(out));
      // A missing commit is permanent; anything else (disk, timeout) may pass.
      else reject(new SandboxError(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`, !/not our ref|couldn't find remote ref|bad object|not a git repository|invalid/i.test(err)));
    });
  });
}

/**
 * A tar (bytes) of a bare repository that holds exactly `commit` (shallow, depth 1), fetched from the
 * git repository at `gitDir` (a bare mirror or a clone on this host).
 * @throws SandboxError retriable=false when the commit is not in `gitDir`
 */
export async function shallowRepoTar(gitDir: string, commit: string, signal?: AbortSignal): Promise<Buffer> {
  const tmp = await mkdtemp(join(tmpdir(), 'swe-stream-repo-'));
  try {
    const bare = join(tmp, 'r.git');
    await run('git', ['init', '-q', '--bare', bare], { signal });
    // file:// forces the pack protocol (a plain path would hard-link the whole object store) and protocol
    // v2 serves any reachable commit by id.
    const url = gitDir.startsWith('file://') ? gitDir : `file://${gitDir}`;
    await run('git', ['-C', bare, 'fetch', '-q', '--no-tags', '--depth=1', url, `${commit}:refs/heads/swe-stream-src`], { signal });
    return await run('tar', ['-C', bare, '-cf', '-', '.'], { signal });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Make `workdir` in the sandbox a work tree at `commit` (see the module comment). The sandbox needs no
 * network. Returns the time taken, ms.
 * @throws SandboxError retriable=false when the commit is missing on the host or git fails in the sandbox
 */
export async function checkoutInto(sb: Sandbox, gitDir: string, commit: string, workdir: string, signal?: AbortSignal): Promise<number> {
  const t0 = Date.now();
  const tarBytes = await shallowRepoTar(gitDir, commit, signal);
  const tarPath = '/tmp/swe-stream/src.tar';
  await sb.writeFile(tarPath, tarBytes);
  const script = [
    'set -e',
    'rm -rf /tmp/swe-stream/src.git && mkdir -p /tmp/swe-stream/src.git',
    `tar -xf ${tarPath} -C /tmp/swe-stream/src.git && rm -f ${tarPath}`,
    `mkdir -p ${workdir} && cd ${workdir}`,
    '[ -d .git ] || git init -q',
    'git config --global --add safe.directory "*"',
    `git fetch -q --no-tags --depth=1 /tmp/swe-stream/src.git ${commit}`,
    `git checkout -q -f --detach ${commit}`,
    'rm -rf /tmp/swe-stream/src.git',
    'git rev-parse HEAD',
  ].join('\n');
  const r = await sb.exec(script, { timeoutMs: SANDBOX_GIT_TIMEOUT_MS, signal });
  if (r.exitCode !== 0 || !r.stdout.includes(commit.slice(0, 7))) {
    throw new SandboxError(`checkout of ${commit} into ${workdir} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).slice(-800)}`, r.timedOut);
  }
  return Date.now() - t0;
}
