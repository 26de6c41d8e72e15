#!/usr/bin/env bash
# A Python virtual environment with Hugging Face `datasets` from PyPI, used by the release test to
# check that a release loads with `load_dataset("parquet", data_files=…)` as users will load it.
# Cached under the state folder; reinstalled only when the pinned version changes.
# Usage: infra/hf-datasets.sh install|status   (prints the venv's python path on install)
source "$(dirname "$0")/lib.sh"

VERSION=${SWE_STREAM_HF_DATASETS_VERSION:-5.2.0}
VENV=$STATE/hf-datasets
PY=$VENV/bin/python

installed() { [[ -x $PY && -f $VENV/.version && $(cat "$VENV/.version") == "$VERSION" ]] && "$PY" -c 'import datasets' >/dev/null 2>&1; }

install() {
  if ! installed; then
    command -v python3 >/dev/null || apt_ensure python3 python3 python3-venv
    say "installing datasets==$VERSION from PyPI into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --disable-pip-version-check "datasets==$VERSION" >&2
    echo "$VERSION" >"$VENV/.version"
  fi
  echo "$PY"
}

case ${1:-} in
  install) install ;;
  status) if installed; then echo "$PY"; else say "not installed"; exit 1; fi ;;
  *) echo "usage: $0 install|status" >&2; exit 2 ;;
esac
