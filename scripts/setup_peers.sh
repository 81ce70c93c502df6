#!/usr/bin/env bash
# Creates a separate venv with the peers (OML 4.0, pytorch-metric-learning, faiss-cpu) beside the
# same CPU torch as oml_fast, for side-by-side benchmarks and the OML cross-check (tests/peers/, run
# with `VENV/bin/python -m pytest -m peers tests/peers` from this checkout, which has oml_fast built in
# place). Optional: the default suite skips tests/peers without it. Fails unless OML imports at the end.
#
# Usage: bash scripts/setup_peers.sh [VENV]     (default VENV: ./.venv-peers; idempotent)
# Knobs: TORCH_SPEC (default torch==2.13.0), PYTHON (default python3).
#
# OML 4.0.0 pins old Lightning/numpy and pulls torchvision, albumentations and opencv; the only
# torchvision for torch 2.13 does not import beside the CPU torch. So OML is installed with
# --no-deps plus what it imports at module level; benchmarks/peers.py registers empty stand-ins for
# torchvision, albumentations and cv2 before `import oml` (the metric, retrieval, loss, miner and
# sampler code paths never call them).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
VENV=${1:-.venv-peers}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q)
# torch first, pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
"${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" faiss-cpu pytorch-metric-learning psutil pytest "$TORCH_SPEC"
# OML 4.0 without its dependency pins, then its import-time needs (numpy<2: OML 4.0 predates numpy 2).
"${PIP[@]}" --no-deps open-metric-learning==4.0.0
"${PIP[@]}" "numpy<2" omegaconf gdown matplotlib pandas validators pillow tqdm scikit-learn \
  lightning ninja setuptools wheel "$TORCH_SPEC"
"$VENV/bin/python" benchmarks/peers.py --require oml
