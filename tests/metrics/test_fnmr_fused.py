"""The fused ``_pair_distance_histogram`` op against its pure-PyTorch twin, and FNMR@FMR through both."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oml_fast.functional.metrics import calc_fnmr_at_fmr
from oml_fast.metrics import fnmr as fnmr_module
from oml_fast.metrics.fnmr import calc_fnmr_at_fmr_all_pairs
from oml_fast.ops import pairwise_distance
from oml_fast.ops.fnmr import pair_distance_histogram
from oml_fast.reference.fnmr import bin_of
from oml_fast.reference.fnmr import pair_distance_histogram as reference_histogram

INF = math.inf


def _random_case(rng: np.random.Generator, dtype: torch.dtype, kind: str):
    rows, n_gallery = int(rng.integers(0, 9)), int(rng.integers(1, 40))
    if kind == "ties":
        dist = rng.integers(0, 5, (rows, n_gallery)).astype(np.float64)
    elif kind == "equal":
        dist = np.full((rows, n_gallery), 1.25)
    else:
        dist = rng.standard_normal((rows, n_gallery)) * 3
    dist = torch.from_numpy(dist).to(dtype)

    def keys(n: int, high: int) -> torch.Tensor:
        return torch.from_numpy(rng.integers(0, high, n))

    ids = (keys(rows, 6), keys(n_gallery, 6)) if rng.random() < 0.6 else (None, None)
    groups = (keys(rows, 4), keys(n_gallery, 4)) if rng.random() < 0.4 else (None, None)
    return dist, keys(rows, 3), keys(n_gallery, 3), ids, groups


def _chain(rng: np.random.Generator, values: torch.Tensor, depth: int):
    # Levels built the way the metric builds them: a bin that holds values, then its [min, max].
    chain: list[tuple[float, float, int, int]] = []
    lo, width = float(values.min()) - 0.5, float(values.max() - values.min()) + 1.0
    for _ in range(depth):
        n_bins = int(rng.integers(1, 6))
        bins = bin_of(values, lo, width, n_bins)
        b = int(bins[int(rng.integers(0, len(values)))])
        chain.append((lo, width, n_bins, b))
        values = values[bins == b]
        lo, width = float(values.min()), float(values.max() - values.min())
    return chain, (float(values.min()), float(values.max())), lo, width


def _sorted(t: torch.Tensor) -> torch.Tensor:
    return torch.sort(t).values


@pytest.mark.parametrize("seed", range(40))
def test_op_matches_reference(seed):
    rng = np.random.default_rng(seed)
    dtype = (torch.float32, torch.float64)[seed % 2]
    kind = ("normal", "ties", "equal")[seed % 3]
    dist, ql, gl, (qid, gid), (qgr, ggr) = _random_case(rng, dtype, kind)
    depth = int(rng.integers(0, 3)) if dist.numel() else 0
    if depth:
        chain, (lower, upper), lo, width = _chain(rng, dist.double().flatten(), depth)
    else:
        chain, (lower, upper), lo, width = [], (-math.inf, math.inf), -1.0, 9.0
    if seed % 7 == 0:
        width = 0.0  # a window of equal values: everything in bin 0
    n_bins = int(rng.integers(1, 9))
    for collect in (False, True):
        for with_positives in (False, True):
            args = (
                dist,
                ql,
                gl,
                qid,
                gid,
                qgr,
                ggr,
                [c[0] for c in chain],
                [c[1] for c in chain],
                [c[2] for c in chain],
                [c[3] for c in chain],
                lower,
                upper,
                lo,
                width,
                n_bins,
                collect,
                with_positives,
            )
            got = pair_distance_histogram(*args)
            expected = reference_histogram(*args)
            for name, g, e in zip(("counts", "mins", "maxs"), got[:3], expected[:3], strict=True):
                assert g.dtype == e.dtype and torch.equal(g, e), name
            assert got[3].dtype == torch.float64 and torch.equal(_sorted(got[3]), _sorted(expected[3]))
            assert got[4].dtype == dtype and torch.equal(_sorted(got[4]), _sorted(expected[4]))
            if not collect:
                assert int(got[0].sum()) + 0 == int(expected[0].sum())


def test_op_values_by_hand():
    dist = torch.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]])
    labels_q, labels_g = torch.tensor([0, 1]), torch.tensor([0, 1, 2, 2])
    ids_q, ids_g = torch.tensor([0, 1]), torch.tensor([0, 1, 2, 3])
    counts, mins, maxs, collected, positives = pair_distance_histogram(
        dist,
        labels_q,
        labels_g,
        ids_q,
        ids_g,
        None,
        None,
        [],
        [],
        [],
        [],
        -INF,
        INF,
        0.0,
        8.0,
        4,
        False,
        True,
    )
    # Excluded: (0,0), (1,1); positives: none left; negatives: 1, 2, 3, 4, 6, 7.
    assert counts.tolist() == [1, 2, 1, 2] and positives.numel() == 0 and collected.numel() == 0
    assert mins.tolist() == [1.0, 2.0, 4.0, 6.0] and maxs.tolist() == [1.0, 3.0, 4.0, 7.0]
    # Window = bin 1 of (0, 8, 4), i.e. [2, 4): collected.
    _, _, _, collected, _ = pair_distance_histogram(
        dist,
        labels_q,
        labels_g,
        None,
        None,
        None,
        None,
        [0.0],
        [8.0],
        [4],
        [1],
        -INF,
        INF,
        0.0,
        1.0,
        4,
        True,
        False,
    )
    assert sorted(collected.tolist()) == [2.0, 3.0]


def test_op_errors_name_the_argument():
    dist = torch.zeros(2, 3)
    labels_q, labels_g = torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    base = [None, None, None, None, [], [], [], [], -INF, INF, 0.0, 1.0, 4, False, False]
    with pytest.raises(ValueError, match="dist"):
        pair_distance_histogram(torch.zeros(6), labels_q, labels_g, *base)
    with pytest.raises(ValueError, match="gallery_labels"):
        pair_distance_histogram(dist, labels_q, labels_q, *base)
    with pytest.raises(ValueError, match="chain_"):
        pair_distance_histogram(
            dist,
            labels_q,
            labels_g,
            None,
            None,
            None,
            None,
            [0.0],
            [],
            [],
            [],
            -INF,
            INF,
            0.0,
            1.0,
            4,
            False,
            False,
        )
    with pytest.raises(ValueError, match="n_bins"):
        pair_distance_histogram(
            dist,
            labels_q,
            labels_g,
            None,
            None,
            None,
            None,
            [],
            [],
            [],
            [],
            -INF,
            INF,
            0.0,
            1.0,
            0,
            False,
            False,
        )
    with pytest.raises(ValueError, match="gallery_ids"):
        pair_distance_histogram(
            dist,
            labels_q,
            labels_g,
            labels_q,
            None,
            None,
            None,
            [],
            [],
            [],
            [],
            -INF,
            INF,
            0.0,
            1.0,
            4,
            False,
            False,
        )
    with pytest.raises(ValueError, match="NaN"):
        pair_distance_histogram(torch.full((2, 3), float("nan")), labels_q, labels_g + 1, *base)


def test_op_fake_kernel_under_fake_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv()):
        dist = torch.empty(4, 5)
        out = pair_distance_histogram(
            dist,
            torch.zeros(4, dtype=torch.long),
            torch.zeros(5, dtype=torch.long),
            None,
            None,
            None,
            None,
            [],
            [],
            [],
            [],
            -INF,
            INF,
            0.0,
            1.0,
            8,
            False,
            True,
        )
    assert [tuple(t.shape)[:1] for t in out[:3]] == [(8,), (8,), (8,)]
    assert out[3].dtype == torch.float64 and out[4].dtype == torch.float32


def _dense_fnmr(emb, labels, ids, groups, fmr_vals, metric):
    """The definition, on the full distance matrix (small inputs only)."""
    dist = pairwise_distance(emb, emb, metric)
    same = labels[:, None] == labels[None, :]
    keep = ids[:, None] != ids[None, :]
    if groups is not None:
        keep &= groups[:, None] != groups[None, :]
    return calc_fnmr_at_fmr(dist[same & keep].numpy(), dist[~same & keep].numpy(), fmr_vals)


@pytest.mark.parametrize("seed", range(8))
def test_streamed_fnmr_equals_the_dense_definition(seed, monkeypatch):
    # Small bins, caps and tiles force several refinement passes (histogram and collect windows).
    monkeypatch.setattr(fnmr_module, "N_BINS", (4, 16)[seed % 2])
    monkeypatch.setattr(fnmr_module, "MAX_COLLECT", 5)
    monkeypatch.setattr(fnmr_module, "TILE_ELEMENTS", 50)
    rng = np.random.default_rng(seed)
    n, dtype = 40, (torch.float32, torch.float64)[seed % 2]
    emb = rng.integers(0, 3, (n, 2)) if seed % 3 == 0 else rng.standard_normal((n, 4))
    emb = torch.from_numpy(emb).to(dtype)
    labels = torch.from_numpy(rng.integers(0, 4, n)).to(torch.int32 if seed % 4 == 1 else torch.int64)
    if seed % 4 == 3:  # float labels are factorised, with the same equality
        labels = labels.double() / 3
    ids = torch.arange(n)
    groups = torch.from_numpy(rng.integers(0, 10, n)) if seed % 2 else None
    fmr_vals = (0.0, 0.001, 0.013, 0.1, 0.5, 0.77, 1.0)
    metric = ("euclidean", "sqeuclidean", "cosine", "dot")[seed % 4]
    streamed = calc_fnmr_at_fmr_all_pairs(
        emb, emb, labels, labels, fmr_vals, ids, ids, groups, groups, metric
    )
    assert torch.equal(streamed, _dense_fnmr(emb, labels, ids, groups, fmr_vals, metric).float())


def test_streamed_fnmr_of_half_embeddings_equals_their_float32_result():
    rng = np.random.default_rng(0)
    emb = torch.from_numpy(rng.standard_normal((30, 8))).half()
    labels = torch.from_numpy(rng.integers(0, 3, 30))
    ids = torch.arange(30)
    half = calc_fnmr_at_fmr_all_pairs(emb, emb, labels, labels, (0.1, 0.5), ids, ids)
    full = calc_fnmr_at_fmr_all_pairs(emb.float(), emb.float(), labels, labels, (0.1, 0.5), ids, ids)
    assert torch.equal(half, full)
