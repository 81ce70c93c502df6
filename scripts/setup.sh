#!/usr/bin/env bash
# Creates ./.venv with the CPU build of torch and oml_fast built in place (editable).
# Usage: bash scripts/setup.sh            (idempotent; re-run after changing C++ sources)
# Knobs: TORCH_SPEC (default torch==2.13.0), EXTRAS (default pipeline,test), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-pipeline,test}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
# torch first, pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "$TORCH_SPEC" numpy ninja setuptools wheel
.venv/bin/python -m pip install -q --no-build-isolation -e ".[${EXTRAS}]"
