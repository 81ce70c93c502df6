"""oml_fast's metric functions and EmbeddingMetrics agree with OML 4.0's on seeded random cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from deviations import adjusts_for
from oml_agreement import assert_close, assert_metric_dicts_agree, oml_call
from random_cases import (
    LARGE_SEEDS,
    SEEDS,
    QueryGalleryData,
    random_categories,
    random_query_gallery_data,
    random_top_k,
    seeded,
)


@pytest.mark.parametrize("seed", SEEDS)
def test_calc_retrieval_metrics(seed: int) -> None:
    """Random lists incl. empty ones, queries without gt, k beyond the list, int/str categories."""
    from oml.functional.metrics import calc_retrieval_metrics as oml_calc

    from oml_fast.functional import calc_retrieval_metrics

    rng = seeded(seed)
    nq, ng = int(rng.randint(1, 40)), int(rng.randint(1, 30))
    retrieved, gt = [], []
    for _ in range(nq):
        length = 0 if rng.rand() < 0.1 else int(rng.randint(0, ng + 1))
        retrieved.append(torch.from_numpy(rng.permutation(ng)[:length]).long())
        n_gt = 0 if rng.rand() < 0.15 else int(rng.randint(0, ng + 1))
        gt.append(torch.from_numpy(np.sort(rng.permutation(ng)[:n_gt])).long())
    categories = random_categories(rng, nq) if rng.rand() < 0.4 else None
    kwargs = {
        "cmc_top_k": random_top_k(rng, ng + 3),
        "precision_top_k": random_top_k(rng, ng + 3),
        "map_top_k": random_top_k(rng, ng + 3),
        "reduce": bool(rng.rand() < 0.7),
        "verbose": False,
    }
    theirs = oml_call(oml_calc, retrieved, gt, query_categories=categories, **kwargs)
    ours = calc_retrieval_metrics(retrieved, gt, query_categories=categories, **kwargs)
    assert_metric_dicts_agree(ours, theirs)


@pytest.mark.parametrize("seed", SEEDS)
def test_calc_fnmr_at_fmr(seed: int) -> None:
    """Random and tied (integer) distances, fmr values incl. 0 and 1."""
    from oml.functional.metrics import calc_fnmr_at_fmr as oml_fnmr

    from oml_fast.functional import calc_fnmr_at_fmr

    rng = seeded(seed)
    n_pos, n_neg = int(rng.randint(1, 200)), int(rng.randint(1, 300))
    pos, neg = rng.rand(n_pos) * 2, rng.rand(n_neg) * 2 + 0.5
    if rng.rand() < 0.3:
        pos, neg = np.round(pos * 4), np.round(neg * 4)
    fmr = tuple(float(v) for v in rng.rand(int(rng.randint(1, 5))))
    if rng.rand() < 0.3:
        fmr = (0.0, *fmr, 1.0)
    assert_close(calc_fnmr_at_fmr(pos, neg, fmr), oml_call(oml_fnmr, pos, neg, fmr), "fnmr@fmr", tol=1e-6)


def _cumulative_variance_ratio(embeddings: torch.Tensor) -> np.ndarray:
    x = embeddings.double()
    s = torch.linalg.svdvals(x - x.mean(0, keepdim=True))
    return torch.cumsum(s**2 / (s**2).sum(), 0).numpy()


@adjusts_for("pcf-cap")
@pytest.mark.parametrize("seed", SEEDS)
def test_calc_pcf(seed: int) -> None:
    """Full and low rank embeddings; OML compared as min(OML, 1)."""
    from oml.functional.metrics import calc_pcf as oml_pcf

    from oml_fast.functional import calc_pcf

    rng = seeded(seed)
    n, dim = int(rng.randint(2, 60)), int(rng.randint(1, 24))
    x = rng.randn(n, dim)
    if rng.rand() < 0.4:  # low rank
        rank = int(rng.randint(1, dim + 1))
        x = rng.randn(n, rank) @ rng.randn(rank, dim)
    embeddings = torch.from_numpy(x.astype(np.float32))
    variance = tuple(sorted(float(v) for v in rng.rand(int(rng.randint(1, 4)))))
    if rng.rand() < 0.3:
        variance = (*variance, 1.0)
    theirs = torch.clamp(
        torch.as_tensor(oml_call(oml_pcf, embeddings, variance), dtype=torch.float64), max=1.0
    )
    ours = calc_pcf(embeddings, variance)
    # Within float32 rounding of a threshold the two may count one component apart: compared elsewhere.
    cumulative = _cumulative_variance_ratio(embeddings)
    keep = [i for i, v in enumerate(variance) if np.min(np.abs(cumulative - v), initial=1.0) >= 1e-5]
    assert_close(ours[keep], theirs[keep], "pcf", tol=1e-6)


@adjusts_for("pcf-cap")
def test_pcf_cap_is_the_only_difference_at_variance_one() -> None:
    """The deviation itself: full-rank data at v = 1.0 (OML reports 11/10 there)."""
    from oml.functional.metrics import calc_pcf as oml_pcf

    from oml_fast.functional import calc_pcf

    embeddings = torch.eye(4, 10)
    theirs = torch.as_tensor(oml_pcf(embeddings, (0.5, 1.0)), dtype=torch.float64)
    ours = calc_pcf(embeddings, (0.5, 1.0))
    assert float(ours.max()) <= 1.0
    assert_close(ours, torch.clamp(theirs, max=1.0), "pcf (eye 4x10)")


POSTPROCESSORS = ("none", "constant", "adaptive")


def _postprocessors(kind: str, rng: np.random.RandomState) -> tuple[Any, Any]:
    """(OML's, ours) post-processor of the given kind with a random parameter."""
    from oml.retrieval.postprocessors.algo import AdaptiveThresholding as OmlAdaptive
    from oml.retrieval.postprocessors.algo import ConstantThresholding as OmlConstant

    from oml_fast.retrieval import AdaptiveThresholding, ConstantThresholding

    if kind == "constant":
        th = float(rng.uniform(0.5, 3.0))
        return OmlConstant(th), ConstantThresholding(th)
    if kind == "adaptive":
        n_std = float(rng.uniform(0.5, 3.0))
        return OmlAdaptive(n_std), AdaptiveThresholding(n_std)
    return None, None


@adjusts_for("pcf-cap", "fnmr-all-pairs", "tie-order")
@pytest.mark.parametrize("postprocessor", POSTPROCESSORS)
@pytest.mark.parametrize("seed", SEEDS)
def test_embedding_metrics(seed: int, postprocessor: str) -> None:
    """End to end: categories, sequences, 1-vs-rest / disjoint / overlapping query-gallery sets, fnmr@fmr,
    pcf, float64 embeddings, our batches in random order. With a post-processor FNMR is off: OML
    computes it on the post-processed lists, ours on all pairs."""
    from oml.metrics.embeddings import EmbeddingMetrics as OmlEmbeddingMetrics

    from oml_fast.metrics import EmbeddingMetrics

    rng = seeded(seed)
    data = random_query_gallery_data(rng)
    if rng.rand() < 0.25:
        data.embeddings = data.embeddings.double()
    ng = int(data.is_gallery.sum())
    kwargs: dict[str, Any] = {
        "cmc_top_k": random_top_k(rng, ng + 3),
        "precision_top_k": random_top_k(rng, ng + 3),
        "map_top_k": random_top_k(rng, ng + 3),
        "fmr_vals": [(0.1, 0.5), (0.0, float(rng.rand()), 1.0), ()][rng.randint(0, 3)],
        "pcf_variance": [(0.5,), (0.2, 0.9), ()][rng.randint(0, 3)],
        "return_only_overall_category": bool(rng.rand() < 0.2),
        "verbose": False,
    }
    if postprocessor != "none":
        kwargs["fmr_vals"] = ()
    oml_post, our_post = _postprocessors(postprocessor, rng)
    n = len(data.labels)

    oml_metrics = OmlEmbeddingMetrics(data.oml_dataset(), postprocessor=oml_post, **kwargs)
    oml_metrics.setup(n)
    oml_metrics.update(data.embeddings, torch.arange(n))
    theirs = oml_call(
        oml_metrics.compute_metrics,
        raises=("oml-raises-single-query", "oml-raises-fnmr-no-negatives", "oml-raises-adaptive-short-list"),
    )

    metrics = EmbeddingMetrics(data.our_dataset(), postprocessor=our_post, **kwargs)
    metrics.setup(n)
    order = torch.from_numpy(rng.permutation(n))
    for chunk in torch.split(order, int(rng.randint(1, n + 1))):
        metrics.update(data.embeddings[chunk], chunk)
    ours = metrics.compute_metrics()
    assert_metric_dicts_agree(ours, theirs)
    assert_metric_dicts_agree(metrics.metrics_unreduced, oml_metrics.metrics_unreduced)


@adjusts_for("fnmr-all-pairs")
@pytest.mark.parametrize("seed", LARGE_SEEDS)
def test_embedding_metrics_fnmr_large(seed: int) -> None:
    """N up to 1500 (up to 2.2M pairs: our streamed histogram path), tied distances from integer
    embeddings, fmr incl. 0 and 1. No post-processor: OML retrieves whole galleries, both use all pairs."""
    from oml.metrics.embeddings import EmbeddingMetrics as OmlEmbeddingMetrics

    from oml_fast.metrics import EmbeddingMetrics

    rng = seeded(seed)
    n, dim = int(rng.randint(200, 1500)), int(rng.randint(1, 16))
    labels = rng.randint(0, max(2, n // int(rng.randint(2, 20))), n)
    if rng.rand() < 0.4:
        embeddings = torch.from_numpy(rng.randint(0, 3, (n, dim)).astype(np.float32))
    else:
        embeddings = torch.from_numpy(rng.randn(n, dim).astype(np.float32))
    is_query = rng.rand(n) < 0.7 if rng.rand() < 0.5 else np.ones(n, bool)
    is_query[0] = True
    data = QueryGalleryData(embeddings, labels, is_query, np.ones(n, bool))
    fmr = tuple(sorted({0.0, 1.0, 0.001, *(float(v) for v in rng.rand(3))}))
    kwargs: dict[str, Any] = {
        "cmc_top_k": (1,),
        "precision_top_k": (1,),
        "map_top_k": (1,),
        "fmr_vals": fmr,
        "pcf_variance": (),
        "verbose": False,
    }
    oml_metrics = OmlEmbeddingMetrics(data.oml_dataset(), **kwargs)
    oml_metrics.setup(n)
    oml_metrics.update(embeddings, torch.arange(n))
    theirs = oml_call(oml_metrics.compute_metrics, raises="oml-raises-fnmr-no-negatives")
    metrics = EmbeddingMetrics(data.our_dataset(), **kwargs)
    metrics.setup(n)
    metrics.update(embeddings, torch.arange(n))
    ours = metrics.compute_metrics()
    for v in fmr:
        assert_close(ours["OVERALL"]["fnmr@fmr"][v], theirs["OVERALL"]["fnmr@fmr"][v], f"fnmr@fmr={v}", 1e-6)
