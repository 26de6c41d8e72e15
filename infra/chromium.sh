#!/usr/bin/env bash
# Headless Chromium from Debian's `chromium` package, for the HTML report test (no browser
# download: only Debian's packages are reachable). Nothing to run in the background.
# As root it needs --no-sandbox; on this closed network also pass --disable-background-networking
# --disable-component-update --disable-sync --no-first-run --disable-quic and a fresh --user-data-dir,
# or it keeps trying (and failing) to reach Google's hosts.
# Usage: infra/chromium.sh install|status
source "$(dirname "$0")/lib.sh"

CHROMIUM=/usr/bin/chromium

case ${1:-install} in
  install | start)
    apt_ensure chromium chromium
    say "installed: $($CHROMIUM --version 2>/dev/null) at $CHROMIUM" ;;
  status) [[ -x $CHROMIUM ]] && say "installed at $CHROMIUM" || { say "not installed"; exit 1; } ;;
  stop) : ;; # nothing runs
  *) echo "usage: $0 install|status" >&2; exit 2 ;;
esac
