"""oml_fast.distributed on a real gloo process group of 2 CPU processes, against single-process results.

The process group is started once per module (spawning costs seconds); every scenario runs inside it
and the tests compare its outputs with the reference twin / ``EmbeddingMetrics`` in this process.
"""

from __future__ import annotations

import math

import ddp_workers
import numpy as np
import pytest
import torch

from oml_fast import ops
from oml_fast.distributed import (
    DDPBatchSamplerWrapper,
    EmbeddingMetricsDDP,
    RankShardSampler,
    distributed_knn,
    merge_topk,
    run_on_local_processes,
    shard_bounds,
    sharded_knn,
)
from oml_fast.functional.metrics import flatten_metrics
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.reference.retrieval import knn as reference_knn

WORLD_SIZE = 2


def _knn_cases() -> list[dict]:
    g = torch.Generator().manual_seed(0)
    cases = []
    # random floats, uneven shards
    cases.append(
        {
            "queries": torch.randn(30, 8, generator=g),
            "gallery": torch.randn(41, 8, generator=g),
            "k": 5,
            "metric": "euclidean",
            "bounds": [(0, 17), (17, 41)],
        }
    )
    # exact ties everywhere (small integer grid), ties must go to the smaller global index
    ints = torch.randint(-1, 2, (60, 3), generator=g).float()
    cases.append(
        {
            "queries": ints[:25],
            "gallery": ints,
            "k": 12,
            "metric": "sqeuclidean",
            "bounds": [(0, 31), (31, 60)],
        }
    )
    # exclusions by global ids (queries are gallery items) and by groups, cosine
    gallery = torch.randint(-2, 3, (50, 4), generator=g).float()
    gallery[3] = 0.0  # a zero vector
    query_rows = torch.arange(0, 50, 2)
    groups = torch.randint(0, 6, (50,), generator=g)
    cases.append(
        {
            "queries": gallery[query_rows],
            "gallery": gallery,
            "k": 9,
            "metric": "cosine",
            "query_ids": query_rows,
            "gallery_ids": torch.arange(50),
            "query_groups": groups[query_rows],
            "gallery_groups": groups,
            "bounds": [(0, 26), (26, 50)],
        }
    )
    # k larger than either shard and than the whole gallery (padding), with exclusions
    small = torch.randint(0, 3, (7, 2), generator=g).float()
    cases.append(
        {
            "queries": small,
            "gallery": small,
            "k": 10,
            "metric": "euclidean",
            "query_ids": torch.arange(7),
            "gallery_ids": torch.arange(7),
            "bounds": [(0, 3), (3, 7)],
        }
    )
    # an empty shard on rank 0, dot product
    cases.append(
        {
            "queries": torch.randn(6, 5, generator=g),
            "gallery": torch.randn(10, 5, generator=g),
            "k": 4,
            "metric": "dot",
            "bounds": [(0, 0), (0, 10)],
        }
    )
    # every rank holds the whole gallery and searches its slice; tiny gather rounds (chunked merge)
    ties = torch.randint(0, 2, (40, 2), generator=g).double()
    cases.append(
        {
            "queries": ties[:15],
            "gallery": ties,
            "k": 6,
            "metric": "euclidean",
            "query_ids": torch.arange(15),
            "gallery_ids": torch.arange(40),
            "whole_gallery_on_every_rank": True,
            "gather_pairs_per_round": 13,
        }
    )
    return cases


@pytest.fixture(scope="module")
def knn_run():
    cases = _knn_cases()
    return cases, run_on_local_processes(ddp_workers.knn_cases, WORLD_SIZE, args=(cases,))


@pytest.mark.parametrize("case_number", range(6))
def test_sharded_knn_equals_single_process(knn_run, case_number):
    cases, per_rank = knn_run
    case = cases[case_number]
    args = (
        case["queries"],
        case["gallery"],
        case["k"],
        case["metric"],
        case.get("query_ids"),
        case.get("gallery_ids"),
        case.get("query_groups"),
        case.get("gallery_groups"),
    )
    # The same op (compiled, or its twin until it lands) on the whole gallery in one process: identical.
    expected_dist, expected_idx = ops.knn(*args)
    # The reference twin: the same sorted distances (its rounding may order float near-ties differently).
    reference_dist, _ = reference_knn(*args)
    for rank in range(WORLD_SIZE):
        dist, idx = per_rank[rank][case_number]
        assert torch.equal(idx, expected_idx), (rank, idx, expected_idx)
        assert torch.equal(dist, expected_dist), (rank, dist, expected_dist)
        torch.testing.assert_close(dist, reference_dist, rtol=1e-5, atol=1e-5)
        assert dist.dtype == expected_dist.dtype and dist.shape == (len(case["queries"]), case["k"])


def test_sharded_knn_ranks_disagreeing_raise_on_every_rank(knn_run):
    _, per_rank = knn_run
    for rank in range(WORLD_SIZE):
        assert "same queries, k and metric" in per_rank[rank][-1]


@pytest.fixture(scope="module")
def metrics_run():
    seeds = [0, 1, 2]
    return seeds, run_on_local_processes(ddp_workers.metrics_ddp, WORLD_SIZE, args=(seeds, 1))


def _single_process(seed: int):
    case = ddp_workers.metrics_case(seed)
    calc = EmbeddingMetrics(ddp_workers.build_dataset(case), **ddp_workers.METRIC_ARGS)
    calc.setup()
    calc.update(case["embeddings"], torch.arange(len(case["labels"])))
    return calc


@pytest.mark.parametrize("position", range(3))
def test_embedding_metrics_ddp_equal_single_process_on_every_rank(metrics_run, position):
    seeds, per_rank = metrics_run
    single = _single_process(seeds[position])
    expected = flatten_metrics(single.compute_metrics())
    rr = single.retrieval_results
    for rank in range(WORLD_SIZE):
        metrics, distances, retrieved = per_rank[rank][position]
        flat = flatten_metrics(metrics)
        assert flat.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(torch.as_tensor(flat[key]), torch.as_tensor(value), equal_nan=True)
        assert torch.equal(retrieved, rr.retrieved_ids_dense)
        torch.testing.assert_close(distances, rr.distances_dense)


@pytest.mark.slow  # spawns its own process group
def test_oml_style_embedding_metrics_and_accumulator_gather_across_ranks():
    per_rank = run_on_local_processes(ddp_workers.oml_style_metrics_ddp, WORLD_SIZE, args=(1,))
    expected = flatten_metrics(_single_process(1).compute_metrics())
    n = len(ddp_workers.metrics_case(1)["labels"])
    for metrics, names in per_rank:
        flat = flatten_metrics(metrics)
        assert flat.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(torch.as_tensor(flat[key]), torch.as_tensor(value), equal_nan=True)
        assert names == [f"item{i}" for i in range(n)]


def test_sampler_wrapper_on_two_ranks():
    n, batch_size = 50, 4  # 12 batches per epoch
    per_rank = run_on_local_processes(ddp_workers.sampler_ddp, WORLD_SIZE, args=(n, batch_size, False))
    assert {r["len"] for r in per_rank} == {6}
    for epoch in range(2):
        rank_batches = [r["epochs"][epoch] for r in per_rank]
        assert all(len(b) == 6 for b in rank_batches)
        assert all(len(batch) == batch_size for b in rank_batches for batch in b)
        # 12 batches split in two: disjoint, together one epoch of the wrapped sampler
        items = [i for b in rank_batches for batch in b for i in batch]
        assert len(items) == len(set(items)) == 48
        # the same epoch as the wrapped sampler under the wrapper's seed (7 + epoch)
        np.random.seed(7 + epoch)
        full = list(ddp_workers.GlobalRNGBatchSampler(n, batch_size))
        assert rank_batches[0] == full[0::2] and rank_batches[1] == full[1::2]
    assert per_rank[0]["epochs"][0] != per_rank[0]["epochs"][1]  # epochs differ
    assert all(r["replay_epoch_0"] == r["epochs"][0] for r in per_rank)  # set_epoch replays
    assert all(r["global_state_kept"] for r in per_rank)  # the caller's random stream is untouched


# ----- single-process behaviour (no process group): everything is a pass-through -----


def test_single_process_functions_are_plain_knn():
    g = torch.Generator().manual_seed(1)
    queries, gallery = torch.randn(9, 3, generator=g), torch.randint(0, 2, (20, 3), generator=g).float()
    expected = ops.knn(queries, gallery, 25, "euclidean")
    for got in (sharded_knn(queries, gallery, 25), distributed_knn(queries, gallery, 25)):
        assert torch.equal(got[1], expected[1]) and torch.equal(got[0], expected[0])


def test_merge_topk_orders_by_distance_then_index_and_pads():
    g = torch.Generator().manual_seed(2)
    distances = torch.randint(0, 4, (50, 12), generator=g).float()
    indices = torch.randperm(200, generator=g)[:12].repeat(50, 1)
    indices[:, -3:] = -1
    distances[:, -3:] = 0.0  # padding never wins, whatever its distance
    out_dist, out_idx = merge_topk(distances, indices, 15)
    for row in range(50):
        pairs = sorted(
            (float(d), int(i)) for d, i in zip(distances[row].tolist(), indices[row].tolist()) if i >= 0
        )
        assert out_idx[row, :9].tolist() == [i for _, i in pairs]
        assert out_dist[row, :9].tolist() == [d for d, _ in pairs]
        assert out_idx[row, 9:].tolist() == [-1] * 6 and torch.isinf(out_dist[row, 9:]).all()


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`k`"):
        sharded_knn(torch.zeros(2, 3), torch.zeros(4, 3), k=0)
    with pytest.raises(ValueError, match="`queries` and `gallery_shard`"):
        sharded_knn(torch.zeros(2, 3), torch.zeros(4, 2), k=1)
    with pytest.raises(ValueError, match="`distances` and `indices`"):
        merge_topk(torch.zeros(2, 3), torch.zeros(2, 2, dtype=torch.long), 1)
    with pytest.raises(TypeError, match="`batch_sampler`"):
        DDPBatchSamplerWrapper(iter([[0]]))
    with pytest.raises(ValueError, match="`world_size`"):
        run_on_local_processes(ddp_workers.sampler_ddp, 0)


def test_shard_bounds_cover_everything_once():
    for n in range(0, 12):
        for world_size in range(1, 5):
            bounds = [shard_bounds(n, r, world_size) for r in range(world_size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("n_batches, world_size, drop_last", [(7, 2, False), (7, 3, True), (2, 3, False)])
def test_batches_of_rank_equal_counts_whole_batches(n_batches, world_size, drop_last):
    batches = [[2 * b, 2 * b + 1] for b in range(n_batches)]
    wrapper = DDPBatchSamplerWrapper(batches, drop_last=drop_last)
    per_rank = [wrapper.batches_of_rank(batches, r, world_size) for r in range(world_size)]
    expected_len = n_batches // world_size if drop_last else math.ceil(n_batches / world_size)
    assert all(len(b) == expected_len for b in per_rank)
    assert all(batch in batches for b in per_rank for batch in b)  # whole batches only
    taken = [tuple(batch) for b in per_rank for batch in b]
    if drop_last:
        assert len(set(taken)) == len(taken)  # no repeats
    else:
        assert {tuple(b) for b in batches} <= set(taken)  # nothing lost


def test_rank_shard_sampler_matches_distributed_sampler():
    from torch.utils.data.distributed import DistributedSampler

    for n in (1, 5, 8):
        for world_size in (2, 3):
            for rank in range(world_size):
                ours = RankShardSampler.indices_of_rank(n, rank, world_size)
                theirs = list(DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False))
                assert ours == theirs
    assert list(RankShardSampler(range(4))) == [0, 1, 2, 3] and len(RankShardSampler(4)) == 4


def test_embedding_metrics_ddp_single_process_is_embedding_metrics():
    single = _single_process(3)
    calc = EmbeddingMetricsDDP(
        ddp_workers.build_dataset(ddp_workers.metrics_case(3)), **ddp_workers.METRIC_ARGS
    )
    calc.setup()
    calc.sync()  # no-op without a process group
    calc.update(ddp_workers.metrics_case(3)["embeddings"], torch.arange(40))
    got, expected = flatten_metrics(calc.compute_metrics()), flatten_metrics(single.compute_metrics())
    for key, value in expected.items():
        torch.testing.assert_close(torch.as_tensor(got[key]), torch.as_tensor(value), equal_nan=True)


def test_embedding_metrics_ddp_accepts_the_samplers_repeated_indices():
    """EmbeddingMetrics rejects an index fed twice (issue 13); the DDP class takes the samplers' padding."""
    case = ddp_workers.metrics_case(3)
    embeddings = case["embeddings"]
    plain = EmbeddingMetrics(ddp_workers.build_dataset(case), **ddp_workers.METRIC_ARGS)
    plain.setup()
    plain.update(embeddings, torch.arange(40))
    with pytest.raises(ValueError, match="already collected"):
        plain.update(embeddings[:2], torch.arange(2))
    calc = EmbeddingMetricsDDP(ddp_workers.build_dataset(case), **ddp_workers.METRIC_ARGS)
    calc.setup(num_samples=42)  # as OML: the number of items this process is fed, padding included
    calc.update(embeddings, torch.arange(40))
    calc.update(embeddings[:2], torch.arange(2))  # RankShardSampler pads with the first items
    got, expected = flatten_metrics(calc.compute_metrics()), flatten_metrics(plain.compute_metrics())
    for key, value in expected.items():
        torch.testing.assert_close(torch.as_tensor(got[key]), torch.as_tensor(value), equal_nan=True)
