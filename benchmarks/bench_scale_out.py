"""Sharded validation over 1, 2, 4 local processes (gloo): time, peak memory per rank, bytes exchanged.

Every item is a query and a gallery item (1-vs-rest, itself excluded), 5 items per label, embeddings
= a Gaussian centre per label + Gaussian noise (so cmc@1 is far from 0 and shows every world size agrees). Each rank holds ``N / W`` embeddings (as a DistributedSampler gives it), then
``EmbeddingMetricsDDP.compute_metrics`` all-gathers the embeddings, searches its slice of the gallery
for every query (the compiled ``knn`` op) and merges the all-gathered top-k lists
(``oml_fast.distributed.knn.distributed_knn``). Per rank: wall time of ``compute_metrics``, the rise of
peak RSS over the rank's baseline (data already made), and the bytes it received in collectives
(counted by wrapping ``torch.distributed.all_gather`` / ``all_gather_object``).

    python benchmarks/bench_scale_out.py [--n 40000 200000] [--world-sizes 1 2 4] [--dim 128] [--k 10]

On one machine the ranks share its cores (``--threads`` each), so time per rank shows the work split,
not a speed-up; bytes and memory per rank are what carries over to many machines (see
benchmarks/README.md, "Scale-out").
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import time

import torch
import torch.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset  # noqa: E402
from oml_fast.distributed import EmbeddingMetricsDDP, run_on_local_processes  # noqa: E402

ITEMS_PER_LABEL = 5


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _ByteCounter:
    """Counts the bytes this rank receives through all_gather / all_gather_object (others' parts)."""

    def __init__(self) -> None:
        self.received = 0
        self._all_gather = dist.all_gather
        self._all_gather_object = dist.all_gather_object

    def __enter__(self) -> _ByteCounter:
        def all_gather(tensor_list, tensor, *args, **kwargs):  # type: ignore[no-untyped-def]
            out = self._all_gather(tensor_list, tensor, *args, **kwargs)
            others = len(tensor_list) - 1
            self.received += others * tensor.numel() * tensor.element_size()
            return out

        def all_gather_object(object_list, obj, *args, **kwargs):  # type: ignore[no-untyped-def]
            out = self._all_gather_object(object_list, obj, *args, **kwargs)
            self.received += sum(len(pickle.dumps(o)) for o in object_list) - len(pickle.dumps(obj))
            return out

        dist.all_gather, dist.all_gather_object = all_gather, all_gather_object
        return self

    def __exit__(self, *exc: object) -> None:
        dist.all_gather, dist.all_gather_object = self._all_gather, self._all_gather_object


def rank_run(rank: int, world_size: int, n: int, dim: int, k: int) -> dict:
    """One rank: its shard of a seeded dataset, then a timed compute_metrics."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) // ITEMS_PER_LABEL
    centres = torch.randn(int(labels[-1]) + 1, dim, generator=generator)
    embeddings = centres[labels] + 0.7 * torch.randn(n, dim, generator=generator)
    dataset = InMemoryQueryGalleryDataset(labels=labels.tolist())
    indices = torch.arange(rank, n, world_size)  # DistributedSampler's interleaved split
    metrics = EmbeddingMetricsDDP(
        dataset, cmc_top_k=(1, k), precision_top_k=(k,), map_top_k=(k,), pcf_variance=(), verbose=False
    )
    metrics.setup(num_samples=n)
    metrics.update(embeddings[indices], indices)
    del embeddings
    dist.barrier()
    baseline = _peak_rss_mb()
    with _ByteCounter() as counter:
        start = time.perf_counter()
        result = metrics.compute_metrics()
        seconds = time.perf_counter() - start
    cmc1 = float(result["OVERALL"]["cmc"][1])
    return {
        "seconds": seconds,
        "rss_mb": _peak_rss_mb() - baseline,
        "received_mb": counter.received / 2**20,
        "cmc1": cmc1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[40000, 200000])
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {args.threads} thread(s) per rank, {os.cpu_count()} cores, D={args.dim}, k={args.k}"
    )
    header = ["N", "ranks", "max s per rank", "max +RSS MB per rank", "received MB per rank", "cmc@1"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for n in args.n:
        for world_size in args.world_sizes:
            rows = run_on_local_processes(
                rank_run,
                world_size=world_size,
                args=(n, args.dim, args.k),
                timeout_s=3600,
                threads_per_process=args.threads,
            )
            assert len({r["cmc1"] for r in rows}) == 1, "ranks disagree"
            print(
                f"| {n} | {world_size} | {max(r['seconds'] for r in rows):.2f} | "
                f"{max(r['rss_mb'] for r in rows):.1f} | {max(r['received_mb'] for r in rows):.1f} | "
                f"{rows[0]['cmc1']:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
