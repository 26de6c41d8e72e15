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
 * The image to start for a row: the id after `@` in `image_url` (immutable), else the reference.
 */
export function runnableImage(imageUrl: string, fallbackRef?: string): string {
  const at = imageUrl.lastIndexOf('@');
  if (at > 0 && imageUrl.slice(at + 1).startsWith('sha256:')) return imageUrl.slice(at + 1);
  return imageUrl || fallbackRef || '';
}
