/**
 * The sandbox contract every stage uses to run repository code (ARCHITECTURE.md §6). Implemented on a
 * Docker engine by operators/sandbox/docker.ts. All sizes in bytes, all durations in ms.
 */

const GiB = 1024 ** 3;

/**
 * The one statement of each sandbox default (the `sandbox` section of cli/config.ts uses these as its zod
 * defaults; the Docker factory and the stages fall back to the same values when a caller leaves one out).
 * Sizes in bytes, durations in ms.
 */
export const SANDBOX_DEFAULTS = {
  /** memory of one container, swap included */
  memoryBytes: 4 * GiB,
  /** CPUs of one container (Docker NanoCpus = cpus × 1e9) */
  cpus: 2,
  /** processes and threads of one container */
  pidsLimit: 1024,
  /** writable-layer size of one container, where the storage driver can enforce one */
  diskBytes: 20 * GiB,
  /** one install command of an environment build */
  installTimeoutMs: 20 * 60_000,
  /** one test run (a suite run of env-build, a run of verify, evaluate and revalidate) */
  testTimeoutMs: 10 * 60_000,
} as const;

/** Result of one command in a sandbox. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** true when the command was killed by its timeout (exitCode is then 124) */
  timedOut: boolean;
  /** true when stdout or stderr hit maxOutputBytes and was cut (the tail is kept) */
  truncated: boolean;
}

export interface ExecOptions {
  /** Hard limit; the command's process group is killed at the deadline. Required: every command has a timeout. */
  timeoutMs: number;
  cwd?: string;
  env?: Record<string, string>;
  /** Cap per stream; default 1 MiB. */
  maxOutputBytes?: number;
  signal?: AbortSignal;
}

export interface CreateOptions {
  image: string;
  /** Network on (installs) or off (test runs). Can be turned off later with {@link Sandbox.disconnectNetwork}. */
  network: boolean;
  labels?: Record<string, string>;
  memoryBytes?: number;
  nanoCpus?: number;
  pidsLimit?: number;
  workdir?: string;
  signal?: AbortSignal;
}

/** One running container. Every method throws SandboxError (with `retriable`) on engine failures. */
export interface Sandbox {
  readonly id: string;
  /** Run `bash -lc <script>`. Never throws for a non-zero exit; throws only when the engine fails. */
  exec(script: string, opts: ExecOptions): Promise<ExecResult>;
  writeFile(path: string, content: string | Buffer, mode?: number): Promise<void>;
  /** @throws SandboxError (retriable=false) when the file does not exist */
  readFile(path: string): Promise<Buffer>;
  /** Cut the container off every network (after installs, before tests). */
  disconnectNetwork(): Promise<void>;
  /** `docker commit` into `ref` (repo:tag); returns the image id (sha256:…). */
  commit(ref: string, labels?: Record<string, string>): Promise<{ ref: string; imageId: string }>;
  /** Kill and remove; idempotent. */
  destroy(): Promise<void>;
}

export interface SandboxFactory {
  create(opts: CreateOptions): Promise<Sandbox>;
  /** Image id (sha256:…) of a local image, or null when absent. */
  imageId(ref: string): Promise<string | null>;
  /** Labels of a local image (set by {@link Sandbox.commit}), or null when the image is absent. Optional: env-build's cache reads build facts from them. */
  imageLabels?(ref: string): Promise<Record<string, string> | null>;
  /** Remove a local image; absent is not an error. Optional: env-build drops images of rejected environments. */
  removeImage?(ref: string): Promise<void>;
  /**
   * Ensure the offline base image for a language exists (built by debootstrap + docker import when missing);
   * returns its ref. `toolchain.python` picks the interpreter (3.9, 3.11 or 3.13; default 3.11).
   * @throws RangeError for a Python version no base image provides
   */
  baseImage(language: 'python' | 'javascript' | 'typescript', toolchain?: { python?: string | null }): Promise<string>;
  /** Remove containers labelled by swe-stream that are left from crashed runs. Returns how many were removed. */
  sweep(): Promise<number>;
}

/** Engine or sandbox failure. */
export class SandboxError extends Error {
  constructor(message: string, readonly retriable: boolean, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'SandboxError';
  }
}
