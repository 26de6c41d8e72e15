#!/usr/bin/env bash
# ClickHouse server from Debian's clickhouse-server package (an old 18.16 line; the embedded
# default is chdb), HTTP interface only on 127.0.0.1:8123, data under the state folder.
# Run as a plain background process: there is no systemd here, and the package's own
# config would write to /var/lib and /var/log and open 9000/9009 we do not need.
# Usage: infra/clickhouse.sh start|stop|status
source "$(dirname "$0")/lib.sh"

URL=http://127.0.0.1:8123
DIR=$STATE/clickhouse

ready() { [[ $(curl -fs --max-time 2 "$URL/?query=SELECT%201") == 1 ]]; }

write_config() {
  mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas"
  # No tcp_port/interserver port: @clickhouse/client speaks HTTP only, and 9000 is a popular port.
  # Caches are small: this is a test server on a 2-core machine, not a warehouse.
  cat >"$DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$DIR/server.log</log><errorlog>$DIR/server.err.log</errorlog><size>50M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>8123</http_port>
  <path>$DIR/data/</path>
  <tmp_path>$DIR/tmp/</tmp_path>
  <user_files_path>$DIR/user_files/</user_files_path>
  <format_schema_path>$DIR/format_schemas/</format_schema_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
}

start() {
  ready && { say "already running at $URL"; return 0; }
  if ! pid_alive clickhouse; then
    apt_ensure clickhouse-server clickhouse-server
    write_config
    spawn clickhouse clickhouse-server --config-file="$DIR/config.xml"
  fi
  wait_ready clickhouse 60 ready
  say "ready at $URL ($(curl -fs "$URL/?query=SELECT%20version()"))"
}

case ${1:-} in
  start) start ;;
  stop) stop_pid clickhouse 30 ;;
  status) if ready; then say "running at $URL"; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
