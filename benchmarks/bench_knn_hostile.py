"""kNN on numerically hostile data (issue 15, items 2 and 3): no cliff from one outlier, workspaces
budgeted in bytes.

Rows (each case in a fresh process, so the peak RSS is its own; median of ``--repeats``):

* ``outlier``: N = 20k items, D = 128, k = 10, 1-vs-rest (self excluded): the clean data and the same
  data with one gallery row scaled by 1000 (or, under cosine, one zero query), timed interleaved in one
  process (clean, variant, clean, ...), so the ratio is not at the mercy of a shared machine's load.
  The per-item error band keeps the outlier from widening every query's band; goal: within 1.2x.
* ``huge-k``: 256 queries, Ng = k = 100k, D = 64 (what EmbeddingMetrics asks for when a post-processor
  has no ``top_n``): time and peak RSS above the inputs, next to the size of the outputs.

    python benchmarks/bench_knn_hostile.py [--threads 2] [--repeats 3] [--cases outlier huge-k]
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

# name -> (n_query, n_gallery, dim, k, metric, variant)
CASES = {
    "outlier": [
        ("one row x1000", 20000, 20000, 128, 10, "euclidean", "outlier"),
        ("one zero query (cosine)", 20000, 20000, 128, 10, "cosine", "zero-query"),
        ("one row x1000 (cosine)", 20000, 20000, 128, 10, "cosine", "outlier"),
    ],
    "huge-k": [("k = Ng = 100k", 256, 100000, 64, 100000, "euclidean", "clean")],
}


def make_data(n_query: int, n_gallery: int, dim: int, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    gallery = torch.randn(n_gallery, dim, generator=generator)
    queries = gallery[:n_query].clone() if n_query <= n_gallery else torch.randn(n_query, dim)
    if variant == "outlier":
        gallery[n_gallery // 2] *= 1000
    elif variant == "zero-query":
        queries[0] = 0
    return queries, gallery


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(case: tuple, repeats: int, threads: int) -> dict:
    """Median seconds of the case and, interleaved with it, of its clean twin; peak RSS of the case."""
    from oml_fast.ops import knn

    torch.set_num_threads(threads)
    _, n_query, n_gallery, dim, k, metric, variant = case
    runs = {"case": make_data(n_query, n_gallery, dim, variant)}
    if variant != "clean":
        runs["clean"] = make_data(n_query, n_gallery, dim, "clean")
    ids = (torch.arange(n_query), torch.arange(n_gallery)) if n_query == n_gallery else (None, None)
    knn(runs["case"][0][:8], runs["case"][1][:2000], min(k, 2000), metric)  # warm-up
    baseline = peak_rss_mb()
    times: dict[str, list[float]] = {name: [] for name in runs}
    output_mb = 0.0
    for _ in range(repeats):
        for name, (queries, gallery) in runs.items():
            start = time.perf_counter()
            dist, idx = knn(queries, gallery, k, metric, *ids)
            times[name].append(time.perf_counter() - start)
            output_mb = (dist.numel() * dist.element_size() + idx.numel() * idx.element_size()) / 2**20
            del dist, idx
    seconds = statistics.median(times["case"])
    clean = statistics.median(times["clean"]) if "clean" in times else seconds
    return {"seconds": seconds, "clean": clean, "rss_mb": peak_rss_mb() - baseline, "output_mb": output_mb}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "ROW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(CASES[args.worker[0]][int(args.worker[1])], args.repeats, args.threads)))
        return
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}")
    print(
        "| case | Nq | Ng | D | k | metric | seconds | clean s (interleaved) | x clean | +peak RSS MB | output MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        for row, case in enumerate(CASES[name]):
            command = [sys.executable, os.path.abspath(__file__), "--worker", name, str(row)]
            command += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"| {case[0]} | failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:100]} |")
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            label, n_query, n_gallery, dim, k, metric, _ = case
            print(
                f"| {label} | {n_query} | {n_gallery} | {dim} | {k} | {metric} | {result['seconds']:.3f} | "
                f"{result['clean']:.3f} | {result['seconds'] / result['clean']:.2f} | {result['rss_mb']:.0f} | "
                f"{result['output_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
