"""Exact kNN below the fp32 GEMM floor (issue 15, item 5): the bfloat16-screened CPU knn vs the float32 one.

1-vs-rest (every item a query and a gallery item, itself excluded), euclidean, kNN + relevance + metrics
(``bench_knn.run_oml_fast_metrics``), against the bare float32 GEMM of all pairs (``bench_knn.run_gemm``)
of the same run. The three take turns in one process, ``--repeats`` rounds, so that a change of load
hits all three alike; the table shows the median and the best round, and the ratios of the medians.
``OML_FAST_KNN_SCREEN`` selects the screen: ``fp32`` (float32 GEMM) or ``auto`` (the default: the
AVX512-BF16 kernel where the CPU has it and the data's mean does not dominate its spread, else float32).
The results of the two are checked equal.

Data: ``random`` = N(0, 1) (``bench_knn.make_data``); ``clustered`` = N / 5 class centres N(0, 1) and
items centre + 0.25 N(0, 1), L2-normalised (tight classes: many candidates near the k-th distance);
``offset`` = ``random`` + 4 (far from the origin: ``auto`` keeps the float32 screen).

    python benchmarks/bench_knn_bf16.py --n 40000 --dim 128 --k 10 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (ROOT, os.path.dirname(os.path.abspath(__file__))):
    if path not in sys.path:
        sys.path.insert(0, path)

from bench_knn import make_data, run_gemm, run_oml_fast_metrics  # noqa: E402

SCREENS = ("fp32", "auto")


def clustered_data(n: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) // 5
    centres = torch.randn(int(labels[-1]) + 1, dim, generator=generator)
    x = centres[labels] + 0.25 * torch.randn(n, dim, generator=generator)
    return torch.nn.functional.normalize(x, dim=1), labels


def with_screen(screen: str, x: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    os.environ["OML_FAST_KNN_SCREEN"] = screen
    run_oml_fast_metrics(x, labels, k)


def check_equal(x: torch.Tensor, k: int) -> bool:
    from oml_fast.ops import knn

    ids = torch.arange(len(x))
    out = {}
    for screen in SCREENS:
        os.environ["OML_FAST_KNN_SCREEN"] = screen
        out[screen] = knn(x, x, k, "euclidean", ids, ids)
    return all(torch.equal(a, b) for a, b in zip(out["fp32"], out["auto"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", nargs="+", default=["random", "clustered"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import oml_fast  # noqa: F401

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    print(
        f"torch {torch.__version__}, {args.threads} threads, avx512_bf16: {'avx512_bf16' in flags}, "
        f"amx_bf16: {'amx_bf16' in flags}, load average {os.getloadavg()[0]:.1f}"
    )
    print("| data | N | D | k | method | median s | best s | x GEMM (medians) | results equal |")
    print("|------|---|---|---|--------|----------|--------|------------------|---------------|")
    for data in args.data:
        x, labels = (clustered_data if data == "clustered" else make_data)(args.n, args.dim)
        if data == "offset":
            x = x + 4.0
        equal = check_equal(x, args.k)
        runs = {
            "gemm": lambda: run_gemm(x, labels, args.k),
            **{f"knn+metrics {s}": (lambda s=s: with_screen(s, x, labels, args.k)) for s in SCREENS},
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        gemm = statistics.median(times["gemm"])
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"| {data} | {args.n} | {args.dim} | {args.k} | {name} | {median:.3f} | {min(values):.3f} "
                f"| {median / gemm:.2f} | {equal if name != 'gemm' else ''} |"
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
