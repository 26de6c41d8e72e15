/**
 * Offline base images (ARCHITECTURE.md §5, ../shared/notes/services.md "Docker engine and images"): no
 * registry can be pulled from, so a Debian bookworm root file system is built with `debootstrap
 * --variant=minbase --include=…` from the host's Debian mirror and imported with the engine's image-import
 * API (`docker import`). Images are tagged by a hash of their recipe, so a changed package list builds a
 * new image and an unchanged one is never rebuilt. A lock directory keeps two processes on one host from
 * building the same image at once.
 *
 * Python versions come from Debian releases, one base image each ({@link PYTHON_SUITES}: bullseye 3.9,
 * bookworm 3.11, trixie 3.13), so every interpreter is a distribution build from the same mirror. Other Node
 * versions are not baked in: an environment recipe installs the npm registry's `node@<major>` package inside
 * the environment when a repository asks for it (Debian bookworm's nodejs is 18).
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { SandboxError } from './types.js';
import { logger } from '../../streams/log.js';

const log = logger({ component: 'sandbox-images' });

/** Which base image: `python` (python3, pip, venv, git, build tools) or `node` (nodejs 18, npm, git, build tools). */
export type BaseKind = 'python' | 'node';

/** What goes into a base image. Changing any field changes the tag. */
export interface BaseRecipe {
  kind: BaseKind;
  suite: string;
  variant: string;
  packages: string[];
  /** Dockerfile-style `ENV`/`CMD` changes applied at import. */
  changes: string[];
  /**
   * Written to /etc/profile.d/swe-stream.sh: sandbox commands run in login shells (`bash -lc`), and
   * Debian's /etc/profile resets PATH, so the venv and npm's global bin must be put back here.
   */
  profile: string;
}

const PROFILE = 'export PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport LANG=C.UTF-8\n';

const COMMON = ['ca-certificates', 'git', 'build-essential', 'procps', 'tzdata', 'xz-utils', 'curl'];

/** The default base recipes (Python 3.11 and Node 18, both Debian bookworm). Bumping `v` in {@link baseRecipeHash} forces a rebuild of all. */
export const BASE_RECIPES: Record<BaseKind, BaseRecipe> = {
  python: {
    kind: 'python',
    suite: 'bookworm',
    variant: 'minbase',
    packages: [...COMMON, 'python3', 'python3-pip', 'python3-venv', 'python3-dev'],
    changes: ['ENV LANG=C.UTF-8', 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["bash"]'],
    profile: PROFILE,
  },
  node: {
    kind: 'node',
    suite: 'bookworm',
    variant: 'minbase',
    // python3 because node-gyp builds native addons with it.
    packages: [...COMMON, 'nodejs', 'npm', 'python3'],
    changes: ['ENV LANG=C.UTF-8', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["bash"]'],
    profile: PROFILE,
  },
};

/**
 * Python minor version → the Debian release whose `python3` is that version (Debian's own package versions:
 * bullseye 3.9.2, bookworm 3.11.2, trixie 3.13.5). These are the interpreters env-build can offer.
 */
export const PYTHON_SUITES: Readonly<Record<string, string>> = { '3.9': 'bullseye', '3.11': 'bookworm', '3.13': 'trixie' };

/** The Python versions of {@link PYTHON_SUITES}, oldest first. */
export const PYTHON_VERSIONS: readonly string[] = Object.keys(PYTHON_SUITES).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));

/**
 * The base recipe for `kind`, for Python at version `python` (a key of {@link PYTHON_SUITES}; default 3.11).
 * The bookworm recipe is {@link BASE_RECIPES}.python itself, so its tag does not change.
 * @throws RangeError for a Python version no Debian release here provides
 */
export function baseRecipe(kind: BaseKind, python?: string | null): BaseRecipe {
  if (kind !== 'python' || !python || python === '3.11') return BASE_RECIPES[kind];
  const suite = PYTHON_SUITES[python];
  if (!suite) throw new RangeError(`no base image provides Python ${python} (available: ${PYTHON_VERSIONS.join(', ')})`);
  return { ...BASE_RECIPES.python, suite };
}

/** Short content hash of a base recipe (12 hex chars of sha256 over its canonical JSON plus the mirror URL). */
export function baseRecipeHash(recipe: BaseRecipe, mirror: string): string {
  return createHash('sha256').update(JSON.stringify({ v: 2, ...recipe, mirror })).digest('hex').slice(0, 12);
}

/** Image reference of a base recipe: `swe-stream/base-<kind>:<recipe-hash>` (Python other than 3.11: `swe-stream/base-python3.9:…`). */
export function baseRef(kind: BaseKind, mirror: string, python?: string | null): string {
  const recipe = baseRecipe(kind, python);
  const name = kind === 'python' && recipe.suite !== BASE_RECIPES.python.suite ? `python${python}` : kind;
  return `swe-stream/base-${name}:${baseRecipeHash(recipe, mirror)}`;
}

/**
 * The Debian mirror URL the host's apt uses, read from /etc/apt/sources.list.d/*.sources (deb822 `URIs:`)
 * or *.list / /etc/apt/sources.list (`deb URL suite …`); the first entry whose suites include bookworm
 * (or any) and that is not a security mirror. Falls back to http://deb.debian.org/debian.
 */
export async function hostDebianMirror(): Promise<string> {
  const files: string[] = [];
  try {
    for (const f of await readdir('/etc/apt/sources.list.d')) files.push(join('/etc/apt/sources.list.d', f));
  } catch { /* no directory: only sources.list */ }
  files.push('/etc/apt/sources.list');
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(/^URIs:\s*(\S+)/gim)) if (!/security/.test(m[1])) return m[1];
    for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/gim)) if (!/security/.test(m[1])) return m[1];
  }
  return 'http://deb.debian.org/debian';
}

function run(cmd: string, args: string[], opts: { timeoutMs: number }): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (b: Buffer) => {
      out = (out + b.toString()).slice(-20_000);
    };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 137, out });
    });
  });
}

async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw new SandboxError(`inspect image ${ref}: ${(e as Error).message}`, true, { cause: e });
  }
}

/**
 * A cross-process lock: `mkdir` is atomic, the directory holds the owner's pid, and a lock whose owner is
 * dead is taken over. Waits by polling the lock's existence (a condition, not a fixed sleep) up to `waitMs`.
 * @throws SandboxError (retriable) when the lock is still held after waitMs
 */
async function withLock<T>(name: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const dir = join(tmpdir(), 'swe-stream-locks');
  await mkdir(dir, { recursive: true });
  const lock = join(dir, `${name}.lock`);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = NaN;
      try {
        owner = Number(await readFile(join(lock, 'pid'), 'utf8'));
      } catch { /* owner has not written its pid yet */ }
      if (Number.isFinite(owner) && owner > 0 && !alive(owner)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new SandboxError(`lock ${lock} held by pid ${owner} for more than ${waitMs} ms`, true);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Options for {@link ensureBaseImage}. */
export interface EnsureBaseOptions {
  /** Debian mirror; default: the host's, see {@link hostDebianMirror}. */
  mirror?: string;
  /** Where debootstrap keeps downloaded .debs between builds; default $TMPDIR/swe-stream-debs. */
  cacheDir?: string;
  /** Limit for debootstrap (ms); default 20 min. */
  timeoutMs?: number;
  /** Python kind only: the interpreter version (a key of {@link PYTHON_SUITES}); default 3.11. */
  python?: string | null;
}

/**
 * Make sure the base image of `kind` exists locally; build it when missing. Returns its ref and how long
 * the build took (0 when it was already there).
 * Needs root (debootstrap) when it has to build.
 * @throws SandboxError retriable=true when debootstrap or the import fails (mirror unreachable, engine down)
 */
export async function ensureBaseImage(docker: Docker, kind: BaseKind, opts: EnsureBaseOptions = {}): Promise<{ ref: string; buildMs: number }> {
  const mirror = opts.mirror ?? (await hostDebianMirror());
  const recipe = baseRecipe(kind, opts.python);
  const ref = baseRef(kind, mirror, opts.python);
  if (await imageExists(docker, ref)) return { ref, buildMs: 0 };
  // The bookworm lock keeps its old name: a process of an older build may be building the same tag.
  return withLock(recipe.suite === BASE_RECIPES[kind].suite ? `base-${kind}` : `base-${kind}-${recipe.suite}`, 40 * 60_000, async () => {
    if (await imageExists(docker, ref)) return { ref, buildMs: 0 };
    const t0 = Date.now();
    const cacheDir = opts.cacheDir ?? join(tmpdir(), 'swe-stream-debs');
    await mkdir(cacheDir, { recursive: true });
    const root = await mkdtemp(join(tmpdir(), `swe-stream-rootfs-${kind}-`));
    try {
      log.info({ kind, ref, mirror }, 'building base image with debootstrap');
      // debootstrap's own resolver cannot configure npm's web of node-* packages, so it only lays down the
      // minimal base and apt-get, inside the chroot, installs and configures the rest.
      const r = await run(
        'debootstrap',
        [`--variant=${recipe.variant}`, '--include=ca-certificates', `--cache-dir=${cacheDir}`, recipe.suite, root, mirror],
        { timeoutMs: opts.timeoutMs ?? 20 * 60_000 },
      );
      if (r.code !== 0) throw new SandboxError(`debootstrap ${kind} (${recipe.suite}) exited ${r.code}: ${r.out.slice(-2000)}`, true);
      const apt = await run(
        'chroot',
        [root, 'bash', '-c', `export DEBIAN_FRONTEND=noninteractive && apt-get update -q && apt-get install -y -q --no-install-recommends ${recipe.packages.join(' ')} && apt-get clean && rm -rf /var/lib/apt/lists/*`],
        { timeoutMs: opts.timeoutMs ?? 20 * 60_000 },
      );
      if (apt.code !== 0) throw new SandboxError(`apt-get install in ${kind} rootfs exited ${apt.code}: ${apt.out.slice(-2000)}`, true);
      await run('bash', ['-c', `rm -rf ${root}/var/cache/apt/archives/*.deb ${root}/var/lib/apt/lists/*`], { timeoutMs: 60_000 });
      await writeFile(join(root, 'etc/profile.d/swe-stream.sh'), recipe.profile);
      // root's default ~/.profile runs `mesg n`, which prints an error on every non-tty login shell.
      await writeFile(join(root, 'root/.profile'), '[ -f ~/.bashrc ] && . ~/.bashrc\n');
      await importRootfs(docker, root, ref, recipe.changes);
      const buildMs = Date.now() - t0;
      log.info({ kind, ref, buildMs }, 'base image built');
      return { ref, buildMs };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}

async function importRootfs(docker: Docker, root: string, ref: string, changes: string[]): Promise<void> {
  const [repo, tag] = ref.split(':');
  const tar = spawn('tar', ['-C', root, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tarErr = '';
  tar.stderr.on('data', (b: Buffer) => (tarErr = (tarErr + b.toString()).slice(-2000)));
  const tarDone = new Promise<number>((res) => tar.on('close', (c) => res(c ?? 1)));
  // dockerode's importImage takes a stream and query options (fromSrc '-'); `changes` is the import API's list.
  const stream = await (docker.importImage as unknown as (s: NodeJS.ReadableStream, o: object) => Promise<NodeJS.ReadableStream>)(tar.stdout, {
    repo,
    tag,
    changes,
  });
  await new Promise<void>((res, rej) => docker.modem.followProgress(stream, (err: Error | null) => (err ? rej(err) : res())));
  const code = await tarDone;
  if (code !== 0) throw new SandboxError(`tar of rootfs exited ${code}: ${tarErr}`, true);
  const st = await stat(root).catch(() => null);
  if (!st) throw new SandboxError('rootfs vanished during import', true);
  if (!(await imageExists(docker, ref))) throw new SandboxError(`import finished but ${ref} is absent`, true);
}
