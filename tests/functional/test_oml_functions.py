"""OML's functional names: calc_cmc / calc_precision / calc_map, FNMR by distances, batched kNN."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast.errors import InvalidInputError
from oml_fast.functional.knn import batched_knn, batched_knn_qg
from oml_fast.functional.metrics import (
    calc_cmc,
    calc_fnmr_at_fmr_by_distances,
    calc_map,
    calc_precision,
    calc_retrieval_metrics,
)


@functools.cache
def digits(n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    return torch.tensor(data.data[:n], dtype=torch.float32), torch.tensor(data.target[:n])


def dense_knn(queries, gallery, top_n, exclude):
    """The definition: full distance matrix, excluded pairs at +inf, stable sort (ties to the smaller index)."""
    dist = torch.cdist(queries.double(), gallery.double())
    dist[exclude] = float("inf")
    order = torch.sort(dist, dim=1, stable=True).indices[:, :top_n]
    kept = [row[~torch.isinf(dist[i, row])] for i, row in enumerate(order)]
    return kept


def test_single_metric_functions_equal_calc_retrieval_metrics():
    x, y = digits()
    _, retrieved, gt = batched_knn(x, torch.arange(0, 300, 3), torch.arange(300), top_n=10, labels_gt=y)
    gt_tops = [torch.isin(r, g) for r, g in zip(retrieved, gt)]
    n_gts = [len(g) for g in gt]
    top_k = (1, 3, 10)
    combined = calc_retrieval_metrics(
        retrieved, gt, cmc_top_k=top_k, precision_top_k=top_k, map_top_k=top_k, reduce=False
    )
    for name, function in (("cmc", calc_cmc), ("precision", calc_precision), ("map", calc_map)):
        values = function(gt_tops, n_gts, top_k)
        assert len(values) == len(top_k)
        for k, per_query in zip(top_k, values):
            torch.testing.assert_close(per_query, combined[name][k])


@pytest.mark.parametrize("function", [calc_cmc, calc_precision, calc_map])
def test_single_metric_functions_need_top_k(function):
    with pytest.raises(ValueError, match="top_k"):
        function([torch.tensor([True])], [1], top_k=())


def test_fnmr_by_distances():
    pos, neg = np.array([0, 0, 1, 1, 2, 2, 5, 5, 9, 9]), np.array([3, 3, 4, 4, 6, 6, 7, 7, 8, 8])
    metrics = calc_fnmr_at_fmr_by_distances(pos, neg, (0.1, 0.5))
    assert list(metrics) == ["fnmr@fmr"] and [round(float(v), 4) for v in metrics["fnmr@fmr"].values()] == [
        0.4,
        0.2,
    ]
    assert calc_fnmr_at_fmr_by_distances(pos, neg, ()) == {}


def test_batched_knn_matches_the_dense_definition():
    x, y = digits()
    sequences = torch.arange(300) // 4  # items of one sequence never retrieve each other
    ids_query, ids_gallery = torch.arange(0, 300, 2), torch.arange(100, 300)
    distances, retrieved, gt = batched_knn(
        x, ids_query, ids_gallery, top_n=7, sequence_ids=sequences, labels_gt=y
    )
    exclude = (ids_query[:, None] == ids_gallery[None, :]) | (
        sequences[ids_query][:, None] == sequences[ids_gallery][None, :]
    )
    expected = dense_knn(x[ids_query], x[ids_gallery], 7, exclude)
    assert all(torch.equal(r, e) for r, e in zip(retrieved, expected))
    for q, (d, r) in enumerate(zip(distances, retrieved)):
        torch.testing.assert_close(d, torch.cdist(x[ids_query[q]][None], x[ids_gallery[r]])[0])
    same_label = (y[ids_query][:, None] == y[ids_gallery][None, :]) & ~exclude
    assert all(torch.equal(g, torch.nonzero(row)[:, 0]) for g, row in zip(gt, same_label))


def test_batched_knn_qg_without_labels_and_short_gallery():
    x, _ = digits()
    distances, retrieved, gt = batched_knn_qg(x[:5], x[5:8], top_n=10)
    assert (
        gt is None
        and all(len(r) == 3 for r in retrieved)
        and all(torch.all(d[1:] >= d[:-1]) for d in distances)
    )


def test_batched_knn_rejects_one_sided_keys():
    x, y = digits()
    with pytest.raises(InvalidInputError, match="labels_query"):
        batched_knn_qg(x[:5], x[5:], top_n=3, labels_query=y[:5])
    with pytest.raises(AssertionError, match="labels_gt"):
        batched_knn(x, torch.arange(5), torch.arange(300), top_n=3, labels_gt=y[:10])
