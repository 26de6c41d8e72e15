/**
 * Running the git CLI: `execFile` (never a shell, so no quoting or injection), a timeout on every
 * call, an AbortSignal, a configuration that ignores the user's and the system's git config (a user's
 * `diff.noprefix` or `log.showSignature` would otherwise change the output we parse), and errors that
 * say whether trying again can help.
 */
import { execFile, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { StageError } from '../../streams/types.js';
import { redact } from '../../streams/log.js';

/** Options for one git invocation. `timeoutMs` defaults to 120 000 ms; `maxBuffer` to 256 MiB. */
export interface GitRunOptions {
  /** working directory or bare repository (passed as `--git-dir` when `gitDir` is set) */
  cwd?: string;
  gitDir?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  maxBuffer?: number;
  /** stdin text */
  input?: string;
  /** extra environment variables (merged over the sanitised process environment) */
  env?: Record<string, string>;
  /** return stdout as a Buffer (for binary output such as `git archive`) */
  binary?: boolean;
}

/**
 * A failed git command. `retriable` is false for conditions that another attempt cannot change
 * (missing object, bad revision, not a repository) and true for everything else (network, timeout,
 * lock contention). `stderr` is redacted: credentials embedded in URLs never reach a log.
 */
export class GitError extends StageError {
  readonly args: string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(message: string, opts: { args: string[]; exitCode: number | null; stderr: string; retriable: boolean; name?: string; cause?: unknown }) {
    super(redact(message), { retriable: opts.retriable, name: opts.name ?? 'GitError', cause: opts.cause });
    this.args = opts.args.map((a) => redact(a));
    this.exitCode = opts.exitCode;
    this.stderr = redact(opts.stderr);
  }
}

/** `https://user:pw@host/x` → `https://***@host/x` anywhere in `s`: URLs may carry tokens and end up in errors. */
export function stripUrlCredentials(s: string): string {
  return redact(s);
}

/** A URL without its userinfo, and the userinfo it carried (percent-decoded), if any. */
export interface SplitUrl {
  /** the URL with `user:password@` removed; unchanged for anything that is not a `scheme://` URL */
  url: string;
  username?: string;
  password?: string;
}

/**
 * Split `https://user:token@host/path` into `https://host/path` and its credentials (RFC 3986 §3.2.1).
 * Local paths and scp-like `user@host:path` addresses are returned unchanged (ssh authenticates by key there).
 */
export function splitUrlCredentials(raw: string): SplitUrl {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]+@/i.test(raw)) return { url: raw };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { url: redact(raw) }; // not parseable: never hand back the userinfo
  }
  const username = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  return { url: u.toString(), username: username || undefined, password: password || undefined };
}

/**
 * Credentials for git over HTTP(S), kept in memory and handed to git per command through the environment
 * (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`, git-config(1) "ENVIRONMENT", git ≥ 2.31) as
 * `http.<url>.extraHeader: Authorization: Basic …`: never in a remote URL, a repository's config, a command
 * line (visible in `ps`) or a record. A header applies to URLs under its prefix (git's `http.<url>.*` matching:
 * same scheme, host and port, path prefix).
 */
export class GitCredentials {
  private readonly entries: Array<{ prefix: string; header: string }> = [];

  /**
   * Send `username:password` (HTTP Basic, RFC 7617) to URLs under `prefix` (a `scheme://host[/path]` URL).
   * A GitHub token works as password with any username (GitHub uses `x-access-token`).
   */
  add(prefix: string, username: string, password: string): this {
    const header = `Authorization: Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    this.entries.push({ prefix: splitUrlCredentials(prefix).url, header });
    return this;
  }

  /** Credentials from the environment: GITHUB_TOKEN for https://github.com/. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): GitCredentials {
    const c = new GitCredentials();
    if (env.GITHUB_TOKEN) c.add('https://github.com/', 'x-access-token', env.GITHUB_TOKEN);
    return c;
  }

  /** Number of prefixes with credentials. */
  get size(): number {
    return this.entries.length;
  }

  /**
   * The environment variables that make git send these credentials, plus `extra` (credentials split from one
   * URL, for this command only). Empty when there is nothing to send.
   */
  env(extra?: SplitUrl): Record<string, string> {
    const all = [...this.entries];
    if (extra?.username !== undefined || extra?.password !== undefined) {
      all.push({ prefix: extra.url, header: `Authorization: Basic ${Buffer.from(`${extra.username ?? ''}:${extra.password ?? ''}`).toString('base64')}` });
    }
    if (all.length === 0) return {};
    const out: Record<string, string> = { GIT_CONFIG_COUNT: String(all.length) };
    all.forEach((e, i) => {
      out[`GIT_CONFIG_KEY_${i}`] = `http.${e.prefix}.extraHeader`;
      out[`GIT_CONFIG_VALUE_${i}`] = e.header;
    });
    return out;
  }
}

/** stderr patterns of git meaning "this object/revision does not exist" (not worth retrying). */
const MISSING_RE = /(unknown revision|bad revision|bad object|not a valid object name|invalid object name|does not exist in|exists on disk, but not in|path .* does not exist|fatal: not a tree object|Not a valid commit name|ambiguous argument)/i;
const NOT_REPO_RE = /(not a git repository|does not appear to be a git repository|Repository not found|repository .* not found|Could not read from remote repository)/i;

/** Classify git stderr: which failures are permanent. */
export function isPermanentGitFailure(stderr: string): boolean {
  return MISSING_RE.test(stderr) || NOT_REPO_RE.test(stderr);
}

/** Is this stderr a "repository does not exist / no access" answer? */
export function isRepoUnavailable(stderr: string): boolean {
  return NOT_REPO_RE.test(stderr);
}

function gitEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    // Deterministic, prompt-free, config-independent output.
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: 'echo',
    SSH_ASKPASS: 'echo',
    LC_ALL: 'C',
    GIT_PAGER: 'cat',
    ...extra,
  };
}

function fullArgs(args: string[], opts: GitRunOptions): string[] {
  const pre = ['-c', 'core.quotepath=off', '-c', 'color.ui=false', '-c', 'advice.detachedHead=false'];
  if (opts.gitDir) pre.push('--git-dir', opts.gitDir);
  return [...pre, ...args];
}

/**
 * Run `git <args>` and return stdout (utf-8 text, or a Buffer with `binary`).
 * @throws GitError — retriable=false when git reports a missing object/revision or no repository;
 *   retriable=true on timeout, abort excluded (an AbortError is re-thrown as retriable=true too, the
 *   runtime decides), network failure or any other non-zero exit.
 */
export function git(args: string[], opts: GitRunOptions & { binary: true }): Promise<Buffer>;
export function git(args: string[], opts?: GitRunOptions): Promise<string>;
export function git(args: string[], opts: GitRunOptions = {}): Promise<string | Buffer> {
  const argv = fullArgs(args, opts);
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      argv,
      {
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
        signal: opts.signal,
        maxBuffer: opts.maxBuffer ?? 256 * 1024 * 1024,
        encoding: opts.binary ? 'buffer' : 'utf8',
        env: gitEnv(opts.env),
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout as string | Buffer);
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string; signal?: string };
        const errText = Buffer.isBuffer(stderr) ? stderr.toString('utf8') : String(stderr ?? '');
        const sub = args.find((a) => !a.startsWith('-')) ?? args[0] ?? '';
        if (e.name === 'AbortError') {
          return reject(new GitError(`git ${sub} aborted`, { args, exitCode: null, stderr: errText, retriable: true, name: 'AbortError', cause: err }));
        }
        if (e.killed || e.signal === 'SIGKILL') {
          return reject(new GitError(`git ${sub} timed out after ${opts.timeoutMs ?? 120_000} ms`, { args, exitCode: null, stderr: errText, retriable: true, name: 'GitTimeout', cause: err }));
        }
        if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
          return reject(new GitError(`git ${sub} output exceeded ${opts.maxBuffer ?? 256 * 1024 * 1024} bytes`, { args, exitCode: null, stderr: errText, retriable: false, name: 'GitOutputTooLarge', cause: err }));
        }
        const code = typeof e.code === 'number' ? e.code : null;
        const first = errText.trim().split('\n').filter(Boolean).slice(-2).join(' | ') || `exit ${String(e.code)}`;
        reject(new GitError(`git ${sub} failed: ${first}`, { args, exitCode: code, stderr: errText, retriable: !isPermanentGitFailure(errText), cause: err }));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * Run git and expose stdout as a stream (for `git archive` of large trees). The returned promise
 * `done` rejects with a GitError like {@link git} does; consumers must read `stdout` to the end.
 */
export function gitStream(args: string[], opts: GitRunOptions = {}): { stdout: Readable; done: Promise<void> } {
  const child = spawn('git', fullArgs(args, opts), { cwd: opts.cwd, env: gitEnv(opts.env), signal: opts.signal, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => { if (stderr.length < 64 * 1024) stderr += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => { clearTimeout(timer); reject(new GitError(`git ${args[0]} could not start: ${err.message}`, { args, exitCode: null, stderr, retriable: true, cause: err })); });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      reject(new GitError(`git ${args[0]} failed (${sig ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`, { args, exitCode: code, stderr, retriable: sig !== null || !isPermanentGitFailure(stderr) }));
    });
  });
  return { stdout: child.stdout, done };
}
