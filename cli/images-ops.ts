/**
 * Portable task images (`swe-stream images push|gc`, ARCHITECTURE.md §8): task images of releasable tasks
 * go to an OCI registry, where released rows reference them by manifest digest; collection removes what no
 * release needs.
 *
 * - push: every releasable task (verified, release check passed, stated, not retired) whose image is not
 *   in the registry yet (or whose local image changed since) is pushed, retried with exponential backoff
 *   when the registry or engine fails. A task whose push still fails keeps its local image and gets no
 *   row: the next push retries it, so a registry that is down delays pushes and never loses an image or a
 *   row. Each push records `task_images` (image_url, unique bytes).
 * - gc: removes local task images of this dataset's tasks (instances in its `tasks` table) that are
 *   neither in a release nor releasable now (release check failed, retired before any release), their
 *   registry manifests when no release references them, and superseded environment images of this
 *   dataset's repositories (all but the newest per repository; the engine refuses to remove one a kept
 *   task image is built on, and such a refusal keeps it). Images of instances or repositories this dataset
 *   does not know are left alone: an engine is often shared by several pipelines. Never anything a release
 *   references.
 */
import type Docker from 'dockerode';
import type { ClickHouse } from '../connectors/sinks/connection.js';
import { insertRows, listReleases, pushedImages, retiredTasks, type TaskImageRow } from '../connectors/dataset/store.js';
import { readSnapshot } from '../connectors/dataset/release.js';
import { isRegistryRef, pushTaskImage, RegistryError, uniqueBytes } from '../operators/harness/task-image.js';
import { logger } from '../streams/log.js';

const log = logger({ component: 'images' });

/** Options of {@link pushImages}. */
export interface PushOptions {
  docker: Docker;
  /** `host:port` of the OCI registry */
  registry: string;
  /** attempts per image; default 5 */
  attempts?: number;
  /** first backoff, ms, doubled per attempt; default 1000 */
  backoffMs?: number;
  /** only these instances (default: every releasable task) */
  instanceIds?: string[];
  now?: () => number;
}

/** What a push did. */
export interface PushResult {
  pushed: TaskImageRow[];
  /** already in the registry with the same local image */
  current: number;
  /** pushes that failed after every attempt (retried on the next push) */
  failed: { instance_id: string; error: string }[];
  /** releasable tasks whose local task image is gone (cannot be pushed from here) */
  missing: string[];
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Push one image with retries. @throws RegistryError after the last attempt */
async function pushWithRetry(o: PushOptions, localRef: string): Promise<{ imageUrl: string }> {
  const attempts = Math.max(1, o.attempts ?? 5);
  for (let i = 1; ; i++) {
    try {
      return await pushTaskImage(o.docker, { localRef, registry: o.registry });
    } catch (e) {
      if (!(e instanceof RegistryError) || !e.retriable || i >= attempts) throw e;
      const wait = (o.backoffMs ?? 1000) * 2 ** (i - 1);
      log.warn({ localRef, attempt: i, waitMs: wait, err: e.message }, 'push failed; retrying');
      await delay(wait);
    }
  }
}

/** Local image id of a reference, or null when absent. */
async function localId(docker: Docker, ref: string): Promise<string | null> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return null;
    throw new RegistryError(`inspecting ${ref} failed: ${(e as Error).message}`, true, { cause: e });
  }
}

/**
 * Push the task images of releasable tasks (see the module comment).
 * @throws ClickHouseStoreError; RegistryError only for engine failures outside a push
 */
export async function pushImages(ch: ClickHouse, o: PushOptions): Promise<PushResult> {
  const now = o.now ?? Date.now;
  const asOf = now();
  const retired = await retiredTasks(ch, asOf);
  const want = o.instanceIds ? new Set(o.instanceIds) : null;
  const rows = (await readSnapshot(ch, { asOfMs: asOf })).filter((r) => !retired.has(r.instance_id) && (!want || want.has(r.instance_id)));
  const have = await pushedImages(ch);
  const out: PushResult = { pushed: [], current: 0, failed: [], missing: [] };
  for (const r of rows) {
    const id = await localId(o.docker, r.task_image_ref);
    const prev = have.get(r.instance_id);
    if (prev && (id === null || prev.local_id === id)) { out.current++; continue; }
    if (id === null) { out.missing.push(r.instance_id); continue; }
    try {
      const { imageUrl } = await pushWithRetry(o, r.task_image_ref);
      const size = await uniqueBytes(o.docker, { taskRef: r.task_image_ref, envImage: r.env_image_id, imageUrl });
      const row: TaskImageRow = { instance_id: r.instance_id, local_ref: r.task_image_ref, local_id: id, image_url: imageUrl, unique_bytes: size.uncompressed, unique_compressed_bytes: size.compressed ?? 0, pushed_ms: now() };
      await insertRows(ch, 'task_images', [row]);
      out.pushed.push(row);
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      log.error({ instance: r.instance_id, err: e.message }, 'push failed after every attempt; the next push retries it');
      out.failed.push({ instance_id: r.instance_id, error: e.message });
    }
  }
  return out;
}

/** What gc removed and kept. */
export interface GcResult {
  removedTaskImages: string[];
  removedEnvImages: string[];
  deletedManifests: string[];
  /** images kept because a release or a releasable task needs them, or the engine refused */
  kept: number;
}

/** Delete a manifest by digest from the registry (the registry must allow deletes). */
async function deleteManifest(imageUrl: string): Promise<boolean> {
  const slash = imageUrl.indexOf('/');
  const at = imageUrl.lastIndexOf('@');
  const host = imageUrl.slice(0, slash);
  const scheme = /^(127\.|localhost)/.test(host) ? 'http' : 'https';
  const res = await fetch(`${scheme}://${host}/v2/${imageUrl.slice(slash + 1, at)}/manifests/${imageUrl.slice(at + 1)}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) });
  return res.ok || res.status === 404;
}

/** Remove one local image; false when the engine refuses (a child image depends on it). */
async function removeLocal(docker: Docker, id: string, force: boolean): Promise<boolean> {
  try {
    await docker.getImage(id).remove({ force });
    return true;
  } catch (e) {
    const s = (e as { statusCode?: number }).statusCode;
    if (s === 404) return true;
    if (s === 409) return false;
    throw new RegistryError(`removing image ${id} failed: ${(e as Error).message}`, true, { cause: e });
  }
}

/**
 * Collect images (see the module comment).
 * @throws ClickHouseStoreError; RegistryError for engine failures
 */
export async function gcImages(ch: ClickHouse, o: { docker: Docker; now?: () => number }): Promise<GcResult> {
  const asOf = (o.now ?? Date.now)();
  const releases = await listReleases(ch);
  const released = new Set(releases.flatMap((r) => r.instance_ids));
  const releasedUrls = new Set(releases.flatMap((r) => r.image_urls));
  const retired = await retiredTasks(ch, asOf);
  // Releasable = verified with the release check passed and not retired (a statement may still come).
  // Aliases differ from column names: ClickHouse would substitute them into the other aggregates.
  const known = (await ch.rows<{ instance_id: string; r_repo: string; r_ok: number }>(`SELECT instance_id, argMax(repo, _version) AS r_repo,
      argMax(gold_resolved = 1 AND empty_resolved = 0, _version) AS r_ok FROM ${ch.database}.tasks GROUP BY instance_id`))
    .map((r) => ({ instance_id: r.instance_id, repo: r.r_repo, ok: Number(r.r_ok) }));
  const knownIds = new Set(known.map((k) => k.instance_id));
  const releasable = new Set(known.filter((k) => k.ok === 1 && !retired.has(k.instance_id)).map((k) => k.instance_id));
  const pushed = await pushedImages(ch);
  const out: GcResult = { removedTaskImages: [], removedEnvImages: [], deletedManifests: [], kept: 0 };
  const images = await o.docker.listImages({ filters: { label: ['swe-stream.instance'] } });
  for (const img of images) {
    const inst = img.Labels?.['swe-stream.instance'] ?? '';
    if (!knownIds.has(inst)) continue; // another pipeline's image
    if (released.has(inst) || releasable.has(inst)) { out.kept++; continue; }
    if (await removeLocal(o.docker, img.Id, true)) out.removedTaskImages.push(`${inst} ${img.Id}`);
    const url = pushed.get(inst)?.image_url;
    if (url && isRegistryRef(url) && !releasedUrls.has(url) && (await deleteManifest(url).catch(() => false))) out.deletedManifests.push(url);
  }
  await gcEnvImages(o.docker, new Set(known.map((k) => k.repo)), out);
  log.info({ removedTaskImages: out.removedTaskImages.length, removedEnvImages: out.removedEnvImages.length, deletedManifests: out.deletedManifests.length, kept: out.kept }, 'images collected');
  return out;
}

/** Superseded environment images: all but the newest per repository; refusals (children) are kept. */
async function gcEnvImages(docker: Docker, repos: Set<string>, out: GcResult): Promise<void> {
  const envs = (await docker.listImages({ filters: { label: ['swe-stream.recipe-hash'] } })).filter((i) => !i.Labels?.['swe-stream.instance'] && repos.has(i.Labels?.['swe-stream.repo'] ?? ''));
  const byRepo = new Map<string, Docker.ImageInfo[]>();
  for (const i of envs) {
    const repo = i.Labels?.['swe-stream.repo'] ?? '';
    byRepo.set(repo, [...(byRepo.get(repo) ?? []), i]);
  }
  for (const list of byRepo.values()) {
    list.sort((a, b) => b.Created - a.Created);
    for (const old of list.slice(1)) {
      if (await removeLocal(docker, old.Id, false)) out.removedEnvImages.push(`${old.RepoTags?.[0] ?? old.Id}`);
      else out.kept++;
    }
  }
}
