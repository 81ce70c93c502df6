"""EmbeddingMetrics end to end: oml_fast vs OML 4.x (when importable), each run in its own process.

Every item is query and gallery (self excluded), 5 items per label, random Gaussian embeddings;
metrics cmc@1,5, precision@5, map@5, pcf@0.5, optionally fnmr@fmr=0.1 (all query-gallery pairs).

    python benchmarks/bench_embedding_metrics.py                 # N=40000, D=128, both configs
    python benchmarks/bench_embedding_metrics.py --n 10000 --repeats 1

Reports the median wall time of ``--repeats`` runs (after one warm-up at a small size) and the rise
in peak RSS of the process. OML runs only if ``import oml`` works in this interpreter (see
docs/peers.md for installing it beside numpy<2 with stand-ins for torchvision/albumentations/cv2).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

# Run from a source checkout: make `import oml_fast` find this repository.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(n: int, dim: int, seed: int = 0):
    import numpy as np
    import torch

    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=generator)
    labels = np.arange(n) // 5
    return embeddings, labels


def _run_oml_fast(n: int, dim: int, fmr: bool) -> dict:
    import torch

    from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
    from oml_fast.metrics import EmbeddingMetrics

    embeddings, labels = _data(n, dim)
    dataset = InMemoryQueryGalleryDataset(labels)
    calc = EmbeddingMetrics(
        dataset,
        cmc_top_k=(1, 5),
        precision_top_k=(5,),
        map_top_k=(5,),
        pcf_variance=(0.5,),
        fmr_vals=(0.1,) if fmr else (),
        verbose=False,
    )
    rss_before = _peak_rss_mb()
    start = time.perf_counter()
    calc.setup(n)
    calc.update(embeddings, torch.arange(n))
    metrics = calc.compute_metrics()
    elapsed = time.perf_counter() - start
    flat = {key: float(value) for key, value in calc.metrics_flat.items()}
    return {
        "seconds": elapsed,
        "rss_rise_mb": _peak_rss_mb() - rss_before,
        "metrics": flat,
        "n_keys": len(metrics),
    }


def _install_oml_stand_ins() -> None:
    # OML 4.0 imports these at module level; the metric code paths never call them (docs/peers.md).
    for name in ("torchvision", "torchvision.transforms", "albumentations", "albumentations.pytorch", "cv2"):
        sys.modules.setdefault(name, types.ModuleType(name))


def _run_oml(n: int, dim: int, fmr: bool) -> dict:
    _install_oml_stand_ins()
    import torch
    from oml.metrics.embeddings import EmbeddingMetrics  # type: ignore[import-not-found]

    from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset

    embeddings, labels = _data(n, dim)
    dataset = InMemoryQueryGalleryDataset(labels)
    calc = EmbeddingMetrics(
        dataset,
        cmc_top_k=(1, 5),
        precision_top_k=(5,),
        map_top_k=(5,),
        pcf_variance=(0.5,),
        fmr_vals=(0.1,) if fmr else tuple(),
        verbose=False,
    )
    rss_before = _peak_rss_mb()
    start = time.perf_counter()
    calc.setup(n)
    calc.update(embeddings, torch.arange(n))
    calc.compute_metrics()
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "rss_rise_mb": _peak_rss_mb() - rss_before}


def _child(impl: str, n: int, dim: int, fmr: bool) -> None:
    run = _run_oml_fast if impl == "oml_fast" else _run_oml
    run(min(n, 2000), dim, fmr)  # warm-up (thread pools, lazy imports)
    print(json.dumps(run(n, dim, fmr)))


def _measure(impl: str, n: int, dim: int, fmr: bool, repeats: int) -> dict | None:
    results = []
    for _ in range(repeats):
        command = [sys.executable, __file__, "--child", impl, "--n", str(n), "--dim", str(dim)]
        command += ["--fmr"] if fmr else []
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"[{impl}] failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return None
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = dict(results[0])
    best["seconds"] = statistics.median(r["seconds"] for r in results)
    best["rss_rise_mb"] = statistics.median(r["rss_rise_mb"] for r in results)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fmr", action="store_true")
    parser.add_argument("--child", choices=["oml_fast", "oml"])
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n, args.dim, args.fmr)
        return
    try:
        _install_oml_stand_ins()
        import oml  # type: ignore[import-not-found]  # noqa: F401

        has_oml = True
    except Exception:  # noqa: BLE001
        has_oml = False
    print(f"N={args.n} D={args.dim}, every item query and gallery, 5 per label, median of {args.repeats}")
    print(f"{'configuration':<44} {'oml_fast':>18} {'OML 4.x':>18} {'speed-up':>9}")
    for fmr in (False, True):
        label = "cmc@1,5 precision@5 map@5 pcf@0.5" + (" + fnmr@fmr=0.1" if fmr else "")
        ours = _measure("oml_fast", args.n, args.dim, fmr, args.repeats)
        theirs = _measure("oml", args.n, args.dim, fmr, args.repeats) if has_oml else None

        def cell(result: dict | None) -> str:
            return "n/a" if result is None else f"{result['seconds']:.2f} s, +{result['rss_rise_mb']:.0f} MB"

        ratio = f"{theirs['seconds'] / ours['seconds']:.1f}x" if ours and theirs else "-"
        print(f"{label:<44} {cell(ours):>18} {cell(theirs):>18} {ratio:>9}")
        if ours:
            print("   oml_fast metrics:", {k: round(v, 4) for k, v in ours["metrics"].items()})


if __name__ == "__main__":
    main()
