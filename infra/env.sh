#!/usr/bin/env bash
# The endpoints the tests use, matching what infra/setup.sh starts.
#   source infra/env.sh   → exports them into the current shell
#   bash infra/env.sh     → prints them as `export` lines (eval "$(bash infra/env.sh)")
# Values already set in the environment win, so tests can be pointed elsewhere.
export SWE_STREAM_KAFKA_BROKERS=${SWE_STREAM_KAFKA_BROKERS:-127.0.0.1:9092}
export SWE_STREAM_REGISTRY_URL=${SWE_STREAM_REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}
export SWE_STREAM_CLICKHOUSE_URL=${SWE_STREAM_CLICKHOUSE_URL:-http://127.0.0.1:8123}
# Development and tests register the schemas when a Kafka bus opens; a production deploy runs
# `swe-stream schemas register` once instead (registry.autoRegister defaults to false).
export SWE_STREAM_REGISTRY_AUTO_REGISTER=${SWE_STREAM_REGISTRY_AUTO_REGISTER:-1}
# dockerode honours DOCKER_HOST when set; otherwise it uses this local socket.
export SWE_STREAM_DOCKER_HOST=${SWE_STREAM_DOCKER_HOST:-${DOCKER_HOST:-unix:///var/run/docker.sock}}
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
# The OCI registry task images are pushed to (infra/oci-registry.sh), host:port.
export SWE_STREAM_OCI_REGISTRY=${SWE_STREAM_OCI_REGISTRY:-127.0.0.1:5000}
# Containers need the host's CA bundle (the network here, and many corporate ones, re-sign TLS).
export SWE_STREAM_CA_BUNDLE=${SWE_STREAM_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  for v in SWE_STREAM_KAFKA_BROKERS SWE_STREAM_REGISTRY_URL SWE_STREAM_REGISTRY_AUTO_REGISTER SWE_STREAM_CLICKHOUSE_URL \
    SWE_STREAM_DOCKER_HOST CHROMIUM_PATH SWE_STREAM_CA_BUNDLE SWE_STREAM_OCI_REGISTRY; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
fi
