"""Validation hot path: oml_fast kNN (+ relevance + metrics) vs the bare GEMM, torch cdist+topk, faiss, OML.

1-vs-rest protocol: every item is a query and a gallery item, itself excluded; 5 items per label;
embeddings ~ N(0, 1). Each (method, N, D, k) runs in a fresh process (so peak RSS is its own), with a
small warm-up, then the median of ``--repeats`` runs. Ratios are against the bare GEMM of the same run.

    cd <repo> && python benchmarks/bench_knn.py                  # the grid of issue 3 (N=40k D=512 behind --full)
    python benchmarks/bench_knn.py --n 200000 --dim 128 --k 10 --methods oml_fast+metrics --repeats 1

Also a pytest-benchmark suite at a small size: ``pytest benchmarks/bench_knn.py --benchmark-only``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BLOCK = 5000  # rows per block for the blocked baselines (OML's block size)
METHODS = ("gemm", "oml_fast", "oml_fast+metrics", "cdist+topk", "faiss", "oml")
TOP_K = {"cmc_top_k": (1, 5), "precision_top_k": (5,), "map_top_k": (5,)}


# ----- the methods (each returns nothing; they are timed) ------------------------------------------


def run_gemm(x: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    """The bare matrix multiply of all pairs, in blocks into one reused buffer (no selection at all)."""
    out = torch.empty(min(BLOCK, len(x)), len(x))
    for start in range(0, len(x), BLOCK):
        block = x[start : start + BLOCK]
        torch.mm(block, x.T, out=out[: len(block)])


def run_oml_fast(x: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    from oml_fast.ops import knn

    ids = torch.arange(len(x))
    knn(x, x, k, "euclidean", ids, ids)


def run_oml_fast_metrics(x: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    from oml_fast.ops import knn, retrieval_metrics, retrieval_relevance

    ids = torch.arange(len(x))
    _, idx = knn(x, x, k, "euclidean", ids, ids)
    is_relevant, n_gt = retrieval_relevance(idx, labels, labels, ids, ids)
    cmc, precision, ap = retrieval_metrics(is_relevant, n_gt, (idx >= 0).sum(1), **TOP_K)
    cmc.mean(0), precision.mean(0), ap.mean(0)


def run_cdist_topk(x: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    """torch.cdist + topk over 5000-row blocks, self excluded by an inf diagonal."""
    for start in range(0, len(x), BLOCK):
        block = torch.cdist(x[start : start + BLOCK], x)
        rows = torch.arange(len(block))
        block[rows, rows + start] = float("inf")
        torch.topk(block, k, dim=1, largest=False)


def run_faiss(x: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    import faiss

    index = faiss.IndexFlatL2(x.shape[1])
    data = x.numpy()
    index.add(data)
    index.search(data, k + 1)  # the item itself comes back first


def run_oml(x: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    from oml.metrics.embeddings import EmbeddingMetrics  # type: ignore[import-not-found]

    n = len(x)
    metrics = EmbeddingMetrics(
        dataset=None,
        cmc_top_k=(1, 5),
        precision_top_k=(5,),
        map_top_k=(5,),
        fmr_vals=(),
        pcf_variance=(),
    )
    metrics.setup(num_samples=n)
    metrics.update(
        embeddings=x,
        labels=labels,
        is_query=torch.ones(n, dtype=torch.bool),
        is_gallery=torch.ones(n, dtype=torch.bool),
    )
    metrics.compute_metrics()


RUNNERS = {
    "gemm": run_gemm,
    "oml_fast": run_oml_fast,
    "oml_fast+metrics": run_oml_fast_metrics,
    "cdist+topk": run_cdist_topk,
    "faiss": run_faiss,
    "oml": run_oml,
}


def peer_available(method: str) -> str | None:
    """None when the method can run here, else why not."""
    module = {"faiss": "faiss", "oml": "oml"}.get(method)
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as error:  # an optional peer may fail to import for many reasons
        return f"{type(error).__name__}: {error}".splitlines()[0][:80]
    return None


def make_data(n: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=generator)
    labels = torch.arange(n) // 5  # 5 items per label
    return x, labels


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(method: str, n: int, dim: int, k: int, repeats: int, threads: int) -> dict:
    """Runs in the worker process: warm-up on a small slice, then `repeats` timed runs."""
    torch.set_num_threads(threads)
    if method.startswith("oml_fast"):
        import oml_fast  # noqa: F401
    if method in ("faiss",):
        import faiss

        faiss.omp_set_num_threads(threads)
    x, labels = make_data(n, dim)
    runner = RUNNERS[method]
    runner(x[: min(n, 1000)].clone(), labels[: min(n, 1000)].clone(), k)
    baseline = peak_rss_mb()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(x, labels, k)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "rss_mb": peak_rss_mb() - baseline}


def run_in_fresh_process(method: str, n: int, dim: int, k: int, repeats: int, threads: int) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", method, str(n), str(dim), str(k)]
    command += ["--repeats", str(repeats), "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:100]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[5000, 10000, 20000, 40000])
    parser.add_argument("--dim", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--k", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also run N >= 40000 with D = 512 (slow)")
    parser.add_argument("--worker", nargs=4, metavar=("METHOD", "N", "D", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        method, n, dim, k = args.worker[0], *map(int, args.worker[1:])
        print(json.dumps(measure(method, n, dim, k, args.repeats, args.threads)))
        return

    skipped = {m: why for m in args.methods if (why := peer_available(m)) is not None}
    methods = [m for m in args.methods if m not in skipped]
    for method, why in skipped.items():
        print(f"skipped peer {method!r}: {why}")
    print(
        f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    header = f"| {'N':>6} | {'D':>4} | {'k':>4} | {'method':<17} | {'seconds':>8} | {'GFLOP/s':>7} | {'x GEMM':>6} | {'+RSS MB':>8} |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for n in args.n:
        for dim in args.dim:
            if n >= 40000 and dim >= 512 and not args.full:
                print(f"| {n:>6} | {dim:>4} | skipped (pass --full) |")
                continue
            gemm_seconds = None
            for k in args.k:
                for method in methods:
                    if method == "gemm" and k != args.k[0]:
                        continue  # the GEMM does not depend on k
                    result = run_in_fresh_process(method, n, dim, k, args.repeats, args.threads)
                    if "error" in result:
                        print(f"| {n:>6} | {dim:>4} | {k:>4} | {method:<17} | error: {result['error']}")
                        continue
                    seconds = result["seconds"]
                    if method == "gemm":
                        gemm_seconds = seconds
                    gflops = 2.0 * n * n * dim / seconds / 1e9
                    ratio = f"{seconds / gemm_seconds:6.2f}" if gemm_seconds else "     -"
                    print(
                        f"| {n:>6} | {dim:>4} | {k:>4} | {method:<17} | {seconds:8.3f} | {gflops:7.1f} | "
                        f"{ratio} | {result['rss_mb']:8.1f} |",
                        flush=True,
                    )


# ----- pytest-benchmark suite (small sizes; `pytest benchmarks/bench_knn.py --benchmark-only`) -------


def _bench(benchmark, method: str, k: int) -> None:
    import oml_fast  # noqa: F401

    x, labels = make_data(5000, 128)
    benchmark.pedantic(RUNNERS[method], args=(x, labels, k), rounds=3, warmup_rounds=1)


def test_bench_gemm(benchmark):
    _bench(benchmark, "gemm", 10)


def test_bench_oml_fast_knn(benchmark):
    _bench(benchmark, "oml_fast", 10)


def test_bench_oml_fast_knn_metrics(benchmark):
    _bench(benchmark, "oml_fast+metrics", 10)


def test_bench_cdist_topk(benchmark):
    _bench(benchmark, "cdist+topk", 10)


def test_bench_faiss(benchmark):
    import pytest

    if peer_available("faiss") is not None:
        pytest.skip("faiss-cpu is not installed")
    _bench(benchmark, "faiss", 10)


if __name__ == "__main__":
    main()
