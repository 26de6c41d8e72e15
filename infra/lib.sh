# Shared helpers for the infra scripts. Sourced, never run.
# Every service keeps its pid file, log and data under one state folder (git-ignored).
set -euo pipefail
# Background jobs must stay in this shell's process group: a job that leads its own group (monitor
# mode, inherited through SHELLOPTS) makes `setsid` fork, and the pid spawn records would be gone at once.
set +m
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SWE_STREAM_STATE:-$REPO/.infra}
mkdir -p "$STATE"
NAME=$(basename "$0" .sh)

say() { echo "[$NAME] $*" >&2; }
die() { say "error: $*"; exit 1; }

# True when the process in $STATE/<name>.pid is alive and is the one spawn started (it carries
# SWE_STREAM_SERVICE=<name> in its environment), so a recycled pid is never mistaken or killed.
pid_alive() {
  local f="$STATE/$1.pid" pid
  [[ -f $f ]] && pid=$(cat "$f") && kill -0 "$pid" 2>/dev/null &&
    grep -qzxF "SWE_STREAM_SERVICE=$1" "/proc/$pid/environ" 2>/dev/null
}

# spawn NAME CMD... — start CMD detached (own session, so it outlives the shell or CI
# step that started it), output appended to $STATE/NAME.log, pid in $STATE/NAME.pid.
spawn() {
  local name=$1; shift
  echo "=== $(date -Is) start: $*" >>"$STATE/$name.log"
  SWE_STREAM_SERVICE=$name setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

# wait_ready NAME SECONDS CHECK... — poll CHECK until it succeeds; give up early when
# the process spawn started has exited (and show its status and log), or after SECONDS.
# Only the pid is checked here, not pid_alive's environment mark: between fork and exec the child
# still carries this shell's environment, and on a loaded machine the first poll can land there.
wait_ready() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs)) pid="" rc
  [[ -f $STATE/$name.pid ]] && pid=$(cat "$STATE/$name.pid")
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      rc=0; wait "$pid" 2>/dev/null || rc=$? # 127: not our child (started by an earlier call)
      tail -n 30 "$STATE/$name.log" >&2 || true
      die "$name (pid $pid) exited$( ((rc == 127)) || echo " with status $rc") before it was ready (log: $STATE/$name.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$STATE/$name.log" >&2 || true; die "$name not ready after ${secs}s"; }
    sleep 0.5
  done
}

# stop_pid NAME [SECONDS] — SIGTERM our own process (only ever the one in our pid file),
# SIGKILL after SECONDS. A service someone else started is left alone.
stop_pid() {
  local name=$1 secs=${2:-30} pid
  if ! pid_alive "$name"; then rm -f "$STATE/$name.pid"; say "nothing of ours to stop (state $STATE)"; return 0; fi
  pid=$(cat "$STATE/$name.pid")
  kill -TERM "$pid"
  for ((i = 0; i < secs * 2; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then say "still alive after ${secs}s, SIGKILL"; kill -KILL "$pid"; fi
  rm -f "$STATE/$name.pid"
  say "stopped"
}

# apt_ensure CMD PACKAGE... — install Debian packages when CMD is missing.
apt_ensure() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  say "installing $* from Debian"
  # Lists may be missing on a fresh machine; update only when the first try fails.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; }
}

# ensure_node_deps — `npm ci` only when node_modules is missing or older than the lockfile.
ensure_node_deps() {
  local stamp="$REPO/node_modules/.package-lock.json"
  if [[ ! -f $stamp || $REPO/package-lock.json -nt $stamp ]]; then
    say "node_modules missing or stale: npm ci"
    (cd "$REPO" && npm ci --no-audit --no-fund) >&2
  fi
}

# mvn_fetch POM ARGS... — run Maven quietly (it only downloads here); its output goes to
# $STATE/maven.log and is shown only when it fails.
mvn_fetch() {
  local pom=$1; shift
  mvn -B -Dstyle.color=never -f "$pom" "$@" process-resources >>"$STATE/maven.log" 2>&1 ||
    { tail -n 20 "$STATE/maven.log" >&2; die "maven failed for $pom (log: $STATE/maven.log)"; }
}

# Java launched from the maven-gathered folders needs JDK 17.
java_ensure() {
  apt_ensure java openjdk-17-jre-headless
  apt_ensure mvn maven
}
