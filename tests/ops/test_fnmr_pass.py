"""The private ``_embedding_pair_histogram`` op (a whole FNMR@FMR pass from the embeddings) against the
definition it must reproduce bit for bit: ``pairwise_distance`` (the compiled op) and then the
pure-PyTorch ``_pair_distance_histogram`` twin per window; and against its own pure-PyTorch twin where
the distances are exact (integer embeddings). Real data: sklearn's digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast.ops import pairwise_distance
from oml_fast.ops.fnmr import Window, embedding_pair_histogram
from oml_fast.reference.fnmr import embedding_pair_histogram as reference_pass
from oml_fast.reference.fnmr import pair_distance_histogram as reference_histogram

METRICS = ("euclidean", "sqeuclidean", "cosine", "dot")


def _digits(n: int, dtype: torch.dtype, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    rows = rng.choice(len(x), n, replace=False)
    return torch.from_numpy(x[rows]).to(dtype), torch.from_numpy(y[rows]).long()


def _windows(dist: torch.Tensor, rng: np.random.Generator) -> list[Window]:
    """A collected and a binned window between sampled distances, and the whole line."""
    values = np.sort(dist.double().flatten().numpy())
    a, b, c, d = np.sort(rng.choice(values, 4))
    return [
        Window(float(a), float(b), 1, True),
        Window(float(c), float(d), int(rng.integers(1, 9)), False),
        Window(-math.inf, math.inf, 1, bool(rng.integers(0, 2))),
    ]


def _sorted(t: torch.Tensor) -> torch.Tensor:
    return torch.sort(t).values


@pytest.mark.parametrize("seed", range(16))
def test_pass_equals_pairwise_distance_then_histogram(seed):
    rng = np.random.default_rng(seed)
    dtype = (torch.float32, torch.float64)[seed % 2]
    metric = METRICS[seed % 4]
    n_query, n_gallery = int(rng.integers(1, 90)), int(rng.integers(1, 300))
    queries, query_labels = _digits(n_query, dtype, rng)
    gallery, gallery_labels = _digits(n_gallery, dtype, rng)
    queries = queries + torch.from_numpy(rng.standard_normal(queries.shape)).to(dtype) * (seed % 3)
    ids = (torch.from_numpy(rng.integers(0, 40, n_query)), torch.from_numpy(rng.integers(0, 40, n_gallery)))
    groups = (torch.from_numpy(rng.integers(0, 7, n_query)), torch.from_numpy(rng.integers(0, 7, n_gallery)))
    ids = ids if seed % 3 else (None, None)
    groups = groups if seed % 5 < 2 else (None, None)
    keys = (query_labels, gallery_labels, *ids, *groups)
    dist = pairwise_distance(queries, gallery, metric)
    windows = _windows(dist, rng)
    max_collect = int(rng.integers(0, 2000))
    out = embedding_pair_histogram(queries, gallery, metric, *keys, windows, max_collect, True)
    for window, part, overflowed in zip(windows, out.windows, out.overflowed, strict=True):
        expected = reference_histogram(dist, *keys, *window)
        for name in ("counts", "mins", "maxs"):
            assert torch.equal(getattr(part, name), getattr(expected, name)), name
        assert overflowed == (window.collect and len(expected.collected) > max_collect)
        if window.collect and not overflowed:
            assert part.collected.dtype == dtype
            assert torch.equal(_sorted(part.collected), _sorted(expected.collected))
        else:
            assert part.collected.numel() == 0
    expected_positives = reference_histogram(dist, *keys, with_positives=True).positives
    assert torch.equal(_sorted(out.positives), _sorted(expected_positives))


@pytest.mark.parametrize("metric", ["sqeuclidean", "dot"])
def test_pass_equals_its_pure_pytorch_twin_on_exact_distances(metric):
    # Integer embeddings: squared distances and inner products are exact in both (the twin's euclidean
    # and cosine round differently in the last bit: a square root / a division of other operands).
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.integers(-3, 4, (60, 5))).double()
    labels, ids = torch.from_numpy(rng.integers(0, 6, 60)), torch.arange(60)
    windows = [Window(-2.0, 9.0, 4, False), Window(1.0, 3.0, 1, True)]
    got = embedding_pair_histogram(x, x, metric, labels, labels, ids, ids, None, None, windows, 50, True)
    expected = reference_pass(x, x, metric, labels, labels, ids, ids, None, None, windows, 50, True)
    assert got.overflowed == expected.overflowed
    for part, twin in zip(got.windows, expected.windows, strict=True):
        for name in ("counts", "mins", "maxs", "collected"):
            g, e = getattr(part, name), getattr(twin, name)
            assert torch.equal(
                _sorted(g) if name == "collected" else g, _sorted(e) if name == "collected" else e
            )
    assert torch.equal(_sorted(got.positives), _sorted(expected.positives))


def test_pass_over_empty_sides():
    x = torch.zeros(0, 3)
    y = torch.ones(4, 3)
    labels0, labels4 = torch.zeros(0, dtype=torch.long), torch.arange(4)
    out = embedding_pair_histogram(
        x, y, "euclidean", labels0, labels4, None, None, None, None, [Window(0, 1, 2, True)], 9
    )
    assert out.windows[0].counts.tolist() == [0, 0, 0, 0] and out.positives.numel() == 0


def test_pass_errors_name_the_argument():
    x = torch.zeros(3, 2)
    labels = torch.zeros(3, dtype=torch.long)
    w = [Window(0.0, 1.0, 1, False)]
    with pytest.raises(ValueError, match="metric"):
        embedding_pair_histogram(x, x, "manhattan", labels, labels, None, None, None, None, w, 0)
    with pytest.raises(ValueError, match="gallery_labels"):
        embedding_pair_histogram(x, x, "dot", labels, labels[:2], None, None, None, None, w, 0)
    with pytest.raises(ValueError, match="gallery_ids"):
        embedding_pair_histogram(x, x, "dot", labels, labels, labels, None, None, None, w, 0)
    with pytest.raises(ValueError, match="lowers"):
        embedding_pair_histogram(x, x, "dot", labels, labels, None, None, None, None, [], 0)
    with pytest.raises(ValueError, match="lower"):
        embedding_pair_histogram(
            x, x, "dot", labels, labels, None, None, None, None, [Window(2.0, 1.0, 1, False)], 0
        )
    with pytest.raises(ValueError, match="n_bins"):
        embedding_pair_histogram(
            x, x, "dot", labels, labels, None, None, None, None, [Window(0, math.inf, 2, False)], 0
        )
    with pytest.raises(ValueError, match="max_collect"):
        embedding_pair_histogram(x, x, "dot", labels, labels, None, None, None, None, w, -1)
    with pytest.raises(TypeError, match="queries"):
        embedding_pair_histogram(x.half(), x.half(), "dot", labels, labels, None, None, None, None, w, 0)


def test_fake_kernel_under_fake_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv()):
        x = torch.empty(4, 3)
        labels = torch.zeros(4, dtype=torch.long)
        counts, mins, _, collected, overflowed, positives = (
            torch.ops.oml_fast._embedding_pair_histogram.default(
                x,
                x,
                "euclidean",
                labels,
                labels,
                None,
                None,
                None,
                None,
                [0.0, 2.0],
                [1.0, 3.0],
                [8, 1],
                [False, True],
                5,
                True,
            )
        )
    assert [tuple(c.shape) for c in counts] == [(10,), (3,)] and mins[0].dtype == torch.float64
    assert collected[1].dtype == torch.float32 and tuple(overflowed.shape) == (2,) and positives.dim() == 1


def test_opcheck():
    rng = np.random.default_rng(0)
    x, labels = _digits(20, torch.float32, rng)
    ids = torch.arange(20)
    args = (
        x,
        x,
        "euclidean",
        labels,
        labels,
        ids,
        ids,
        None,
        None,
        [0.0, 30.0],
        [20.0, 60.0],
        [4, 1],
        [False, True],
        100,
        True,
    )
    torch.library.opcheck(torch.ops.oml_fast._embedding_pair_histogram.default, args)


def test_pass_over_many_queries_equals_pairwise_distance():
    # > 8192 queries: the kernel computes their squared norms in slices (no embedding-sized temporary).
    rng = np.random.default_rng(3)
    queries = torch.from_numpy(rng.standard_normal((9000, 16))).float()
    gallery, gallery_labels = _digits(40, torch.float32, rng)
    gallery = gallery[:, :16] / 4
    query_labels = torch.from_numpy(rng.integers(0, 10, 9000))
    keys = (query_labels, gallery_labels, None, None, None, None)
    dist = pairwise_distance(queries, gallery, "euclidean")
    windows = [Window(float(dist.quantile(0.3)), float(dist.quantile(0.31)), 1, True)]
    out = embedding_pair_histogram(queries, gallery, "euclidean", *keys, windows, 1 << 20, True)
    expected = reference_histogram(dist, *keys, *windows[0], with_positives=True)
    for name in ("counts", "mins", "maxs"):
        assert torch.equal(getattr(out.windows[0], name), getattr(expected, name)), name
    assert torch.equal(_sorted(out.windows[0].collected), _sorted(expected.collected))
    assert torch.equal(_sorted(out.positives), _sorted(expected.positives))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pass_over_several_tiles_equals_pairwise_distance(metric, dtype):
    # 1300 x 1100: several row and column tiles (distance_rows.h), edge tiles included; magnitudes near
    # 1e15 make both sides scale by a power of two and back.
    rng = np.random.default_rng(11)
    queries, query_labels = _digits(1300, dtype, rng)
    gallery, gallery_labels = _digits(1100, dtype, rng)
    scale = 1e14 if metric != "cosine" else 1.0
    queries = (queries + torch.from_numpy(rng.standard_normal(queries.shape)).to(dtype)) * scale
    gallery = gallery * scale
    ids = (torch.from_numpy(rng.integers(0, 300, 1300)), torch.from_numpy(rng.integers(0, 300, 1100)))
    keys = (query_labels, gallery_labels, *ids, None, None)
    dist = pairwise_distance(queries, gallery, metric)
    windows = _windows(dist, rng)
    out = embedding_pair_histogram(queries, gallery, metric, *keys, windows, 1 << 22, True)
    for window, part in zip(windows, out.windows, strict=True):
        expected = reference_histogram(dist, *keys, *window)
        for name in ("counts", "mins", "maxs"):
            assert torch.equal(getattr(part, name), getattr(expected, name)), name
        if window.collect:
            assert torch.equal(_sorted(part.collected), _sorted(expected.collected))
    expected_positives = reference_histogram(dist, *keys, with_positives=True).positives
    assert torch.equal(_sorted(out.positives), _sorted(expected_positives))
