"""OML's functional names and the Accumulator agree with OML 4.0's on seeded random cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oml_agreement import assert_close, assert_metric_dicts_agree, oml_call
from random_cases import SEEDS, random_top_k, seeded


def _random_gt_tops(rng: np.random.RandomState) -> tuple[list[torch.Tensor], list[int]]:
    """Lists of any length (also empty), queries with and without relevant items."""
    nq = int(rng.randint(1, 30))
    gt_tops, n_gts = [], []
    for _ in range(nq):
        length = int(rng.randint(0, 12))
        hits = torch.from_numpy(rng.rand(length) < 0.4)
        gt_tops.append(hits)
        n_gts.append(int(hits.sum()) + int(rng.randint(0, 4)) if rng.rand() < 0.9 else int(hits.sum()))
    return gt_tops, n_gts


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["calc_cmc", "calc_precision", "calc_map"])
def test_single_metric_functions(seed: int, name: str) -> None:
    import oml.functional.metrics as oml_metrics

    import oml_fast.functional.metrics as ours

    rng = seeded(seed)
    gt_tops, n_gts = _random_gt_tops(rng)
    top_k = random_top_k(rng, 14)
    theirs = oml_call(getattr(oml_metrics, name), gt_tops, n_gts, top_k)
    mine = getattr(ours, name)(gt_tops, n_gts, top_k)
    assert len(mine) == len(theirs)
    for k, a, b in zip(top_k, mine, theirs):
        assert_close(a, b, f"{name}@{k}")


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_empty_top_k_skips_as_in_oml(seed: int) -> None:
    from oml.functional.metrics import calc_retrieval_metrics as oml_calc

    from oml_fast.functional import calc_retrieval_metrics

    rng = seeded(seed)
    retrieved = [torch.from_numpy(rng.permutation(10)[: rng.randint(0, 10)]).long() for _ in range(6)]
    gt = [torch.from_numpy(np.sort(rng.permutation(10)[: rng.randint(1, 5)])).long() for _ in range(6)]
    empty = ["cmc_top_k", "precision_top_k", "map_top_k"][: int(rng.randint(1, 4))]
    kwargs = {
        name: (() if name in empty else (1, 3)) for name in ("cmc_top_k", "precision_top_k", "map_top_k")
    }
    categories = np.array([0, 1, 0, 1, 1, 0]) if seed % 2 else None
    theirs = oml_call(oml_calc, retrieved, gt, query_categories=categories, verbose=False, **kwargs)
    ours = calc_retrieval_metrics(retrieved, gt, query_categories=categories, verbose=False, **kwargs)
    assert_metric_dicts_agree(ours, theirs)
    assert set(ours) == set(theirs)


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_knn(seed: int) -> None:
    """Continuous random embeddings (no ties), overlapping query and gallery rows, sequences, labels."""
    from oml.functional.knn import batched_knn as oml_knn

    from oml_fast.functional.knn import batched_knn

    rng = seeded(seed)
    n = int(rng.randint(5, 80))
    embeddings = torch.from_numpy(rng.randn(n, int(rng.randint(2, 10)))).float()
    nq = int(rng.randint(1, n + 1))
    ng = int(rng.randint(max(1, n - nq), n + 1))  # OML asserts n <= nq + ng
    ids_query = torch.from_numpy(np.sort(rng.permutation(n)[:nq])).long()
    ids_gallery = torch.from_numpy(np.sort(rng.permutation(n)[:ng])).long()
    labels = torch.from_numpy(rng.randint(0, 5, n)).long()
    sequences = torch.from_numpy(rng.randint(0, n, n)).long() if rng.rand() < 0.5 else None
    top_n = int(rng.randint(1, n + 3))
    theirs = oml_call(
        oml_knn, embeddings, ids_query, ids_gallery, top_n, sequence_ids=sequences, labels_gt=labels
    )
    ours = batched_knn(embeddings, ids_query, ids_gallery, top_n, sequence_ids=sequences, labels_gt=labels)
    for what, mine, their in zip(("distances", "retrieved_ids", "gt_ids"), ours, theirs):
        assert mine is not None and their is not None and len(mine) == len(their)
        for a, b in zip(mine, their):
            if what == "distances":
                assert_close(a, b, what, tol=1e-4)
            else:
                assert a.tolist() == b.tolist(), what


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_accumulator(seed: int) -> None:
    """Shuffled batches with indices (duplicates included): the synced storage equals OML's."""
    from oml.metrics.accumulation import Accumulator as OmlAccumulator

    from oml_fast.metrics.accumulation import Accumulator

    rng = seeded(seed)
    n = int(rng.randint(2, 40))
    order = rng.permutation(n).tolist() + rng.randint(0, n, int(rng.randint(0, 5))).tolist()
    values = torch.from_numpy(rng.randn(n, 3)).float()
    synced = []
    for cls in (Accumulator, OmlAccumulator):
        acc = cls(keys_to_accumulate=("x", "names"))
        acc.refresh(len(order))
        for start in range(0, len(order), 7):
            part = order[start : start + 7]
            acc.update_data({"x": values[part], "names": [f"item{i}" for i in part]}, indices=part)
        synced.append(acc.sync())
    ours, theirs = synced
    assert torch.equal(ours.storage["x"], theirs.storage["x"])
    assert ours.storage["names"] == theirs.storage["names"]
