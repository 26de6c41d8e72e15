-- The database every swe-stream table lives in. `{db}` is replaced by the sink's database name
-- (default swe_stream) so tests and several pipelines can share one server without colliding.
-- Portable: ClickHouse 18.16 (Debian's server) and 26.x (chDB) both accept every statement in these files.
CREATE DATABASE IF NOT EXISTS {db}
