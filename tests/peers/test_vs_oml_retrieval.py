"""RetrievalResults and the thresholding post-processors agree with OML 4.0's on seeded random cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from deviations import adjusts_for
from oml_agreement import assert_metric_dicts_agree, assert_retrieval_results_agree, oml_call
from random_cases import SEEDS, QueryGalleryData, random_query_gallery_data, seeded


def _oml_from_embeddings(data: QueryGalleryData, n_items: int) -> Any:
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRetrievalResults

    return oml_call(
        OmlRetrievalResults.from_embeddings,
        data.embeddings,
        data.oml_dataset(),
        n_items=n_items,
        raises="oml-raises-single-query",
    )


@adjusts_for("exact-distances", "tie-order")
@pytest.mark.parametrize("seed", SEEDS)
def test_from_embeddings(seed: int) -> None:
    """Distances, retrieved ids, gt ids; self and same-sequence exclusion; n_items beyond the gallery."""

    from oml_fast.retrieval import RetrievalResults

    rng = seeded(seed)
    data = random_query_gallery_data(rng)
    n_items = int(rng.randint(1, len(data.labels) + 5))
    theirs = _oml_from_embeddings(data, n_items)
    ours = RetrievalResults.from_embeddings(data.embeddings, data.our_dataset(), n_items=n_items)
    assert_retrieval_results_agree(ours, theirs, data.queries, data.gallery)


@adjusts_for("exact-distances")
def test_small_distances_are_exact_where_oml_rounds_them_away() -> None:
    """The deviation itself: two queries 1e-4 off two gallery items of norm ~300. OML's distances
    (torch.cdist's matrix-multiply path) come out as 0 and ~0.06 for true distances ~3e-4."""
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRetrievalResults

    from oml_fast.retrieval import RetrievalResults

    rng = seeded(0)
    gallery = torch.from_numpy(rng.randn(30, 8).astype(np.float32)) * 100
    queries = gallery[:2] + 1e-4
    is_query = np.r_[True, True, np.zeros(30, bool)]
    data = QueryGalleryData(torch.cat([queries, gallery]), np.arange(32) % 3, is_query, ~is_query)
    exact = torch.cdist(queries.double(), gallery[:2].double()).diagonal()
    ours = RetrievalResults.from_embeddings(data.embeddings, data.our_dataset(), n_items=1)
    theirs = OmlRetrievalResults.from_embeddings(
        data.embeddings, data.oml_dataset(), n_items=1, verbose=False
    )
    ours_d, theirs_d = torch.cat(ours.distances).double(), torch.cat(theirs.distances).double()
    assert torch.allclose(ours_d, exact, rtol=1e-3, atol=0)
    assert not torch.allclose(theirs_d, exact, rtol=0.5, atol=0)


def _one_side(
    rng: np.random.RandomState, n: int, dim: int, n_labels: int, is_query: bool
) -> QueryGalleryData:
    return QueryGalleryData(
        torch.from_numpy(rng.randn(n, dim).astype(np.float32)),
        rng.randint(0, n_labels, n),
        np.full(n, is_query),
        np.full(n, not is_query),
    )


@adjusts_for("joint-sequence-ids", "exact-distances", "tie-order")
@pytest.mark.parametrize("seed", SEEDS)
def test_from_embeddings_qg(seed: int) -> None:
    """Separate query and gallery datasets; with sequences, both sides hold every sequence name, where
    OML's separate factorisation and our joint one agree."""
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRetrievalResults

    from oml_fast.retrieval import RetrievalResults

    rng = seeded(seed)
    nq, ng, dim, n_labels = (int(rng.randint(1, hi)) for hi in (30, 40, 10, 8))
    queries = _one_side(rng, nq, dim, n_labels, is_query=True)
    gallery = _one_side(rng, ng, dim, n_labels, is_query=False)
    names = np.arange(int(rng.randint(1, 5)))
    if rng.rand() < 0.5 and nq >= len(names) and ng >= len(names):
        queries.sequences = np.concatenate([names, rng.choice(names, nq - len(names))])
        gallery.sequences = np.concatenate([names, rng.choice(names, ng - len(names))])
    n_items = int(rng.randint(1, ng + 5))
    theirs = oml_call(
        OmlRetrievalResults.from_embeddings_qg,
        queries.embeddings,
        gallery.embeddings,
        queries.oml_dataset(),
        gallery.oml_dataset(),
        n_items=n_items,
    )
    ours = RetrievalResults.from_embeddings_qg(
        queries.embeddings, gallery.embeddings, queries.our_dataset(), gallery.our_dataset(), n_items=n_items
    )
    assert_retrieval_results_agree(ours, theirs, queries.embeddings, gallery.embeddings)


@adjusts_for("joint-sequence-ids")
def test_joint_sequence_ids_exclude_by_name() -> None:
    """The deviation itself: query sequence "b", gallery sequences "a", "b". We exclude the gallery's
    "b"; OML codes the query's "b" as 0 and the gallery's "a" as 0, and excludes "a"."""
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRetrievalResults

    from oml_fast.retrieval import RetrievalResults

    queries = QueryGalleryData(torch.zeros(1, 1), np.array([0]), np.ones(1, bool), np.zeros(1, bool))
    gallery = QueryGalleryData(
        torch.tensor([[1.0], [2.0]]), np.array([0, 0]), np.zeros(2, bool), np.ones(2, bool)
    )
    queries.sequences, gallery.sequences = np.array(["b"]), np.array(["a", "b"])
    args = (queries.embeddings, gallery.embeddings)
    ours = RetrievalResults.from_embeddings_qg(*args, queries.our_dataset(), gallery.our_dataset(), n_items=2)
    theirs = OmlRetrievalResults.from_embeddings_qg(
        *args, queries.oml_dataset(), gallery.oml_dataset(), n_items=2
    )
    assert ours.retrieved_ids[0].tolist() == [0]
    assert theirs.retrieved_ids[0].tolist() == [1]


THRESHOLDINGS = ("constant between distances", "constant on a distance", "adaptive")


@adjusts_for("fnmr-all-pairs")
@pytest.mark.parametrize("thresholding", THRESHOLDINGS)
@pytest.mark.parametrize("seed", SEEDS)
def test_thresholding_and_fnmr_on_lists(seed: int, thresholding: str) -> None:
    """Both sides process the same lists (OML's retrieval results of a random dataset, copied into
    ours): Constant/AdaptiveThresholding, then calc_fnmr_at_fmr_rr (OML's per-list FNMR)."""
    from oml.metrics.embeddings import calc_fnmr_at_fmr_rr as oml_fnmr_rr
    from oml.retrieval.postprocessors.algo import AdaptiveThresholding as OmlAdaptive
    from oml.retrieval.postprocessors.algo import ConstantThresholding as OmlConstant
    from oml.retrieval.retrieval_results import RetrievalResults as OmlRetrievalResults

    from oml_fast.metrics import calc_fnmr_at_fmr_rr
    from oml_fast.retrieval import AdaptiveThresholding, ConstantThresholding, RetrievalResults

    rng = seeded(seed)
    data = random_query_gallery_data(rng)
    n_items = int(rng.randint(1, len(data.labels) + 3))
    source = _oml_from_embeddings(data, n_items)
    lists = {"distances": source.distances, "retrieved_ids": source.retrieved_ids, "gt_ids": source.gt_ids}
    theirs_rr, ours_rr = OmlRetrievalResults(**lists), RetrievalResults(**lists)
    values = np.unique(torch.cat([*source.distances, torch.zeros(1)]).numpy())
    if thresholding == "constant between distances":  # `<` versus `<=` is then irrelevant
        i = int(rng.randint(0, max(1, len(values) - 1)))
        th = float((values[i] + values[i + 1]) / 2) if len(values) > 1 else float(values[-1] + 1.0)
        oml_post, our_post = OmlConstant(th), ConstantThresholding(th)
    elif thresholding == "constant on a distance":  # OML keeps `d < th`
        th = float(values[int(rng.randint(0, len(values)))])
        oml_post, our_post = OmlConstant(th), ConstantThresholding(th)
    else:
        n_std = float(rng.uniform(0.3, 3.0))
        oml_post, our_post = OmlAdaptive(n_std), AdaptiveThresholding(n_std)
    theirs = oml_call(oml_post.process, theirs_rr, raises="oml-raises-adaptive-short-list")
    assert_retrieval_results_agree(our_post.process(ours_rr), theirs)
    fmr = (0.0, float(rng.rand()), 1.0)
    theirs_fnmr = oml_call(oml_fnmr_rr, theirs_rr, fmr, raises="oml-raises-fnmr-no-negatives")
    assert_metric_dicts_agree(calc_fnmr_at_fmr_rr(ours_rr, fmr), theirs_fnmr)
