/**
 * The sandbox on a Docker engine (dockerode; local socket or DOCKER_HOST), with the isolation rules of
 * ARCHITECTURE.md §6:
 *  - not privileged; every capability dropped except the few package installs need (CHOWN, DAC_OVERRIDE,
 *    FOWNER, FSETID, SETUID, SETGID, KILL); `no-new-privileges`;
 *  - pids, memory (swap included) and CPU limits;
 *  - network only while installing (the `swe-stream-install` bridge of operators/sandbox/network.ts, which
 *    reaches the registries but not the host or private networks; cut by {@link Sandbox.disconnectNetwork})
 *    or never (`none`);
 *  - a writable-layer size limit (`StorageOpt.size`) where the storage driver supports one (overlay2 on xfs
 *    with pquota, btrfs, zfs, devicemapper); elsewhere the engine refuses it and it is left off, logged once;
 *  - no host mount but the host CA bundle, read-only, with SSL_CERT_FILE / NODE_EXTRA_CA_CERTS / PIP_CERT /
 *    REQUESTS_CA_BUNDLE pointing at it; proxy variables passed through; no other host variable;
 *  - every command has a timeout: the command runs in its own session (setsid) and, at the deadline or when
 *    it ends, every process it left behind is SIGKILLed — its session, and (when no other command of the
 *    sandbox is running) every process of the container but init and the keep-alive, so a daemon that
 *    escaped with its own `setsid` dies too (exit code 124, timedOut=true on the deadline);
 *  - stdout/stderr capped per stream (the tail is kept);
 *  - containers labelled `swe-stream=1` plus an owner label (host:pid) and run/stage labels; destroyed on
 *    AbortSignal; {@link DockerSandboxFactory.sweep} removes leftovers of dead owners, and every factory runs
 *    it once before its first container (a `kill -9` of a run leaves its containers behind).
 *
 * CA and proxy variables are set per exec, not on the container, so `docker commit` never bakes a proxy
 * URL (which may hold credentials) into an environment image.
 */
import Docker from 'dockerode';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';
import type { CreateOptions, ExecOptions, ExecResult, Sandbox, SandboxFactory } from './types.js';
import { SANDBOX_DEFAULTS, SandboxError } from './types.js';
import { ensureBaseImage, type EnsureBaseOptions } from './images.js';
import { ensureInstallNetwork, INSTALL_NETWORK, type InstallNetwork } from './network.js';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'sandbox' });

/** The host CA bundle (Debian layout) and where it appears inside a container. */
export const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Capabilities package installs need (chown of extracted files, setuid helpers of apt/npm); everything else is dropped. */
export const INSTALL_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'SETUID', 'SETGID', 'KILL'];

const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy'];

/** Label keys every swe-stream container carries. */
export const LABEL = 'swe-stream';
export const OWNER_LABEL = 'swe-stream.owner';

const DEFAULT_MAX_OUTPUT = 1 << 20;

/** Options of {@link DockerSandboxFactory}. */
export interface DockerSandboxOptions {
  /** A dockerode client; default `new Docker()` (DOCKER_HOST or /var/run/docker.sock). */
  docker?: Docker;
  /** Host CA bundle to mount read-only; default /etc/ssl/certs/ca-certificates.crt when it exists. null: none. */
  caBundle?: string | null;
  /** Default limits of every container; default {@link SANDBOX_DEFAULTS} (memory, CPUs × 1e9, pids). */
  memoryBytes?: number;
  nanoCpus?: number;
  pidsLimit?: number;
  /** Labels put on every container (e.g. `{ 'swe-stream.run': runId }`). */
  labels?: Record<string, string>;
  /** Passed to the base-image builder. */
  images?: EnsureBaseOptions;
  /**
   * Keep this many started, network-less containers per image and workdir, so `create` for a test run
   * skips the engine's container start (hundreds of ms). Default 0. Pooled containers carry the factory's
   * labels, not the per-create ones; limits given to `create` are applied with a container update.
   * Call {@link DockerSandboxFactory.close} to remove idle pooled containers.
   */
  warmPool?: number;
  /**
   * Network of sandboxes created with `network: true`: default the isolated install network
   * (operators/sandbox/network.ts); `'bridge'` for Docker's default bridge (reaches the host).
   */
  installNetwork?: string;
  /** Writable-layer limit per container, bytes, where the storage driver supports one; default {@link SANDBOX_DEFAULTS}.diskBytes; 0: none. */
  diskBytes?: number;
}

/**
 * Shell that SIGKILLs every process of the container except init (PID 1), the keep-alive (the oldest
 * `sleep infinity`) and itself. Run with `docker exec`, outside any command's session.
 */
export const KILL_ALL_SCRIPT = [
  'keep=""',
  'for p in $(ls /proc | grep -E "^[0-9]+$" | sort -n); do',
  '  if [ "$(tr "\\0" " " < /proc/$p/cmdline 2>/dev/null)" = "sleep infinity " ]; then keep=$p; break; fi',
  'done',
  'for d in /proc/[0-9]*; do p=${d#/proc/}',
  '  [ "$p" = 1 ] || [ "$p" = "$keep" ] || [ "$p" = $$ ] || kill -9 "$p" 2>/dev/null',
  'done',
  'true',
].join('\n');

function engineError(what: string, e: unknown): SandboxError {
  const status = (e as { statusCode?: number }).statusCode;
  // 4xx from the engine means our request is wrong (no such image, bad config): retrying will not help.
  const retriable = status === undefined || status >= 500;
  return new SandboxError(`${what}: ${(e as Error).message ?? String(e)}`, retriable, { cause: e });
}

/** The environment every exec gets: CA paths and the host's proxy variables, nothing else from the host. */
export function sandboxEnv(caMounted: boolean): Record<string, string> {
  const env: Record<string, string> = { HOME: '/root', LANG: 'C.UTF-8', CI: 'true', PIP_DISABLE_PIP_VERSION_CHECK: '1', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  if (caMounted) {
    for (const k of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'PIP_CERT', 'REQUESTS_CA_BUNDLE', 'GIT_SSL_CAINFO', 'CURL_CA_BUNDLE']) env[k] = CA_BUNDLE;
  }
  for (const k of PROXY_VARS) {
    const v = process.env[k];
    if (v) env[k] = v;
  }
  return env;
}

/** Keeps the last `cap` bytes written to it. */
class TailBuffer extends Writable {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    // Compact lazily: only when twice over the cap, so a chatty command is not O(n²).
    if (this.size > this.cap * 2) this.compact();
    cb();
  }
  private compact(): void {
    if (this.size <= this.cap) return;
    const all = Buffer.concat(this.chunks);
    const tail = all.subarray(all.length - this.cap);
    this.chunks = [tail];
    this.size = tail.length;
    this.truncated = true;
  }
  text(): string {
    this.compact();
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

class DockerSandbox implements Sandbox {
  private destroyed = false;
  private readonly onAbort?: () => void;
  /** cleanup of the previous exec; the next operation waits for it so processes never overlap */
  private pending: Promise<void> = Promise.resolve();
  /** commands running now: the container-wide kill only runs when the ending command is the only one */
  private running = 0;

  constructor(
    private readonly docker: Docker,
    private readonly container: Docker.Container,
    private readonly env: Record<string, string>,
    private readonly workdir: string | undefined,
    private readonly signal?: AbortSignal,
  ) {
    if (signal) {
      this.onAbort = () => {
        this.destroy().catch((e: unknown) => log.warn({ id: this.id, err: (e as Error).message }, 'destroy on abort failed'));
      };
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  get id(): string {
    return this.container.id;
  }

  async exec(script: string, opts: ExecOptions): Promise<ExecResult> {
    if (this.destroyed) throw new SandboxError('sandbox destroyed', false);
    if (opts.signal?.aborted) throw new SandboxError('exec aborted', true);
    await this.pending;
    if (!(opts.timeoutMs > 0)) throw new SandboxError('exec needs a positive timeoutMs', false);
    const cap = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const token = randomBytes(6).toString('hex');
    const sidFile = `/tmp/.swe-exec-${token}`;
    // setsid makes the command a session leader; its sid is written down so the deadline can kill the whole
    // session (every process it started, in any process group), not just one pid.
    // The trailing `exit $r` stops bash from exec'ing into the command: a command killed by a signal then
    // exits 128+n (137 for an OOM kill) through bash, where `setsid -w` alone reports the raw signal number.
    const cmd = ['setsid', '-w', 'bash', '-c', `echo $$ > ${sidFile}; bash -lc "$1"; r=$?; exit $r`, 'swe-exec', script];
    const env = { ...this.env, ...(opts.env ?? {}) };
    const t0 = Date.now();
    this.running++;
    try {
      return await this.execStarted(cmd, env, opts, { cap, sidFile, t0 });
    } finally {
      this.running--;
    }
  }

  /** The kill of one command's leftovers: its session, then (when it ran alone) the container's other processes. */
  private killScript(sidFile: string): string {
    const session = `s=$(cat ${sidFile} 2>/dev/null) && [ -n "$s" ] && pkill -KILL -s "$s"`;
    return this.running <= 1 ? `${session}; ${KILL_ALL_SCRIPT}` : `${session}; true`;
  }

  private async execStarted(cmd: string[], env: Record<string, string>, opts: ExecOptions, o: { cap: number; sidFile: string; t0: number }): Promise<ExecResult> {
    const { cap, sidFile, t0 } = o;
    let exec: Docker.Exec;
    let stream: NodeJS.ReadWriteStream;
    try {
      exec = await this.container.exec({
        Cmd: cmd,
        AttachStdout: true,
        AttachStderr: true,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: opts.cwd ?? this.workdir,
      });
      stream = (await exec.start({ hijack: true, stdin: false })) as unknown as NodeJS.ReadWriteStream;
    } catch (e) {
      throw engineError('exec start', e);
    }
    const out = new TailBuffer(cap);
    const err = new TailBuffer(cap);
    this.docker.modem.demuxStream(stream, out, err);
    let timedOut = false;
    let aborted = false;
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', (e: Error) => reject(e));
    });
    const killSession = async (): Promise<void> => {
      const ok = await this.run(['bash', '-c', this.killScript(sidFile)]);
      // No process slot left for the kill itself (a fork bomb at the pids limit): restart the container, which
      // kills every process in it and keeps its file system.
      if (!ok && !this.destroyed) await this.restart();
    };    const timer = setTimeout(() => {
      timedOut = true;
      void killSession();
    }, opts.timeoutMs);
    const abort = () => {
      aborted = true;
      void killSession();
    };
    opts.signal?.addEventListener('abort', abort, { once: true });
    if (opts.signal?.aborted) abort();
    try {
      await ended;
    } catch (e) {
      throw engineError('exec stream', e);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', abort);
    }
    if (aborted || opts.signal?.aborted) throw new SandboxError('exec aborted', true);
    let exitCode: number;
    try {
      const info = await exec.inspect();
      exitCode = info.ExitCode ?? -1;
    } catch (e) {
      throw engineError('exec inspect', e);
    }
    if (exitCode === 126 && /OCI runtime exec failed/.test(out.text())) {
      // The engine could not start the process at all (pids exhausted, container stopped): not the command's verdict.
      if (!timedOut) throw new SandboxError(`exec could not start: ${out.text().trim()}`, true);
    }
    // Whatever the command left running in the background dies with it (the process-group rule of §6),
    // and the sid file goes; not awaited, so it costs the caller nothing.
    if (!this.destroyed) {
      this.pending = this.run(['bash', '-c', `${this.killScript(sidFile)}; rm -f ${sidFile}; true`]).then(async (ok) => {
        if (!ok && !this.destroyed) await this.restart();
      });
    }
    return {
      exitCode: timedOut ? 124 : exitCode,
      stdout: out.text(),
      stderr: err.text(),
      durationMs: Date.now() - t0,
      timedOut,
      truncated: out.truncated || err.truncated,
    };
  }

  /** Run a helper command to completion; false when the engine could not start it. Never throws. */
  private async run(cmd: string[]): Promise<boolean> {
    try {
      const e = await this.container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = (await e.start({ hijack: true, stdin: false })) as unknown as NodeJS.ReadableStream;
      let text = '';
      stream.on('data', (b: Buffer) => (text += b.toString()));
      await new Promise<void>((resolve) => {
        stream.on('end', () => resolve());
        stream.on('close', () => resolve());
        stream.on('error', () => resolve());
      });
      const info = await e.inspect();
      return !(info.ExitCode === 126 || /OCI runtime exec failed/.test(text));
    } catch (e) {
      if (!this.destroyed) log.warn({ id: this.id, err: (e as Error).message }, 'sandbox helper command failed');
      return false;
    }
  }

  private async restart(): Promise<void> {
    try {
      await this.container.restart({ t: 0 });
    } catch (e) {
      if (!this.destroyed) log.warn({ id: this.id, err: (e as Error).message }, 'restart of a runaway sandbox failed');
    }
  }

  async writeFile(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
    if (!path.startsWith('/')) throw new SandboxError(`writeFile needs an absolute path, got ${path}`, false);
    const pack = tar.pack();
    const body = typeof content === 'string' ? Buffer.from(content) : content;
    // The entry is named from / so tar creates missing parent directories, which putArchive does not.
    pack.entry({ name: path.slice(1), mode, size: body.length }, body);
    pack.finalize();
    const pt = new PassThrough();
    pack.pipe(pt);
    try {
      await this.container.putArchive(pt, { path: '/' });
    } catch (e) {
      throw engineError(`writeFile ${path}`, e);
    }
  }

  async readFile(path: string): Promise<Buffer> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.container.getArchive({ path });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) throw new SandboxError(`no such file in sandbox: ${path}`, false, { cause: e });
      throw engineError(`readFile ${path}`, e);
    }
    const extract = tar.extract();
    const chunks: Buffer[] = [];
    let found = false;
    let isDir = false;
    await new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, s, next) => {
        if (!found) {
          found = true;
          isDir = header.type === 'directory';
          s.on('data', (b: unknown) => {
            chunks.push(b as Buffer);
          });
        } else s.resume();
        s.on('end', next);
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
      stream.pipe(extract);
    });
    if (!found || isDir) throw new SandboxError(`not a regular file in sandbox: ${posix.normalize(path)}`, false);
    return Buffer.concat(chunks);
  }

  async disconnectNetwork(): Promise<void> {
    let nets: Record<string, unknown>;
    try {
      const info = await this.container.inspect();
      nets = info.NetworkSettings?.Networks ?? {};
    } catch (e) {
      throw engineError('inspect for disconnect', e);
    }
    for (const name of Object.keys(nets)) {
      if (name === 'none') continue;
      try {
        await this.docker.getNetwork(name).disconnect({ Container: this.id, Force: true });
      } catch (e) {
        throw engineError(`disconnect ${name}`, e);
      }
    }
  }

  async commit(ref: string, labels: Record<string, string> = {}): Promise<{ ref: string; imageId: string }> {
    const i = ref.lastIndexOf(':');
    const [repo, tag] = i > ref.lastIndexOf('/') ? [ref.slice(0, i), ref.slice(i + 1)] : [ref, 'latest'];
    await this.pending;
    const changes = Object.entries(labels).map(([k, v]) => `LABEL ${JSON.stringify(k)}=${JSON.stringify(v)}`);
    try {
      const r = (await this.container.commit({ repo, tag, changes, pause: true })) as { Id: string };
      return { ref: `${repo}:${tag}`, imageId: r.Id };
    } catch (e) {
      throw engineError(`commit ${ref}`, e);
    }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    try {
      await this.container.remove({ force: true, v: true });
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode;
      // 404: already gone; 409: removal already in progress (a concurrent destroy). Both mean "done".
      if (status === 404 || status === 409) return;
      this.destroyed = false;
      throw engineError('destroy', e);
    }
  }
}

/**
 * {@link SandboxFactory} on a Docker engine. `create` resolves once the container runs (PID 1 is the
 * engine's init, so orphans are reaped and the pids limit is not eaten by zombies).
 */
export class DockerSandboxFactory implements SandboxFactory {
  readonly docker: Docker;
  private readonly caBundle: string | null;
  private readonly owner = `${hostname()}:${process.pid}`;
  private readonly pool = new Map<string, Docker.Container[]>();
  private readonly refilling = new Set<string>();
  private closed = false;
  private readonly local: boolean;
  private swept: Promise<void> | null = null;
  private installNet: Promise<InstallNetwork> | null = null;
  /** whether the engine accepts StorageOpt.size (null: not tried yet) */
  private storageOpt: boolean | null = null;

  constructor(private readonly opts: DockerSandboxOptions = {}) {
    this.docker = opts.docker ?? new Docker();
    const host = process.env.DOCKER_HOST;
    const local = !host || host.startsWith('unix://');
    this.local = local;
    // A bind mount names a path on the engine's host; for a remote engine the host's bundle is not there.
    this.caBundle = opts.caBundle === undefined ? (local && existsSync(CA_BUNDLE) ? CA_BUNDLE : null) : opts.caBundle;
  }

  async create(o: CreateOptions): Promise<Sandbox> {
    if (o.signal?.aborted) throw new SandboxError('aborted before create', true);
    // Leftovers of runs that died without cleaning up (kill -9) go before this factory's first container.
    this.swept ??= this.sweep().then(
      () => undefined,
      (e: unknown) => log.warn({ err: (e as Error).message }, 'sweep of leftover sandboxes failed'),
    );
    await this.swept;
    const pooled = this.poolSize > 0 && !o.network ? this.takePooled(o) : null;
    let container: Docker.Container;
    if (pooled) {
      container = pooled;
      // Limits are updatable on a running container; labels are not (a pooled container keeps the factory's).
      if (o.memoryBytes !== undefined || o.nanoCpus !== undefined || o.pidsLimit !== undefined) {
        const l = this.limits(o);
        try {
          await container.update({ Memory: l.memoryBytes, MemorySwap: l.memoryBytes, NanoCpus: l.nanoCpus, PidsLimit: l.pidsLimit });
        } catch (e) {
          await container.remove({ force: true }).catch(() => undefined);
          throw engineError('update pooled container limits', e);
        }
      }
    } else {
      container = await this.startContainer(o, { ...(this.opts.labels ?? {}), ...(o.labels ?? {}) });
    }
    if (this.poolSize > 0 && !o.network) this.refill(o);
    const sb = new DockerSandbox(this.docker, container, sandboxEnv(this.caBundle !== null), o.workdir, o.signal);
    if (o.signal?.aborted) {
      await sb.destroy();
      throw new SandboxError('aborted during create', true);
    }
    return sb;
  }

  /** The limits of one container: the create's own, else the factory's, else {@link SANDBOX_DEFAULTS}. */
  private limits(o: CreateOptions): { memoryBytes: number; nanoCpus: number; pidsLimit: number } {
    return {
      memoryBytes: o.memoryBytes ?? this.opts.memoryBytes ?? SANDBOX_DEFAULTS.memoryBytes,
      nanoCpus: o.nanoCpus ?? this.opts.nanoCpus ?? SANDBOX_DEFAULTS.cpus * 1e9,
      pidsLimit: o.pidsLimit ?? this.opts.pidsLimit ?? SANDBOX_DEFAULTS.pidsLimit,
    };
  }

  private async startContainer(o: CreateOptions, labels: Record<string, string>): Promise<Docker.Container> {
    const { memoryBytes: memory, nanoCpus, pidsLimit } = this.limits(o);
    const binds = this.caBundle ? [`${this.caBundle}:${CA_BUNDLE}:ro`] : [];
    const network = o.network ? await this.installNetworkName() : 'none';
    const disk = this.opts.diskBytes ?? SANDBOX_DEFAULTS.diskBytes;
    let container: Docker.Container;
    const spec = (storage: boolean): Docker.ContainerCreateOptions => ({
        Image: o.image,
        Cmd: ['sleep', 'infinity'],
        WorkingDir: o.workdir,
        Labels: { ...labels, [LABEL]: '1', [OWNER_LABEL]: this.owner },
        Env: [],
        HostConfig: {
          Init: true,
          Privileged: false,
          CapDrop: ['ALL'],
          CapAdd: INSTALL_CAPS,
          SecurityOpt: ['no-new-privileges'],
          PidsLimit: pidsLimit,
          Memory: memory,
          MemorySwap: memory,
          NanoCpus: nanoCpus,
          NetworkMode: network,
          Binds: binds,
          AutoRemove: false,
          ...(storage ? { StorageOpt: { size: String(disk) } } : {}),
        },
      });
    // Decided once per call: creations run concurrently, and one that learns the driver has no size limit
    // must not make another's refusal of the same option look like a different error.
    const withStorage = disk > 0 && this.storageOpt !== false;
    try {
      container = await this.docker.createContainer(spec(withStorage));
    } catch (e) {
      // The engine refuses StorageOpt where the driver cannot enforce it (overlay2 without xfs pquota, …).
      if (withStorage && /storage-?opt|quota|not supported/i.test((e as Error).message)) {
        this.storageOpt = false;
        log.warn({ err: (e as Error).message }, 'storage driver has no per-container size limit; sandboxes run without one');
        try {
          container = await this.docker.createContainer(spec(false));
        } catch (e2) {
          throw engineError(`create container from ${o.image}`, e2);
        }
      } else throw engineError(`create container from ${o.image}`, e);
    }
    this.storageOpt ??= disk > 0;
    try {
      await container.start();
    } catch (e) {
      await container.remove({ force: true }).catch(() => undefined);
      throw engineError('start container', e);
    }
    return container;
  }

  /** The network of install sandboxes (created and fenced once per factory; see operators/sandbox/network.ts). */
  private async installNetworkName(): Promise<string> {
    const name = this.opts.installNetwork ?? INSTALL_NETWORK;
    if (name !== INSTALL_NETWORK) return name;
    this.installNet ??= ensureInstallNetwork(this.docker, { local: this.local }).catch((e: unknown) => {
      this.installNet = null; // a failed creation is tried again by the next create
      throw e;
    });
    return (await this.installNet).name;
  }

  /** What the install network got (isolated or not, and why); creates it when missing. */
  async installNetworkStatus(): Promise<InstallNetwork> {
    await this.installNetworkName();
    return this.installNet ? await this.installNet : { name: this.opts.installNetwork ?? INSTALL_NETWORK, isolated: false, reason: 'a network chosen by configuration' };
  }

  private get poolSize(): number {
    return this.opts.warmPool ?? 0;
  }

  private poolKey(o: CreateOptions): string {
    return `${o.image}\0${o.workdir ?? ''}`;
  }

  private takePooled(o: CreateOptions): Docker.Container | null {
    return this.pool.get(this.poolKey(o))?.shift() ?? null;
  }

  /** Top the pool of `o`'s image/workdir up to warmPool started, network-less containers, in the background. */
  private refill(o: CreateOptions): void {
    const key = this.poolKey(o);
    if (this.refilling.has(key)) return;
    this.refilling.add(key);
    const spec: CreateOptions = { image: o.image, workdir: o.workdir, network: false };
    void (async () => {
      try {
        const list = this.pool.get(key) ?? [];
        this.pool.set(key, list);
        while (!this.closed && list.length < this.poolSize) {
          const c = await this.startContainer(spec, { ...(this.opts.labels ?? {}), 'swe-stream.pool': '1' });
          // close() may have run while this one was starting: it must not outlive the factory.
          if (this.closed) {
            await c.remove({ force: true }).catch(() => undefined);
            break;
          }
          list.push(c);
        }
      } catch (e) {
        log.warn({ image: o.image, err: (e as Error).message }, 'warm pool refill failed');
      } finally {
        this.refilling.delete(key);
      }
    })();
  }

  /** Remove the warm pool's idle containers. Sandboxes handed out are the caller's to destroy. */
  async close(): Promise<void> {
    this.closed = true;
    for (const list of this.pool.values()) for (const c of list.splice(0)) await c.remove({ force: true }).catch(() => undefined);
  }

  async imageId(ref: string): Promise<string | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return info.Id;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw engineError(`inspect image ${ref}`, e);
    }
  }

  async imageLabels(ref: string): Promise<Record<string, string> | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return (info.Config?.Labels ?? {}) as Record<string, string>;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return null;
      throw engineError(`inspect image ${ref}`, e);
    }
  }

  async removeImage(ref: string): Promise<void> {
    try {
      await this.docker.getImage(ref).remove({ force: true });
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return;
      throw engineError(`remove image ${ref}`, e);
    }
  }

  async baseImage(language: 'python' | 'javascript' | 'typescript', toolchain?: { python?: string | null }): Promise<string> {
    const python = language === 'python' ? (toolchain?.python ?? null) : null;
    const { ref } = await ensureBaseImage(this.docker, language === 'python' ? 'python' : 'node', { ...this.opts.images, python });
    return ref;
  }

  /**
   * Remove labelled containers whose owner process is gone: on this host, a dead pid; containers of other
   * hosts (a shared remote engine) are left alone unless `all` is set. Returns how many were removed.
   */
  async sweep(all = false): Promise<number> {
    let list: Docker.ContainerInfo[];
    try {
      list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL}=1`] } });
    } catch (e) {
      throw engineError('list containers', e);
    }
    let n = 0;
    for (const c of list) {
      const owner = c.Labels?.[OWNER_LABEL] ?? '';
      const [host, pidText] = owner.split(':');
      const pid = Number(pidText);
      const dead = host === hostname() && Number.isFinite(pid) && pid !== process.pid && !pidAlive(pid);
      if (!all && owner !== '' && !dead) continue;
      if (all && owner === this.owner) continue;
      try {
        await this.docker.getContainer(c.Id).remove({ force: true, v: true });
        n++;
      } catch (e) {
        const status = (e as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) throw engineError(`sweep ${c.Id}`, e);
      }
    }
    if (n > 0) log.info({ removed: n }, 'swept leftover sandboxes');
    return n;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
