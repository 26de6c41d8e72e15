/**
 * The source contract: how pull-request events enter swe-stream. A source turns one origin (GH Archive
 * files, the GitHub REST API, webhook deliveries, git history) into an ordered stream of items; the
 * runner (streams/runner, owned by the lead) writes `event` items into the pr.events topic keyed by
 * `pr_id` (`owner/repo#N`), counts `skipped` items, dead-letters `bad` items with their origin, and
 * persists the last `cursor` it has made durable so a restart resumes there.
 */
import type { PullRequestEvent } from '../../schemas/types.gen.js';
import type { MirrorCache } from '../../operators/git/mirror.js';

export type { PullRequestEvent };

/** One item from a source. */
export type SourceItem =
  /** A PR event. `ack()`, when present, must be called by the runner once the record is durably in pr.events (webhook answers 202 only then). */
  | { kind: 'event'; event: PullRequestEvent; cursor?: string; ack?: () => void }
  /** Something that is not a PR event (other GH Archive event types, pings): counted, never an error. */
  | { kind: 'skipped'; reason: string; cursor?: string }
  /** Malformed input (corrupt gzip, bad JSON line, event missing required fields): the runner dead-letters it with `origin` (e.g. `file:line`). */
  | { kind: 'bad'; reason: string; detail: string; origin: string; raw?: Buffer; cursor?: string };

/** A source of PR events. */
export interface Source {
  /** The URI it was opened with (credentials never included). */
  readonly uri: string;
  /**
   * Items in order. With follow=false it completes when exhausted; with follow=true it keeps
   * polling/listening until signal aborts. `cursor` = resume point stored by the runner (string,
   * source-defined). Aborting ends the iteration without an error.
   */
  items(opts: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncIterable<SourceItem>;
}

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
