"""QueryGalleryKeys (dataset -> ids, labels, groups, categories), GroundTruth, RetrievalResults.from_search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.retrieval import RetrievalResults
from oml_fast.retrieval.ground_truth import ExplicitGroundTruth, GroundTruth, LabelGroundTruth
from oml_fast.retrieval.query_gallery import QueryGalleryKeys, factorize_sequences


def _dataset(n: int = 12, seed: int = 0) -> InMemoryQueryGalleryDataset:
    rng = np.random.default_rng(seed)
    return InMemoryQueryGalleryDataset(
        labels=rng.integers(0, 3, n),
        is_query=rng.random(n) < 0.6,
        is_gallery=rng.random(n) < 0.8,
        categories=rng.choice(["cat", "dog"], n),
        sequences=rng.choice(["s1", "s2", "s3", "s4"], n),
    )


def test_from_dataset_derives_every_key_from_the_dataset():
    ds = _dataset()
    keys = QueryGalleryKeys.from_dataset(ds)
    labels = torch.as_tensor(ds.get_labels())
    assert torch.equal(keys.query_ids, ds.get_query_ids().long())
    assert torch.equal(keys.gallery_ids, ds.get_gallery_ids().long())
    assert torch.equal(keys.query_labels, labels[keys.query_ids])
    assert torch.equal(keys.gallery_labels, labels[keys.gallery_ids])
    sequences = np.asarray(ds.extra_data["sequence"])
    # Equal sequence names <=> equal group ids, across queries and gallery.
    same_name = sequences[keys.query_ids.numpy()][:, None] == sequences[keys.gallery_ids.numpy()][None, :]
    same_group = (keys.query_groups[:, None] == keys.gallery_groups[None, :]).numpy()
    assert (same_name == same_group).all()
    assert list(keys.query_categories) == list(np.asarray(ds.extra_data["category"])[keys.query_ids.numpy()])
    query_ids, gallery_ids, query_groups, gallery_groups = keys.exclusion_keys()
    assert query_ids is not None and gallery_ids is not None  # one dataset: an item never retrieves itself


def test_from_datasets_has_no_self_exclusion_and_joint_sequences():
    q = InMemoryQueryGalleryDataset(labels=[0, 1], sequences=["a", "b"])
    g = InMemoryQueryGalleryDataset(labels=[1, 0, 0], sequences=["b", "c", "a"])
    keys = QueryGalleryKeys.from_datasets(q, g)
    assert keys.exclude_same_ids is False
    query_ids, gallery_ids, query_groups, gallery_groups = keys.exclusion_keys()
    assert query_ids is None and gallery_ids is None
    assert query_groups.tolist()[0] == gallery_groups.tolist()[2]  # "a" on both sides
    assert query_groups.tolist()[1] == gallery_groups.tolist()[0]  # "b" on both sides


def test_factorize_sequences_is_none_without_the_column():
    assert factorize_sequences(InMemoryQueryGalleryDataset(labels=[0, 1])) is None


def test_from_search_equals_from_embeddings():
    ds = _dataset(30, seed=1)
    embeddings = torch.randn(len(ds), 4)
    keys = QueryGalleryKeys.from_dataset(ds)
    a = RetrievalResults.from_embeddings(embeddings, ds, n_items=5)
    b = RetrievalResults.from_search(*keys.split_embeddings(embeddings), keys, n_items=5)
    assert torch.equal(a.retrieved_ids_dense, b.retrieved_ids_dense)
    assert torch.equal(a.distances_dense, b.distances_dense)
    assert torch.equal(a.is_relevant, b.is_relevant)
    assert torch.equal(a.n_gt, b.n_gt)
    assert isinstance(a.ground_truth, LabelGroundTruth)


def test_from_search_rejects_keys_of_other_sizes():
    ds = _dataset()
    keys = QueryGalleryKeys.from_dataset(ds)
    with pytest.raises(ValueError, match="`keys` describe"):
        RetrievalResults.from_search(torch.randn(1, 4), torch.randn(keys.n_gallery, 4), keys, n_items=3)


def test_label_ground_truth_lists_agree_with_relevance_and_n_gt():
    ds = _dataset(40, seed=2)
    rr = RetrievalResults.from_embeddings(torch.randn(len(ds), 3), ds, n_items=len(ds))
    gt = rr.ground_truth
    assert isinstance(gt, GroundTruth)
    gt_ids = gt.gt_ids()
    assert [len(x) for x in gt_ids] == gt.n_gt.tolist()
    # With whole galleries retrieved, the relevant retrieved ids are exactly the ground truth.
    for q in range(len(rr)):
        relevant = rr.retrieved_ids[q][rr.is_relevant[q, : len(rr.retrieved_ids[q])]]
        assert sorted(relevant.tolist()) == sorted(gt_ids[q].tolist())


def test_explicit_ground_truth_is_a_ground_truth():
    gt = ExplicitGroundTruth([torch.tensor([0, 2]), torch.tensor([], dtype=torch.long)])
    assert isinstance(gt, GroundTruth)
    assert gt.n_gt.tolist() == [2, 0]
    assert gt.relevance(torch.tensor([[2, 1], [0, -1]])).tolist() == [[True, False], [False, False]]
