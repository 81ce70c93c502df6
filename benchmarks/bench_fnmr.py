"""FNMR@FMR over all pairs: wall time against the bare fp32 GEMM of the same run, and peak memory.

Every item is query and gallery (itself excluded through ids), 5 items per label, Gaussian embeddings,
fmr_vals=(0.1,). Methods, each run in its own process, taking turns (gemm, all_pairs, ..., gemm, ...):

- ``gemm``: the bare ``x @ x.T`` of all pairs (5000-row blocks into one reused buffer), the floor of
  any exact all-pairs method;
- ``all_pairs``: ``calc_fnmr_at_fmr_all_pairs`` alone;
- ``embedding_metrics``: ``EmbeddingMetrics`` asking for fnmr@fmr=0.1 beside cmc@1, precision@1, map@1
  (no pcf), end to end;
- ``embedding_metrics_no_fnmr``: the same without fnmr@fmr (so the difference is FNMR's share).

``+peak MB`` is the rise of the process's peak RSS (``ru_maxrss``) over its value just before the timed
call (data built, warm-up done); ``x GEMM`` divides by the median ``gemm`` time of the same run.

    python benchmarks/bench_fnmr.py --n 20000 40000 --repeats 3 [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = ("gemm", "all_pairs", "embedding_metrics", "embedding_metrics_no_fnmr")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(n: int, dim: int):
    import torch

    embeddings = torch.randn(n, dim, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) // 5
    return embeddings, labels


def _run(method: str, n: int, dim: int) -> dict:
    import torch

    embeddings, labels = _data(n, dim)
    ids = torch.arange(n)
    result: object = None
    if method == "gemm":
        block = 5000
        buffer = torch.empty(min(block, n), n)

        def call() -> object:
            for start in range(0, n, block):
                stop = min(start + block, n)
                torch.mm(embeddings[start:stop], embeddings.T, out=buffer[: stop - start])
            return None

    elif method == "all_pairs":
        from oml_fast.metrics import calc_fnmr_at_fmr_all_pairs

        def call() -> object:
            return calc_fnmr_at_fmr_all_pairs(embeddings, embeddings, labels, labels, (0.1,), ids, ids)

    else:
        from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
        from oml_fast.metrics import EmbeddingMetrics

        def call() -> object:
            dataset = InMemoryQueryGalleryDataset(labels.numpy())
            fmr = () if method.endswith("no_fnmr") else (0.1,)
            calc = EmbeddingMetrics(dataset, (1,), (1,), (1,), fmr_vals=fmr, pcf_variance=(), verbose=False)
            calc.setup(n)
            calc.update(embeddings, torch.arange(n))
            return calc.compute_metrics()["OVERALL"].get("fnmr@fmr")

    before = _peak_rss_mb()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    if isinstance(result, dict):
        result = {str(k): float(v) for k, v in result.items()}
    elif result is not None:
        result = [float(v) for v in result]  # type: ignore[union-attr]
    return {"seconds": seconds, "peak_rise_mb": _peak_rss_mb() - before, "result": result}


def _child(method: str, n: int, dim: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _run(method, min(n, 1000), dim)  # warm-up: thread pools, lazy imports
    print(json.dumps(_run(method, n, dim)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[20_000, 40_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--child", choices=METHODS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n[0], args.dim, args.threads)
        return
    methods = ["gemm", *[m for m in args.methods if m != "gemm"]]
    print(
        f"D={args.dim}, {args.threads} threads, 1-vs-rest (self excluded), 5 per label, fmr=0.1, median of {args.repeats}"
    )
    print("| N | method | seconds | x GEMM | +peak MB | result |\n|---|---|---|---|---|---|")
    for n in args.n:
        runs: dict[str, list[dict]] = {m: [] for m in methods}
        for _ in range(args.repeats):
            for method in methods:
                command = [sys.executable, __file__, "--child", method, "--n", str(n)]
                command += ["--dim", str(args.dim), "--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"[{method}] failed: {done.stderr.strip().splitlines()[-3:]}", file=sys.stderr)
                    continue
                runs[method].append(json.loads(done.stdout.strip().splitlines()[-1]))
        gemm = statistics.median(r["seconds"] for r in runs["gemm"]) if runs["gemm"] else float("nan")
        for method in methods:
            if not runs[method]:
                continue
            seconds = statistics.median(r["seconds"] for r in runs[method])
            peak = statistics.median(r["peak_rise_mb"] for r in runs[method])
            print(
                f"| {n} | {method} | {seconds:.2f} | {seconds / gemm:.2f} | {peak:.0f} | "
                f"{runs[method][0]['result']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
