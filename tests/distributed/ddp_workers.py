"""Functions run on every rank of a real gloo process group (imported by name in the spawned processes).

Each returns plain data that the test process compares with a single-process computation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.distributed import (
    DDPBatchSamplerWrapper,
    EmbeddingMetricsDDP,
    RankShardSampler,
    distributed_knn,
    sharded_knn,
)
from oml_fast.distributed import knn as knn_module


def knn_cases(rank: int, world_size: int, cases: list[dict[str, Any]]) -> list[Any]:
    """Each case: full queries/gallery/ids/groups and ``bounds`` (one ``(start, stop)`` per rank)."""
    results: list[Any] = []
    for case in cases:
        if case.get("gather_pairs_per_round"):
            knn_module.GATHER_PAIRS_PER_ROUND = case["gather_pairs_per_round"]
        if case.get("whole_gallery_on_every_rank"):
            out = distributed_knn(
                case["queries"],
                case["gallery"],
                case["k"],
                case["metric"],
                case.get("query_ids"),
                case.get("gallery_ids"),
                case.get("query_groups"),
                case.get("gallery_groups"),
            )
        else:
            start, stop = case["bounds"][rank]

            def shard(x, start=start, stop=stop):
                return None if x is None else x[start:stop]

            out = sharded_knn(
                case["queries"],
                case["gallery"][start:stop],
                case["k"],
                case["metric"],
                case.get("query_ids"),
                shard(case.get("gallery_ids")),
                case.get("query_groups"),
                shard(case.get("gallery_groups")),
            )
        knn_module.GATHER_PAIRS_PER_ROUND = 1 << 22
        results.append(out)
    # Bad input: ranks disagree on k. Every rank must raise (none may hang in a collective).
    try:
        sharded_knn(torch.zeros(3, 2), torch.zeros(2, 2), k=2 + rank)
        results.append("no error")
    except ValueError as error:
        results.append(str(error))
    return results


def metrics_case(seed: int) -> dict[str, Any]:
    """A random labelled query/gallery set with categories and sequences, and its embeddings."""
    rng = np.random.default_rng(seed)
    n = 37 + seed  # odd sizes: the shard sampler pads with duplicates
    labels = rng.integers(0, 8, n)
    is_query = rng.random(n) < 0.6
    is_gallery = rng.random(n) < 0.8
    is_query[0], is_gallery[1] = True, True
    return {
        "labels": labels,
        "is_query": is_query,
        "is_gallery": is_gallery,
        "categories": rng.choice(np.array(["cat", "dog"]), n),
        "sequences": rng.integers(0, n // 3, n) if seed % 2 else None,
        # Integer-valued embeddings make exact distance ties frequent.
        "embeddings": torch.from_numpy(rng.integers(-2, 3, (n, 4)).astype(np.float32)),
    }


METRIC_ARGS = {
    "cmc_top_k": (1, 3, 50),
    "precision_top_k": (2, 5),
    "map_top_k": (3, 100),
    "fmr_vals": (0.1, 0.5),
    "pcf_variance": (0.5, 0.9),
    "verbose": False,
}


def build_dataset(case: dict[str, Any]) -> InMemoryQueryGalleryDataset:
    return InMemoryQueryGalleryDataset(
        labels=case["labels"],
        is_query=case["is_query"],
        is_gallery=case["is_gallery"],
        categories=case["categories"],
        sequences=case["sequences"],
    )


def metrics_ddp(rank: int, world_size: int, seeds: list[int], idle_rank: int | None) -> list[Any]:
    """Every rank feeds its shard (in shuffled small batches) to EmbeddingMetricsDDP; ``idle_rank`` feeds
    nothing in the first case (all its items are also fed by the other ranks)."""
    results = []
    for number, seed in enumerate(seeds):
        case = metrics_case(seed)
        calc = EmbeddingMetricsDDP(build_dataset(case), **METRIC_ARGS)
        calc.setup()
        indices = RankShardSampler.indices_of_rank(len(case["labels"]), rank, world_size)
        if number == 0 and idle_rank is not None:
            # the other ranks cover everything; this one has nothing to add
            indices = [] if rank == idle_rank else list(range(len(case["labels"])))
        order = np.random.default_rng(seed + rank).permutation(len(indices))
        for chunk in np.array_split(np.asarray(indices)[order], 5):
            if len(chunk):
                calc.update(case["embeddings"][torch.from_numpy(chunk)], torch.from_numpy(chunk))
        metrics = calc.compute_metrics()
        rr = calc.retrieval_results
        assert rr is not None
        results.append((metrics, rr.distances_dense, rr.retrieved_ids_dense))
    return results


def oml_style_metrics_ddp(rank: int, world_size: int, seed: int) -> list[Any]:
    """OML's way under DDP: plain ``EmbeddingMetrics``, each rank set up with the number of items it sees
    (its shard, padded with duplicates as DistributedSampler does); ``acc.sync()`` gathers them."""
    from oml_fast.metrics import EmbeddingMetrics
    from oml_fast.metrics.accumulation import Accumulator

    case = metrics_case(seed)
    n = len(case["labels"])
    per_rank = -(-n // world_size)
    indices = [(rank + world_size * i) % n for i in range(per_rank)]  # strided, wrapping: duplicates
    calc = EmbeddingMetrics(build_dataset(case), **METRIC_ARGS)
    calc.setup(num_samples=len(indices))
    for chunk in np.array_split(np.asarray(indices), 3):
        calc.update(case["embeddings"][torch.from_numpy(chunk)], chunk.tolist())
    metrics = calc.compute_metrics()

    acc = Accumulator(keys_to_accumulate=("names",))
    acc.refresh(len(indices))
    acc.update_data({"names": [f"item{i}" for i in indices]}, indices=indices)
    return [metrics, acc.sync().storage["names"]]


class GlobalRNGBatchSampler:
    """Shuffles ``0 .. n - 1`` with NumPy's global generator into batches of ``batch_size`` (as OML's samplers)."""

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self):
        order = np.random.permutation(self.n)
        return iter(order[i * self.batch_size : (i + 1) * self.batch_size].tolist() for i in range(len(self)))


def sampler_ddp(rank: int, world_size: int, n: int, batch_size: int, drop_last: bool) -> dict[str, Any]:
    # Different global states per rank: the wrapper must still give every rank the same epoch.
    np.random.seed(1000 + rank)
    before = np.random.get_state()[1][:5].tolist()
    wrapper = DDPBatchSamplerWrapper(GlobalRNGBatchSampler(n, batch_size), seed=7, drop_last=drop_last)
    epochs = [list(wrapper) for _ in range(2)]
    wrapper.set_epoch(0)
    replay = list(wrapper)
    return {
        "len": len(wrapper),
        "epochs": epochs,
        "replay_epoch_0": replay,
        "global_state_kept": np.random.get_state()[1][:5].tolist() == before,
    }
