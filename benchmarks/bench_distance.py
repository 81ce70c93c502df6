"""pairwise_distance vs torch.cdist vs the bare GEMM ``x1 @ x2.T``, measured in the same run.

Script (prints a markdown table; GFLOP/s counts the 2*N*M*D flops of the inner products):
    python benchmarks/bench_distance.py [--threads 2] [--sizes 1000 2000 5000 10000 20000] [--dims 64 128 512]
pytest-benchmark suite:
    pytest benchmarks/bench_distance.py
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import gflops, interleaved_best_seconds, markdown_table  # noqa: E402

import oml_fast  # noqa: E402
from oml_fast.ops import pairwise_distance  # noqa: E402


def run_grid(sizes: list[int], dims: list[int], repeats: int) -> str:
    rows = []
    for dim in dims:
        for n in sizes:
            x1, x2 = torch.randn(n, dim), torch.randn(n, dim)
            flop = 2.0 * n * n * dim
            # Taking turns, best of `repeats` (timing.interleaved_best_seconds): the three see the same load.
            best = interleaved_best_seconds(
                {
                    "gemm": lambda: x1 @ x2.T,
                    "ours": lambda: pairwise_distance(x1, x2),
                    "cdist": lambda: torch.cdist(x1, x2),
                },
                repeats,
            )
            t_gemm, t_ours, t_cdist = best["gemm"], best["ours"], best["cdist"]
            rows.append(
                [
                    n,
                    dim,
                    f"{t_ours:.4f} ({gflops(flop, t_ours):.0f})",
                    f"{t_cdist:.4f} ({gflops(flop, t_cdist):.0f})",
                    f"{t_gemm:.4f} ({gflops(flop, t_gemm):.0f})",
                    f"{t_ours / t_gemm:.2f}",
                    f"{t_cdist / t_ours:.2f}",
                ]
            )
            print(rows[-1], flush=True)
    header = [
        "N = M",
        "D",
        "oml_fast s (GFLOP/s)",
        "torch.cdist s (GFLOP/s)",
        "x1 @ x2.T s (GFLOP/s)",
        "oml_fast / GEMM",
        "cdist / oml_fast",
    ]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 20000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 128, 512])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, oml_fast {oml_fast.__version__}, threads {torch.get_num_threads()}")
    print(run_grid(args.sizes, args.dims, args.repeats))


# ---- pytest-benchmark suite -------------------------------------------------------------------
_N, _D = 2000, 128


def _inputs():
    torch.manual_seed(0)
    return torch.randn(_N, _D), torch.randn(_N, _D)


def test_bench_oml_fast_pairwise_distance(benchmark):
    x1, x2 = _inputs()
    benchmark(pairwise_distance, x1, x2)


def test_bench_torch_cdist(benchmark):
    x1, x2 = _inputs()
    benchmark(torch.cdist, x1, x2)


def test_bench_bare_gemm(benchmark):
    x1, x2 = _inputs()
    benchmark(lambda: x1 @ x2.T)


if __name__ == "__main__":
    main()
