#!/usr/bin/env bash
# Apicurio Registry 3.0.9 (Confluent-compatible API under /apis/ccompat/v7) on 127.0.0.1:8081,
# from the Maven Central distribution fetched by infra/registry/pom.xml. In-memory storage:
# schemas are registered at startup/deploy, so a restart loses nothing that matters.
# Usage: infra/registry.sh start|stop|status
source "$(dirname "$0")/lib.sh"

URL=http://127.0.0.1:8081/apis/ccompat/v7
APP=$STATE/registry-app
# The project's evolution rule (ARCHITECTURE §4). Apicurio's COMPATIBILITY rule accepts
# NONE, BACKWARD(_TRANSITIVE), FORWARD(_TRANSITIVE), FULL(_TRANSITIVE); its default is NONE.
COMPATIBILITY=FULL_TRANSITIVE

# 3.0.x ships Quarkus' legacy layout (apicurio-registry-app-<v>-runner.jar + lib/),
# later lines quarkus-app/quarkus-run.jar: accept either.
runner_jar() { compgen -G "$APP/*-runner.jar" || compgen -G "$APP/quarkus-app/quarkus-run.jar"; }

ready() { curl -fs -o /dev/null --max-time 2 "$URL/subjects"; }

unpack() {
  local sum; sum=$(sha256sum "$REPO/infra/registry/pom.xml" | cut -d' ' -f1)
  [[ -f $APP/.pom.sha256 && $(cat "$APP/.pom.sha256") == "$sum" ]] && return 0
  say "fetching Apicurio Registry from Maven Central into $APP"
  rm -rf "$APP" && mkdir -p "$APP"
  mvn_fetch "$REPO/infra/registry/pom.xml" -DoutputDirectory="$APP"
  tar -xzf "$APP/apicurio-registry-app.tar.gz" -C "$APP" && rm "$APP/apicurio-registry-app.tar.gz"
  runner_jar >/dev/null || die "no runnable jar in the distribution"
  echo "$sum" >"$APP/.pom.sha256"
}

start() {
  ready && { say "already running at $URL"; return 0; }
  if ! pid_alive registry; then
    java_ensure
    unpack
    # cd: anything Quarkus writes relative to its working dir stays in the state folder.
    (cd "$APP" && spawn registry java -Xmx512m \
      -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port=8081 \
      -Dapicurio.rules.global.compatibility=$COMPATIBILITY \
      -jar "$(runner_jar | head -n1)")
  fi
  wait_ready registry 120 ready
  # The -D above enforces the rule, but 3.0.x's ccompat GET /config still answers NONE until the
  # level is set through the API; set it so Confluent clients see what is enforced.
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    -d "{\"compatibility\":\"$COMPATIBILITY\"}" "$URL/config"
  say "ready at $URL (global compatibility $COMPATIBILITY)"
}

case ${1:-} in
  start) start ;;
  stop) stop_pid registry 30 ;;
  status) if ready; then say "running at $URL"; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
