/**
 * The task image (ARCHITECTURE.md §6 "Images"): the environment image plus a checkout of the PR's parent
 * commit with every later commit removed from the repository — all refs but one branch at the parent
 * deleted, remotes dropped, reflogs expired, unreachable objects pruned — so neither a solver nor a
 * leaked `git log --all` can read the fix. `image_url` is `<ref>@<image id>` (local images have no
 * registry digest; the id is the content address `docker image inspect` reports), as Scale-SWE rows carry
 * an `image_url` with `workdir` and `pre_commands`.
 */
import type { Sandbox, SandboxFactory } from '../sandbox/types.js';
import { StageError } from '../../streams/types.js';
import { prepareCheckout, SCRATCH } from './runs.js';
import { shq } from '../runners/util.js';
import { logger } from '../../streams/log.js';
import type Docker from 'dockerode';

const log = logger({ component: 'task-image' });

/** What identifies and locates a task image. */
export interface TaskImage {
  /** repository:tag, e.g. swe-stream/task-iamkun__dayjs-2532:1a2b3c4d5e6f */
  ref: string;
  /** sha256:… image id */
  imageId: string;
  /** `${ref}@${imageId}` */
  imageUrl: string;
}

export interface TaskImageOptions {
  sandboxes: SandboxFactory;
  /** environment image to start from (ref or id) */
  environmentImage: string;
  workdir: string;
  /** the PR's parent commit (SWE-bench base_commit) */
  parentCommit: string;
  /** owner__repo-N */
  instanceId: string;
  /** image repository prefix; default swe-stream/task */
  prefix?: string;
  /** branch left at the parent commit; default main */
  branch?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Docker repository names are lowercase [a-z0-9._-] with separators; instance ids may carry capitals. */
export function taskImageRef(prefix: string, instanceId: string, parentCommit: string): string {
  const name = instanceId.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');
  return `${prefix}-${name}:${parentCommit.slice(0, 12)}`;
}

/**
 * The shell script that strips history after `parent` from the repository in the current directory.
 * `git gc --prune=now` drops unreachable objects once no ref, reflog, stash or remote-tracking ref points
 * past the parent; an alternates file would keep foreign objects readable, so objects are repacked
 * locally first and the file removed.
 */
export function stripHistoryScript(parent: string, branch: string): string {
  const p = shq(parent);
  return [
    'set -e',
    `git checkout -q -f --detach ${p}`,
    `git repack -a -d -q`,
    `rm -f .git/objects/info/alternates .git/shallow.lock`,
    `git for-each-ref --format='%(refname)' | while IFS= read -r r; do git update-ref -d "$r"; done`,
    `for r in $(git remote); do git remote remove "$r"; done`,
    `git checkout -q -B ${shq(branch)} ${p}`,
    `rm -f .git/ORIG_HEAD .git/FETCH_HEAD .git/MERGE_HEAD .git/CHERRY_PICK_HEAD .git/packed-refs.lock`,
    `git reflog expire --expire=now --all`,
    `git stash clear || true`,
    `git gc -q --prune=now`,
    `git count-objects -v >/dev/null`,
    `rm -rf ${SCRATCH}`,
  ].join('\n');
}

/**
 * Turn a running container of the environment image into the task state: pin and strip the checkout
 * (the environment's own edits of tracked files are kept). Separate from {@link commitTaskImage} so the
 * verify stage can prepare it while tests run and commit it only for an accepted task.
 * @throws StageError (retriable=false) when the parent commit is missing or history cannot be stripped
 */
export async function stripToTask(sb: Sandbox, opts: Pick<TaskImageOptions, 'workdir' | 'parentCommit' | 'branch' | 'timeoutMs' | 'signal'>): Promise<void> {
  await prepareCheckout(sb, opts.workdir, opts.parentCommit, opts.signal);
  const r = await sb.exec([
    'set -e',
    `cp ${SCRATCH}/baseline.patch /tmp/swe-stream-baseline.patch`,
    stripHistoryScript(opts.parentCommit, opts.branch ?? 'main'),
    `if [ -s /tmp/swe-stream-baseline.patch ]; then git apply --whitespace=nowarn /tmp/swe-stream-baseline.patch; fi`,
    `rm -f /tmp/swe-stream-baseline.patch`,
  ].join('\n'), { timeoutMs: opts.timeoutMs ?? 600_000, cwd: opts.workdir, signal: opts.signal });
  if (r.exitCode !== 0) {
    throw new StageError(`stripping history after ${opts.parentCommit} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).slice(-500)}`, { retriable: r.timedOut, name: 'TaskImageError' });
  }
}

/** Commit a container prepared by {@link stripToTask} as the task image. */
export async function commitTaskImage(sb: Sandbox, opts: Pick<TaskImageOptions, 'prefix' | 'instanceId' | 'parentCommit'>): Promise<TaskImage> {
  const ref = taskImageRef(opts.prefix ?? 'swe-stream/task', opts.instanceId, opts.parentCommit);
  const { imageId } = await sb.commit(ref, { 'swe-stream.instance': opts.instanceId, 'swe-stream.parent': opts.parentCommit });
  log.info({ ref, imageId, instance: opts.instanceId }, 'task image committed');
  return { ref, imageId, imageUrl: `${ref}@${imageId}` };
}

/**
 * Build the task image: start the environment image (network off), {@link stripToTask}, commit, remove
 * the container.
 * @throws StageError (retriable=false) when the parent commit is missing or history cannot be stripped;
 *         SandboxError from the engine (retriable as it says)
 */
export async function buildTaskImage(opts: TaskImageOptions): Promise<TaskImage> {
  const sb = await opts.sandboxes.create({ image: opts.environmentImage, network: false, workdir: opts.workdir, labels: { 'swe-stream.stage': 'verify', 'swe-stream.task': opts.instanceId }, signal: opts.signal });
  try {
    await stripToTask(sb, opts);
    return await commitTaskImage(sb, opts);
  } finally {
    await sb.destroy();
  }
}

/**
 * Whether an image reference names a registry (its first path component has a `.` or `:`, or is
 * `localhost` — Docker's rule in distribution/reference `splitDockerDomain`).
 */
export function isRegistryRef(ref: string): boolean {
  const slash = ref.indexOf('/');
  if (slash < 0) return false;
  const first = ref.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/**
 * The image to start for a row. A registry reference by digest (`host:port/repo@sha256:…`, what released
 * rows carry) is used as it is (pulled by {@link pullImage} when absent); a local one (`repo:tag@<image
 * id>`, what verify writes) starts from the image id after `@` (immutable); else the reference.
 */
export function runnableImage(imageUrl: string, fallbackRef?: string): string {
  if (isRegistryRef(imageUrl)) return imageUrl;
  const at = imageUrl.lastIndexOf('@');
  if (at > 0 && imageUrl.slice(at + 1).startsWith('sha256:')) return imageUrl.slice(at + 1);
  return imageUrl || fallbackRef || '';
}

/** A push or pull that failed; `retriable` unless the engine said the image does not exist. */
export class RegistryError extends Error {
  constructor(message: string, readonly retriable: boolean, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'RegistryError';
  }
}

/** Follow an engine progress stream to its end; an `error` event rejects. Returns the events. */
async function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolvePromise, rejectPromise) => {
    const events: Array<Record<string, unknown>> = [];
    docker.modem.followProgress(stream, (err: Error | null) => {
      const bad = events.find((e) => e.error || e.errorDetail);
      if (err) rejectPromise(err);
      else if (bad) rejectPromise(new Error(String(bad.error ?? JSON.stringify(bad.errorDetail))));
      else resolvePromise(events);
    }, (e: Record<string, unknown>) => events.push(e));
  });
}

/** The registry repository of a task image: `<registry>/<local repository>` (the tag is kept). */
export function registryRepository(registry: string, localRef: string): { repository: string; tag: string } {
  const colon = localRef.lastIndexOf(':');
  const hasTag = colon > localRef.lastIndexOf('/');
  return { repository: `${registry.replace(/\/$/, '')}/${hasTag ? localRef.slice(0, colon) : localRef}`, tag: hasTag ? localRef.slice(colon + 1) : 'latest' };
}

/**
 * Push a local task image to an OCI registry (Docker registry HTTP API v2 through the engine).
 * @param registry `host:port`, e.g. 127.0.0.1:5000 (loopback registries need no TLS)
 * @returns `image_url` = `<registry>/<repository>@sha256:<manifest digest>` — pullable anywhere
 * @throws RegistryError (retriable) when the registry or engine fails; (not retriable) when the local image is absent
 */
export async function pushTaskImage(docker: Docker, o: { localRef: string; registry: string }): Promise<{ imageUrl: string; digest: string }> {
  const { repository, tag } = registryRepository(o.registry, o.localRef);
  try {
    await docker.getImage(o.localRef).tag({ repo: repository, tag });
  } catch (e) {
    const status = (e as { statusCode?: number }).statusCode;
    throw new RegistryError(`tagging ${o.localRef} as ${repository}:${tag} failed: ${(e as Error).message}`, status !== 404, { cause: e });
  }
  try {
    const stream = await docker.getImage(`${repository}:${tag}`).push({ tag, authconfig: {} });
    const events = await follow(docker, stream as unknown as NodeJS.ReadableStream);
    const aux = events.map((e) => e.aux as { Digest?: string } | undefined).find((a) => a?.Digest);
    const digest = aux?.Digest ?? /digest: (sha256:[0-9a-f]{64})/.exec(events.map((e) => String(e.status ?? '')).join('\n'))?.[1];
    if (!digest) throw new Error('the engine reported no manifest digest');
    log.info({ localRef: o.localRef, repository, digest }, 'task image pushed');
    return { imageUrl: `${repository}@${digest}`, digest };
  } catch (e) {
    throw new RegistryError(`pushing ${repository}:${tag} failed: ${(e as Error).message}`, true, { cause: e });
  }
}

/**
 * Pull an image by reference (a registry reference by digest) unless the engine has it.
 * @returns the local image id
 * @throws RegistryError (retriable) when the pull fails
 */
export async function pullImage(docker: Docker, ref: string): Promise<string> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 404) throw new RegistryError(`inspecting ${ref} failed: ${(e as Error).message}`, true, { cause: e });
  }
  try {
    const stream = await docker.pull(ref, { authconfig: {} });
    await follow(docker, stream as unknown as NodeJS.ReadableStream);
    const id = (await docker.getImage(ref).inspect()).Id;
    log.info({ ref, id }, 'image pulled');
    return id;
  } catch (e) {
    throw new RegistryError(`pulling ${ref} failed: ${(e as Error).message}`, true, { cause: e });
  }
}

/**
 * Bytes a task image adds on top of its environment image: uncompressed (image size difference, as
 * `docker image inspect` reports sizes) and compressed in the registry (the manifest's sizes of the layers
 * beyond the environment image's layer count — the task image is the environment image plus its commit).
 * `compressed` is null when the manifest cannot be read.
 */
export async function uniqueBytes(docker: Docker, o: { taskRef: string; envImage: string; imageUrl?: string }): Promise<{ uncompressed: number; compressed: number | null }> {
  const task = await docker.getImage(o.taskRef).inspect();
  let env: Docker.ImageInspectInfo | null = null;
  try {
    env = await docker.getImage(o.envImage).inspect();
  } catch {
    env = null; // an env image already collected: the task's own layer is then all we can tell apart
  }
  const envLayers = env?.RootFS?.Layers?.length ?? Math.max(0, (task.RootFS?.Layers?.length ?? 1) - 1);
  const uncompressed = Math.max(0, task.Size - (env?.Size ?? 0));
  let compressed: number | null = null;
  if (o.imageUrl && isRegistryRef(o.imageUrl)) {
    const m = await registryManifest(o.imageUrl).catch(() => null);
    if (m) compressed = m.layers.slice(envLayers).reduce((s, l) => s + l.size, 0);
  }
  return { uncompressed: env ? uncompressed : task.Size, compressed };
}

/** Registry v2 manifest of `host/repo@digest` (schema 2 or OCI). Plain HTTP for loopback hosts, HTTPS otherwise. */
export async function registryManifest(imageUrl: string): Promise<{ layers: { digest: string; size: number }[] }> {
  const slash = imageUrl.indexOf('/');
  const host = imageUrl.slice(0, slash);
  const at = imageUrl.lastIndexOf('@');
  const repo = imageUrl.slice(slash + 1, at);
  const scheme = /^(127\.|localhost)/.test(host) ? 'http' : 'https';
  const res = await fetch(`${scheme}://${host}/v2/${repo}/manifests/${imageUrl.slice(at + 1)}`, {
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new RegistryError(`manifest ${imageUrl}: HTTP ${res.status}`, res.status >= 500);
  return (await res.json()) as { layers: { digest: string; size: number }[] };
}
