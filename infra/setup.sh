#!/usr/bin/env bash
# Install and start the real services, in dependency-free but sensible order: the apt-only
# ones first (quick, and apt must not run twice at once), then the JVM services.
# Usage: infra/setup.sh [all|docker|kafka|registry|clickhouse|chromium|oci-registry ...]
# Prints one line per service with its endpoint; details and logs go to stderr/$STATE.
source "$(dirname "$0")/lib.sh"
source "$REPO/infra/env.sh"

ALL=(chromium clickhouse docker oci-registry kafka registry)
declare -A ENDPOINT=(
  [chromium]=$CHROMIUM_PATH [clickhouse]=$SWE_STREAM_CLICKHOUSE_URL [docker]=$SWE_STREAM_DOCKER_HOST
  [kafka]=$SWE_STREAM_KAFKA_BROKERS [registry]=$SWE_STREAM_REGISTRY_URL [oci-registry]=http://$SWE_STREAM_OCI_REGISTRY)

wanted=()
for arg in "${@:-all}"; do
  if [[ $arg == all ]]; then wanted+=("${ALL[@]}")
  elif [[ -n ${ENDPOINT[$arg]:-} ]]; then wanted+=("$arg")
  else die "unknown service '$arg' (one of: all ${ALL[*]})"; fi
done

for s in "${ALL[@]}"; do
  [[ " ${wanted[*]} " == *" $s "* ]] || continue
  t0=$SECONDS
  if bash "$REPO/infra/$s.sh" status >/dev/null 2>&1; then how="already up"
  else bash "$REPO/infra/$s.sh" start; how="started in $((SECONDS - t0))s"; fi
  printf '%-10s %-45s %s\n' "$s" "${ENDPOINT[$s]}" "$how"
done
