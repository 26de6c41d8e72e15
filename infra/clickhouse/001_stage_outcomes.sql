-- One row per StageOutcome record (schemas/StageOutcome.avsc), keyed by outcome_id.
-- outcome_id = sha256(stage, key, input content), identical on replay, so ReplacingMergeTree keeps one
-- row per input; `_version` = ts_ms * 1024 + min(attempts, 1023) makes the latest outcome win
-- (ties on ts_ms broken by the higher attempt). Reads use FINAL or argMax(…, _version).
-- Types: booleans are Nullable(UInt8) (18.16 has no Bool), times are epoch milliseconds in UInt64
-- (18.16 has no DateTime64), no LowCardinality (experimental behind a setting in 18.16).
CREATE TABLE IF NOT EXISTS {db}.stage_outcomes (
  outcome_id String,
  stage String,
  key String,
  kind String,
  reason Nullable(String),
  detail Nullable(String),
  error_class Nullable(String),
  retriable Nullable(UInt8),
  attempts UInt32,
  input_topic String,
  input_partition Int32,
  input_offset String,
  output_topic Nullable(String),
  ts_ms UInt64,
  duration_ms UInt64,
  repo Nullable(String),
  language Nullable(String),
  method Nullable(String),
  model Nullable(String),
  cache_hit Nullable(UInt8),
  tokens_in UInt64,
  tokens_out UInt64,
  cost_usd Float64,
  ingested_ms UInt64,
  _version UInt64
) ENGINE = ReplacingMergeTree(_version)
ORDER BY (outcome_id)
