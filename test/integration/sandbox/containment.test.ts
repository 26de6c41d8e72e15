/**
 * The sandbox against the real Docker engine: basic operations and the containment rules of
 * ARCHITECTURE.md §6 (network off during test runs, pids / memory limits, command timeouts, no host
 * writes, no host secrets, no privileges), and that every container is gone afterwards.
 * Needs a Docker engine (infra/docker.sh) and builds the offline Python base image when missing.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import Docker from 'dockerode';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { randomBytes } from 'node:crypto';
import { DockerSandboxFactory, LABEL, OWNER_LABEL } from '../../../operators/sandbox/docker.js';
import { INSTALL_NETWORK } from '../../../operators/sandbox/network.js';
import type { Sandbox } from '../../../operators/sandbox/types.js';
import { dockerEngineAvailable } from '../../helpers/docker.js';

const docker = new Docker();
const engine = await dockerEngineAvailable();

async function gone(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect();
    return false;
  } catch (e) {
    return (e as { statusCode?: number }).statusCode === 404;
  }
}

describe.skipIf(!engine)('Docker sandbox containment (real engine)', () => {
  const factory = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'containment' } });
  let image: string;
  const created: Sandbox[] = [];
  const make = async (o: Partial<Parameters<typeof factory.create>[0]> = {}) => {
    const sb = await factory.create({ image, network: false, workdir: '/testbed', ...o });
    created.push(sb);
    return sb;
  };

  beforeAll(async () => {
    image = await factory.baseImage('python');
  });
  afterAll(async () => {
    for (const sb of created) await sb.destroy();
    for (const sb of created) expect(await gone(sb.id)).toBe(true);
  });

  it('runs commands with exit codes, separate streams, files in and out, and a capped tail', async () => {
    const sb = await make();
    const r = await sb.exec('echo out; echo err >&2; pwd; exit 3', { timeoutMs: 10_000 });
    expect(r).toMatchObject({ exitCode: 3, stdout: 'out\n/testbed\n', stderr: 'err\n', timedOut: false, truncated: false });
    await sb.writeFile('/testbed/dir/a b.txt', 'héllo', 0o600);
    expect((await sb.readFile('/testbed/dir/a b.txt')).toString()).toBe('héllo');
    expect((await sb.exec("stat -c %a '/testbed/dir/a b.txt'", { timeoutMs: 10_000 })).stdout.trim()).toBe('600');
    await expect(sb.readFile('/testbed/missing')).rejects.toMatchObject({ retriable: false });
    const big = await sb.exec('seq 1 200000', { timeoutMs: 10_000, maxOutputBytes: 1000 });
    expect(big.truncated).toBe(true);
    expect(big.stdout.length).toBe(1000);
    expect(big.stdout.endsWith('199999\n200000\n')).toBe(true);
  });

  it('network: off when created without it, and cut by disconnectNetwork before test runs', async () => {
    const probe = `python3 -c "import socket; socket.create_connection(('pypi.org', 443), timeout=5); print('CONNECTED')"`;
    const off = await make();
    const r = await off.exec(probe, { timeoutMs: 20_000 });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain('CONNECTED');
    const on = await make({ network: true });
    const before = await on.exec(probe, { timeoutMs: 20_000 });
    await on.disconnectNetwork();
    const after = await on.exec(probe, { timeoutMs: 20_000 });
    expect(after.stdout).not.toContain('CONNECTED');
    expect(after.exitCode).not.toBe(0);
    // With network, the registries answer through the host's CA bundle (skipped silently offline: only `after` is the rule).
    if (before.exitCode === 0) expect(before.stdout).toContain('CONNECTED');
  });

  it('install network: reaches the registries but no address of the host (the default bridge does: the control)', async () => {
    const server: Server = createServer((sock) => sock.end('HOST-SERVICE\n'));
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = (server.address() as { port: number }).port;
    const bridge = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'containment' }, installNetwork: 'bridge' });
    try {
      expect(await factory.installNetworkStatus()).toMatchObject({ name: INSTALL_NETWORK, isolated: true });
      const net = await docker.getNetwork(INSTALL_NETWORK).inspect();
      const hostAddrs = [
        net.IPAM!.Config![0].Gateway as string,
        '172.17.0.1',
        ...Object.values(networkInterfaces()).flat().filter((i) => i && i.family === 'IPv4' && !i.internal).map((i) => i!.address),
      ];
      const probe = (host: string, p: number, t = 4) => `python3 -c "import socket; s = socket.create_connection(('${host}', ${p}), timeout=${t}); print('CONNECTED', s.recv(64) if ${p} != 443 else '')"`;
      const inst = await make({ network: true });
      for (const a of [...new Set(hostAddrs)]) {
        const r = await inst.exec(probe(a, port), { timeoutMs: 20_000 });
        expect({ a, out: r.stdout }).toEqual({ a, out: '' });
        expect(r.exitCode).not.toBe(0);
      }
      const meta = await inst.exec(probe('169.254.169.254', 80), { timeoutMs: 20_000 });
      expect(meta.stdout).not.toContain('CONNECTED');
      const registry = await inst.exec(probe('pypi.org', 443, 20), { timeoutMs: 60_000 });
      expect(registry.stdout, registry.stderr).toContain('CONNECTED');
      const open = await bridge.create({ image, network: true, workdir: '/testbed' });
      created.push(open);
      const r = await open.exec(probe('172.17.0.1', port), { timeoutMs: 20_000 });
      expect(r.stdout).toContain('HOST-SERVICE');
    } finally {
      server.close();
    }
  });

  it('a daemon that escapes with its own setsid dies with the command, on the deadline and on a normal end', async () => {
    const sb = await make();
    const count = async (pat: string) => (await sb.exec(`ps -eo args | grep -c "[${pat[0]}]${pat.slice(1)}" || true`, { timeoutMs: 10_000 })).stdout.trim();
    const ended = await sb.exec('setsid -f sleep 1001; nohup setsid sleep 1002 >/dev/null 2>&1 & echo started', { timeoutMs: 10_000 });
    expect(ended).toMatchObject({ exitCode: 0, stdout: 'started\n' });
    expect(await count('sleep 1001')).toBe('0');
    expect(await count('sleep 1002')).toBe('0');
    const timed = await sb.exec('setsid -f sleep 1003; while :; do :; done', { timeoutMs: 1_500 });
    expect(timed.timedOut).toBe(true);
    expect(await count('sleep 1003')).toBe('0');
    // The container itself is still serving commands.
    expect((await sb.exec('echo alive', { timeoutMs: 10_000 })).stdout).toBe('alive\n');
  });

  it('a fork bomb hits the pids limit and the sandbox survives it', async () => {
    const sb = await make({ pidsLimit: 64 });
    const forks = `python3 -c "
import os, time
n = 0
try:
    while n < 500:
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print('EAGAIN', n)
"`;
    const spawn = await sb.exec(forks, { timeoutMs: 20_000 });
    const m = /EAGAIN (\d+)/.exec(spawn.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(64);
    const bomb = await sb.exec('bomb() { bomb | bomb & }; bomb', { timeoutMs: 3_000 });
    expect(bomb.durationMs).toBeLessThan(30_000);
    const alive = await sb.exec('echo alive', { timeoutMs: 20_000 });
    expect(alive.stdout).toBe('alive\n');
  });

  it('a memory hog is killed by the memory limit', async () => {
    const sb = await make({ memoryBytes: 256 * 1024 * 1024 });
    const r = await sb.exec(`python3 -c "x = b'a' * (1 << 30); print(len(x))"`, { timeoutMs: 60_000 });
    expect(r.exitCode).toBe(137);
    expect(r.stdout).not.toContain(String(1 << 30));
    expect((await sb.exec('echo alive', { timeoutMs: 10_000 })).stdout).toBe('alive\n');
  });

  it('an endless loop (and what it spawned) is killed at the timeout', async () => {
    const sb = await make();
    const r = await sb.exec('(sleep 1000 &) ; while :; do :; done', { timeoutMs: 1_500 });
    expect(r).toMatchObject({ timedOut: true, exitCode: 124 });
    expect(r.durationMs).toBeGreaterThanOrEqual(1_500);
    expect(r.durationMs).toBeLessThan(15_000);
    const ps = await sb.exec('ps -eo args | grep -c "[s]leep 1000" || true', { timeoutMs: 10_000 });
    expect(ps.stdout.trim()).toBe('0');
  });

  it('writes outside the workdir stay in the container; the CA bundle is read-only; privileged operations fail', async () => {
    const sb = await make();
    const marker = `/tmp/swe-stream-escape-${randomBytes(6).toString('hex')}`;
    const r = await sb.exec(`echo x > ${marker} && echo x > /etc/escape-test && cat ${marker}`, { timeoutMs: 10_000 });
    expect(r.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync('/etc/escape-test')).toBe(false);
    if (existsSync('/etc/ssl/certs/ca-certificates.crt')) {
      const ca = await sb.exec('echo x >> /etc/ssl/certs/ca-certificates.crt', { timeoutMs: 10_000 });
      expect(ca.exitCode).not.toBe(0);
      expect(ca.stderr).toMatch(/Read-only file system/);
    }
    const mount = await sb.exec('mkdir -p /mnt/t && mount -t tmpfs none /mnt/t', { timeoutMs: 10_000 });
    expect(mount.exitCode).not.toBe(0);
    const caps = await sb.exec("grep CapEff /proc/self/status | awk '{print $2}'", { timeoutMs: 10_000 });
    expect(caps.stdout.trim()).not.toBe('000001ffffffffff');
    expect(caps.stdout.trim()).not.toBe('0000003fffffffff');
  });

  it('host environment secrets are not visible inside', async () => {
    const secret = `secret-${randomBytes(8).toString('hex')}`;
    process.env.GITHUB_TOKEN = secret;
    process.env.OPENAI_API_KEY = secret;
    try {
      const sb = await make();
      const r = await sb.exec('env; cat /proc/1/environ | tr "\\0" "\\n"', { timeoutMs: 10_000 });
      expect(r.stdout).not.toContain(secret);
      expect(r.stdout).not.toContain('GITHUB_TOKEN');
      expect(r.stdout).toContain('SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt');
    } finally {
      delete process.env.GITHUB_TOKEN;
      delete process.env.OPENAI_API_KEY;
    }
  });

  it('destroy is idempotent and an AbortSignal removes the container', async () => {
    const sb = await make();
    await sb.destroy();
    await sb.destroy();
    expect(await gone(sb.id)).toBe(true);
    const ac = new AbortController();
    const sb2 = await factory.create({ image, network: false, signal: ac.signal });
    created.push(sb2);
    const running = sb2.exec('sleep 60', { timeoutMs: 120_000, signal: ac.signal });
    ac.abort();
    await expect(running).rejects.toMatchObject({ retriable: true });
    // destroy on abort is asynchronous: wait on the condition, not on time.
    for (let i = 0; i < 200 && !(await gone(sb2.id)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await gone(sb2.id)).toBe(true);
  });

  it('sweep removes labelled leftovers of dead owners and leaves live ones alone', async () => {
    const live = await make();
    const orphan = await docker.createContainer({ Image: image, Cmd: ['sleep', 'infinity'], Labels: { [LABEL]: '1', [OWNER_LABEL]: `${hostname()}:999999` }, HostConfig: { NetworkMode: 'none' } });
    await orphan.start();
    // Every factory on this host sweeps dead owners' leftovers, and test files run in parallel: another file's
    // factory may remove the orphan first, so the count is not asserted, only that the orphan is gone after ours.
    await factory.sweep();
    expect(await gone(orphan.id)).toBe(true);
    expect(await gone(live.id)).toBe(false);
  });

  it('a warm pool hands out started containers with the requested limits and removes idle ones on close', async () => {
    const pooled = new DockerSandboxFactory({ labels: { 'swe-stream.test': 'containment-pool' }, warmPool: 1 });
    try {
      const first = await pooled.create({ image, network: false, workdir: '/testbed' });
      await first.destroy();
      // Wait for the refill (a condition, not a time).
      for (let i = 0; i < 400; i++) {
        const idle = await docker.listContainers({ filters: { label: ['swe-stream.pool=1', 'swe-stream.test=containment-pool'] } });
        if (idle.length === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const sb = await pooled.create({ image, network: false, workdir: '/testbed', pidsLimit: 77 });
      created.push(sb);
      const r = await sb.exec('cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max', { timeoutMs: 10_000 });
      expect(r.stdout.trim()).toBe('77');
    } finally {
      await pooled.close();
    }
    // Only the handed-out sandbox remains (destroyed in afterAll); the idle refill is gone.
    let left = 2;
    for (let i = 0; i < 200 && left > 1; i++) {
      left = (await docker.listContainers({ all: true, filters: { label: ['swe-stream.pool=1', 'swe-stream.test=containment-pool'] } })).length;
      if (left > 1) await new Promise((r) => setTimeout(r, 50));
    }
    expect(left).toBeLessThanOrEqual(1);
  });

  it('commit produces a labelled image', async () => {
    const sb = await make();
    await sb.writeFile('/testbed/f.txt', 'committed');
    const ref = `swe-stream-test/commit-${randomBytes(4).toString('hex')}:1`;
    const img = await sb.commit(ref, { 'swe-stream.test': 'yes' });
    try {
      expect(img.imageId).toMatch(/^sha256:/);
      expect(await factory.imageId(ref)).toBe(img.imageId);
      expect(await factory.imageLabels(ref)).toMatchObject({ 'swe-stream.test': 'yes' });
      const sb2 = await make({ image: ref });
      expect((await sb2.readFile('/testbed/f.txt')).toString()).toBe('committed');
    } finally {
      for (const s of created.splice(0)) await s.destroy();
      await factory.removeImage(ref);
    }
    expect(await factory.imageId(ref)).toBeNull();
  });
});
