"""Timing helpers shared by the benchmark scripts: medians of repeated runs after a warm-up, or the
best run of functions taking turns."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gflops(flop: float, seconds: float) -> float:
    return flop / seconds / 1e9


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def interleaved_best_seconds(fns: dict[str, object], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Fastest run of each function, the functions taking turns (a, b, c, a, b, c, ...).

    On a shared 2-core machine a parallel region can stall for a scheduler slice whenever another
    process holds a core: taking turns exposes every method to the same load, and the minimum is the
    reproducible figure (the median mostly measures the neighbours).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()  # type: ignore[operator]
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            best[name] = min(best[name], time.perf_counter() - start)
    return best
