#!/usr/bin/env bash
# One entry point that does all the set-up on a fresh machine (Python 3.10+), then runs:
#   ./run.sh evaluate [unlearnbench evaluate options]   the default evaluation
#   ./run.sh test [pytest options]                      the test suite
#   ./run.sh <any unlearnbench command>                 e.g. ./run.sh list methods
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat pyproject.toml setup.py | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q "torch==2.13.0" || "$VENV/bin/python" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  touch "$stamp"
fi
cmd=${1:-evaluate}
shift || true
case "$cmd" in
  test)
    export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    exec "$VENV/bin/unlearnbench" "$cmd" "$@"
    ;;
esac
