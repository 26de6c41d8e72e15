-- One row per PR (schemas/PullRequestEvent.avsc, topic pr.events), keyed by pr_id: the latest event seen
-- wins (`_version` = ingested_ms). It gives the report what stage outcomes do not carry: when a PR was merged
-- (merged_ms, epoch ms, 0 when the event has no merge time) and how it was found (merge_style), so yield is
-- counted by merge date rather than by the day the pipeline happened to read the event.
CREATE TABLE IF NOT EXISTS {db}.pr_events (
  pr_id String,
  repo String,
  number Int32,
  source String,
  merged Nullable(UInt8),
  merged_at Nullable(String),
  merged_ms UInt64,
  merge_style Nullable(String),
  base_ref Nullable(String),
  ingested_ms UInt64,
  _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (pr_id)
