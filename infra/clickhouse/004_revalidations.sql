-- One row per re-validation of a released task (swe-stream revalidate, ARCHITECTURE.md §8 "living
-- dataset"): fresh containers from the task image, network off, gold patch and empty patch `runs` times.
-- revalidation_id = instance_id + ':' + started_ms, so a replayed batch keeps one row.
-- outcome: `stable` (gold resolved and empty not, in every run), `not-resolving` (gold failed in some
-- run), `resolves-empty` (the empty patch resolved in some run), `flipped` (a test changed outcome between
-- runs of one patch), `infra-failure` (a container could not start: recorded, never retires the task).
-- retire = 1 for outcomes that retire the task from later releases; the task row itself is never deleted.
-- Times are epoch ms (18.16 has no DateTime64); lists are Array(String)/Array(UInt64).
CREATE TABLE IF NOT EXISTS {db}.revalidations (
  revalidation_id String,
  instance_id String,
  repo String,
  started_ms UInt64,
  runs UInt32,
  outcome String,
  retire UInt8,
  detail String,
  gold_resolved_runs UInt32,
  empty_resolved_runs UInt32,
  flipped_tests Array(String),
  durations_ms Array(UInt64),
  image_url String,
  ingested_ms UInt64
) ENGINE = ReplacingMergeTree(ingested_ms)
ORDER BY (revalidation_id);

-- One row per task image pushed to the OCI registry (swe-stream images push): the pullable reference by
-- manifest digest that released rows carry as image_url, and the bytes the task adds on top of its
-- environment image (layers not shared with it), uncompressed (image size difference) and as stored in the
-- registry (compressed layer sizes from the manifest).
CREATE TABLE IF NOT EXISTS {db}.task_images (
  instance_id String,
  local_ref String,
  local_id String,
  image_url String,
  unique_bytes UInt64,
  unique_compressed_bytes UInt64,
  pushed_ms UInt64
) ENGINE = ReplacingMergeTree(pushed_ms)
ORDER BY (instance_id);

-- One row per release (swe-stream release NAME): the snapshot time it read, its cut-off, the instances it
-- holds with their image_url, so the next release computes CHANGES and `images gc` never removes what a
-- release references.
CREATE TABLE IF NOT EXISTS {db}.releases (
  name String,
  created_ms UInt64,
  as_of_ms UInt64,
  created_after_ms UInt64,
  instance_ids Array(String),
  image_urls Array(String),
  content_hashes Array(String),
  dir String,
  command String
) ENGINE = ReplacingMergeTree(created_ms)
ORDER BY (name)
