/**
 * The repository mirror cache: one bare mirror per repository under `<dataDir>/mirrors/<owner>/<repo>.git`,
 * cloned once from a `clone_url` (a local path or a URL) and fetched incrementally when a commit a stage
 * needs is not there yet. Every stage after the sources reads repositories through it.
 *
 * Concurrency: several stage workers (and several processes sharing a data dir) may ask for the same
 * repository at once. Inside a process, clone/fetch of one repository is a single shared promise; across
 * processes, a lock file `<repo>.git.lock` (created with O_EXCL, holding pid/host, broken when its owner
 * is dead or it is older than `lockStaleMs`) serialises clone and fetch. A clone is built in a temporary
 * directory and renamed into place, so a reader never sees a half-cloned mirror.
 *
 * Refs fetched: branches, tags, and GitHub's `refs/pull/<N>/head` when the remote advertises them
 * (wildcard refspecs that match nothing are not an error).
 *
 * Trust: a `clone_url` may come from an event payload. Remote URLs must be http(s)://, ssh://, git:// or
 * scp-like `user@host:path`; a local path is cloned only when it lies under one of `localPaths` (the
 * composition root lists what `git:` sources named), never because an event says so — also offline.
 * Credentials never reach a mirror's config: userinfo is split off the URL and handed to git per command
 * (see {@link GitCredentials}).
 */
import { link, mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { StageError } from '../../streams/types.js';
import { logger } from '../../streams/log.js';
import { git, gitStream, GitCredentials, GitError, isPermanentGitFailure, isRepoUnavailable, splitUrlCredentials, stripUrlCredentials, type SplitUrl } from './git-exec.js';

const log = logger({ component: 'mirror-cache' });

/** A commit the caller needs is not in the repository (not even after a fetch). Never retriable. */
export class MissingCommitError extends StageError {
  readonly commits: string[];
  constructor(repo: string, commits: string[]) {
    super(`${repo}: commit(s) not found in the mirror: ${commits.join(', ')}`, { retriable: false, name: 'MissingCommit' });
    this.commits = commits;
  }
}

/**
 * The repository cannot be had at all: the remote says it does not exist / no access, a local path is
 * not a repository, or the cache runs with `network: false` and the URL is remote. Never retriable.
 */
export class RepoUnavailableError extends StageError {
  /** `name`: RepoUnavailable, or InvalidRepoName for a name that cannot be a repository. */
  constructor(message: string, name = 'RepoUnavailable') {
    super(message, { retriable: false, name });
  }
}

/** A lock file that does not parse is abandoned after this long (ms): locks are written whole, so only a crash leaves one. */
const UNREADABLE_LOCK_MS = 5_000;

/** A clone or fetch failed for a reason that may pass (network, timeout, lock held too long). Retriable. */
export class CloneFailedError extends StageError {
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: true, name: 'CloneFailed', cause });
  }
}

/** One commit as read from `git log`. Dates are ISO 8601 strings with offset, as git prints `%aI`/`%cI`. */
export interface CommitInfo {
  sha: string;
  parents: string[];
  authorName: string;
  authorEmail: string;
  authorDate: string;
  committerDate: string;
  /** first line of the message */
  subject: string;
  /** the message after the subject and its blank separator line, trimmed */
  body: string;
}

/** Per-file line counts from `git diff --numstat`; binary files have `binary` true and zero counts. */
export interface NumstatEntry {
  path: string;
  oldPath: string | null;
  additions: number;
  deletions: number;
  binary: boolean;
}

/** Options of {@link MirrorCache}. */
export interface MirrorCacheOptions {
  /** the data dir; mirrors live in `<dataDir>/mirrors` */
  dataDir: string;
  /** allow cloning/fetching remote URLs (default true). With false only local paths are cloned; remote ones raise RepoUnavailableError. */
  network?: boolean;
  /** timeout of a clone or fetch in ms (default 30 min: first clones of large repositories are slow) */
  fetchTimeoutMs?: number;
  /** timeout of a local git read in ms (default 120 s) */
  readTimeoutMs?: number;
  /** a lock older than this is considered abandoned (default 60 min) */
  lockStaleMs?: number;
  /** how long to wait for another process's lock before failing retriably (default = fetchTimeoutMs) */
  lockWaitMs?: number;
  /** how long a retriable clone/fetch failure is answered from memory (default 30 s) */
  failureTtlMs?: number;
  /**
   * Directories under which a local clone URL (a path or file://) is accepted — those `git:` sources named.
   * Default none: every local clone URL is then RepoUnavailableError.
   */
  localPaths?: readonly string[];
  /** credentials sent to remotes per command (default: GITHUB_TOKEN for github.com, see GitCredentials.fromEnv) */
  credentials?: GitCredentials;
}

const REPO_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
/** Remote clone URLs git may fetch for us: http(s), ssh, git protocol, or scp-like `user@host:path`. */
const REMOTE_URL_RE = /^(?:(?:https?|ssh|git):\/\/[^\s/]+(?:\/\S*)?|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s/-]\S*)$/;
const REFSPECS = ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*', '+refs/pull/*/head:refs/pull/*/head'];

/** Is `url` something git reads from the local file system? */
export function isLocalCloneUrl(url: string): boolean {
  return url.startsWith('/') || url.startsWith('./') || url.startsWith('../') || url.startsWith('file://');
}

/** The mirror cache. See the module comment for layout and concurrency rules. */
export class MirrorCache {
  readonly root: string;
  private readonly opts: Required<Omit<MirrorCacheOptions, 'localPaths' | 'credentials'>>;
  private readonly localRoots: string[];
  private readonly credentials: GitCredentials;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly lastFetch = new Map<string, number>();
  /** recent retriable clone/fetch failures: callers within `failureTtlMs` get the same error instead of a new attempt */
  private readonly failures = new Map<string, { at: number; error: Error }>();

  constructor(opts: MirrorCacheOptions) {
    const fetchTimeoutMs = opts.fetchTimeoutMs ?? 30 * 60_000;
    this.opts = {
      dataDir: opts.dataDir,
      network: opts.network ?? true,
      fetchTimeoutMs,
      readTimeoutMs: opts.readTimeoutMs ?? 120_000,
      lockStaleMs: opts.lockStaleMs ?? 60 * 60_000,
      lockWaitMs: opts.lockWaitMs ?? fetchTimeoutMs,
      failureTtlMs: opts.failureTtlMs ?? 30_000,
    };
    this.localRoots = (opts.localPaths ?? []).map(canonical);
    this.credentials = opts.credentials ?? GitCredentials.fromEnv();
    this.root = path.join(opts.dataDir, 'mirrors');
  }

  /** Whether remote URLs may be cloned (the `network` option). */
  get networkEnabled(): boolean {
    return this.opts.network;
  }

  /**
   * `<dataDir>/mirrors/<owner>/<repo>.git` for `owner/repo`.
   * @throws RepoUnavailableError (retriable=false, name InvalidRepoName) for a name that is not `owner/repo`
   *   (also guards against path traversal): no later attempt can make such a name valid.
   */
  pathFor(repo: string): string {
    if (!REPO_RE.test(repo) || repo.split('/').some((p) => p === '.' || p === '..')) throw new RepoUnavailableError(`invalid repository name ${JSON.stringify(repo)} (want owner/repo)`, 'InvalidRepoName');
    const [owner, name] = repo.split('/') as [string, string];
    return path.join(this.root, owner, `${name}.git`);
  }

  /** The mirror of `repo` if it has been cloned already (no I/O beyond an existence check). */
  open(repo: string): Mirror | undefined {
    // A name git would read as an option or a traversal never reaches the file system: pathFor throws.
    const p = this.pathFor(repo);
    return existsSync(path.join(p, 'HEAD')) ? new Mirror(repo, p, this.opts.readTimeoutMs) : undefined;
  }

  /**
   * The mirror of `repo`, cloned from `cloneUrl` when absent, fetched when any of `want` is missing
   * (or when `refresh` is set and the last fetch by this process is older than `refreshAfterMs`, default 60 s).
   * @throws RepoUnavailableError (retriable=false) when the repository cannot exist for us;
   *   MissingCommitError (retriable=false) when `want` commits are still missing after a fetch;
   *   CloneFailedError (retriable=true) for network/timeout/lock failures.
   */
  async ensure(repo: string, cloneUrl: string, opts: { want?: string[]; refresh?: boolean; refreshAfterMs?: number; signal?: AbortSignal } = {}): Promise<Mirror> {
    const p = this.pathFor(repo);
    let mirror = this.open(repo);
    let fetched = false;
    if (!mirror) {
      await this.once(repo, () => this.cloneLocked(repo, cloneUrl, p, opts.signal));
      mirror = new Mirror(repo, p, this.opts.readTimeoutMs);
      fetched = true;
    }
    const want = (opts.want ?? []).filter(Boolean);
    let missing = await mirror.missing(want);
    const stale = opts.refresh && Date.now() - (this.lastFetch.get(repo) ?? 0) > (opts.refreshAfterMs ?? 60_000);
    if ((missing.length > 0 || stale) && !fetched) {
      await this.once(repo, () => this.fetchLocked(repo, cloneUrl, p, opts.signal));
      missing = await mirror.missing(want);
    }
    if (missing.length > 0) throw new MissingCommitError(repo, missing);
    return mirror;
  }

  /**
   * In-process dedupe: concurrent callers for one repository share the clone/fetch in progress; a
   * retriable failure is remembered for `failureTtlMs` so a burst of PRs of one broken repository does
   * not start a clone each (the runtime's due-time retries come back after the TTL).
   */
  private once(repo: string, fn: () => Promise<void>): Promise<void> {
    const cur = this.inflight.get(repo);
    if (cur) return cur;
    const failed = this.failures.get(repo);
    if (failed && Date.now() - failed.at < this.opts.failureTtlMs) return Promise.reject(failed.error);
    const p = fn()
      .then(() => void this.failures.delete(repo))
      .catch((err: unknown) => {
        if (err instanceof CloneFailedError) this.failures.set(repo, { at: Date.now(), error: err });
        throw err;
      })
      .finally(() => this.inflight.delete(repo));
    this.inflight.set(repo, p);
    return p;
  }

  /**
   * Whether git may read `cloneUrl` for us; returns it split from its credentials.
   * @throws RepoUnavailableError for a local path outside `localPaths`, a missing local path, a remote URL
   *   while the network is off, or anything that is neither (an option-shaped string, `ext::`, …).
   */
  private checkUrl(repo: string, cloneUrl: string): SplitUrl {
    const split = splitUrlCredentials(cloneUrl);
    if (REMOTE_URL_RE.test(split.url)) {
      if (!this.opts.network) throw new RepoUnavailableError(`${repo}: network access is disabled for the mirror cache, cannot clone ${split.url}`);
      return split;
    }
    if (!isLocalCloneUrl(cloneUrl)) throw new RepoUnavailableError(`${repo}: unsupported clone URL ${JSON.stringify(stripUrlCredentials(cloneUrl))} (want https://, ssh://, git://, user@host:path or a local path from a git: source)`);
    const local = canonical(cloneUrl.startsWith('file://') ? new URL(cloneUrl).pathname : cloneUrl);
    if (!this.localRoots.some((r) => local === r || local.startsWith(r.endsWith(path.sep) ? r : r + path.sep))) {
      throw new RepoUnavailableError(`${repo}: local clone URL ${local} refused: only git: sources may name a local repository`);
    }
    if (!existsSync(local)) throw new RepoUnavailableError(`${repo}: local repository ${local} does not exist`);
    return { url: local };
  }

  /** git environment for talking to `remote`: configured credentials plus those split from its URL. */
  private authEnv(remote: SplitUrl): Record<string, string> {
    return this.credentials.env(remote);
  }

  private async cloneLocked(repo: string, cloneUrl: string, p: string, signal?: AbortSignal): Promise<void> {
    const remote = this.checkUrl(repo, cloneUrl);
    await mkdir(path.dirname(p), { recursive: true });
    await this.withLock(p, signal, async () => {
      if (existsSync(path.join(p, 'HEAD'))) return this.fetchUnlocked(repo, remote, p, signal); // another process cloned it meanwhile
      const tmp = `${p}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      const t0 = Date.now();
      try {
        await git(['init', '--bare', '--quiet', tmp], { timeoutMs: this.opts.readTimeoutMs });
        await git(['remote', 'add', 'origin', remote.url], { gitDir: tmp }); // never the credentials: they stay in memory
        await git(['config', '--unset-all', 'remote.origin.fetch'], { gitDir: tmp }).catch(() => undefined); // absent is fine
        for (const spec of REFSPECS) await git(['config', '--add', 'remote.origin.fetch', spec], { gitDir: tmp });
        await git(['config', 'gc.auto', '0'], { gitDir: tmp }); // no background gc racing readers; gc is an explicit maintenance job
        await this.runFetch(repo, tmp, remote, signal);
        await this.setHead(tmp, remote, signal);
        await rename(tmp, p);
        this.lastFetch.set(repo, Date.now());
        log.info({ repo, ms: Date.now() - t0 }, 'mirror cloned');
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    });
  }

  private async fetchLocked(repo: string, cloneUrl: string, p: string, signal?: AbortSignal): Promise<void> {
    const remote = this.checkUrl(repo, cloneUrl);
    await this.withLock(p, signal, () => this.fetchUnlocked(repo, remote, p, signal));
  }

  private async fetchUnlocked(repo: string, remote: SplitUrl, p: string, signal?: AbortSignal): Promise<void> {
    // The clone_url may have changed (e.g. a test repo recreated elsewhere); the newest one wins. Setting it
    // also scrubs a credential an older version of this cache wrote into the config.
    await git(['remote', 'set-url', 'origin', remote.url], { gitDir: p });
    const t0 = Date.now();
    await this.runFetch(repo, p, remote, signal);
    this.lastFetch.set(repo, Date.now());
    log.debug({ repo, ms: Date.now() - t0 }, 'mirror fetched');
  }

  private async runFetch(repo: string, gitDir: string, remote: SplitUrl, signal?: AbortSignal): Promise<void> {
    const env = this.authEnv(remote);
    try {
      await git(['fetch', '--prune', '--quiet', 'origin', ...REFSPECS.slice(0, 2)], { gitDir, timeoutMs: this.opts.fetchTimeoutMs, signal, env });
    } catch (err) {
      if (err instanceof GitError && isRepoUnavailable(err.stderr)) throw new RepoUnavailableError(`${repo}: ${err.message}`);
      if (err instanceof GitError && !err.retriable && isPermanentGitFailure(err.stderr)) throw new RepoUnavailableError(`${repo}: ${err.message}`);
      throw new CloneFailedError(`${repo}: fetch failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    // PR heads are a separate, best-effort fetch: they are only used for head_sha, and one broken fork
    // head (objects the remote lost; git then aborts the whole pack) must not cost us the mainline.
    try {
      await git(['fetch', '--prune', '--quiet', 'origin', REFSPECS[2]!], { gitDir, timeoutMs: this.opts.fetchTimeoutMs, signal, env });
    } catch (err) {
      if (signal?.aborted) throw err;
      log.warn({ repo, err: err instanceof Error ? err.message : String(err) }, 'refs/pull/*/head not fetched; PR heads stay unknown');
    }
  }

  /** Point the bare mirror's HEAD at the remote's default branch (what `git clone` does). */
  private async setHead(gitDir: string, remote: SplitUrl, signal?: AbortSignal): Promise<void> {
    const out = await git(['ls-remote', '--symref', 'origin', 'HEAD'], { gitDir, timeoutMs: this.opts.fetchTimeoutMs, signal, env: this.authEnv(remote) }).catch(() => '');
    const m = /^ref: (refs\/heads\/\S+)\s+HEAD/m.exec(out);
    let target = m?.[1];
    if (!target) {
      // Remote without a symbolic HEAD: prefer main, then master, then the first branch.
      const heads = (await git(['for-each-ref', '--format=%(refname)', 'refs/heads/'], { gitDir })).split('\n').filter(Boolean);
      target = heads.find((h) => h === 'refs/heads/main') ?? heads.find((h) => h === 'refs/heads/master') ?? heads[0];
    }
    if (target) await git(['symbolic-ref', 'HEAD', target], { gitDir });
  }

  /**
   * Cross-process lock: a lock file holding its owner's pid and host, created whole or not at all (written to
   * a private temporary file, then hard-linked into place: link(2) fails with EEXIST when the lock exists), so a
   * process killed while taking it never leaves an empty lock that no one can judge. Stale locks are broken.
   */
  private async withLock<T>(p: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const lockPath = `${p}.lock`;
    const deadline = Date.now() + this.opts.lockWaitMs;
    let delay = 25;
    for (;;) {
      signal?.throwIfAborted();
      if (await this.tryLock(lockPath)) break;
      if (await this.lockIsStale(lockPath)) {
        await unlink(lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new CloneFailedError(`timed out waiting for lock ${lockPath}`);
      // Polling is the only portable way to wait for another process's lock file.
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1000);
    }
    try {
      return await fn();
    } finally {
      await unlink(lockPath).catch(() => undefined);
    }
  }

  /** Take the lock if it is free. @throws CloneFailedError when the lock cannot be written at all */
  private async tryLock(lockPath: string): Promise<boolean> {
    const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }), { flag: 'wx' });
      await link(tmp, lockPath);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new CloneFailedError(`cannot create lock ${lockPath}: ${(err as Error).message}`, err);
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /**
   * Whether a lock's owner is gone: older than `lockStaleMs`, or held by a dead process of this host, or
   * unreadable for longer than {@link UNREADABLE_LOCK_MS} (an empty lock left by a process killed while taking
   * it, before locks were written whole).
   */
  private async lockIsStale(lockPath: string): Promise<boolean> {
    let st: Awaited<ReturnType<typeof stat>>;
    let text: string;
    try {
      [text, st] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    } catch {
      return false; // released between our attempt and this read: just retry
    }
    const age = Date.now() - st.mtimeMs;
    if (age > this.opts.lockStaleMs) return true;
    let info: { pid?: number; host?: string };
    try {
      info = JSON.parse(text) as { pid?: number; host?: string };
    } catch {
      return age > UNREADABLE_LOCK_MS;
    }
    if (info.host !== hostname() || typeof info.pid !== 'number') return false;
    try {
      process.kill(info.pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}

/** Absolute, symlinks resolved where the path exists (so an allowed root cannot be escaped through a link). */
function canonical(p: string): string {
  const abs = path.resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

const SHA_RE = /^[0-9a-f]{4,40}$/i;

/** Revisions come from event payloads: one starting with '-' would be read by git as an option. */
function rev(r: string): string {
  if (!r || r.startsWith('-')) throw new StageError(`invalid revision ${JSON.stringify(r)}`, { retriable: false, name: 'InvalidRevision' });
  return r;
}

/** Read access to one bare mirror. All methods are read-only and safe to call concurrently. */
export class Mirror {
  constructor(readonly repo: string, readonly path: string, private readonly timeoutMs = 120_000) {}

  /** Run any git command against this mirror (read-only use expected). */
  git(args: string[], opts: { signal?: AbortSignal; maxBuffer?: number } = {}): Promise<string> {
    return git(args, { gitDir: this.path, timeoutMs: this.timeoutMs, ...opts });
  }

  /** The full sha of `rev` as a commit, or null when it does not resolve to a commit. */
  async resolve(rev: string): Promise<string | null> {
    try {
      return (await this.git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`])).trim() || null;
    } catch (err) {
      if (err instanceof GitError && (err.exitCode === 1 || err.exitCode === 128)) return null;
      throw err;
    }
  }

  /** Whether `sha` names a commit present in the mirror. */
  async commitExists(sha: string): Promise<boolean> {
    if (!SHA_RE.test(sha)) return false;
    return (await this.resolve(sha)) !== null;
  }

  /** The subset of `shas` that are not commits in this mirror. */
  async missing(shas: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const s of shas) if (!(await this.commitExists(s))) out.push(s);
    return out;
  }

  /** Parent shas of a commit, first parent first. @throws MissingCommitError when the commit is absent. */
  async parents(commit: string): Promise<string[]> {
    const full = await this.resolve(commit);
    if (!full) throw new MissingCommitError(this.repo, [commit]);
    const line = (await this.git(['rev-list', '--parents', '-n', '1', rev(full)])).trim();
    return line.split(' ').slice(1);
  }

  /** First parent of a commit (the SWE-bench base commit of a merge/squash commit). @throws MissingCommitError when absent or a root commit. */
  async firstParent(commit: string): Promise<string> {
    const ps = await this.parents(commit);
    if (!ps[0]) throw new StageError(`${this.repo}: commit ${commit} is a root commit (no parent)`, { retriable: false, name: 'RootCommit' });
    return ps[0];
  }

  /**
   * Unified diff `parent..commit` with renames detected, default a/ b/ prefixes, no colour, no external
   * diff drivers or textconv (binary files appear as "Binary files … differ").
   */
  async diff(parent: string, commit: string, opts: { signal?: AbortSignal; paths?: string[] } = {}): Promise<string> {
    const args = ['diff', '--no-color', '--no-ext-diff', '--no-textconv', '-M', '--src-prefix=a/', '--dst-prefix=b/', rev(parent), rev(commit)];
    if (opts.paths?.length) args.push('--', ...opts.paths);
    return this.git(args, { signal: opts.signal });
  }

  /** Per-file added/removed line counts `parent..commit` (cheap: no patch text), renames detected. */
  async numstat(parent: string, commit: string, opts: { signal?: AbortSignal } = {}): Promise<NumstatEntry[]> {
    const out = await this.git(['diff', '--numstat', '-z', '-M', '--no-ext-diff', '--no-textconv', rev(parent), rev(commit)], opts);
    // -z format: "add\tdel\tpath\0" or, for renames, "add\tdel\t\0old\0new\0".
    const parts = out.split('\0');
    const entries: NumstatEntry[] = [];
    for (let i = 0; i < parts.length; i++) {
      const head = parts[i]!;
      if (!head) continue;
      const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(head);
      if (!m) continue;
      const binary = m[1] === '-';
      let p = m[3]!;
      let oldPath: string | null = null;
      if (p === '') {
        oldPath = parts[++i] ?? '';
        p = parts[++i] ?? '';
      }
      entries.push({ path: p, oldPath, additions: binary ? 0 : Number(m[1]), deletions: binary ? 0 : Number(m[2]), binary });
    }
    return entries;
  }

  /** Content of `path` at `commit` as utf-8, or null when the path does not exist there. @throws MissingCommitError for an absent commit. */
  async showFile(commit: string, filePath: string): Promise<string | null> {
    try {
      return await this.git(['show', `${rev(commit)}:${filePath}`]);
    } catch (err) {
      if (err instanceof GitError && /does not exist in|exists on disk, but not in/.test(err.stderr)) return null;
      if (err instanceof GitError && !err.retriable) throw new MissingCommitError(this.repo, [commit]);
      throw err;
    }
  }

  /** Every file path in the tree of `commit` (recursive, no directories). @throws MissingCommitError. */
  async listFiles(commit: string): Promise<string[]> {
    try {
      const out = await this.git(['ls-tree', '-r', '-z', '--name-only', '--full-tree', rev(commit)]);
      return out.split('\0').filter(Boolean);
    } catch (err) {
      if (err instanceof GitError && !err.retriable) throw new MissingCommitError(this.repo, [commit]);
      throw err;
    }
  }

  /** The tree of `commit` as a tar archive in memory. For large trees prefer {@link archiveStream}. */
  async archive(commit: string, opts: { prefix?: string; signal?: AbortSignal } = {}): Promise<Buffer> {
    const args = ['archive', '--format=tar'];
    if (opts.prefix) args.push(`--prefix=${opts.prefix}`);
    args.push(rev(commit));
    try {
      return await git(args, { gitDir: this.path, timeoutMs: this.timeoutMs, signal: opts.signal, binary: true });
    } catch (err) {
      if (err instanceof GitError && !err.retriable) throw new MissingCommitError(this.repo, [commit]);
      throw err;
    }
  }

  /** The tree of `commit` as a tar stream; `done` rejects with a GitError if git fails. @throws StageError (InvalidRevision) at once for an option-shaped revision. */
  archiveStream(commit: string, opts: { prefix?: string; signal?: AbortSignal } = {}): { stdout: Readable; done: Promise<void> } {
    const args = ['archive', '--format=tar'];
    if (opts.prefix) args.push(`--prefix=${opts.prefix}`);
    args.push(rev(commit));
    return gitStream(args, { gitDir: this.path, signal: opts.signal });
  }

  /**
   * Commits reachable from `range` (a revision, or a range `a..b`), newest first.
   * @param opts.firstParent follow only first parents (the mainline of merges)
   * @param opts.max at most this many commits; `since` an ISO date (git `--since`)
   */
  async log(range: string, opts: { firstParent?: boolean; max?: number; since?: string; signal?: AbortSignal } = {}): Promise<CommitInfo[]> {
    const args = ['log', '--no-color', '--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cI%x00%B%x1e'];
    if (opts.firstParent) args.push('--first-parent');
    if (opts.max !== undefined) args.push(`--max-count=${opts.max}`);
    if (opts.since) args.push(`--since=${opts.since}`);
    args.push(rev(range), '--');
    const out = await this.git(args, { signal: opts.signal });
    return parseLog(out);
  }

  /** `refs/pull/<N>/head` → sha for every PR head the mirror has. */
  async pullHeads(): Promise<Map<number, string>> {
    const out = await this.git(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/pull/']);
    const map = new Map<number, string>();
    for (const line of out.split('\n')) {
      const m = /^([0-9a-f]{40}) refs\/pull\/(\d+)\/head$/.exec(line);
      if (m) map.set(Number(m[2]), m[1]!);
    }
    return map;
  }

  /** The branch HEAD points to (e.g. `main`), or null for a detached/empty HEAD. */
  async defaultBranch(): Promise<string | null> {
    try {
      return (await this.git(['symbolic-ref', '--short', 'HEAD'])).trim() || null;
    } catch {
      return null;
    }
  }
}

/** Parse the output of `git log --format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cI%x00%B%x1e`. */
export function parseLog(out: string): CommitInfo[] {
  const commits: CommitInfo[] = [];
  for (const rec of out.split('\x1e')) {
    const r = rec.replace(/^\n+/, '');
    if (!r) continue;
    const [sha, parents, an, ae, ad, cd, ...msg] = r.split('\0');
    if (!sha || !/^[0-9a-f]{40}$/.test(sha)) continue;
    const message = msg.join('\0').replace(/\s+$/, '');
    const nl = message.indexOf('\n');
    const subject = (nl === -1 ? message : message.slice(0, nl)).trim();
    const body = nl === -1 ? '' : message.slice(nl + 1).trim();
    commits.push({ sha, parents: parents ? parents.split(' ').filter(Boolean) : [], authorName: an ?? '', authorEmail: ae ?? '', authorDate: ad ?? '', committerDate: cd ?? '', subject, body });
  }
  return commits;
}
