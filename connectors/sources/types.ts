/**
 * The source contract: how pull-request events enter swe-stream. A source turns one origin (GH Archive
 * files, the GitHub REST API, webhook deliveries, git history) into an ordered stream of items; the
 * engine's source runner (streams/source-runner.ts) writes `event` items into the pr.events topic keyed by
 * `pr_id` (`owner/repo#N`), counts `skipped` items, dead-letters `bad` items with their origin, and
 * persists the last `cursor` it has made durable so a restart resumes there.
 */
import type { PullRequestEvent } from '../../schemas/types.gen.js';
import type { MirrorCache } from '../../operators/pr/mirror.js';
import type { Source as GenericSource, SourceItem as GenericSourceItem, SourceTarget } from '../../streams/source.js';

export type { PullRequestEvent };

/** One item from a PR-event source (the engine's {@link GenericSourceItem} over PullRequestEvent). */
export type SourceItem = GenericSourceItem<PullRequestEvent>;

/** A source of PR events. */
export type Source = GenericSource<PullRequestEvent>;

/** Dependencies and settings shared by all sources (see openSource in ./index.ts). */
export interface SourceOptions {
  /** the data directory (mirrors, caches) */
  dataDir: string;
  /** GitHub token for the REST API (from GITHUB_TOKEN); never logged */
  githubToken?: string;
  /** shared secret of webhook deliveries (X-Hub-Signature-256) */
  webhookSecret?: string;
  /** the repository mirror cache (git sources clone remote URLs through it) */
  mirrors: MirrorCache;
}

/** Where PR-event sources write: pr.events keyed by `pr_id` (`owner/repo#N`), bad input to pr.events.dlq. */
export const PR_EVENTS_TARGET: SourceTarget<PullRequestEvent> = {
  topic: 'pr.events',
  dlqTopic: 'pr.events.dlq',
  keyOf: (e) => e.pr_id,
};
