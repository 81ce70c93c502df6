"""How long the lists are that EmbeddingMetrics hands to a post-processor (OML 4.x rule).

OML retrieves ``max(k, postprocessor.top_n)`` items, or whole galleries when the post-processor has
no ``top_n``. AdaptiveThresholding depends on that: its average gap is taken over every retrieved
distance. Regression for a cross-check against OML 4.0 (tests/peers/), where
EmbeddingMetrics(postprocessor=AdaptiveThresholding(...)) differed from OML when only the largest k
items were retrieved.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.functional.metrics import flatten_metrics
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.metrics.embeddings import calc_retrieval_metrics_rr
from oml_fast.retrieval import AdaptiveThresholding, ConstantThresholding, RetrievalResults

TOP = {"cmc_top_k": (1, 3), "precision_top_k": (3,), "map_top_k": (4,)}


def _case(seed: int):
    rng = np.random.default_rng(seed)
    n = 40
    labels = rng.integers(0, 8, n)
    embeddings = torch.from_numpy(rng.standard_normal((n, 3)).astype(np.float32))
    return embeddings, InMemoryQueryGalleryDataset(labels)


def _metrics(dataset, embeddings, postprocessor) -> dict:
    calc = EmbeddingMetrics(dataset, pcf_variance=(), postprocessor=postprocessor, verbose=False, **TOP)
    calc.setup()
    calc.update(embeddings, torch.arange(len(embeddings)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc.compute_metrics()
    return calc


def _pipeline(dataset, embeddings, postprocessor, n_items: int) -> dict:
    rr = postprocessor.process(RetrievalResults.from_embeddings(embeddings, dataset, n_items=n_items))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flatten_metrics(calc_retrieval_metrics_rr(rr, verbose=False, **TOP))


def _flat_overall(calc) -> dict:
    return {key.removeprefix("OVERALL/"): value for key, value in calc.metrics_flat.items()}


def _assert_same(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        assert float(actual[key]) == pytest.approx(float(expected[key]), abs=1e-6, nan_ok=True), key


@pytest.mark.parametrize("seed", range(5))
def test_adaptive_thresholding_sees_whole_galleries(seed):
    embeddings, dataset = _case(seed)
    calc = _metrics(dataset, embeddings, AdaptiveThresholding(n_std=1.5))
    n_gallery = len(embeddings)
    expected = _pipeline(dataset, embeddings, AdaptiveThresholding(n_std=1.5), n_items=n_gallery)
    _assert_same(_flat_overall(calc), expected)


def test_adaptive_thresholding_depends_on_list_length():
    # Why the rule matters: on these data, cutting lists of the largest k only gives other metrics.
    differs = []
    for seed in range(5):
        embeddings, dataset = _case(seed)
        whole = _pipeline(dataset, embeddings, AdaptiveThresholding(n_std=1.5), n_items=len(embeddings))
        top_k = _pipeline(dataset, embeddings, AdaptiveThresholding(n_std=1.5), n_items=4)
        differs.append(any(abs(float(whole[key]) - float(top_k[key])) > 1e-6 for key in whole))
    assert any(differs)


def test_constant_thresholding_keeps_bounded_lists_and_whole_gallery_metrics():
    embeddings, dataset = _case(0)
    calc = _metrics(dataset, embeddings, ConstantThresholding(th=1.0))
    assert calc.retrieval_results.n_retrieved_items <= 4  # the largest k, not the gallery
    expected = _pipeline(dataset, embeddings, ConstantThresholding(th=1.0), n_items=len(embeddings))
    _assert_same(_flat_overall(calc), expected)


def test_post_processor_top_n_sets_the_list_length():
    class Identity:
        top_n = 7

        def process(self, rr):
            return rr

    embeddings, dataset = _case(1)
    calc = _metrics(dataset, embeddings, Identity())
    assert calc.retrieval_results.n_retrieved_items == 7
