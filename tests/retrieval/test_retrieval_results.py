"""RetrievalResults (OML contract, dense form, gt_ids, q/g retrieval, visualisation) and post-processors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.interfaces import IPairwiseModel
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.retrieval import (
    AdaptiveThresholding,
    ConstantThresholding,
    PairwiseReranker,
    QueryExpansion,
    RetrievalResults,
)


def brute_force(queries, gallery, k, excluded):
    dist = torch.cdist(queries.double(), gallery.double()).numpy()
    lists = []
    for q in range(len(queries)):
        candidates = sorted(
            (g for g in range(len(gallery)) if not excluded[q, g]), key=lambda g: (dist[q, g], g)
        )
        lists.append(candidates[:k])
    return lists, dist


def make_dataset(seed, n=30, sequences=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, n)
    is_query, is_gallery = rng.random(n) < 0.6, rng.random(n) < 0.8
    is_query[0] = is_gallery[0] = True
    seq = rng.integers(0, 8, n) if sequences else None
    emb = torch.from_numpy(rng.standard_normal((n, 4)))
    return InMemoryQueryGalleryDataset(labels, is_query, is_gallery, sequences=seq), emb


@pytest.mark.parametrize("seed", range(6))
def test_from_embeddings_matches_brute_force(seed):
    ds, emb = make_dataset(seed, sequences=seed % 2 == 1)
    q, g = ds.get_query_ids(), ds.get_gallery_ids()
    excluded = (q[:, None] == g[None, :]).numpy()
    if seed % 2:
        seq = np.asarray(ds.extra_data["sequence"])
        excluded |= seq[q][:, None] == seq[g][None, :]
    rr = RetrievalResults.from_embeddings(emb, ds, n_items=7)
    lists, dist = brute_force(emb[q], emb[g], 7, excluded)
    assert [x.tolist() for x in rr.retrieved_ids] == lists
    for d, ids, row in zip(rr.distances, rr.retrieved_ids, dist):
        np.testing.assert_allclose(d.numpy(), row[ids.numpy()], rtol=1e-6)
    labels = ds.get_labels()
    expected_gt = [
        np.flatnonzero((labels[g] == labels[qi]) & ~excluded[i]).tolist() for i, qi in enumerate(q.numpy())
    ]
    assert [x.tolist() for x in rr.gt_ids] == expected_gt
    assert rr.n_gt.tolist() == [len(x) for x in expected_gt]


def test_from_embeddings_qg_has_no_self_exclusion_and_joint_sequences():
    q_ds = InMemoryQueryGalleryDataset(labels=[0, 1], sequences=["a", "b"])
    g_ds = InMemoryQueryGalleryDataset(labels=[0, 1, 0], sequences=["b", "c", "d"])
    q_emb, g_emb = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [1.0], [0.1]])
    rr = RetrievalResults.from_embeddings_qg(q_emb, g_emb, q_ds, g_ds, n_items=10)
    # query 0 ("a") may retrieve every gallery item, query 1 ("b") must not see gallery 0 ("b")
    assert rr.retrieved_ids[0].tolist() == [0, 2, 1]
    assert rr.retrieved_ids[1].tolist() == [1, 2]
    assert [x.tolist() for x in rr.gt_ids] == [[0, 2], [1]]


def test_public_constructor_validates():
    with pytest.raises(ValueError, match="sorted"):
        RetrievalResults([torch.tensor([0.5, 0.1])], [torch.tensor([0, 1])])
    with pytest.raises(ValueError, match="unique"):
        RetrievalResults([torch.tensor([0.1, 0.5])], [torch.tensor([1, 1])])
    with pytest.raises(ValueError, match="must match"):
        RetrievalResults([torch.tensor([0.1])], [torch.tensor([1, 2])])
    with pytest.warns(UserWarning, match="don't have available gts"):
        RetrievalResults(
            [torch.tensor([0.1])], [torch.tensor([1])], gt_ids=[torch.zeros(0, dtype=torch.long)]
        )
    rr = RetrievalResults([torch.tensor([0.1])], [torch.tensor([1])])
    assert rr.gt_ids is None and "unknown" in str(rr)


def oml_constant(rr, th):
    return [(d[d < th], r[d < th]) for d, r in zip(rr.distances, rr.retrieved_ids)]


def oml_adaptive(rr, n_std):
    diffs = [d[1:] - d[:-1] for d in rr.distances]
    flat = torch.cat(diffs)
    avg = float(flat.double().mean()) if len(flat) else 0.0
    out = []
    for d, r, diff in zip(rr.distances, rr.retrieved_ids, diffs):
        gaps = (diff.double() > n_std * avg).nonzero()
        end = int(gaps[0]) + 1 if len(gaps) else len(d)
        out.append((d[:end], r[:end]))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_thresholding_matches_oml_rules(seed):
    ds, emb = make_dataset(seed, sequences=True)
    rr = RetrievalResults.from_embeddings(emb, ds, n_items=8)
    th = float(torch.cat(rr.distances).median())
    for processed, expected in [
        (ConstantThresholding(th).process(rr), oml_constant(rr, th)),
        (AdaptiveThresholding(1.5).process(rr), oml_adaptive(rr, 1.5)),
    ]:
        assert [x.tolist() for x in processed.retrieved_ids] == [r.tolist() for _, r in expected]
        assert [x.tolist() for x in processed.distances] == [d.tolist() for d, _ in expected]
        assert [x.tolist() for x in processed.gt_ids] == [x.tolist() for x in rr.gt_ids]


class ReversedDistance(IPairwiseModel):
    """Pairwise 'distance' that prefers far items: reverses the order of the top-n."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x1, x2):
        return 10.0 - (x1 - x2).norm(dim=-1)


def test_pairwise_reranker_reorders_head_and_keeps_tail():
    ds, emb = make_dataset(1)
    ds = InMemoryQueryGalleryDataset(ds.get_labels(), input_tensors=emb.float())
    rr = RetrievalResults.from_embeddings(emb, ds, n_items=6)
    out = PairwiseReranker(top_n=3, pairwise_model=ReversedDistance(), num_workers=0, batch_size=7).process(
        rr, ds
    )
    for before, after, dist in zip(rr.retrieved_ids, out.retrieved_ids, out.distances):
        assert len(before) == len(after)
        assert after[:3].tolist() == before[:3].flip(0).tolist()
        assert after[3:].tolist() == before[3:].tolist()
        assert bool((dist[1:] >= dist[:-1]).all())
    with pytest.raises(ValueError, match="top_n"):
        PairwiseReranker(top_n=1, pairwise_model=ReversedDistance(), num_workers=0, batch_size=4)


def test_query_expansion_matches_brute_force():
    ds, emb = make_dataset(3)
    rr = RetrievalResults.from_embeddings(emb, ds, n_items=5)
    qe = QueryExpansion(n_neighbors=2, alpha=0.0)
    out = qe.process(rr, ds, emb)
    q, g = ds.get_query_ids(), ds.get_gallery_ids()
    expanded = torch.stack(
        [(emb[qi] + emb[g[r[:2]]].sum(0)) / (1 + len(r[:2])) for qi, r in zip(q, rr.retrieved_ids)]
    )
    lists, _ = brute_force(expanded, emb[g], 5, (q[:, None] == g[None, :]).numpy())
    assert [x.tolist() for x in out.retrieved_ids] == lists
    calc = EmbeddingMetrics(
        ds, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(1,), postprocessor=qe, verbose=False
    )
    calc.setup()
    calc.update(emb, torch.arange(len(emb)))
    calc.compute_metrics()
    assert [x.tolist() for x in calc.retrieval_results.retrieved_ids] == [x[:2] for x in lists]


def test_embedding_metrics_with_thresholding_postprocessor():
    from oml_fast.functional import calc_retrieval_metrics

    ds, emb = make_dataset(5)
    top = dict(cmc_top_k=(3,), precision_top_k=(3,), map_top_k=(3,))
    calc = EmbeddingMetrics(
        ds, **top, pcf_variance=(), postprocessor=ConstantThresholding(1.0), verbose=False
    )
    calc.setup()
    calc.update(emb, torch.arange(len(emb)))
    result = calc.compute_metrics()
    rr = calc.retrieval_results
    assert all(bool((d < 1.0).all()) for d in rr.distances)
    expected = calc_retrieval_metrics(rr.retrieved_ids, rr.gt_ids, **top, verbose=False)
    for name in ("cmc", "precision", "map"):
        assert float(result["OVERALL"][name][3]) == pytest.approx(float(expected[name][3]), nan_ok=True)


class Drawable(InMemoryQueryGalleryDataset):
    def visualize(self, item, color):
        image = np.zeros((8, 8, 3), dtype=np.uint8)
        image[:] = color
        image[2:6, 2:6] = (item * 37) % 255
        return image


def test_visualize_writes_png(tmp_path):
    labels = [0, 0, 1, 1, 2]
    ds = Drawable(labels)
    emb = torch.tensor([[0.0], [0.1], [1.0], [1.2], [5.0]])
    calc = EmbeddingMetrics(
        ds, cmc_top_k=(1,), precision_top_k=(2,), map_top_k=(2,), pcf_variance=(), verbose=False
    )
    calc.setup()
    calc.update(emb, torch.arange(5))
    with pytest.warns(UserWarning):
        calc.compute_metrics()
    figures, titles = calc.visualize()
    assert len(figures) == 3 and titles[0] == "top 5 worst by OVERALL_cmc_1"
    path = tmp_path / "worst.png"
    calc.retrieval_results.visualize([0, 4], ds, n_galleries_to_show=2, save_path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "distances, retrieved_ids",
    [
        ([torch.tensor([0.5, 0.1])], [torch.tensor([0, 1])]),  # not sorted
        ([torch.tensor([0.1, 0.5])], [torch.tensor([1, 1])]),  # repeated id
        ([torch.tensor([0.1, 0.5])], [torch.tensor([1])]),  # lengths differ
    ],
)
def test_invalid_lists_raise_what_oml_and_our_users_catch(distances, retrieved_ids):
    # OML 4.x raises RuntimeError here; ours is also a ValueError.
    from oml_fast.retrieval.retrieval_results import InvalidRetrievalResultsError

    for expected in (RuntimeError, ValueError, InvalidRetrievalResultsError):
        with pytest.raises(expected):
            RetrievalResults(distances, retrieved_ids)
