#!/usr/bin/env bash
# One-shot GPU check of the retrieval ops (issue 3) for a machine with a GPU (docs/gpu.md): builds the
# extension in place with the CUDA kernels, runs the CUDA-vs-CPU tests, then times knn on the GPU.
# Logs go to $OUT (or ./gpu_check_out). Usage: bash benchmarks/gpu_check_knn.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} python setup.py build_ext --inplace > "$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
python -m pytest tests/ops/test_knn.py tests/ops/test_retrieval_metrics.py -m cuda -q -p no:cacheprovider \
  > "$OUT/pytest_cuda.log" 2>&1
tail -15 "$OUT/pytest_cuda.log"
python - <<'PY' 2>&1 | tee "$OUT/timing.txt"
import time, torch, oml_fast
from oml_fast.ops import knn
for n, d, k, dtype in [(40000, 128, 10, torch.float32), (40000, 128, 100, torch.float32),
                       (200000, 128, 10, torch.float32), (40000, 512, 10, torch.float16),
                       (40000, 128, 1024, torch.float32)]:
    x = torch.randn(n, d, device="cuda").to(dtype); ids = torch.arange(n, device="cuda")
    knn(x[:1000], x[:1000], k); torch.cuda.synchronize()
    t = time.perf_counter(); knn(x, x, k, "euclidean", ids, ids); torch.cuda.synchronize()
    a = time.perf_counter() - t
    t = time.perf_counter()
    for s in range(0, n, 8192): x[s:s + 8192].float() @ x.float().T
    torch.cuda.synchronize(); g = time.perf_counter() - t
    print(f"N={n} D={d} k={k} {dtype}: knn {a:.3f} s, fp32 GEMM {g:.3f} s, ratio {a / g:.2f}")
PY
