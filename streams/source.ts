/**
 * The engine's source contract: how records enter the bus. A source turns one origin (files, an HTTP API,
 * webhook deliveries, a repository's history) into an ordered stream of items; the source runner
 * (./source-runner.ts) writes `event` items to the topic it was given, keyed by the key function it was
 * given, counts `skipped` items, dead-letters `bad` items with their origin, and persists the last `cursor`
 * it has made durable so a restart resumes there. The engine never looks inside an event.
 */

/** One item from a source; `T` is the record type of the topic the runner writes to. */
export type SourceItem<T> =
  /** An event. `ack()`, when present, is called by the runner once the record is durably on the bus (a webhook answers 202 only then). */
  | { kind: 'event'; event: T; cursor?: string; ack?: () => void }
  /**
   * Something that is not an event of interest (other event types, pings): counted, never an error. `count`
   * (default 1) lets a source fold a run of skipped inputs into one item (GH Archive: ~95% of lines).
   */
  | { kind: 'skipped'; reason: string; count?: number; cursor?: string }
  /** Malformed input (corrupt gzip, bad JSON line, missing fields): dead-lettered with `origin` (e.g. `file:line`). */
  | { kind: 'bad'; reason: string; detail: string; origin: string; raw?: Buffer; cursor?: string };

/** A source of records of type `T`. */
export interface Source<T> {
  /** The URI it was opened with (credentials never included). */
  readonly uri: string;
  /**
   * Items in order. With follow=false it completes when exhausted; with follow=true it keeps
   * polling/listening until signal aborts. `cursor` = resume point stored by the runner (string,
   * source-defined). Aborting ends the iteration without an error.
   */
  items(opts: { signal: AbortSignal; follow: boolean; cursor?: string }): AsyncIterable<SourceItem<T>>;
}

/** Where a source runner writes: the topic, its dead-letter topic and the record key of an event. */
export interface SourceTarget<T> {
  topic: string;
  dlqTopic: string;
  keyOf(event: T): string;
}
