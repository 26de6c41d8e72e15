-- requires-merge-tree-setting: non_replicated_deduplication_window
-- Block-level insert deduplication for non-replicated tables (ClickHouse ≥ 20.6, so chDB but not the
-- 18.16 server): a retried batch carrying the same insert_deduplication_token is dropped by the server
-- instead of written twice. Applied only where the server lists the setting in
-- system.merge_tree_settings; elsewhere ReplacingMergeTree + FINAL/argMax keeps reads exact.
-- Source: ClickHouse docs, "Deduplicating Inserts on Retries" and MergeTree settings.
ALTER TABLE {db}.stage_outcomes MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {db}.tasks MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {db}.trajectories MODIFY SETTING non_replicated_deduplication_window = 1000
