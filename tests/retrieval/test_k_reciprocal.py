"""k-reciprocal re-ranking against a direct transcription of Zhong et al.'s algorithm (full matrices)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.retrieval import RetrievalResults
from oml_fast.retrieval.postprocessors.k_reciprocal import KReciprocalReranker


def zhong_final_distance(x: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """All-items final distance of the original algorithm (squared euclidean, each row / its max)."""
    n = len(x)
    original = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    original = original / original.max(axis=1, keepdims=True)
    rank = np.argsort(original, axis=1, kind="stable")
    v = np.zeros((n, n))
    for i in range(n):
        forward = rank[i, : k1 + 1]
        backward = rank[forward, : k1 + 1]
        reciprocal = forward[np.where(backward == i)[0]]
        expansion = reciprocal
        for c in reciprocal:
            half = int(np.around(k1 / 2))
            c_forward = rank[c, : half + 1]
            c_backward = rank[c_forward, : half + 1]
            c_reciprocal = c_forward[np.where(c_backward == c)[0]]
            if len(np.intersect1d(c_reciprocal, reciprocal)) > 2 / 3 * len(c_reciprocal):
                expansion = np.append(expansion, c_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original[i, expansion])
        v[i, expansion] = weight / weight.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    overlap = np.minimum(v[:, None, :], v[None, :, :]).sum(-1)
    jaccard = 1 - overlap / (2 - overlap)
    return (1 - lambda_value) * jaccard + lambda_value * original


@pytest.mark.parametrize("seed", range(3))
def test_matches_original_algorithm(seed):
    rng = np.random.default_rng(seed)
    n = 40
    x = rng.standard_normal((n, 3))
    labels = rng.integers(0, 8, n)
    ds = InMemoryQueryGalleryDataset(labels)
    emb = torch.from_numpy(x)
    rr = RetrievalResults.from_embeddings(emb, ds, n_items=10)
    reranker = KReciprocalReranker(k1=6, k2=3, lambda_value=0.3)
    out = reranker.process(rr, ds, emb)
    final = zhong_final_distance(x, 6, 3, 0.3)
    for q, (before, after, dist) in enumerate(zip(rr.retrieved_ids, out.retrieved_ids, out.distances)):
        assert sorted(before.tolist()) == sorted(after.tolist())
        expected = sorted(before.tolist(), key=lambda g: (final[q, g], before.tolist().index(g)))
        assert after.tolist() == expected
        np.testing.assert_allclose(dist.numpy(), final[q, after.numpy()], rtol=1e-6, atol=1e-9)


def test_usable_from_embedding_metrics():
    rng = np.random.default_rng(0)
    ds = InMemoryQueryGalleryDataset(rng.integers(0, 5, 30))
    emb = torch.from_numpy(rng.standard_normal((30, 4)))
    calc = EmbeddingMetrics(
        ds,
        cmc_top_k=(1,),
        precision_top_k=(3,),
        map_top_k=(3,),
        postprocessor=KReciprocalReranker(k1=5, k2=2),
        verbose=False,
    )
    calc.setup()
    calc.update(emb, torch.arange(30))
    metrics = calc.compute_metrics()
    assert 0 <= float(metrics["OVERALL"]["cmc"][1]) <= 1
