#!/usr/bin/env bash
# Docker engine from Debian's docker.io, dockerd run in the background (there is no systemd),
# its log under the state folder; socket /var/run/docker.sock (dockerode's default).
# Usage: infra/docker.sh start|stop|status
#
# What works in this sandbox (Firecracker VM, kernel 6.x, cgroup v1 hybrid, root), measured:
# - Plain `dockerd` needs no special flags: overlay2 on the ext4 root, cgroupfs driver,
#   iptables (nf_tables backend) for NAT are all fine; --iptables=false is NOT needed (and
#   would break outbound NAT for bridge containers).
# - Containers on the DEFAULT BRIDGE network reach the package registries (PyPI, npm,
#   Debian, Maven Central) through the host's NAT, provided they trust the host CA: mount
#   /etc/ssl/certs/ca-certificates.crt read-only (and set SSL_CERT_FILE, NODE_EXTRA_CA_CERTS,
#   PIP_CERT, REQUESTS_CA_BUNDLE). Without it TLS fails. `--network host` also works but is
#   not needed; `--network none` isolates test runs (DNS fails at once).
# - Memory/CPU/pids limits, --cap-drop ALL and no-new-privileges work.
# - Services bound to 127.0.0.1 on the host (Kafka, registry, ClickHouse) are not reachable
#   from bridge containers; use --network host for a container that must reach them.
# - The uplink (eth0) has MTU 1400: the bridge gets the uplink's MTU (--mtu) so large TLS
#   transfers cannot stall on path-MTU black holes.
# - No registry can be pulled from: build base images offline (debootstrap | docker import).
source "$(dirname "$0")/lib.sh"

SOCK=/var/run/docker.sock

ready() { timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

uplink_mtu() {
  local dev; dev=$(ip -o route show default 2>/dev/null | awk '{print $5; exit}')
  cat "/sys/class/net/${dev:-eth0}/mtu" 2>/dev/null || echo 1500
}

start() {
  if [[ -n ${DOCKER_HOST:-} ]]; then
    ready && { say "using DOCKER_HOST=$DOCKER_HOST"; return 0; }
    die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to run a local engine"
  fi
  ready && { say "already running at unix://$SOCK"; return 0; }
  if ! pid_alive dockerd; then
    apt_ensure dockerd docker.io
    command -v docker >/dev/null || apt_ensure docker docker.io
    apt_ensure debootstrap debootstrap # the sandbox builds its base images with it (no pulls)
    spawn dockerd dockerd --host "unix://$SOCK" --mtu "$(uplink_mtu)"
  fi
  wait_ready dockerd 60 ready
  say "ready at unix://$SOCK ($(docker info --format 'engine {{.ServerVersion}}, {{.Driver}}'))"
}

case ${1:-} in
  start) start ;;
  # Running containers are stopped by dockerd itself on SIGTERM; give it time.
  stop) stop_pid dockerd 60 ;;
  status) if ready; then say "running at ${DOCKER_HOST:-unix://$SOCK}"; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
