"""calc_retrieval_metrics, calc_fnmr_at_fmr, calc_pcf: hand-computed cases from metrics.md and OML's docs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oml_fast.functional import calc_fnmr_at_fmr, calc_pcf, calc_retrieval_metrics, flatten_metrics


def one_query(g: list[int], n_gt: int, **top_k):
    retrieved = [torch.arange(len(g))]
    relevant = [i for i, v in enumerate(g) if v] + list(range(100, 100 + n_gt - sum(g)))
    return calc_retrieval_metrics(
        retrieved, [torch.tensor(relevant, dtype=torch.long)], verbose=False, **top_k
    )


def test_precision_is_capped_by_n_gt():
    m = one_query([1, 1, 1, 0, 0], 3, cmc_top_k=(1,), precision_top_k=(1, 2, 3, 4, 5), map_top_k=(1,))
    assert [float(v) for v in m["precision"].values()] == [1.0] * 5


def test_map_is_normalised_by_hits():
    m = one_query([1, 0, 1, 0, 0], 10, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(5,))
    assert float(m["map"][5]) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_k_larger_than_list_is_clipped():
    m = one_query([0, 1], 3, cmc_top_k=(5,), precision_top_k=(5,), map_top_k=(5,))
    assert (float(m["cmc"][5]), float(m["precision"][5]), float(m["map"][5])) == (1.0, 0.5, 0.5)


def test_edge_cases():
    empty = torch.zeros(0, dtype=torch.long)
    retrieved = [empty, empty, torch.tensor([0, 1])]
    gt = [empty, torch.tensor([3]), empty]
    with pytest.warns(UserWarning, match="1 of 3 queries"):
        m = calc_retrieval_metrics(
            retrieved, gt, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(1,), reduce=False
        )
    assert m["cmc"][1].tolist() == [1.0, 0.0, 0.0]
    assert m["map"][1].tolist() == [1.0, 0.0, 0.0]
    precision = m["precision"][1].tolist()
    assert precision[:2] == [1.0, 0.0] and math.isnan(precision[2])


def test_oml_docstring_examples():
    # Examples of OML's calc_cmc / calc_precision / calc_map.
    gt_tops = [[1, 0], [0, 1, 1], [0, 0], []]
    retrieved = [torch.arange(len(g)) for g in gt_tops]
    for n_gts, name, expected in [
        ([2, 2, 1, 0], "cmc", {1: [1, 0, 0, 1], 2: [1, 1, 0, 1]}),
        ([2, 3, 5, 2], "precision", {1: [1, 0, 0, 0], 2: [0.5, 0.5, 0, 0]}),
    ]:
        gt = [
            torch.tensor([i for i, v in enumerate(g) if v] + list(range(10, 10 + n - sum(g))))
            for g, n in zip(gt_tops, n_gts)
        ]
        m = calc_retrieval_metrics(
            retrieved, gt, cmc_top_k=(1, 2), precision_top_k=(1, 2), map_top_k=(1,), reduce=False
        )
        for k, values in expected.items():
            assert m[name][k].tolist() == pytest.approx(values)
    gt_tops = [[1, 0], [0, 1], [0, 0, 0, 0], []]
    retrieved = [torch.arange(len(g)) for g in gt_tops]
    gt = [torch.tensor([0]), torch.tensor([1]), torch.tensor([10, 11]), torch.zeros(0, dtype=torch.long)]
    m = calc_retrieval_metrics(
        retrieved, gt, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(1, 2), reduce=False
    )
    assert m["map"][1].tolist() == [1, 0, 0, 1] and m["map"][2].tolist() == [1, 0.5, 0, 1]


def test_categories_and_flat_names():
    retrieved = [torch.tensor([0]), torch.tensor([0]), torch.tensor([0])]
    gt = [torch.tensor([0]), torch.tensor([1]), torch.tensor([0])]
    m = calc_retrieval_metrics(
        retrieved,
        gt,
        query_categories=np.array(["b", "a", "b"]),
        cmc_top_k=(1,),
        precision_top_k=(1,),
        map_top_k=(1,),
    )
    assert list(m) == ["OVERALL", "b", "a"]
    assert float(m["OVERALL"]["cmc"][1]) == pytest.approx(2 / 3)
    assert float(m["b"]["cmc"][1]) == 1.0 and float(m["a"]["cmc"][1]) == 0.0
    assert "a/precision/1" in flatten_metrics(m)
    tensor_categories = calc_retrieval_metrics(
        retrieved,
        gt,
        query_categories=torch.tensor([5, 6, 5]),
        cmc_top_k=(1,),
        precision_top_k=(1,),
        map_top_k=(1,),
    )
    assert list(tensor_categories) == ["OVERALL", 5, 6]


@pytest.mark.parametrize("bad", [(0,), (-1,), (1.5,), (True,)])
@pytest.mark.parametrize("name", ["cmc_top_k", "precision_top_k", "map_top_k"])
def test_top_k_value_errors(name, bad):
    with pytest.raises(ValueError, match=name):
        calc_retrieval_metrics([torch.tensor([0])], [torch.tensor([0])], **{name: bad})


@pytest.mark.parametrize("name", ["cmc", "precision", "map"])
def test_empty_top_k_skips_the_metric(name):
    """As OML 4.0: an empty ``top_k`` leaves that metric out; all three empty give an empty result."""
    retrieved, gt = [torch.tensor([0, 1]), torch.tensor([1, 0])], [torch.tensor([0]), torch.tensor([0])]
    metrics = calc_retrieval_metrics(retrieved, gt, **{f"{name}_top_k": ()})
    assert name not in metrics and len(metrics) == 2
    assert calc_retrieval_metrics(retrieved, gt, cmc_top_k=(), precision_top_k=(), map_top_k=()) == {}
    by_category = calc_retrieval_metrics(
        retrieved, gt, query_categories=np.array(["a", "b"]), cmc_top_k=(), precision_top_k=(), map_top_k=()
    )
    assert by_category == {"OVERALL": {}, "a": {}, "b": {}}


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry per query"):
        calc_retrieval_metrics([torch.tensor([0])], [])


def test_fnmr_at_fmr_matches_numpy():
    rng = np.random.default_rng(0)
    pos, neg = rng.random(50).astype(np.float32), rng.random(300).astype(np.float32) + 0.3
    got = calc_fnmr_at_fmr(pos, neg, (0.05, 0.3, 1.0))
    expected = [(pos >= t).mean() for t in np.quantile(neg, (0.05, 0.3, 1.0))]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-7)
    with pytest.raises(ValueError, match="fmr_vals"):
        calc_fnmr_at_fmr(pos, neg, (1.5,))


def test_pcf_matches_sklearn_and_is_capped():
    from sklearn.decomposition import PCA

    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 3, 16)
    ratio = PCA().fit(x.numpy()).explained_variance_ratio_
    for v in (0.3, 0.5, 0.9):
        expected = (np.searchsorted(np.cumsum(ratio), v, side="right") + 1) / 16
        assert float(calc_pcf(x, (v,))[0]) == pytest.approx(min(expected, 1.0))
    assert float(calc_pcf(x, (1.0,))[0]) <= 1.0
    with pytest.raises(ValueError, match="pcf_variance"):
        calc_pcf(x, (2,))
