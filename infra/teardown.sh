#!/usr/bin/env bash
# Stop the services that this checkout's state folder started (reverse order of setup.sh).
# Services somebody else started (another checkout, DOCKER_HOST, a system dockerd) are left alone.
# Usage: infra/teardown.sh [all|docker|kafka|registry|clickhouse|oci-registry ...]
source "$(dirname "$0")/lib.sh"

ALL=(registry kafka oci-registry docker clickhouse)
[[ $# -eq 0 || " $* " == *" all "* ]] && set -- "${ALL[@]}"
for s in "$@"; do
  [[ $s == chromium ]] && continue # nothing runs
  bash "$REPO/infra/$s.sh" stop
done
