-- One row per Trajectory record (schemas/Trajectory.avsc), keyed by trajectory_id
-- (instance_id + model + attempt, deterministic). A replay carries the same content; `_version` =
-- ingested_ms keeps the latest ingest. messages_json is kept verbatim (OpenAI chat format).
CREATE TABLE IF NOT EXISTS {db}.trajectories (
  trajectory_id String,
  instance_id String,
  pr_id String,
  attempt UInt32,
  model String,
  prompt_version String,
  messages_json String,
  final_patch String,
  exit_status String,
  resolved UInt8,
  steps UInt32,
  tokens_in UInt64,
  tokens_out UInt64,
  cost_usd Float64,
  duration_ms UInt64,
  ingested_ms UInt64,
  _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (trajectory_id)
