#!/usr/bin/env bash
# OCI registry for task images: Debian's docker-registry (the CNCF distribution registry 2.8), run as
# `docker-registry serve CONFIG` in the background on 127.0.0.1:5000, blobs under the state folder.
# A Docker engine pushes to 127.0.0.1:5000/... without TLS (loopback registries are trusted by default);
# released rows carry `127.0.0.1:5000/<repo>@sha256:<manifest digest>` as image_url.
# Deletes are enabled so `swe-stream images gc` can remove unreleased task images by digest.
# Usage: infra/oci-registry.sh start|stop|status
source "$(dirname "$0")/lib.sh"

ADDR=${SWE_STREAM_OCI_REGISTRY:-127.0.0.1:5000}
URL=http://$ADDR
DIR=$STATE/oci-registry

ready() { curl -fs -o /dev/null --max-time 2 "$URL/v2/"; }

write_config() {
  mkdir -p "$DIR/data"
  cat >"$DIR/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: true
      age: 24h
      interval: 1h
      dryrun: false
http:
  addr: $ADDR
  headers:
    X-Content-Type-Options: [nosniff]
YML
}

start() {
  ready && { say "already running at $URL"; return 0; }
  if ! pid_alive oci-registry; then
    apt_ensure docker-registry docker-registry
    write_config
    spawn oci-registry docker-registry serve "$DIR/config.yml"
  fi
  wait_ready oci-registry 60 ready
  say "ready at $URL"
}

case ${1:-} in
  start) start ;;
  stop) stop_pid oci-registry 30 ;;
  status) if ready; then say "running at $URL"; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
