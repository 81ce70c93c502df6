"""``retrieval_relevance`` and ``retrieval_metrics`` against their reference twins and metrics.md."""

from __future__ import annotations

import math

import pytest
import torch

import oml_fast  # noqa: F401  (loads the op library)
from oml_fast import reference
from oml_fast.ops import knn, retrieval_metrics, retrieval_relevance

NAN = float("nan")


def metrics_of(g: list[int], n_gt: int, cmc=(1,), precision=(1,), map_=(1,), width: int | None = None):
    width = max(len(g), 1) if width is None else width
    is_relevant = torch.zeros(1, width, dtype=torch.bool)
    is_relevant[0, : len(g)] = torch.tensor(g, dtype=torch.bool)
    return retrieval_metrics(is_relevant, torch.tensor([n_gt]), torch.tensor([len(g)]), cmc, precision, map_)


# ----- relevance -----------------------------------------------------------------------------------


def random_labels_and_keys(n_query: int, n_gallery: int, kind: str):
    query_labels = torch.randint(0, 6, (n_query,))
    gallery_labels = torch.randint(0, 6, (n_gallery,))
    keys: dict = {}
    if kind in ("ids", "both"):
        keys["query_ids"] = torch.randint(0, n_gallery, (n_query,))
        keys["gallery_ids"] = torch.randint(0, n_gallery, (n_gallery,))  # duplicate ids are allowed
    if kind in ("groups", "both"):
        keys["query_groups"] = torch.randint(0, 4, (n_query,))
        keys["gallery_groups"] = torch.randint(0, 4, (n_gallery,))
    return query_labels, gallery_labels, keys


@pytest.mark.parametrize("kind", ["none", "ids", "groups", "both"])
@pytest.mark.parametrize("shape", [(50, 80, 10), (1, 1, 1), (7, 3, 5), (300, 2000, 30)])
def test_relevance_matches_reference(kind, shape):
    n_query, n_gallery, k = shape
    query_labels, gallery_labels, keys = random_labels_and_keys(n_query, n_gallery, kind)
    retrieved = torch.randint(-1, n_gallery, (n_query, k))
    is_relevant, n_gt = retrieval_relevance(retrieved, query_labels, gallery_labels, **keys)
    ref_relevant, ref_n_gt = reference.retrieval_relevance(retrieved, query_labels, gallery_labels, **keys)
    assert is_relevant.dtype == torch.bool and n_gt.dtype == torch.int64
    assert torch.equal(is_relevant, ref_relevant)
    assert torch.equal(n_gt, ref_n_gt)


def test_relevance_large_label_values():
    labels = torch.tensor([-(2**62), 2**62, 5, -(2**62)])
    retrieved = torch.tensor([[3, 1], [0, -1]])
    is_relevant, n_gt = retrieval_relevance(retrieved, labels[:2], labels, torch.arange(2), torch.arange(4))
    assert torch.equal(is_relevant, torch.tensor([[True, False], [False, False]]))
    assert torch.equal(n_gt, torch.tensor([1, 0]))


def test_relevance_opcheck():
    query_labels, gallery_labels, keys = random_labels_and_keys(8, 20, "both")
    retrieved = torch.randint(-1, 20, (8, 4))
    args = (retrieved, query_labels, gallery_labels, *keys.values())
    torch.library.opcheck(torch.ops.oml_fast.retrieval_relevance.default, args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"retrieved": torch.tensor([[0, 7]])}, IndexError, "retrieved"),
        ({"retrieved": torch.tensor([[0, -2]])}, IndexError, "retrieved"),
        ({"retrieved": torch.tensor([0, 1])}, ValueError, "retrieved"),
        ({"retrieved": torch.tensor([[0.0, 1.0]])}, TypeError, "retrieved"),
        ({"query_labels": torch.tensor([1, 2])}, ValueError, "query_labels"),
        ({"query_labels": torch.tensor([1.0])}, TypeError, "query_labels"),
        ({"gallery_labels": torch.tensor([[1, 2, 3]])}, ValueError, "gallery_labels"),
        ({"query_ids": torch.tensor([0])}, ValueError, "gallery_ids"),
        ({"query_ids": torch.tensor([0]), "gallery_ids": torch.tensor([0, 1])}, ValueError, "gallery_ids"),
    ],
)
def test_relevance_bad_input(kwargs, error, match):
    args = {
        "retrieved": torch.tensor([[0, 1]]),
        "query_labels": torch.tensor([1]),
        "gallery_labels": torch.arange(3),
    }
    args.update(kwargs)
    with pytest.raises(error, match=match):
        retrieval_relevance(**args)


# ----- metrics: metrics.md examples and edge cases -------------------------------------------------


def test_precision_is_capped_by_n_gt():
    # metrics.md: n_gt = 3, g = [1,1,1,0,0] gives precision 1.0 at every k from 1 to 5.
    _, precision, _ = metrics_of([1, 1, 1, 0, 0], 3, precision=(1, 2, 3, 4, 5))
    assert torch.equal(precision, torch.ones(1, 5))


def test_map_is_normalised_by_hits():
    # metrics.md: g = [1,0,1,0,0], n_gt = 10: map@5 = (1/1 + 2/3) / 2.
    cmc, precision, ap = metrics_of(
        [1, 0, 1, 0, 0], 10, cmc=(1, 2, 5), precision=(1, 2, 5), map_=(1, 2, 3, 5)
    )
    assert torch.equal(cmc, torch.ones(1, 3))
    torch.testing.assert_close(precision, torch.tensor([[1.0, 0.5, 0.4]]))
    torch.testing.assert_close(ap, torch.tensor([[1.0, 1.0, (1 + 2 / 3) / 2, (1 + 2 / 3) / 2]]))


def test_k_above_retrieved_length_is_clipped():
    # metrics.md: g = [0,1], n_gt = 3: precision@5 = 1/2, map@5 = 0.5, cmc@5 = 1.
    cmc, precision, ap = metrics_of([0, 1], 3, cmc=(1, 5), precision=(5,), map_=(5,), width=6)
    assert torch.equal(cmc, torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(precision, torch.tensor([[0.5]]))
    torch.testing.assert_close(ap, torch.tensor([[0.5]]))


@pytest.mark.parametrize(
    ("g", "n_gt", "expected"),
    [
        ([], 0, (1.0, 1.0, 1.0)),  # L = 0, n_gt = 0
        ([], 4, (0.0, 0.0, 0.0)),  # L = 0, n_gt > 0
        ([0, 0, 0], 0, (0.0, NAN, 0.0)),  # L > 0, n_gt = 0: every positive was excluded
        ([0, 0, 0], 2, (0.0, 0.0, 0.0)),
    ],
)
def test_edge_cases(g, n_gt, expected):
    cmc, precision, ap = metrics_of(g, n_gt, cmc=(1, 3), precision=(1, 3), map_=(1, 3), width=4)
    for values, value in zip((cmc, precision, ap), expected):
        assert values.shape == (1, 2)
        for v in values.flatten().tolist():
            assert (math.isnan(v) and math.isnan(value)) or v == value


def random_relevance(n_query: int, width: int):
    is_relevant = torch.rand(n_query, width) < 0.3
    n_retrieved = torch.randint(0, width + 1, (n_query,))
    is_relevant &= torch.arange(width)[None, :] < n_retrieved[:, None]
    n_gt = is_relevant.sum(1) + torch.randint(0, 4, (n_query,))
    all_excluded = torch.rand(n_query) < 0.1  # some queries whose positives were all excluded
    n_gt[all_excluded] = 0
    is_relevant[all_excluded] = False  # nothing can be relevant then (n_gt >= hits is checked)
    return is_relevant, n_gt, n_retrieved


@pytest.mark.parametrize("width", [1, 5, 40])
def test_metrics_match_reference(width):
    is_relevant, n_gt, n_retrieved = random_relevance(400, width)
    top_k = ([1, 3, 50, 2], [5, 1, 5], [1, 10, 3])
    out = retrieval_metrics(is_relevant, n_gt, n_retrieved, *top_k)
    expected = reference.retrieval_metrics(is_relevant, n_gt, n_retrieved, *top_k)
    for values, ref_values in zip(out, expected):
        assert values.dtype == torch.float32
        torch.testing.assert_close(values, ref_values, equal_nan=True)


def test_metrics_accept_tuples_and_empty_batch():
    cmc, precision, ap = retrieval_metrics(
        torch.zeros(0, 3, dtype=torch.bool), torch.zeros(0).long(), torch.zeros(0).long(), (1,), (1, 2), (3,)
    )
    assert cmc.shape == (0, 1) and precision.shape == (0, 2) and ap.shape == (0, 1)


def test_metrics_opcheck():
    is_relevant, n_gt, n_retrieved = random_relevance(20, 6)
    # opcheck compares outputs without equal_nan: no query without positives here.
    args = (is_relevant, n_gt.clamp_min(1), n_retrieved, [1, 5], [2], [3, 6])
    torch.library.opcheck(torch.ops.oml_fast.retrieval_metrics.default, args)


def test_ops_compose_under_torch_compile():
    @torch.compile(backend="aot_eager", fullgraph=True)
    def validate(embeddings, labels):
        ids = torch.arange(len(labels))
        _, idx = knn(embeddings, embeddings, 5, "cosine", ids, ids)
        is_relevant, n_gt = retrieval_relevance(idx, labels, labels, ids, ids)
        return retrieval_metrics(is_relevant, n_gt, (idx >= 0).sum(1), [1, 5], [5], [5])

    embeddings, labels = torch.randn(60, 8), torch.randint(0, 5, (60,))
    compiled = validate(embeddings, labels)
    eager = validate.__wrapped__(embeddings, labels)  # type: ignore[attr-defined]
    for values, eager_values in zip(compiled, eager):
        torch.testing.assert_close(values, eager_values, equal_nan=True)


@pytest.mark.parametrize("bad", [(), (0,), (-1,), (1.5,), (True,), [2, 0]])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_metrics_bad_top_k(bad, position):
    is_relevant, n_gt, n_retrieved = random_relevance(3, 4)
    top_k = [[1], [1], [1]]
    top_k[position] = bad
    name = ("cmc_top_k", "precision_top_k", "map_top_k")[position]
    with pytest.raises(ValueError, match=name):
        retrieval_metrics(is_relevant, n_gt, n_retrieved, *top_k)
    with pytest.raises(ValueError, match=name):
        reference.retrieval_metrics(is_relevant, n_gt, n_retrieved, *top_k)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_retrieved": torch.tensor([5, 0])}, ValueError, "n_retrieved"),
        ({"n_retrieved": torch.tensor([-1, 0])}, ValueError, "n_retrieved"),
        ({"n_retrieved": torch.tensor([1])}, ValueError, "n_retrieved"),
        ({"n_gt": torch.tensor([-1, 0])}, ValueError, "n_gt"),
        (
            {"is_relevant": torch.ones(2, 4, dtype=torch.bool)},
            ValueError,
            "`n_gt` must be at least the number",
        ),
        ({"n_gt": torch.tensor([1.0, 0.0])}, TypeError, "n_gt"),
        ({"is_relevant": torch.zeros(2, 4)}, TypeError, "is_relevant"),
        ({"is_relevant": torch.zeros(2, dtype=torch.bool)}, ValueError, "is_relevant"),
    ],
)
def test_metrics_bad_input(kwargs, error, match):
    args = {
        "is_relevant": torch.zeros(2, 4, dtype=torch.bool),
        "n_gt": torch.tensor([1, 0]),
        "n_retrieved": torch.tensor([4, 0]),
    }
    args.update(kwargs)
    with pytest.raises(error, match=match):
        retrieval_metrics(**args, cmc_top_k=[1], precision_top_k=[1], map_top_k=[1])


# ----- the whole chain --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ids", "both"])
def test_knn_relevance_metrics_chain_matches_reference(kind):
    n_items = 500
    embeddings = torch.randn(n_items, 16)
    labels = torch.randint(0, 50, (n_items,))
    keys: dict = {"query_ids": torch.arange(n_items), "gallery_ids": torch.arange(n_items)}
    if kind == "both":
        keys["query_groups"] = keys["gallery_groups"] = torch.randint(0, 100, (n_items,))
    top_k = ([1, 5], [5], [5, 10])
    outputs = []
    for ops in (oml_fast.ops, reference):
        dist, idx = ops.knn(embeddings, embeddings, 10, "euclidean", **keys)
        is_relevant, n_gt = ops.retrieval_relevance(idx, labels, labels, **keys)
        outputs.append(ops.retrieval_metrics(is_relevant, n_gt, (idx >= 0).sum(1), *top_k))
    for values, ref_values in zip(*outputs):
        torch.testing.assert_close(values, ref_values, equal_nan=True)


@pytest.mark.cuda
def test_relevance_and_metrics_cuda_match_cpu():
    query_labels, gallery_labels, keys = random_labels_and_keys(300, 2000, "both")
    retrieved = torch.randint(-1, 2000, (300, 30))
    cpu = retrieval_relevance(retrieved, query_labels, gallery_labels, **keys)
    gpu = retrieval_relevance(
        retrieved.cuda(), query_labels.cuda(), gallery_labels.cuda(), **{n: t.cuda() for n, t in keys.items()}
    )
    for a, b in zip(cpu, gpu):
        assert b.device.type == "cuda" and torch.equal(a, b.cpu())
    is_relevant, n_gt, n_retrieved = random_relevance(400, 40)
    top_k = ([1, 3, 50], [5, 1], [1, 10, 40])
    cpu = retrieval_metrics(is_relevant, n_gt, n_retrieved, *top_k)
    gpu = retrieval_metrics(is_relevant.cuda(), n_gt.cuda(), n_retrieved.cuda(), *top_k)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(a, b.cpu(), equal_nan=True)
