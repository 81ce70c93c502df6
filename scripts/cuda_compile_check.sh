#!/usr/bin/env bash
# Compile-only check of the CUDA kernels on a machine without a GPU (see docs/gpu.md):
# a separate venv with a CUDA build of torch, FORCE_CUDA=1, sm_90, CUDA_HOME at the toolkit root.
# The build happens in a scratch copy of the sources so the CPU build in the checkout is untouched;
# the resulting library is imported (its CPU kernels run without a GPU) as a smoke test.
# Knobs: CUDA_VENV (default .venv-cuda), CUDA_TORCH (default torch==2.14.1), CUDA_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_VENV=${CUDA_VENV:-.venv-cuda}
CUDA_TORCH=${CUDA_TORCH:-torch==2.14.1}
if [ -z "${CUDA_HOME:-}" ]; then
  # nvcc on PATH may be a wrapper script: ask the real compiler where it lives.
  NVCC_REAL=$(grep -o '/[^ "]*/bin/nvcc' "$(command -v nvcc)" 2>/dev/null | head -1 || true)
  [ -n "$NVCC_REAL" ] || NVCC_REAL=$(readlink -f "$(command -v nvcc)")
  CUDA_HOME=$(dirname "$(dirname "$NVCC_REAL")")
fi
export CUDA_HOME
echo "[cuda-check] CUDA_HOME=$CUDA_HOME"
if [ ! -x "$CUDA_VENV/bin/python" ]; then
  python3 -m venv "$CUDA_VENV"
  "$CUDA_VENV/bin/python" -m pip install -q --upgrade pip
fi
"$CUDA_VENV/bin/python" -m pip install -q "$CUDA_TORCH" numpy ninja setuptools wheel
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
git ls-files -co --exclude-standard | grep -v '^oml_fast/_C' | tar -cf - -T - | tar -xf - -C "$SCRATCH"
cd "$SCRATCH"
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-2} \
  "$OLDPWD/$CUDA_VENV/bin/python" setup.py build_ext --inplace 2>&1 | grep -E "oml_fast\]|error|Error" || true
test -f oml_fast/_C*.so || { echo "[cuda-check] FAILED: no library built"; exit 1; }
"$OLDPWD/$CUDA_VENV/bin/python" - <<'PY'
import torch, oml_fast
assert oml_fast.WITH_CUDA, "the library was built without CUDA kernels"
x = torch.randn(4, 3)
print("[cuda-check] import OK, torch", torch.__version__, "cuda", torch.version.cuda,
      "| CPU kernel smoke test:", tuple(oml_fast.ops.pairwise_distance(x, x).shape))
PY
echo "[cuda-check] OK"
