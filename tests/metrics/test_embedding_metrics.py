"""EmbeddingMetrics against the straightforward reference (full matrix + Python loops) on random datasets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from oml_reference import reference_metrics

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.metrics import fnmr as fnmr_module
from oml_fast.metrics.accumulation import Accumulator
from oml_fast.metrics.fnmr import calc_fnmr_at_fmr_all_pairs


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 50))
    dim = int(rng.integers(2, 9))
    labels = rng.integers(0, max(1, n // 3), n)
    is_query = rng.random(n) < 0.7
    is_gallery = rng.random(n) < 0.8
    is_query[0], is_gallery[-1] = True, True
    if seed % 3 == 0:  # every item query and gallery (self-exclusion)
        is_query[:], is_gallery[:] = True, True
    categories = rng.choice(np.array(["cat", "dog", "bird"]), n) if seed % 2 == 0 else None
    sequences = rng.integers(0, n // 2 + 1, n) if seed % 4 == 1 else None
    embeddings = rng.standard_normal((n, dim))
    return embeddings, labels, is_query, is_gallery, categories, sequences


def assert_close(actual, expected):
    actual = float(actual)
    if math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("seed", range(24))
def test_matches_reference(seed):
    embeddings, labels, is_query, is_gallery, categories, sequences = random_case(seed)
    top = dict(cmc_top_k=(1, 3, 100), precision_top_k=(2, 5), map_top_k=(1, 10))
    dataset = InMemoryQueryGalleryDataset(
        labels, is_query, is_gallery, categories=categories, sequences=sequences
    )
    calc = EmbeddingMetrics(dataset, fmr_vals=(0.1, 0.5), pcf_variance=(0.5, 0.9), verbose=False, **top)
    calc.setup()
    calc.update(torch.from_numpy(embeddings), torch.arange(len(labels)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calc.compute_metrics()
    unreduced, reduced, lists = reference_metrics(
        embeddings,
        labels,
        is_query,
        is_gallery,
        categories,
        sequences,
        **top,
        fmr_vals=(0.1, 0.5),
        pcf_variance=(0.5, 0.9),
    )
    assert list(result.keys()) == list(reduced.keys())
    for category, metrics in reduced.items():
        assert set(result[category]) == set(metrics)
        for name, per_k in metrics.items():
            for k, value in per_k.items():
                assert_close(result[category][name][k], value)
                if name in ("cmc", "precision", "map"):
                    np.testing.assert_allclose(
                        calc.metrics_unreduced[category][name][k].numpy(),
                        unreduced[category][name][k],
                        atol=1e-6,
                    )
    assert [x.tolist() for x in calc.retrieval_results.retrieved_ids] == [x[:100] for x in lists]


def test_update_order_and_batch_size_do_not_matter():
    embeddings, labels, is_query, is_gallery, categories, sequences = random_case(2)
    dataset = InMemoryQueryGalleryDataset(labels, is_query, is_gallery, categories=categories)
    results = []
    for seed in range(4):
        calc = EmbeddingMetrics(
            dataset, cmc_top_k=(1, 2), precision_top_k=(3,), map_top_k=(3,), verbose=False
        )
        calc.setup(len(labels))
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        start = 0
        while start < len(order):
            size = int(torch.randint(1, 9, (1,), generator=torch.Generator().manual_seed(seed * 100 + start)))
            batch = order[start : start + size]
            calc.update(torch.from_numpy(embeddings)[batch], batch if seed % 2 else batch.tolist())
            start += size
        results.append(calc.metrics_flat if calc.metrics else None)
        results[-1] = {key: float(v) for key, v in _flat(calc.compute_metrics()).items()}
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for key in other:
            assert other[key] == pytest.approx(results[0][key], nan_ok=True)


def _flat(metrics):
    from oml_fast.functional import flatten_metrics

    return flatten_metrics(metrics)


def test_missing_items_raise():
    dataset = InMemoryQueryGalleryDataset(labels=[0, 0, 1, 1])
    calc = EmbeddingMetrics(dataset, verbose=False)
    calc.setup()
    calc.update(torch.zeros(2, 3), [0, 2])
    with pytest.raises(
        ValueError, match=r"collected 2 out of 4 items; missing indices \(first ones\): \[1, 3\]"
    ):
        calc.compute_metrics()
    with pytest.raises(ValueError, match="indices"):
        calc.update(torch.zeros(1, 3), [4])
    with pytest.raises(ValueError, match="embeddings"):
        calc.update(torch.zeros(2, 3), [1])


@pytest.mark.parametrize("bad", [(0,), (-1,), (1.5,)])
def test_top_k_validation(bad):
    dataset = InMemoryQueryGalleryDataset(labels=[0, 0])
    with pytest.raises(ValueError, match="cmc_top_k"):
        EmbeddingMetrics(dataset, cmc_top_k=bad)


def test_empty_top_k_skips_the_metric():
    """As OML 4.0: ``map_top_k=()`` gives no ``"map"``; all three empty leave only the other metrics."""
    embeddings, labels, is_query, is_gallery, categories, _ = random_case(4)
    embeddings = torch.from_numpy(embeddings)
    dataset = InMemoryQueryGalleryDataset(labels, is_query, is_gallery, categories=categories)
    calc = EmbeddingMetrics(dataset, map_top_k=(), verbose=False)
    calc.setup()
    calc.update(embeddings, list(range(len(embeddings))))
    metrics = calc.compute_metrics()
    assert all("map" not in per_category and "cmc" in per_category for per_category in metrics.values())
    calc = EmbeddingMetrics(dataset, cmc_top_k=(), precision_top_k=(), map_top_k=(), verbose=False)
    calc.setup()
    calc.update(embeddings, list(range(len(embeddings))))
    assert all(set(per_category) == {"pcf"} for per_category in calc.compute_metrics().values())


def test_acc_is_an_oml_accumulator_in_dataset_order():
    """``EmbeddingMetrics.acc`` as in OML: the collected embeddings, sorted by index after ``compute_metrics``."""
    embeddings, labels, is_query, is_gallery, _, _ = random_case(6)
    embeddings = torch.from_numpy(embeddings)
    dataset = InMemoryQueryGalleryDataset(labels, is_query, is_gallery)
    calc = EmbeddingMetrics(dataset, verbose=False)
    calc.setup()
    order = torch.randperm(len(embeddings))
    for part in torch.split(order, 7):
        calc.update(embeddings[part], part)
    assert isinstance(calc.acc, Accumulator) and calc.acc.collected_samples == len(embeddings)
    calc.compute_metrics()
    torch.testing.assert_close(calc.acc.storage["__embeddings"], embeddings)


def test_flat_names_worst_queries_and_overall_only():
    embeddings, labels, is_query, is_gallery, categories, _ = random_case(4)
    dataset = InMemoryQueryGalleryDataset(labels, is_query, is_gallery, categories=categories)
    calc = EmbeddingMetrics(
        dataset,
        cmc_top_k=(1,),
        precision_top_k=(2,),
        map_top_k=(2,),
        return_only_overall_category=True,
        verbose=False,
    )
    calc.setup()
    calc.update(torch.from_numpy(embeddings), range(len(labels)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calc.compute_metrics()
    assert list(result) == ["OVERALL"]
    flat = calc.metrics_flat
    assert "OVERALL/cmc/1" in flat and "OVERALL/pcf/0.5" in flat
    worst = calc.get_worst_queries_ids("OVERALL/cmc/1", n_queries=3)
    values = calc.metrics_unreduced["OVERALL"]["cmc"][1]
    assert len(worst) == min(3, len(values))
    assert all(
        float(values[i]) <= float(values[j]) for i in worst for j in range(len(values)) if j not in worst
    )


def test_nan_precision_warns_with_count():
    # query 0 (label 0) has its only positive in its own sequence; it retrieves the negatives
    dataset = InMemoryQueryGalleryDataset(
        labels=[0, 0, 1, 1, 1],
        is_query=[1, 0, 0, 0, 0],
        is_gallery=[0, 1, 1, 1, 1],
        sequences=[7, 7, 1, 2, 3],
    )
    calc = EmbeddingMetrics(dataset, cmc_top_k=(1,), precision_top_k=(2,), map_top_k=(2,), verbose=True)
    calc.setup()
    calc.update(torch.arange(5.0)[:, None], range(5))
    with pytest.warns(UserWarning, match="1 of 1 queries"):
        result = calc.compute_metrics()
    assert math.isnan(float(result["OVERALL"]["precision"][2]))
    assert float(result["OVERALL"]["cmc"][1]) == 0.0 and float(result["OVERALL"]["map"][2]) == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_fnmr_streaming_refinement_is_exact(seed, monkeypatch):
    # Tiny bins and collection caps force several refinement passes; duplicates test equal-value bins.
    monkeypatch.setattr(fnmr_module, "N_BINS", 4)
    monkeypatch.setattr(fnmr_module, "MAX_COLLECT", 3)
    monkeypatch.setattr(fnmr_module, "TILE_BYTES", 28)
    rng = np.random.default_rng(seed)
    n = 30
    emb = rng.integers(0, 4, (n, 2)).astype(np.float64) if seed % 2 else rng.standard_normal((n, 3))
    labels = rng.integers(0, 5, n)
    ids = torch.arange(n)
    fmr_vals = (0.0, 0.013, 0.1, 0.5, 0.77, 1.0)
    got = calc_fnmr_at_fmr_all_pairs(
        torch.from_numpy(emb),
        torch.from_numpy(emb),
        torch.from_numpy(labels),
        torch.from_numpy(labels),
        fmr_vals,
        ids,
        ids,
    )
    dist = torch.cdist(torch.from_numpy(emb), torch.from_numpy(emb)).numpy()
    valid = ~np.eye(n, dtype=bool)
    same = labels[:, None] == labels[None, :]
    pos, neg = dist[valid & same], dist[valid & ~same]
    expected = [(pos >= t).sum() / len(pos) for t in np.quantile(neg, fmr_vals)]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-7)
