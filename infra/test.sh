#!/usr/bin/env bash
# What `npm test` runs: node deps, the real services, vitest, then stop what we started.
# Usage: infra/test.sh [vitest args...]   (SWE_STREAM_SERVICES="kafka registry" to start fewer)
# Services that were already running before are left running; the ones started here are
# stopped on exit, also when vitest or setup fails. Exits with vitest's exit code.
source "$(dirname "$0")/lib.sh"
cd "$REPO"

ensure_node_deps

read -r -a services <<<"${SWE_STREAM_SERVICES:-docker kafka registry clickhouse chromium oci-registry}"
[[ ${services[*]} == all ]] && services=(docker kafka registry clickhouse chromium oci-registry)
started=()
for s in "${services[@]}"; do
  bash "infra/$s.sh" status >/dev/null 2>&1 || started+=("$s")
done
cleanup() {
  local rc=$?
  ((${#started[@]})) && bash infra/teardown.sh "${started[@]}" || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash infra/setup.sh "${services[@]}"
source infra/env.sh

set +e
npx vitest run "$@"
rc=$?
set -e
exit "$rc"
